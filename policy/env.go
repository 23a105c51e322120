package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// EnvConfig says how the environment attributes are computed: the zone of
// r.env.Hour and r.env.Weekday, what counts as business hours, and which
// client addresses are loopback or private (everything else is public).
type EnvConfig struct {
	// Zone is the zone of local time; nil means UTC.
	Zone *time.Location
	// BusinessDays are the weekdays with business hours.
	BusinessDays [7]bool
	// BusinessStart and BusinessEnd bound business hours as offsets from
	// local midnight; start is inclusive, end exclusive.
	BusinessStart, BusinessEnd time.Duration
	// Loopback and Private classify r.env.Network by the client's address.
	Loopback, Private []netip.Prefix
}

// DefaultEnvConfig is Monday to Friday, 08:00 to 18:00 in the machine's
// local zone, loopback 127.0.0.0/8 and ::1, private RFC 1918, CGNAT and
// IPv6 unique local addresses.
func DefaultEnvConfig() EnvConfig {
	c := EnvConfig{
		Zone:          time.Local,
		BusinessStart: 8 * time.Hour,
		BusinessEnd:   18 * time.Hour,
		Loopback:      mustPrefixes("127.0.0.0/8", "::1/128"),
		Private:       mustPrefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7", "fe80::/10"),
	}
	for d := time.Monday; d <= time.Friday; d++ {
		c.BusinessDays[d] = true
	}
	return c
}

func mustPrefixes(ss ...string) []netip.Prefix {
	out, err := ParsePrefixes(ss)
	if err != nil {
		panic(err)
	}
	return out
}

// ParsePrefixes parses CIDRs ("10.0.0.0/8") or single addresses.
func ParsePrefixes(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not a CIDR such as 10.0.0.0/8", ErrInvalidInput, s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// ParseWeekday accepts mon..sun (or full names), any case.
func ParseWeekday(s string) (time.Weekday, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for d := time.Sunday; d <= time.Saturday; d++ {
		full := strings.ToLower(d.String())
		if s == full || s == full[:3] {
			return d, nil
		}
	}
	return 0, fmt.Errorf("%w: weekday %q: use mon, tue, wed, thu, fri, sat or sun", ErrInvalidInput, s)
}

// ParseClock parses "HH:MM" (00:00 to 24:00) as an offset from midnight.
func ParseClock(s string) (time.Duration, error) {
	var h, m int
	if n, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil || n != 2 || len(s) != 5 ||
		h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("%w: time of day %q: use HH:MM, e.g. 08:30", ErrInvalidInput, s)
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, nil
}

func (c *EnvConfig) zone() *time.Location {
	if c.Zone == nil {
		return time.UTC
	}
	return c.Zone
}

// Network classes of r.env.Network.
const (
	NetLoopback = "loopback"
	NetPrivate  = "private"
	NetPublic   = "public"
)

// network classifies a client address. No address is a local process (a
// stdio client): loopback. An address that does not parse is public, the
// least trusted class.
func (c *EnvConfig) network(ip string) string {
	if ip == "" {
		return NetLoopback
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return NetPublic
	}
	a = a.Unmap()
	switch {
	case inAny(c.Loopback, a):
		return NetLoopback
	case inAny(c.Private, a):
		return NetPrivate
	}
	return NetPublic
}

func inAny(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// businessHours reports whether local time t falls in business hours.
func (c *EnvConfig) businessHours(t time.Time) bool {
	if !c.BusinessDays[t.Weekday()] {
		return false
	}
	since := time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second
	return since >= c.BusinessStart && since < c.BusinessEnd
}

// ParseTime reads a time for a test case or `policy explain --at`: RFC
// 3339 with an offset, or a wall-clock time without one
// ("2026-03-03T10:00", "2026-03-03 10:00:00"), which is read in zone so
// that cases mean the same on every machine.
func ParseTime(s string, zone *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if zone == nil {
		zone = time.UTC
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, zone); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: time %q: use RFC 3339 (2026-03-03T10:00:00+01:00) or local 2026-03-03T10:00", ErrInvalidInput, s)
}

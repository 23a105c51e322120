package behaviour

import (
	"hash/maphash"
	"net/url"
	"path"
	"strconv"
	"strings"
	"unicode"

	"github.com/mcp-mediator/mediator/mediator"
)

// Runtime bounds per agent: the call times kept for the rate features, and
// the distinct argument values kept for fan-out (across its tools).
const (
	rateRing      = 256
	maxFanValues  = 512
	maxFanPerTool = 128
	maxIDsPerCall = 16
	recentCalls   = 20
)

// idWords end the names of arguments that identify what a call acts on:
// fan-out counts their distinct values.
var idWords = map[string]bool{
	"id": true, "ids": true, "uuid": true, "key": true, "path": true, "paths": true, "file": true,
	"files": true, "filename": true, "url": true, "uri": true, "host": true, "hostname": true,
	"email": true, "account": true, "customer": true, "user": true, "username": true, "record": true,
	"number": true, "sku": true, "order": true, "ticket": true, "query": true, "target": true,
	"source": true, "destination": true, "recipient": true, "payee": true, "table": true, "repo": true,
}

// identifying reports whether the argument name identifies an object, by
// its last word (customer_id, filePath, url).
func identifying(name string) bool {
	return len(name) <= 128 && idWords[lastWord(name)]
}

var seed = maphash.MakeSeed()

// callIDs returns the hashes of the identifying values of a call (at most
// maxIDsPerCall) and the name of the first identifying argument. Values
// are hashed, never kept.
func callIDs(c *mediator.Call, buf []uint64) ([]uint64, string) {
	first := ""
	for name, v := range c.Arguments {
		if !identifying(name) {
			continue
		}
		add := func(s string) {
			if len(buf) < maxIDsPerCall {
				var h maphash.Hash
				h.SetSeed(seed)
				h.WriteString(name)
				h.WriteByte(0)
				h.WriteString(s)
				buf = append(buf, h.Sum64())
			}
		}
		switch x := v.(type) {
		case string:
			add(x)
		case float64:
			add(strconv.FormatFloat(x, 'g', -1, 64))
		case []any:
			for _, e := range x {
				if s, ok := e.(string); ok {
					add(s)
				}
			}
		default:
			continue
		}
		if first == "" || name < first {
			first = name
		}
	}
	return buf, first
}

// fanWindow holds the distinct identifying values one tool saw in the
// last Window (sliding): each value with the last time it was seen.
type fanWindow struct {
	arg    string
	values []fanValue
	newest int64 // unix nanoseconds of the last call
}

type fanValue struct {
	h  uint64
	at int64
}

// expire drops the values not seen since before n-window (and, after the
// clock went back, those seen "after" n) and returns how many it dropped.
func (w *fanWindow) expire(n, window int64) int {
	k := 0
	for _, v := range w.values {
		if n-v.at < window && v.at <= n {
			w.values[k] = v
			k++
		}
	}
	dropped := len(w.values) - k
	w.values = w.values[:k]
	return dropped
}

func (w *fanWindow) touch(h uint64, n int64) bool {
	for i := range w.values {
		if w.values[i].h == h {
			w.values[i].at = n
			return true
		}
	}
	return false
}

// classIndex and riskIndex place a target's data class and risk in the
// baseline's arrays (0 is unknown).
func classIndex(d mediator.DataClass) int { return mediator.ClassRank(d) }

func riskIndex(r mediator.Risk) int {
	switch r {
	case mediator.RiskLow:
		return 1
	case mediator.RiskMedium:
		return 2
	case mediator.RiskHigh:
		return 3
	case mediator.RiskCritical:
		return 4
	}
	return 0
}

var classNames = [6]string{"unknown", "public", "internal", "confidential", "pii", "financial"}
var riskNames = [5]string{"unknown", "low", "medium", "high", "critical"}

// outcome bits of the recent-calls ring.
const (
	recDenied uint8 = 1 << iota
	recFailed
	recOutOfScope
)

// formatCount writes n with thousands separators: 1,240.
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 1000 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

func formatBytes(n float64) string {
	switch {
	case n >= 1<<20:
		return strconv.FormatFloat(n/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(n/(1<<10), 'f', 0, 64) + " KiB"
	}
	return strconv.FormatFloat(n, 'f', 0, 64) + " B"
}

// maxPlacesPerCall bounds the places one call names.
const maxPlacesPerCall = 4

// Words that make an argument name a path or a URL when they end it (for
// places; the fan-out words above are wider).
var (
	placePathWords = map[string]bool{"path": true, "paths": true, "file": true, "files": true, "filename": true,
		"dir": true, "directory": true, "folder": true, "source": true, "destination": true, "src": true, "dst": true}
	placeURLWords = map[string]bool{"url": true, "urls": true, "uri": true, "endpoint": true, "host": true, "hostname": true, "webhook": true}
)

// lastWord is the last word of an argument name, lower-cased.
func lastWord(name string) string {
	start := 0
	for i := len(name) - 1; i >= 0; i-- {
		r := rune(name[i])
		if r == '_' || r == '-' || r == '.' || r == ' ' {
			start = i + 1
			break
		}
		if unicode.IsUpper(r) {
			start = i
			break
		}
	}
	return strings.ToLower(name[start:])
}

// callPlaces returns where a call acts: the directory (the first two
// segments of a cleaned path, or "." for a bare file name) of each path
// argument, and the host of each URL argument, as "path:/repo/svc" and
// "host:example.com". At most maxPlacesPerCall; values are not kept beyond
// that prefix.
func callPlaces(c *mediator.Call, buf []string) []string {
	for name, v := range c.Arguments {
		if len(buf) >= maxPlacesPerCall || len(name) > 128 {
			break
		}
		w := lastWord(name)
		isPath, isURL := placePathWords[w], placeURLWords[w]
		if !isPath && !isURL {
			continue
		}
		add := func(s string) {
			if len(buf) >= maxPlacesPerCall || s == "" || len(s) > 4096 {
				return
			}
			if pl := placeOf(s, isURL); pl != "" && !slicesContains(buf, pl) {
				buf = append(buf, pl)
			}
		}
		switch x := v.(type) {
		case string:
			add(x)
		case []any:
			for _, e := range x {
				if s, ok := e.(string); ok {
					add(s)
				}
			}
		}
	}
	return buf
}

// placeOf is the place of one value: a URL's host (also for a path
// argument holding a URL), or a path's first two segments.
func placeOf(s string, isURL bool) string {
	if strings.Contains(s, "://") || isURL {
		u, err := url.Parse(s)
		if err == nil && u.Host != "" {
			return "host:" + strings.ToLower(u.Hostname())
		}
		if isURL {
			return "host:" + strings.ToLower(strings.TrimSpace(s))
		}
	}
	clean := path.Clean(strings.ReplaceAll(s, "\\", "/"))
	abs := strings.HasPrefix(clean, "/")
	parts := strings.Split(strings.TrimPrefix(clean, "/"), "/")
	switch {
	case len(parts) == 1 && !abs:
		return "path:."
	case len(parts) <= 2:
		parts = parts[:len(parts)-1]
	default:
		parts = parts[:2]
	}
	out := strings.Join(parts, "/")
	if abs {
		out = "/" + out
	}
	if out == "" {
		out = "/"
	}
	return "path:" + out
}

func slicesContains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

package policy

import (
	"errors"
	"testing"
	"time"
)

func TestParseClock(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"08:30", 8*time.Hour + 30*time.Minute, true},
		{"00:00", 0, true},
		{"24:00", 24 * time.Hour, true},
		{"24:01", 0, false},
		{"8:30", 0, false},
		{"08:60", 0, false},
		{"noon", 0, false},
		{"-1:00", 0, false},
	}
	for _, tc := range cases {
		got, err := ParseClock(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseClock(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ParseClock(%q): error does not wrap ErrInvalidInput", tc.in)
		}
	}
}

func TestParseWeekday(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Weekday{"mon": time.Monday, "Sunday": time.Sunday, " SAT ": time.Saturday} {
		if got, err := ParseWeekday(in); err != nil || got != want {
			t.Errorf("ParseWeekday(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "mo", "funday"} {
		if _, err := ParseWeekday(bad); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ParseWeekday(%q) accepted", bad)
		}
	}
}

func TestParsePrefixes(t *testing.T) {
	t.Parallel()
	ps, err := ParsePrefixes([]string{"10.1.2.3/8", "2001:db8::/32", "192.0.2.1", "::ffff:10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.1/32", "10.0.0.1/32"}
	for i, p := range ps {
		if p.String() != want[i] {
			t.Errorf("prefix %d = %s, want %s", i, p, want[i])
		}
	}
	if _, err := ParsePrefixes([]string{"10.0.0.0/33"}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("/33 accepted: %v", err)
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	zone := time.FixedZone("plus2", 2*3600)
	cases := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-03-03T10:00:00Z", time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC), true},
		{"2026-03-03T10:00:00-05:00", time.Date(2026, 3, 3, 15, 0, 0, 0, time.UTC), true},
		{"2026-03-03T10:00", time.Date(2026, 3, 3, 10, 0, 0, 0, zone), true},
		{"2026-03-03 10:00:30", time.Date(2026, 3, 3, 10, 0, 30, 0, zone), true},
		{"tuesday 10am", time.Time{}, false},
	}
	for _, tc := range cases {
		got, err := ParseTime(tc.in, zone)
		if (err == nil) != tc.ok || !got.Equal(tc.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseLevelsAndModes(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"normal", "elevated", "incident"} {
		if l, err := ParseAlertLevel(s); err != nil || string(l) != s {
			t.Errorf("ParseAlertLevel(%q) = %q, %v", s, l, err)
		}
	}
	for _, s := range []string{"", "Normal", "red"} {
		if _, err := ParseAlertLevel(s); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ParseAlertLevel(%q) accepted", s)
		}
	}
	for in, want := range map[string]Mode{"": ModeEnforce, "enforce": ModeEnforce, "shadow": ModeShadow} {
		if m, err := ParseMode(in); err != nil || m != want {
			t.Errorf("ParseMode(%q) = %q, %v", in, m, err)
		}
	}
	if _, err := ParseMode("audit"); !errors.Is(err, ErrInvalidInput) {
		t.Error("ParseMode(audit) accepted")
	}
}

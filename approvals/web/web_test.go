package web

import (
	"net/netip"
	"net/url"
	"testing"
	"time"
)

func TestSameHost(t *testing.T) {
	t.Parallel()
	cases := []struct {
		origin, host string
		want         bool
		why          string
	}{
		{"http://127.0.0.1:8080", "127.0.0.1:8080", true, "same origin"},
		{"https://mediator.example.com", "mediator.example.com", true, "TLS ended at a proxy"},
		{"https://evil.example", "mediator.example.com", false, "another site"},
		{"javascript://mediator.example.com", "mediator.example.com", false, "not http(s)"},
	}
	for _, tc := range cases {
		if got := sameHost(tc.origin, tc.host); got != tc.want {
			t.Errorf("%s: sameHost(%q, %q) = %v", tc.why, tc.origin, tc.host, got)
		}
	}
}

func TestFromProxy(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("127.0.0.1/32")}
	cases := []struct {
		remote string
		want   bool
	}{
		{"10.0.0.7:5555", true},
		{"127.0.0.1:1", true},
		{"[::ffff:10.0.0.9]:80", true},
		{"10.0.1.7:5555", false},
		{"garbage", false},
	}
	for _, tc := range cases {
		if got := fromProxy(tc.remote, proxies); got != tc.want {
			t.Errorf("fromProxy(%q) = %v, want %v", tc.remote, got, tc.want)
		}
	}
}

func TestLimiter(t *testing.T) {
	t.Parallel()
	l := newLimiter(2, time.Hour)
	for range 2 {
		if !l.allow("k") {
			t.Fatal("refused before the limit")
		}
		l.fail("k")
	}
	if l.allow("k") {
		t.Fatal("allowed after the limit")
	}
	if !l.allow("other") {
		t.Fatal("one key's failures limited another")
	}
	l.reset("k")
	if !l.allow("k") {
		t.Fatal("still limited after a reset")
	}
}

func TestGrantFrom(t *testing.T) {
	t.Parallel()
	cases := []struct {
		form    url.Values
		approve bool
		wantNil bool
		wantErr bool
	}{
		{url.Values{}, true, true, false},
		{url.Values{"grant_minutes": {"5"}, "grant_pattern": {".*"}}, false, true, false},
		{url.Values{"grant_minutes": {"5"}, "grant_pattern": {".*"}}, true, false, false},
		{url.Values{"grant_minutes": {"x"}, "grant_pattern": {".*"}}, true, true, true},
		{url.Values{"grant_minutes": {"5"}}, true, true, true},
	}
	for i, tc := range cases {
		g, err := grantFrom(tc.form, tc.approve)
		if (g == nil) != tc.wantNil || (err != nil) != tc.wantErr {
			t.Errorf("case %d: grant %+v err %v", i, g, err)
		}
	}
}

func TestTemplatesParse(t *testing.T) {
	t.Parallel()
	if _, err := parseTemplates(); err != nil {
		t.Fatal(err)
	}
}

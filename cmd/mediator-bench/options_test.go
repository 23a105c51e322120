package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseArgsRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no tool", []string{"--url", "http://127.0.0.1:1/mcp"}, "--tool is required"},
		{"no target", []string{"--tool", "x"}, "either --url or a stdio command"},
		{"both targets", []string{"--tool", "x", "--url", "http://127.0.0.1:1/mcp", "--", "cmd"}, "not both"},
		{"remote url", []string{"--tool", "x", "--url", "http://example.com/mcp"}, "not a loopback address"},
		{"wildcard address", []string{"--tool", "x", "--url", "http://0.0.0.0:8080/mcp"}, "not a loopback address"},
		{"lan address", []string{"--tool", "x", "--url", "http://192.168.1.10:8080/mcp"}, "not a loopback address"},
		{"remote debug url", []string{"--tool", "x", "--url", "http://127.0.0.1:1/mcp", "--debug-url", "http://10.0.0.1:6060"}, "--debug-url"},
		{"not http", []string{"--tool", "x", "--url", "ftp://127.0.0.1/mcp"}, "http://"},
		{"args not an object", []string{"--tool", "x", "--args", "[1]", "--", "cmd"}, "not a JSON object"},
		{"args not JSON", []string{"--tool", "x", "--args", "{", "--", "cmd"}, "not a JSON object"},
		{"count and duration", []string{"--tool", "x", "-n", "5", "-d", "1s", "--", "cmd"}, "not both"},
		{"no workers", []string{"--tool", "x", "-c", "0", "--", "cmd"}, "-c"},
		{"profiles without endpoint", []string{"--tool", "x", "--profile-dir", "p", "--", "cmd"}, "--debug-url"},
		{"unknown flag", []string{"--tool", "x", "--nope", "--", "cmd"}, "nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseArgs(tc.args, io.Discard)
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a usage error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestParseArgsDefaults(t *testing.T) {
	t.Parallel()
	o, err := parseArgs([]string{"--tool", "echo", "--url", "http://localhost:8080/mcp/", "-c", "8", "--debug-url", "http://[::1]:6060/"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.sessions != 8 || o.calls != 1000 || o.duration != 0 || o.timeout != 30*time.Second || o.debugURL != "http://[::1]:6060" {
		t.Fatalf("defaults: %+v", o)
	}
	o, err = parseArgs([]string{"--tool", "echo", "-d", "2s", "--sessions", "100", "--", "server", "--flag"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.calls != 0 || o.sessions != 100 || o.workers != 1 || strings.Join(o.command, " ") != "server --flag" {
		t.Fatalf("stdio options: %+v", o)
	}
}

func TestHistQuantiles(t *testing.T) {
	t.Parallel()
	var h hist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.9, 900 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := h.quantile(tc.q)
		if diff := got - tc.want; diff < -tc.want/100 || diff > tc.want/100 {
			t.Errorf("quantile(%v) = %v, want %v ±1%%", tc.q, got, tc.want)
		}
	}
	if h.min != time.Microsecond || h.max != time.Millisecond || h.n != 1000 {
		t.Errorf("min %v max %v n %d", h.min, h.max, h.n)
	}
	var merged hist
	merged.merge(&h)
	merged.merge(&hist{})
	if merged.n != h.n || merged.quantile(0.5) != h.quantile(0.5) || merged.mean() != h.mean() {
		t.Errorf("merge changed the figures")
	}
	var huge hist
	huge.add(time.Hour)
	huge.add(-time.Second)
	if huge.max != histMax || huge.min != 0 || huge.quantile(1) < histMax*99/100 {
		t.Errorf("out-of-range values: max %v min %v p100 %v", huge.max, huge.min, huge.quantile(1))
	}
}

func TestBuckets(t *testing.T) {
	t.Parallel()
	// Every value lands in a bucket whose reported value is within 1%.
	for v := uint64(1); v < histMax; v = v*3/2 + 1 {
		b := bucketOf(v)
		if b >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, beyond %d buckets", v, b, histBuckets)
		}
		mid := bucketMid(b)
		if d := float64(mid) - float64(v); d > float64(v)/100+1 || -d > float64(v)/100+1 {
			t.Fatalf("value %d reported as %d", v, mid)
		}
	}
}

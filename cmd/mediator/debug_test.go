package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestDebugConfigValidate(t *testing.T) {
	t.Parallel()
	if d := Default().Debug; d.Listen != "" {
		t.Fatalf("the debug endpoint must be off by default, got %+v", d)
	}
	cases := []struct {
		name  string
		debug DebugConfig
		want  string // "" = valid
	}{
		{"off", DebugConfig{}, ""},
		{"loopback v4", DebugConfig{Listen: "127.0.0.1:6060"}, ""},
		{"loopback v6", DebugConfig{Listen: "[::1]:6060"}, ""},
		{"localhost", DebugConfig{Listen: "localhost:6060", BlockProfileRate: 1000, MutexProfileFraction: 5}, ""},
		{"all interfaces", DebugConfig{Listen: "0.0.0.0:6060"}, "not a loopback address"},
		{"empty host means all interfaces", DebugConfig{Listen: ":6060"}, "not a loopback address"},
		{"lan address", DebugConfig{Listen: "10.1.2.3:6060"}, "bind it to 127.0.0.1"},
		{"no port", DebugConfig{Listen: "127.0.0.1"}, "not host:port"},
		{"same as agents' address", DebugConfig{Listen: "127.0.0.1:8080"}, "agent-facing"},
		{"negative rate", DebugConfig{Listen: "127.0.0.1:6060", BlockProfileRate: -1}, "negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			c.Debug = tc.debug
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), "debug.") || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want an error naming debug.* and %q", err, tc.want)
			}
		})
	}
}

// The debug endpoint of a running mediator serves pprof and /debug/vars
// with the process's memory and goroutines.
func TestE2EDebugEndpoint(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	startServe(t, fakeConfig(t, "debug: {listen: "+addr+"}\n"))
	get := func(path string) []byte {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s\n%s", path, resp.Status, body)
		}
		return body
	}
	var vars struct {
		Process struct {
			RSSBytes   int64 `json:"rss_bytes"`
			Goroutines int   `json:"goroutines"`
			HeapAlloc  int64 `json:"heap_alloc_bytes"`
		} `json:"process"`
		Memstats json.RawMessage `json:"memstats"`
	}
	if err := json.Unmarshal(get("/debug/vars"), &vars); err != nil {
		t.Fatal(err)
	}
	if vars.Process.RSSBytes <= 0 || vars.Process.Goroutines <= 0 || vars.Process.HeapAlloc <= 0 || len(vars.Memstats) == 0 {
		t.Fatalf("/debug/vars = %+v, want RSS, goroutines, heap and memstats", vars)
	}
	if body := get("/debug/pprof/"); !strings.Contains(string(body), "goroutine") {
		t.Fatalf("/debug/pprof/ does not list the profiles:\n%.500s", body)
	}
	if body := get("/debug/pprof/heap"); len(body) == 0 {
		t.Fatal("empty heap profile")
	}
}

package main

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/policy"
)

func TestSetAlert(t *testing.T) {
	t.Parallel()
	stored := map[string]string{}
	st := fakeSettingStore{
		get: func(k string) (string, bool, error) { v, ok := stored[k]; return v, ok, nil },
		set: func(k, v string) error { stored[k] = v; return nil },
	}
	var out bytes.Buffer
	if err := setAlert(t.Context(), st, policy.AlertElevated, &out); err != nil {
		t.Fatal(err)
	}
	if stored[policy.AlertSettingKey] != "elevated" || !strings.Contains(out.String(), "alert level elevated") {
		t.Fatalf("stored %v, printed %q", stored, out.String())
	}
	out.Reset()
	if err := showAlert(t.Context(), st, &out); err != nil || out.String() != "alert level elevated\n" {
		t.Fatalf("show: %q, %v", out.String(), err)
	}
	broken := errors.New("disk full")
	st.set = func(string, string) error { return broken }
	if err := setAlert(t.Context(), st, policy.AlertIncident, &out); !errors.Is(err, broken) {
		t.Fatalf("a store error was not returned: %v", err)
	}
}

func TestAlertArgs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, sub string
		pos       []string
		want      policy.AlertLevel
		ok        bool
	}{
		{"set a level", "set", []string{"incident"}, policy.AlertIncident, true},
		{"set an unknown level", "set", []string{"red"}, "", false},
		{"set without a level", "set", nil, "", false},
		{"set two levels", "set", []string{"normal", "incident"}, "", false},
		{"show", "show", nil, "", true},
		{"show with an argument", "show", []string{"x"}, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := alertArgs(tc.sub, tc.pos)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("got %q, %v; want %q ok=%v", got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestAlertCLI(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "m.db")
	if _, _, err := policyCLI(t, "alert", "set", "--db", db, "incident"); err != nil {
		t.Fatal(err)
	}
	out, _, err := policyCLI(t, "alert", "show", "--db", db)
	if err != nil || out != "alert level incident\n" {
		t.Fatalf("show: %q, %v", out, err)
	}
	for _, args := range [][]string{{"alert"}, {"alert", "raise"}, {"alert", "set", "--db", db, "red"}} {
		if _, _, err := policyCLI(t, args...); exitCode(err) != 2 {
			t.Errorf("%v: exit %d (%v), want 2", args, exitCode(err), err)
		}
	}
}

// `mediator alert set` in another process reaches a serving mediator's
// decisions within about a second, without a restart.
func TestE2EAlertLevel(t *testing.T) {
	t.Parallel()
	p := startServe(t, `auth: {anonymous: {id: local-agent, roles: [writer, support]}}
upstreams:
  - {name: demo, command: "@mediator", args: [demo-upstream, --root, sandbox]}
`)
	c := httpClient(t, p.URL)
	write := map[string]any{"path": "notes/alert.txt", "content": "x"}
	if res := callTool(t, c, "demo__write_file", write); res.IsError {
		t.Fatalf("write before the alert: %s", resultText(res))
	}
	if out, errOut, code := runMediator(t, p.Dir, "alert", "set", "incident", "--db", p.DB); code != 0 {
		t.Fatalf("alert set: exit %d\n%s%s", code, out, errOut)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res := callTool(t, c, "demo__write_file", write)
		if res.IsError && strings.Contains(resultText(res), "incident-read-only") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("write still runs 10s after alert set incident: %s", resultText(res))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if res := callTool(t, c, "demo__read_file", map[string]any{"path": "notes/alert.txt"}); res.IsError {
		t.Fatalf("read-only tools must still run during an incident: %s", resultText(res))
	}
}

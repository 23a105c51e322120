package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy"
)

// policyConfig writes yaml as a config file and loads it.
func policyConfig(t *testing.T, yaml string) (*Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return LoadConfig(path, func(string) (string, bool) { return "", false })
}

func TestPolicyConfigRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown mode", "policy: {mode: audit}\n", "policy.mode"},
		{"unknown policy key", "policy: {modle: x}\n", "field modle not found"},
		{"cases without a policy", "policy: {cases: c.yaml}\n", "policy.cases"},
		{"unknown zone", "policy: {environment: {timezone: Mars/Olympus}}\n", "policy.environment.timezone"},
		{"unknown weekday", "policy: {environment: {business_hours: {days: [mon, funday]}}}\n", "business_hours.days"},
		{"bad start", "policy: {environment: {business_hours: {start: '8am'}}}\n", "business_hours.start"},
		{"end before start", "policy: {environment: {business_hours: {start: '18:00', end: '09:00'}}}\n", "is not before end"},
		{"bad CIDR", "policy: {environment: {networks: {private: [10.0.0.0/33]}}}\n", "networks.private"},
		{"unknown upstream mode", "upstreams:\n  - {name: a, command: x, mode: observe}\n", `mode "observe"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := policyConfig(t, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestPolicyEnvironmentConfig(t *testing.T) {
	t.Parallel()
	c, err := policyConfig(t, `policy:
  environment:
    timezone: Asia/Tokyo
    business_hours: {days: [sat, sun], start: "10:00", end: "16:30"}
    networks: {private: [192.0.2.0/24], loopback: []}
`)
	if err != nil {
		t.Skip("zoneinfo unavailable:", err)
	}
	env, err := c.Policy.Environment.envConfig()
	if err != nil {
		t.Fatal(err)
	}
	if env.Zone.String() != "Asia/Tokyo" || !env.BusinessDays[time.Saturday] || env.BusinessDays[time.Monday] ||
		env.BusinessStart != 10*time.Hour || env.BusinessEnd != 16*time.Hour+30*time.Minute ||
		len(env.Private) != 1 || len(env.Loopback) != 0 {
		t.Fatalf("env %+v", env)
	}
}

func TestShadowServers(t *testing.T) {
	t.Parallel()
	c, err := policyConfig(t, "upstreams:\n  - {name: a, command: x, mode: shadow}\n  - {name: b, command: y, mode: enforce}\n  - {name: c, command: z}\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := shadowServers(c.Upstreams); len(got) != 1 || got[0] != "a" {
		t.Fatalf("shadow servers %v", got)
	}
}

// copyPolicy copies the example policy files into dir.
func copyPolicy(t *testing.T, dir string) {
	t.Helper()
	for _, n := range []string{"model.conf", "policy.csv", "cases.yaml"} {
		b, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "policy", n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadPolicy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	copyPolicy(t, dir)
	failing := filepath.Join(dir, "failing.yaml")
	if err := os.WriteFile(failing, []byte("cases:\n- {name: x, agent: {id: a}, call: {tool: demo__echo}, env: {time: '2026-03-03T10:00'}, want: deny}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	files := "policy: {model: " + dir + "/model.conf, file: " + dir + "/policy.csv"
	cases := []struct {
		name, yaml string
		watched    bool
		err        string
	}{
		{"embedded default", "", false, ""},
		{"files with their cases", files + ", cases: " + dir + "/cases.yaml}\n", true, ""},
		{"polling can be turned off", files + ", watch: false}\n", false, ""},
		{"cases that fail refuse the start", files + ", cases: " + failing + "}\n", false, "policy test cases failed"},
		{"a missing file", "policy: {model: " + dir + "/nope.conf, file: " + dir + "/policy.csv}\n", false, "nope.conf"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := Default()
			if tc.yaml != "" {
				var err error
				if cfg, err = policyConfig(t, tc.yaml); err != nil {
					t.Fatal(err)
				}
			}
			rt, err := loadPolicy(cfg, slog.New(slog.DiscardHandler))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rt.poll != tc.watched || (rt.watcher != nil) != (cfg.Policy.Model != "") {
				t.Fatalf("poll = %v, want %v; watcher %v", rt.poll, tc.watched, rt.watcher)
			}
		})
	}
}

// fakeSettingStore is a hand-written mediator.SettingStore.
type fakeSettingStore struct {
	get func(key string) (string, bool, error)
	set func(key, value string) error
}

var _ mediator.SettingStore = fakeSettingStore{}

func (f fakeSettingStore) Setting(_ context.Context, key string) (string, bool, error) {
	return f.get(key)
}
func (f fakeSettingStore) SetSetting(_ context.Context, key, value string) error {
	return f.set(key, value)
}

// Record drops the record: these tests do not reload the policy.
func (f fakeSettingStore) Record(context.Context, mediator.ChainRecord) error { return nil }

// The runtime reads the stored alert level before serving and decides
// with it.
func TestPolicyRuntimeReadsAlert(t *testing.T) {
	t.Parallel()
	rt, err := loadPolicy(Default(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	st := fakeSettingStore{get: func(key string) (string, bool, error) {
		if key != policy.AlertSettingKey {
			return "", false, errors.New("wrong key " + key)
		}
		return "incident", true, nil
	}}
	rt.start(t.Context(), st)
	defer rt.stop()
	yes := true
	d, err := rt.engine.Decide(t.Context(), mediator.AuthzRequest{Agent: agentFromConfig(Default().Agent),
		Target:    mediator.Target{Kind: mediator.KindTool, Server: "demo", Name: "demo__write_file", Hints: mediator.Hints{Destructive: &yes}},
		Arguments: map[string]any{"path": "a", "content": "b"}})
	if err != nil || d.Rule != "incident-read-only" {
		t.Fatalf("got %+v, %v; want incident-read-only", d, err)
	}
}

// SIGHUP makes a serving mediator reload its policy at once, even with
// watching turned off; a broken edit is rejected and logged.
func TestE2EPolicyReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	p, dir := startPolicyServe(t, "  watch: false\n", "")
	c := httpClient(t, p.URL)
	if listed(t, c, "demo__fetch_url") {
		t.Fatal("fetch_url listed before the edit")
	}
	appendRule(t, dir, "p, agent:local-agent, tool, demo__fetch_url, allow, e2e-fetch\n")
	time.Sleep(1500 * time.Millisecond)
	if listed(t, c, "demo__fetch_url") {
		t.Fatal("policy reloaded although watch is false")
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return listed(t, c, "demo__fetch_url") }, p)
	appendRule(t, dir, "p, *, tool, a\"b, allow, broken\n")
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, func() bool {
		return strings.Contains(p.stderr.String(), "policy rejected; the old policy stays in force")
	}, p)
	if !listed(t, c, "demo__fetch_url") {
		t.Fatal("a rejected policy replaced the one in force")
	}
	waitUntil(t, func() bool { return reloadRejections(t, p) >= 1 }, p)
}

// reloadRejections counts the denied policy/reload records in p's chain.
func reloadRejections(t *testing.T, p *mediatorProc) int {
	t.Helper()
	n := 0
	for _, r := range exportRecords(t, p.Dir, p.DB) {
		if r.Method == policy.ReloadMethod && r.Decision.Effect == mediator.EffectDeny && r.Error != "" &&
			strings.Contains(r.Decision.Reason, "stays in force") {
			n++
		}
	}
	return n
}

// The watcher reloads an edited policy within about a second; an edit that
// fails the policy's own cases is rejected.
func TestE2EPolicyWatch(t *testing.T) {
	t.Parallel()
	p, dir := startPolicyServe(t, "", "  cases: {{DIR}}/echo-cases.yaml\n")
	c := httpClient(t, p.URL)
	appendRule(t, dir, "p, agent:local-agent, tool, demo__echo, deny, e2e-no-echo\n")
	waitUntil(t, func() bool { return strings.Contains(p.stderr.String(), "policy test cases failed") }, p)
	waitUntil(t, func() bool { return reloadRejections(t, p) == 1 }, p)
	if res := callTool(t, c, "demo__echo", map[string]any{"message": "still"}); res.IsError {
		t.Fatalf("echo after a rejected edit: %s", resultText(res))
	}
	restorePolicy(t, dir)
	appendRule(t, dir, "p, agent:local-agent, tool, demo__fetch_url, allow, e2e-fetch\n")
	waitUntil(t, func() bool { return listed(t, c, "demo__fetch_url") }, p)
}

// startPolicyServe serves the demo upstream with a copy of the example
// policy in the test's dir and an anonymous local agent.
func startPolicyServe(t *testing.T, policyExtra, cases string) (*mediatorProc, string) {
	t.Helper()
	dir := t.TempDir()
	copyPolicy(t, dir)
	echoCases := "cases:\n- {name: quickstart echoes, agent: {id: local-agent}, call: {tool: demo__echo}, env: {time: '2026-03-03T10:00'}, want: allow}\n"
	if err := os.WriteFile(filepath.Join(dir, "echo-cases.yaml"), []byte(echoCases), 0o600); err != nil {
		t.Fatal(err)
	}
	cases = strings.ReplaceAll(cases, "{{DIR}}", dir)
	cfg := "policy:\n  model: " + dir + "/model.conf\n  file: " + dir + "/policy.csv\n" + cases + policyExtra + `
auth: {anonymous: {id: local-agent, roles: [writer, support]}}
upstreams:
  - name: demo
    command: "@mediator"
    args: [demo-upstream, --root, sandbox]
    tools:
      fetch_url: {risk: medium, data_class: public}
      echo: {risk: low, data_class: public}
`
	return startServe(t, cfg), dir
}

// listed reports whether tools/list shows name.
func listed(t *testing.T, c *client.Client, name string) bool {
	t.Helper()
	return slices.Contains(toolNames(t, c), name)
}

// In shadow mode a call the policy would refuse is forwarded, and its
// record holds the would-be decision marked as shadow.
func TestE2EShadowUpstream(t *testing.T) {
	t.Parallel()
	p := startServe(t, `auth: {anonymous: {id: local-agent, roles: [writer, support]}}
upstreams:
  - name: demo
    command: "@mediator"
    args: [demo-upstream, --root, sandbox]
    mode: shadow
    tools: {transfer_funds: {risk: high, data_class: financial}}
`)
	c := httpClient(t, p.URL)
	if !listed(t, c, "demo__transfer_funds") {
		t.Fatal("shadow mode hid a tool: listings must not change either")
	}
	res := callTool(t, c, "demo__transfer_funds", map[string]any{"from_account": "ACC-1001", "to_account": "ACC-2002", "amount": 5, "currency": "EUR"})
	if strings.Contains(resultText(res), "denied") {
		t.Fatalf("shadow mode refused the call: %s", resultText(res))
	}
	p.stop(t)
	for _, r := range exportRecords(t, p.Dir, p.DB) {
		if r.Name == "demo__transfer_funds" {
			if !r.Decision.Shadow || r.Decision.Effect != mediator.EffectDeny || r.Decision.Rule != "funds-finance-only" || r.Decision.PolicyVersion == "" {
				t.Fatalf("shadow call recorded with decision %+v", r.Decision)
			}
			return
		}
	}
	t.Fatal("the shadow call was not recorded")
}

func appendRule(t *testing.T, dir, line string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "policy.csv"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		t.Fatal(err)
	}
}

func restorePolicy(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "policy", "policy.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.csv"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitUntil polls cond for up to 15s; on failure it shows p's log.
func waitUntil(t *testing.T, cond func() bool, p *mediatorProc) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not reached within 15s; mediator log:\n%s", p.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

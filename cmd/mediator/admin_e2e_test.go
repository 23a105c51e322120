package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-mediator/mediator/policy/token"
)

// adminE2ERules allow every tool of the upstream "fake", except that an
// incident leaves only read-only tools (fake__echo is one, fake__touch is
// not).
const adminE2ERules = `p, *, tool, **, deny, incident-read-only, r.env.Alert >= incident && !r.obj.ReadOnly
p, *, tool, fake__*, allow, fake-all
`

// The management commands act on a running server through the admin API:
// an upstream registered at run time reaches a connected agent (list_changed,
// then callable), survives a restart and goes away on removal; an alert
// level applies to the very next decision; a broken policy is refused by
// `policy reload` with the reason while the old one stays in force; a
// revocation refuses the agent's very next request.
func TestE2EAdminAPI(t *testing.T) {
	t.Parallel()
	fake := buildTool(t, "tools/testdata/fakeupstream")
	polCfg, polPath := policyFiles(t, adminE2ERules)
	p := startServe(t, polCfg+"agent: {id: e2e-agent}\nadmin: {allowed_commands: ["+fake+"]}\n")
	cfg := filepath.Join(p.Dir, "mediator.yaml")
	admin := func(args ...string) (string, string, int) {
		t.Helper()
		return runMediator(t, p.Dir, append(args, "--server", p.Admin, "--config", cfg)...)
	}
	mustAdmin := func(args ...string) string {
		t.Helper()
		out, errOut, code := admin(args...)
		if code != 0 || strings.Contains(errOut, "directly") {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out
	}

	tok := strings.TrimSpace(mustAdmin("token", "mint", "--agent", "e2e-agent", "--task", "task-7"))
	c, changed := listeningClient(t, p.URL, tok)

	out := mustAdmin("upstream", "add", "fake", "--command", fake, "--risk", "echo=low", "--data-class", "echo=public")
	if !strings.Contains(out, "registered upstream fake (") || !strings.Contains(out, "tools): connected") || !strings.Contains(out, "fake__echo") {
		t.Fatalf("upstream add: %q", out)
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no notifications/tools/list_changed reached the agent after upstream add")
	}
	if !contains(toolNames(t, c), "fake__echo") {
		t.Fatalf("tools/list after upstream add: %v", toolNames(t, c))
	}
	mustCall(t, c, "fake__echo", "hello")

	mustAdmin("alert", "set", "incident") // no poll: in force for the very next call
	if res := callTool(t, c, "fake__touch", nil); !res.IsError || !strings.Contains(resultText(res), "incident-read-only") {
		t.Fatalf("fake__touch during an incident: %s; want denied by incident-read-only", resultText(res))
	}
	mustCall(t, c, "fake__echo", "read-only still runs")
	mustAdmin("alert", "set", "normal")
	mustCall(t, c, "fake__touch", "")

	writeFile(t, polPath, "p, *, tool, \"fake__*, allow, broken\n")
	out, errOut, code := admin("policy", "reload")
	if code == 0 || !strings.Contains(errOut, "policy rejected") || !strings.Contains(errOut, "policy.csv") {
		t.Fatalf("policy reload of a broken file: exit %d %q %q; want a refusal naming the reason", code, out, errOut)
	}
	mustCall(t, c, "fake__echo", "the old policy is still in force")
	writeFile(t, polPath, adminE2ERules)
	if out := mustAdmin("policy", "reload"); !strings.Contains(out, "policy reloaded") {
		t.Fatalf("policy reload: %q", out)
	}

	p = p.restart(t)
	if out := mustAdmin("upstream", "list"); !strings.Contains(out, "fake__echo") {
		t.Fatalf("after a restart the registered upstream is gone: %q", out)
	}
	c = tokenClient(t, p.URL, tok)
	mustCall(t, c, "fake__echo", "back after a restart")
	// A stdio mediator on the same database serves the registered upstream too.
	sc := stdioClient(t, binary(t), "stdio", "--config", cfg, "--db", p.DB)
	if !contains(toolNames(t, sc), "fake__echo") {
		t.Fatalf("mediator stdio on the same database does not serve the registered upstream: %v", toolNames(t, sc))
	}
	mustCall(t, sc, "fake__echo", "over stdio")

	mustAdmin("upstream", "remove", "fake")
	if out := mustAdmin("upstream", "list"); strings.Contains(out, "fake__") {
		t.Fatalf("after upstream remove: %q", out)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "fake__echo"
	if res, err := c.CallTool(t.Context(), req); err == nil && !res.IsError {
		t.Fatalf("fake__echo after upstream remove: %s", resultText(res))
	}

	mustAdmin("token", "revoke", "--task", "task-7", "--reason", "done")
	if status, _, body := postInitialize(t, p.URL, tok); status != http.StatusUnauthorized || !strings.Contains(body, "revoked") {
		t.Fatalf("the request right after token revoke: %d %q; want 401 naming the revocation", status, body)
	}
	if strings.Contains(p.stderr.String(), tok) {
		t.Fatal("the agent's token reached the mediator's log")
	}
}

// listeningClient is an MCP client with tok as bearer and a GET stream
// open, so that list_changed reaches it between calls; changed receives
// each notifications/tools/list_changed.
func listeningClient(t *testing.T, url, tok string) (*client.Client, chan struct{}) {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(url, transport.WithContinuousListening(), //lint:ignore SA1019 the legacy GET stream is what 2025-11-25 clients use
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok}))
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	changed := make(chan struct{}, 8)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/tools/list_changed" {
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	})
	initClient(t, c)
	_ = toolNames(t, c)
	time.Sleep(300 * time.Millisecond) // let the GET stream open
	return c, changed
}

func mustCall(t *testing.T, c *client.Client, tool, text string) {
	t.Helper()
	if res := callTool(t, c, tool, map[string]any{"text": text}); res.IsError {
		t.Fatalf("%s: %s", tool, resultText(res))
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// restart stops p and starts the same `mediator serve` again, on the same
// addresses, database and directory.
func (p *mediatorProc) restart(t *testing.T) *mediatorProc {
	t.Helper()
	p.stop(t)
	q := &mediatorProc{URL: p.URL, Base: p.Base, Admin: p.Admin, DB: p.DB, Dir: p.Dir,
		stderr: &lockedBuffer{}, done: make(chan error, 1)}
	q.cmd = exec.Command(p.cmd.Path, p.cmd.Args[1:]...)
	q.cmd.Dir, q.cmd.Env, q.cmd.Stderr = p.cmd.Dir, p.cmd.Env, q.stderr
	if err := q.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { q.done <- q.cmd.Wait() }()
	t.Cleanup(func() { q.stop(t) })
	q.waitReady(t, 60*time.Second)
	return q
}

// An upstream that does not answer initialize is refused at registration,
// naming the cause, instead of being kept as required and turning /readyz
// red; --optional registers it anyway, and the mediator keeps retrying.
func TestE2EUpstreamAddRefusesADeadServer(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nosuchcmd")
	p := startServe(t, "admin: {allowed_commands: [/bin/false, "+missing+"]}\nauth: {anonymous: {id: a}}\n")
	cfg := filepath.Join(p.Dir, "mediator.yaml")
	for _, cmd := range []string{"/bin/false", missing} {
		out, errOut, code := runMediator(t, p.Dir, "upstream", "add", "broken", "--command", cmd, "--server", p.Admin, "--config", cfg)
		t.Logf("upstream add --command %s: %s", cmd, strings.TrimSpace(errOut))
		if code == 0 || !strings.Contains(errOut, "did not answer initialize") || !strings.Contains(errOut, "--optional") {
			t.Errorf("upstream add --command %s: exit %d\n%s%s", cmd, code, out, errOut)
		}
	}
	if out, _, _ := runMediator(t, p.Dir, "upstream", "list", "--server", p.Admin, "--config", cfg); strings.Contains(out, "broken") {
		t.Errorf("a refused upstream is listed:\n%s", out)
	}
	resp, err := http.Get(p.Base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz after the refused registrations: %d", resp.StatusCode)
	}
	out, errOut, code := runMediator(t, p.Dir, "upstream", "add", "broken", "--command", "/bin/false", "--optional", "--server", p.Admin, "--config", cfg)
	if code != 0 || !strings.Contains(out, "not connected yet") {
		t.Errorf("upstream add --optional: exit %d\n%s%s", code, out, errOut)
	}
}

// A management command run with another config than the server's signs its
// admin token with another key: the refusal names both sides and the fix,
// and serve says at start where its state lives.
func TestE2EAdminKeyMismatchNamesTheFix(t *testing.T) {
	t.Parallel()
	p := startServe(t, "agent: {id: e2e-agent}\n")
	other := t.TempDir()
	writeFile(t, filepath.Join(other, "mediator.yaml"), "agent: {id: someone-else}\n")
	key, _, err := token.LoadOrCreateKey(filepath.Join(other, "mediator.key"))
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runMediator(t, other, "alert", "show", "--server", p.Admin, "--config", filepath.Join(other, "mediator.yaml"))
	flat := strings.Join(strings.Fields(errOut), " ")
	for _, want := range []string{
		"HTTP 401",
		"this command signed its admin token with " + filepath.Join(other, "mediator.key") + " (kid " + key.KID() + ")",
		"which the mediator at " + p.Admin + " does not trust",
		"pass --config with the file that mediator was started with",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("exit %d; stderr lacks %q:\n%s", code, want, errOut)
		}
	}
	if code == 0 {
		t.Error("the refused command exited 0")
	}

	// A config whose key file does not exist: the same fix.
	none := t.TempDir()
	writeFile(t, filepath.Join(none, "mediator.yaml"), "agent: {id: someone-else}\n")
	_, errOut, _ = runMediator(t, none, "alert", "show", "--server", p.Admin, "--config", filepath.Join(none, "mediator.yaml"))
	if flat := strings.Join(strings.Fields(errOut), " "); !strings.Contains(flat, "cannot read the signing key") ||
		!strings.Contains(flat, "or pass --config with the file the mediator at "+p.Admin+" was started with") {
		t.Errorf("no key file: stderr does not name the fix:\n%s", errOut)
	}

	// With the server's own config, the same command works.
	if out, errOut, code := runMediator(t, p.Dir, "alert", "show", "--server", p.Admin, "--config", filepath.Join(p.Dir, "mediator.yaml")); code != 0 {
		t.Fatalf("with the server's config: exit %d\n%s%s", code, out, errOut)
	}
	log := p.stderr.String()
	for _, want := range []string{`config=` + filepath.Join(p.Dir, "mediator.yaml"), "database=" + p.DB, "key=" + filepath.Join(p.Dir, "mediator.key")} {
		if !strings.Contains(log, want) {
			t.Errorf("serve's start does not say %q:\n%s", want, log)
		}
	}
}

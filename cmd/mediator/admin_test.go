package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy"
	"github.com/mcp-mediator/mediator/policy/intent"
	"github.com/mcp-mediator/mediator/policy/token"
	"github.com/mcp-mediator/mediator/store"
	"github.com/mcp-mediator/mediator/tools"
)

// fakeUpstreams is a registry that records what it is asked.
type fakeUpstreams struct {
	mu      sync.Mutex
	servers []mediator.ServerState
	addErr  func(tools.Config) error
	added   []tools.Config
	removed []string
}

func (f *fakeUpstreams) Add(_ context.Context, c tools.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.addErr != nil {
		if err := f.addErr(c); err != nil {
			return err
		}
	}
	f.added = append(f.added, c)
	f.servers = append(f.servers, mediator.ServerState{Name: c.Name, Transport: c.EffectiveTransport(), Connected: true})
	return nil
}

func (f *fakeUpstreams) Remove(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, name)
	f.servers = slices.DeleteFunc(f.servers, func(s mediator.ServerState) bool { return s.Name == name })
	return nil
}

func (f *fakeUpstreams) Catalog() *mediator.Catalog {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ts []mediator.Tool
	for _, s := range f.servers {
		ts = append(ts, mediator.Tool{Name: s.Name + "__echo", Server: s.Name, Original: "echo", Risk: mediator.RiskLow, Hash: "abc"})
	}
	return mediator.NewCatalog(ts, nil, nil, nil, slices.Clone(f.servers))
}

// memSettings is an in-memory settings and registration store.
type memSettings struct {
	mu  sync.Mutex
	kv  map[string]string
	err error // returned by every write when set
}

func (m *memSettings) Setting(_ context.Context, k string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.kv[k]
	return v, ok, nil
}

func (m *memSettings) SetSetting(_ context.Context, k, v string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.kv[k] = v
	return nil
}

func (m *memSettings) RegisterUpstream(ctx context.Context, name, spec string) error {
	return m.SetSetting(ctx, "upstream/"+name, spec)
}

func (m *memSettings) UnregisterUpstream(_ context.Context, name string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.kv["upstream/"+name]
	delete(m.kv, "upstream/"+name)
	return ok, nil
}

func (m *memSettings) RegisteredUpstreams(context.Context) ([]store.RegisteredUpstream, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.RegisteredUpstream
	for k, v := range m.kv {
		if n, ok := strings.CutPrefix(k, "upstream/"); ok {
			out = append(out, store.RegisteredUpstream{Name: n, Spec: v})
		}
	}
	slices.SortFunc(out, func(a, b store.RegisteredUpstream) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// adminFixture is an admin API over fakes, with a verifier whose key
// mints the test's tokens.
type adminFixture struct {
	srv      *adminServer
	h        http.Handler
	v        *token.Verifier
	ups      *fakeUpstreams
	settings *memSettings
	logs     *lockedBuffer
	admin    string // a token with the admin role
}

func newAdminFixture(t *testing.T) *adminFixture {
	t.Helper()
	key, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.New(t.Context(), key, token.WithMaxLifetime(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	f := &adminFixture{v: v, ups: &fakeUpstreams{servers: []mediator.ServerState{{Name: "demo", Connected: true}}},
		settings: &memSettings{kv: map[string]string{}}, logs: &lockedBuffer{}}
	f.srv = &adminServer{log: slog.New(slog.NewTextHandler(f.logs, nil)), auth: v, ups: f.ups, regs: f.settings,
		allow:    AdminConfig{AllowedCommands: []string{"/bin/x", "/bin/y", "/bin/fake", "/bin/bad"}, AllowedEnv: []string{"K"}},
		settings: f.settings, alert: policy.NewAlertState(policy.AlertNormal), now: time.Now,
		configured: []tools.Config{{Name: "demo", Command: "/bin/demo"}}, registered: map[string]*registration{},
		prepare: func(c tools.Config) (tools.Config, error) {
			return c, c.Expand(func(string) (string, bool) { return "", false })
		},
		reload: func() (bool, string, error) { return true, "v2", nil }}
	f.h = f.srv.handler()
	f.admin = f.mintAdmin(t, "ops", adminRole)
	return f
}

// mintAdmin mints an admin token (the admin audience).
func (f *adminFixture) mintAdmin(t *testing.T, agent string, roles ...string) string {
	t.Helper()
	s, err := f.v.MintAdmin(token.ClaimsFor(mediator.Agent{ID: agent, Roles: roles}), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *adminFixture) mint(t *testing.T, agent string, roles ...string) string {
	t.Helper()
	s, err := f.v.Mint(token.ClaimsFor(mediator.Agent{ID: agent, Roles: roles}), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// do sends one request and returns the status and the decoded body.
func (f *adminFixture) do(t *testing.T, method, path, tok, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, path, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", method, path, rec.Body.String(), err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	return rec.Code, out
}

func TestAdminAPIRefusals(t *testing.T) {
	t.Parallel()
	f := newAdminFixture(t)
	agent := f.mint(t, "bot", "writer")
	oversized := `{"agent":"a","attrs":{"k":"` + strings.Repeat("x", maxAdminBody) + `"}}`
	for _, tc := range []struct {
		name, method, path, tok, body string
		status                        int
		want                          string
	}{
		{"no token is refused before anything else", "POST", "/admin/v1/tokens", "", `{"agent":"a"}`, 401, "unauthenticated"},
		{"a garbage token names why", "GET", "/admin/v1/alert", "not.a.jwt", "", 401, "unauthenticated"},
		{"an agent token is not an admin token", "GET", "/admin/v1/alert", agent, "", 401, "not the admin audience"},
		{"nor is an agent token with the admin role", "GET", "/admin/v1/alert", f.mint(t, "bot", adminRole), "", 401, "not the admin audience"},
		{"an admin token without the admin role", "GET", "/admin/v1/alert", f.mintAdmin(t, "bot", "writer"), "", 403, `agent "bot" lacks the admin role`},
		{"a command not in admin.allowed_commands", "POST", "/admin/v1/upstreams", f.admin, `{"name":"sh","command":"/bin/sh","args":["-c","id"]}`, 403, "admin.allowed_commands"},
		{"an env variable not in admin.allowed_env", "POST", "/admin/v1/upstreams", f.admin, `{"name":"y","command":"/bin/x","env":{"LD_PRELOAD":"/tmp/evil.so"}}`, 403, "admin.allowed_env"},
		{"bad JSON", "POST", "/admin/v1/tokens", f.admin, `{"agent":`, 400, "request body"},
		{"an unknown field is refused, not ignored", "POST", "/admin/v1/revocations", f.admin, `{"jti":"j","because":"x"}`, 400, `unknown field "because"`},
		{"a second JSON value", "PUT", "/admin/v1/alert", f.admin, `{"level":"normal"}{}`, 400, "data after the JSON object"},
		{"an empty body", "PUT", "/admin/v1/alert", f.admin, ``, 400, "empty request body"},
		{"an oversized body", "POST", "/admin/v1/tokens", f.admin, oversized, 413, "over 65536 bytes"},
		{"mint without an agent", "POST", "/admin/v1/tokens", f.admin, `{"roles":["x"]}`, 400, "agent: required"},
		{"mint beyond the maximum lifetime", "POST", "/admin/v1/tokens", f.admin, `{"agent":"a","ttl":"5h"}`, 400, "maximum lifetime"},
		{"mint with confidence out of range", "POST", "/admin/v1/tokens", f.admin, `{"agent":"a","confidence":2}`, 400, "between 0 and 1"},
		{"revoke naming two things", "POST", "/admin/v1/revocations", f.admin, `{"jti":"j","task":"t"}`, 400, "exactly one"},
		{"revoke naming nothing", "POST", "/admin/v1/revocations", f.admin, `{"reason":"r"}`, 400, "exactly one"},
		{"an unknown alert level", "PUT", "/admin/v1/alert", f.admin, `{"level":"red"}`, 400, "level"},
		{"a duplicate upstream name (from the config)", "POST", "/admin/v1/upstreams", f.admin, `{"name":"demo","command":"/bin/x"}`, 409, "already exists"},
		{"an invalid upstream: neither command nor url", "POST", "/admin/v1/upstreams", f.admin, `{"name":"x"}`, 400, "invalid upstream"},
		{"an invalid upstream: bad name", "POST", "/admin/v1/upstreams", f.admin, `{"name":"Bad Name","command":"/bin/x"}`, 400, "invalid upstream"},
		{"an invalid upstream: relative command", "POST", "/admin/v1/upstreams", f.admin, `{"name":"x","command":"bin/x"}`, 400, "is relative"},
		{"an invalid upstream: shadow mode", "POST", "/admin/v1/upstreams", f.admin, `{"name":"x","command":"/bin/x","mode":"shadow"}`, 400, "shadow"},
		{"an invalid upstream: bad timeout", "POST", "/admin/v1/upstreams", f.admin, `{"name":"x","command":"/bin/x","timeout":"soon"}`, 400, "timeout"},
		{"an unknown ${VAR}", "POST", "/admin/v1/upstreams", f.admin, `{"name":"x","command":"/bin/x","env":{"K":"${NOPE}"}}`, 400, "NOPE"},
		{"removing a configured upstream", "DELETE", "/admin/v1/upstreams/demo", f.admin, "", 409, "config file"},
		{"removing an unknown upstream", "DELETE", "/admin/v1/upstreams/nope", f.admin, "", 404, "no upstream"},
		{"an unknown endpoint", "GET", "/admin/v1/nothing", f.admin, "", 404, "no such endpoint"},
	} {
		status, body := f.do(t, tc.method, tc.path, tc.tok, tc.body)
		msg, _ := body["error"].(string)
		if status != tc.status || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %d %q; want %d and an error naming %q", tc.name, status, msg, tc.status, tc.want)
		}
	}
	if len(f.ups.added) != 0 || len(f.ups.removed) != 0 || len(f.settings.kv) != 0 {
		t.Fatalf("refused requests changed something: added %v removed %v settings %v", f.ups.added, f.ups.removed, f.settings.kv)
	}
	if strings.Contains(f.logs.String(), f.admin) || strings.Contains(f.logs.String(), agent) {
		t.Fatal("a bearer token reached the log")
	}
	if !strings.Contains(f.logs.String(), "admin request refused") {
		t.Fatalf("refusals not logged:\n%s", f.logs.String())
	}
}

func TestAdminAPITokens(t *testing.T) {
	t.Parallel()
	f := newAdminFixture(t)
	status, body := f.do(t, "POST", "/admin/v1/tokens", f.admin,
		`{"agent":"billing-bot","roles":["writer"],"task":"t-1","ttl":"10m","owner":"team","confidence":0.9,"attrs":{"region":"eu"}}`)
	if status != http.StatusCreated {
		t.Fatalf("mint: %d %v", status, body)
	}
	tok, _ := body["token"].(string)
	a, err := f.v.Authenticate(t.Context(), mediator.Credentials{Transport: "http", Bearer: tok})
	if err != nil || a.ID != "billing-bot" || a.TaskID != "t-1" || a.Owner != "team" || a.Attrs["region"] != "eu" ||
		a.TokenID != body["jti"] {
		t.Fatalf("minted token: %+v, %v (body %v)", a, err, body)
	}
	exp, _ := time.Parse(time.RFC3339, body["expires_at"].(string))
	if d := time.Until(exp); d < 9*time.Minute || d > 11*time.Minute {
		t.Fatalf("expires_at %v is not ~10m away", exp)
	}
	if status, body = f.do(t, "POST", "/admin/v1/revocations", f.admin, `{"task":"t-1","reason":"done"}`); status != 200 {
		t.Fatalf("revoke: %d %v", status, body)
	}
	if _, err := f.v.Authenticate(t.Context(), mediator.Credentials{Transport: "http", Bearer: tok}); !errors.Is(err, token.ErrRevoked) {
		t.Fatalf("after revoking its task the token still authenticates: %v", err)
	}
	if strings.Contains(f.logs.String(), tok) {
		t.Fatal("a minted token reached the log")
	}
	if !strings.Contains(f.logs.String(), "admin: revoked") || !strings.Contains(f.logs.String(), "admin=ops") {
		t.Fatalf("revocation not logged with the admin's identity:\n%s", f.logs.String())
	}
}

func TestAdminAPIAlertAndPolicy(t *testing.T) {
	t.Parallel()
	f := newAdminFixture(t)
	if status, body := f.do(t, "PUT", "/admin/v1/alert", f.admin, `{"level":"incident"}`); status != 200 || body["level"] != "incident" {
		t.Fatalf("alert set: %d %v", status, body)
	}
	if f.srv.alert.Level() != policy.AlertIncident || f.settings.kv[policy.AlertSettingKey] != "incident" {
		t.Fatalf("alert level in force %q, stored %q; want incident in both", f.srv.alert.Level(), f.settings.kv[policy.AlertSettingKey])
	}
	if status, body := f.do(t, "GET", "/admin/v1/alert", f.admin, ""); status != 200 || body["level"] != "incident" {
		t.Fatalf("alert show: %d %v", status, body)
	}
	f.settings.err = errors.New("disk full")
	if status, _ := f.do(t, "PUT", "/admin/v1/alert", f.admin, `{"level":"normal"}`); status != 500 || f.srv.alert.Level() != policy.AlertIncident {
		t.Fatalf("a failed store: %d, level %s; want 500 and the level unchanged (not stored = not set)", status, f.srv.alert.Level())
	}

	if status, body := f.do(t, "POST", "/admin/v1/policy/reload", f.admin, ""); status != 200 || body["version"] != "v2" {
		t.Fatalf("reload: %d %v", status, body)
	}
	f.srv.reload = func() (bool, string, error) { return false, "v1", errors.New("policy.csv:3: bare quote") }
	status, body := f.do(t, "POST", "/admin/v1/policy/reload", f.admin, "")
	if msg, _ := body["error"].(string); status != 422 || !strings.Contains(msg, "bare quote") || !strings.Contains(msg, "v1 stays in force") {
		t.Fatalf("rejected reload: %d %v", status, body)
	}
	f.srv.reload = nil
	if status, body := f.do(t, "POST", "/admin/v1/policy/reload", f.admin, ""); status != 409 {
		t.Fatalf("reload of the embedded policy: %d %v", status, body)
	}
}

func TestAdminAPIUpstreams(t *testing.T) {
	t.Parallel()
	f := newAdminFixture(t)
	status, body := f.do(t, "POST", "/admin/v1/upstreams", f.admin,
		`{"name":"fake","command":"/bin/fake","args":["-v"],"timeout":"5s","tools":{"echo":{"risk":"low","data_class":"public"}}}`)
	if status != http.StatusCreated {
		t.Fatalf("add: %d %v", status, body)
	}
	if len(f.ups.added) != 1 || f.ups.added[0].Timeout != 5*time.Second || f.ups.added[0].Tools["echo"].Risk != mediator.RiskLow {
		t.Fatalf("registry got %+v", f.ups.added)
	}
	var stored upstreamSpec
	if err := json.Unmarshal([]byte(f.settings.kv["upstream/fake"]), &stored); err != nil || stored.Timeout != "5s" || stored.Command != "/bin/fake" {
		t.Fatalf("stored %q: %v", f.settings.kv["upstream/fake"], err)
	}
	if status, body = f.do(t, "POST", "/admin/v1/upstreams", f.admin, `{"name":"fake","url":"http://127.0.0.1:1/mcp"}`); status != 409 {
		t.Fatalf("duplicate registered name: %d %v", status, body)
	}
	if status, body = f.do(t, "POST", "/admin/v1/upstreams", f.admin, `{"name":"other","command":"/bin/x","prefix":"fake__"}`); status != 409 {
		t.Fatalf("duplicate prefix: %d %v", status, body)
	}
	status, body = f.do(t, "GET", "/admin/v1/upstreams", f.admin, "")
	servers, _ := body["servers"].([]any)
	if status != 200 || len(servers) != 2 || !strings.Contains(fmt.Sprint(servers), "source:admin") ||
		!strings.Contains(fmt.Sprint(body["tools"]), "fake__echo") {
		t.Fatalf("list: %d %v", status, body)
	}

	// A restart: a new server over the same store restores the registration.
	g := newAdminFixture(t)
	g.srv.regs, g.settings.kv = f.settings, f.settings.kv
	if err := g.srv.restore(t.Context()); err != nil || len(g.ups.added) != 1 || g.ups.added[0].Name != "fake" {
		t.Fatalf("restore: %v, added %+v", err, g.ups.added)
	}

	if status, body = f.do(t, "DELETE", "/admin/v1/upstreams/fake", f.admin, ""); status != 200 {
		t.Fatalf("remove: %d %v", status, body)
	}
	if _, ok := f.settings.kv["upstream/fake"]; ok || !slices.Equal(f.ups.removed, []string{"fake"}) {
		t.Fatalf("after remove: stored %v, registry removed %v", f.settings.kv, f.ups.removed)
	}
	if status, _ = f.do(t, "DELETE", "/admin/v1/upstreams/fake", f.admin, ""); status != 404 {
		t.Fatalf("second remove: %d; want 404", status)
	}
}

// A failure to add or to store leaves nothing behind.
func TestAdminAPIUpstreamRollback(t *testing.T) {
	t.Parallel()
	f := newAdminFixture(t)
	f.ups.addErr = func(c tools.Config) error { return fmt.Errorf("%w: fake__echo", tools.ErrNameCollision) }
	if status, body := f.do(t, "POST", "/admin/v1/upstreams", f.admin, `{"name":"x","command":"/bin/x","prefix":""}`); status != 409 ||
		!strings.Contains(body["error"].(string), "collide") {
		t.Fatalf("collision: %d %v", status, body)
	}
	f.ups.addErr = nil
	f.settings.err = errors.New("disk full")
	if status, _ := f.do(t, "POST", "/admin/v1/upstreams", f.admin, `{"name":"y","command":"/bin/y"}`); status != 500 {
		t.Fatalf("store failure: %d; want 500", status)
	}
	if !slices.Equal(f.ups.removed, []string{"x", "y"}) || len(f.srv.registered) != 0 {
		t.Fatalf("removed %v, registered %v; want both rolled back", f.ups.removed, f.srv.registered)
	}
}

func TestAdminConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		listen string
		ok     bool
	}{
		{"127.0.0.1:8081", true}, {"[::1]:0", true}, {"localhost:9", true}, {"", true},
		{"0.0.0.0:8081", false}, {":8081", false}, {"10.0.0.1:8081", false}, {"example.com:80", false}, {"nohost", false},
	} {
		c := AdminConfig{Listen: tc.listen}
		if errs := c.validate(); (len(errs) == 0) != tc.ok {
			t.Errorf("admin.listen %q: %v; want ok=%v", tc.listen, errs, tc.ok)
		}
	}
	c := AdminConfig{Listen: defaultAdminListen}
	if err := c.override("off"); err != nil || c.Listen != "" {
		t.Fatalf("--admin-listen off: %q, %v", c.Listen, err)
	}
	if err := c.override("0.0.0.0:1"); err == nil {
		t.Fatal("--admin-listen beyond loopback accepted")
	}
}

// Without a server the commands that need one say where they looked and
// how to start it; the others act directly and say so.
func TestAdminCLIWithoutServer(t *testing.T) {
	t.Parallel()
	dead := "http://" + freeAddr(t) // nothing listens there now
	cfg := authDir(t, "")
	for _, args := range [][]string{
		{"upstream", "add", "x", "--command", "/bin/true"},
		{"upstream", "remove", "x"},
		{"policy", "reload"},
	} {
		_, _, err := runCLI(t, append(args, "--server", dead, "--config", cfg)...)
		if err == nil || !strings.Contains(err.Error(), dead) || !strings.Contains(err.Error(), "mediator serve") {
			t.Errorf("%v: %v; want an error naming %s and how to start the server", args, err, dead)
		}
	}
	db := filepath.Join(filepath.Dir(cfg), "mediator.db")
	out, stderr, err := runCLI(t, "alert", "set", "elevated", "--server", dead, "--db", db)
	if err != nil || !strings.Contains(stderr, "storing it in the database directly") || !strings.Contains(out, "elevated") {
		t.Fatalf("alert set without a server: %v, %q, %q", err, out, stderr)
	}
	out, stderr, err = runCLI(t, "token", "revoke", "j1", "--server", dead, "--db", db)
	if err != nil || !strings.Contains(stderr, "revoking in the database directly") || !strings.Contains(out, `"j1"`) {
		t.Fatalf("token revoke without a server: %v, %q, %q", err, out, stderr)
	}
	out, stderr, err = runCLI(t, "token", "mint", "--agent", "a", "--server", dead, "--config", cfg)
	if err != nil || !strings.Contains(stderr, "minting with the key file directly") || strings.Count(out, ".") != 2 {
		t.Fatalf("token mint without a server: %v, %q, %q", err, out, stderr)
	}
	if _, _, err := runCLI(t, "upstream", "remove", "x", "--config", cfg); err == nil || !strings.Contains(err.Error(), "admin API is off") {
		t.Errorf("upstream remove with admin.listen \"\" and no --server: %v", err)
	}
	if _, stderr, err := runCLI(t, "token", "revoke", "j2", "--config", cfg); err != nil || stderr != "" {
		t.Errorf("token revoke with the admin API off: %v %q; want the database, silently", err, stderr)
	}
	if _, _, err := runCLI(t, "upstream", "add", "x", "--server", "ftp://x", "--command", "/bin/true"); err == nil {
		t.Fatal("a --server that is not an http URL accepted")
	}
	if _, _, err := runCLI(t, "upstream", "add", "x", "--risk", "echo", "--command", "/bin/true"); err == nil {
		t.Fatal("--risk without = accepted")
	}
}

// The CLI against a live admin API: its own minted admin token is
// accepted, MEDIATOR_ADMIN_TOKEN is used when set, and a refusal is
// reported with the server's reason.
func TestAdminCLIAgainstAPI(t *testing.T) {
	t.Parallel()
	cfg := authDir(t, "")
	key, _, err := token.LoadOrCreateKey(filepath.Join(filepath.Dir(cfg), "mediator.key"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.New(t.Context(), key, token.WithMaxLifetime(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	f := newAdminFixture(t)
	f.srv.auth, f.v = v, v
	ts := httptest.NewServer(f.srv.handler())
	defer ts.Close()

	out, stderr, err := runCLI(t, "alert", "set", "incident", "--server", ts.URL, "--config", cfg)
	if err != nil || stderr != "" || !strings.Contains(out, "in force now") || f.srv.alert.Level() != policy.AlertIncident {
		t.Fatalf("alert set through the API: %v %q %q", err, out, stderr)
	}
	if !strings.Contains(f.logs.String(), "admin="+cliAdminAgent) {
		t.Fatalf("the CLI's admin identity is not in the log:\n%s", f.logs.String())
	}
	out, _, err = runCLI(t, "upstream", "add", "fake", "--command", "/bin/fake", "--arg", "--mode", "--arg", "stdio",
		"--env", "K=${V}", "--risk", "echo=high", "--data-class", "echo=pii", "--timeout", "3s", "--server", ts.URL, "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "HTTP 400") || !strings.Contains(err.Error(), "V") {
		t.Fatalf("add with an unknown ${V}: %v %q; want the server's refusal", err, out)
	}
	out, _, err = runCLI(t, "upstream", "add", "fake", "--command", "/bin/fake", "--arg", "--mode", "--arg", "stdio",
		"--risk", "echo=high", "--data-class", "echo=pii", "--timeout", "3s", "--server", ts.URL, "--config", cfg)
	if err != nil || !strings.Contains(out, "registered upstream fake (1 tools): connected") {
		t.Fatalf("add: %v %q", err, out)
	}
	got := f.ups.added[0]
	if !slices.Equal(got.Args, []string{"--mode", "stdio"}) || got.Tools["echo"].Risk != mediator.RiskHigh ||
		got.Tools["echo"].DataClass != mediator.DataPII || got.Timeout != 3*time.Second {
		t.Fatalf("registered %+v", got)
	}
	out, _, err = runCLI(t, "upstream", "list", "--json", "--server", ts.URL, "--config", cfg)
	if err != nil || !strings.Contains(out, `"source": "admin"`) {
		t.Fatalf("list --json: %v %q", err, out)
	}

	// MEDIATOR_ADMIN_TOKEN wins over the key file; a non-admin one is refused.
	var buf bytes.Buffer
	e := env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &buf, lookup: func(k string) (string, bool) {
		return f.mint(t, "bot", adminRole), k == adminTokenEnv
	}}
	err = Run(t.Context(), []string{"upstream", "remove", "fake", "--server", ts.URL, "--config", cfg}, e)
	if err == nil || !strings.Contains(err.Error(), "not an admin token") || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("remove with a non-admin MEDIATOR_ADMIN_TOKEN: %v", err)
	}
	if out, _, err = runCLI(t, "upstream", "remove", "fake", "--server", ts.URL, "--config", cfg); err != nil || !strings.Contains(out, "removed upstream fake") {
		t.Fatalf("remove: %v %q", err, out)
	}
}

// A stored registration that no longer starts is logged at restore and
// can still be removed.
func TestAdminRestoreKeepsBrokenRegistrations(t *testing.T) {
	t.Parallel()
	f := newAdminFixture(t)
	f.settings.kv["upstream/bad"] = `{"name":"bad","command":"/bin/bad","env":{"K":"${GONE}"}}`
	f.settings.kv["upstream/garbled"] = `{"name":`
	f.settings.kv["upstream/ok"] = `{"name":"ok","url":"http://127.0.0.1:1/mcp","timeout":"2s"}`
	if err := f.srv.restore(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(f.ups.added) != 1 || f.ups.added[0].Name != "ok" || f.ups.added[0].Timeout != 2*time.Second {
		t.Fatalf("restored %+v; want only ok", f.ups.added)
	}
	if !strings.Contains(f.logs.String(), "GONE") || !strings.Contains(f.logs.String(), "upstream=garbled") {
		t.Fatalf("broken registrations not logged:\n%s", f.logs.String())
	}
	for _, name := range []string{"bad", "garbled"} {
		if status, body := f.do(t, "DELETE", "/admin/v1/upstreams/"+name, f.admin, ""); status != 200 {
			t.Fatalf("remove %s: %d %v", name, status, body)
		}
	}
	if len(f.ups.removed) != 0 || len(f.settings.kv) != 1 {
		t.Fatalf("registry removed %v (want none: they never ran), stored %v", f.ups.removed, f.settings.kv)
	}
}

func TestAdminAPITasks(t *testing.T) {
	t.Parallel()
	f := newAdminFixture(t)
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	svc, err := intent.New(intent.Config{Tasks: st, Revoke: f.v.Revoke})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.tasks, f.srv.intent = st, svc
	f.h = f.srv.handler()

	bad := []struct{ body, want string }{
		{`{"agent":"a"}`, "purpose: required"},
		{`{"purpose":"p"}`, "agent: required"},
		{`{"agent":"a","purpose":"p","agnt":"x"}`, "unknown field"},
		{`{"agent":"a","purpose":"p","scope":{"tools":["demo__[x"]}}`, "invalid scope"},
		{`{"agent":"a","purpose":"p","constraints":["amount:max=-1"]}`, "negative"},
		{`{"agent":"a","purpose":"p","constraints":["path:prefix=../etc"]}`, `"../etc"`},
		{`{"agent":"a","purpose":"p","scope":{"max_risk":"extreme"}}`, "risk"},
		{`{"agent":"a","purpose":"p","ttl":"-5m"}`, "positive duration"},
	}
	for _, b := range bad {
		code, body := f.do(t, http.MethodPost, adminPrefix+"/tasks", f.admin, b.body)
		if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body["error"]), b.want) {
			t.Errorf("POST /tasks %s: %d %v; want 400 naming %q", b.body, code, body, b.want)
		}
	}
	if code, _ := f.do(t, http.MethodPost, adminPrefix+"/tasks", f.mintAdmin(t, "bot", "writer"), `{"agent":"a","purpose":"p"}`); code != http.StatusForbidden {
		t.Fatalf("a non-admin started a task: %d", code)
	}

	code, body := f.do(t, http.MethodPost, adminPrefix+"/tasks", f.admin,
		`{"agent":"analyst","purpose":"Q3 report","scope":{"tools":["demo__read_*"]},"constraints":["path:prefix=reports"],"roles":["writer"],"ttl":"20m"}`)
	if code != http.StatusCreated {
		t.Fatalf("POST /tasks: %d %v", code, body)
	}
	task := body["task"].(map[string]any)
	id, tok := task["id"].(string), body["token"].(string)
	claims, err := f.v.Verify(t.Context(), tok)
	if err != nil || claims.Task != id || claims.Subject != "analyst" {
		t.Fatalf("task token: %+v %v", claims, err)
	}
	if code, body = f.do(t, http.MethodGet, adminPrefix+"/tasks/"+id, f.admin, ""); code != http.StatusOK || body["purpose"] != "Q3 report" {
		t.Fatalf("GET /tasks/%s: %d %v", id, code, body)
	}
	if code, _ = f.do(t, http.MethodGet, adminPrefix+"/tasks/task-nope", f.admin, ""); code != http.StatusNotFound {
		t.Fatalf("unknown task: %d", code)
	}
	if code, body = f.do(t, http.MethodPost, adminPrefix+"/tasks/"+id+"/resume", f.admin, `{}`); code != http.StatusConflict {
		t.Fatalf("resume of an active task: %d %v", code, body)
	}
	if code, body = f.do(t, http.MethodPost, adminPrefix+"/tasks/"+id+"/end", f.admin, `{"reason":"report sent"}`); code != http.StatusOK ||
		body["status"] != "completed" || body["status_by"] != "ops" {
		t.Fatalf("end: %d %v", code, body)
	}
	if code, _ = f.do(t, http.MethodPost, adminPrefix+"/tasks/"+id+"/end", f.admin, `{}`); code != http.StatusConflict {
		t.Fatalf("second end: %d", code)
	}
	if _, err := f.v.Verify(t.Context(), tok); err == nil {
		t.Fatal("the task's token still verifies after the task ended")
	}
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, adminPrefix+"/tasks?agent=analyst&status=completed", nil)
	req.Header.Set("Authorization", "Bearer "+f.admin)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	var list []mediator.Task
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("GET /tasks: %s %v", rec.Body.String(), err)
	}
	if code, _ = f.do(t, http.MethodGet, adminPrefix+"/tasks?status=weird", f.admin, ""); code != http.StatusBadRequest {
		t.Fatalf("bad status filter: %d", code)
	}
}

// --db names the database a command acts on: it never goes to whichever
// mediator answers at the config's admin address (which may serve another
// database), while --server still goes there.
func TestDBFlagActsOnThatDatabase(t *testing.T) {
	t.Parallel()
	var asked atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		http.Error(w, "not this one", http.StatusTeapot)
	}))
	defer ts.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mediator.yaml")
	if err := os.WriteFile(cfg, []byte("admin: {listen: \""+strings.TrimPrefix(ts.URL, "http://")+"\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "staging.db")
	for _, args := range [][]string{
		{"alert", "set", "incident", "--config", cfg, "--db", db},
		{"token", "revoke", "j1", "--config", cfg, "--db", db},
		{"task", "list", "--config", cfg, "--db", db},
	} {
		if _, stderr, err := runCLI(t, args...); err != nil {
			t.Errorf("%v: %v %s", args, err, stderr)
		}
	}
	if n := asked.Load(); n != 0 {
		t.Fatalf("the server at admin.listen was asked %d times, though --db named the database", n)
	}
	if out, _, err := runCLI(t, "alert", "show", "--config", cfg, "--db", db); err != nil || !strings.Contains(out, "incident") {
		t.Errorf("alert show --db: %v %q", err, out)
	}
	if _, _, err := runCLI(t, "alert", "set", "normal", "--config", cfg, "--db", db, "--server", ts.URL); err == nil || asked.Load() == 0 {
		t.Errorf("--server with --db did not go to the server: %v", err)
	}
}

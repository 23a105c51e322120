package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy/token"
	"github.com/mcp-mediator/mediator/store"
)

// runCLI runs one command line in-process.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	e := env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		lookup: func(string) (string, bool) { return "", false }}
	err = Run(t.Context(), args, e)
	return out.String(), errb.String(), err
}

// authDir writes a config requiring tokens and returns its path. Its
// admin API is off, so that the commands act on the key file and the
// database directly, whatever listens on the default admin address.
func authDir(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "mediator.yaml")
	if err := os.WriteFile(path, []byte("auth: {max_lifetime: 30m}\nadmin: {listen: \"\"}\n"+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTokenMintCLI(t *testing.T) {
	t.Parallel()
	cfg := authDir(t, "")
	out, stderr, err := runCLI(t, "token", "mint", "--agent", "billing-bot", "--role", "writer", "--role", "support",
		"--task", "task-42", "--ttl", "20m", "--owner", "team-billing", "--confidence", "0.9",
		"--attr", "region=eu", "--attr", "tier=gold", "--agent-version", "2.1", "--business-function", "billing",
		"--config", cfg)
	if err != nil {
		t.Fatalf("mint: %v\n%s", err, stderr)
	}
	lines := scanLines(out)
	if len(lines) != 1 || strings.Count(lines[0], ".") != 2 {
		t.Fatalf("stdout = %q; want the token alone on one line", out)
	}
	fi, err := os.Stat(filepath.Join(filepath.Dir(cfg), "mediator.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file next to the config: %v, mode %v; want 0600", err, fi)
	}
	key, err := token.LoadKey(filepath.Join(filepath.Dir(cfg), "mediator.key"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.New(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	a, err := v.Authenticate(t.Context(), mediator.Credentials{Transport: "http", Bearer: lines[0]})
	if err != nil {
		t.Fatalf("minted token refused: %v", err)
	}
	if a.ID != "billing-bot" || a.TaskID != "task-42" || strings.Join(a.Roles, ",") != "writer,support" ||
		a.Owner != "team-billing" || a.Confidence != 0.9 || a.Attrs["region"] != "eu" || a.Attrs["tier"] != "gold" ||
		a.Version != "2.1" || a.BusinessFunction != "billing" || a.TokenID == "" {
		t.Fatalf("agent = %+v", a)
	}
	claims := decodeClaims(t, lines[0])
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 20*60 {
		t.Errorf("lifetime %vs; want the --ttl 20m", exp-iat)
	}

	jwks, _, err := runCLI(t, "keys", "jwks", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var set struct{ Keys []map[string]string }
	if err := json.Unmarshal([]byte(jwks), &set); err != nil || len(set.Keys) != 1 || set.Keys[0]["kid"] != key.KID() {
		t.Fatalf("keys jwks = %s, %v; want the key %s", jwks, err, key.KID())
	}
	if set.Keys[0]["d"] != "" {
		t.Fatal("keys jwks prints private key material")
	}
}

func decodeClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTokenMintCLIRefuses(t *testing.T) {
	t.Parallel()
	cfg := authDir(t, "")
	cases := []struct {
		name string
		args []string
		want string
		code int
	}{
		{"no agent", []string{}, "--agent: required", 2},
		{"ttl over auth.max_lifetime", []string{"--agent", "a", "--ttl", "2h"}, "auth.max_lifetime", 1},
		{"confidence out of range", []string{"--agent", "a", "--confidence", "1.5"}, "between 0 and 1", 2},
		{"confidence not a number", []string{"--agent", "a", "--confidence", "high"}, "between 0 and 1", 2},
		{"attr without =", []string{"--agent", "a", "--attr", "region"}, "key=value", 2},
		{"stray argument", []string{"--agent", "a", "extra"}, "unexpected argument", 2},
	}
	for _, tc := range cases {
		out, _, err := runCLI(t, append([]string{"token", "mint", "--config", cfg}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || out != "" {
			t.Errorf("%s: err = %v, stdout %q; want an error mentioning %q and no output", tc.name, err, out, tc.want)
			continue
		}
		var ee *exitError
		code := 1
		if errors.As(err, &ee) {
			code = ee.code
		}
		if code != tc.code {
			t.Errorf("%s: exit code %d; want %d", tc.name, code, tc.code)
		}
	}
	// Without --ttl, the default 15m is capped by a shorter max lifetime.
	short := authDir(t, "")
	if err := os.WriteFile(short, []byte("auth: {max_lifetime: 5m}\nadmin: {listen: \"\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "token", "mint", "--agent", "a", "--config", short)
	if err != nil {
		t.Fatalf("mint under a 5m max lifetime without --ttl: %v", err)
	}
	c := decodeClaims(t, strings.TrimSpace(out))
	if c["exp"].(float64)-c["iat"].(float64) != 300 {
		t.Fatalf("lifetime %v; want 5m", c["exp"].(float64)-c["iat"].(float64))
	}
}

func TestTokenRevokeCLI(t *testing.T) {
	t.Parallel()
	cfg := authDir(t, "")
	db := filepath.Join(filepath.Dir(cfg), "mediator.db")
	if _, _, err := runCLI(t, "token", "revoke", "j1", "--config", cfg); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("revoke against a missing database = %v; want a refusal (a new empty database would revoke nothing)", err)
	}
	st, err := store.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"jti-1", "--reason", "leaked", "--config", cfg}, `revoked token "jti-1"`},
		{[]string{"--config", cfg, "--task", "task-42"}, `every token of task "task-42"`},
		{[]string{"--agent", "bot", "--db", db}, `every token of agent "bot"`},
		{[]string{"--config", cfg, "jti-2"}, `revoked token "jti-2"`},
	} {
		out, stderr, err := runCLI(t, append([]string{"token", "revoke"}, tc.args...)...)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Fatalf("revoke %v: %q, %v\n%s", tc.args, out, err, stderr)
		}
	}
	got, err := st.RevocationsSince(t.Context(), 0)
	if err != nil || len(got) != 4 {
		t.Fatalf("stored revocations %+v, %v", got, err)
	}
	if got[0].JTI != "jti-1" || got[0].Reason != "leaked" || got[1].TaskID != "task-42" || got[2].AgentID != "bot" || got[3].JTI != "jti-2" {
		t.Fatalf("stored revocations %+v", got)
	}
	for _, bad := range [][]string{{}, {"j", "--task", "t"}, {"--task", "t", "--agent", "a"}, {"j", "--reason", "r", "k"}} {
		_, _, err := runCLI(t, append([]string{"token", "revoke", "--config", cfg}, bad...)...)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("revoke %v = %v; want a usage error", bad, err)
		}
	}
}

func TestTokenCLIUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"token"}, {"token", "frobnicate"}, {"keys"}, {"keys", "list"}} {
		_, stderr, err := runCLI(t, args...)
		if err == nil || !strings.Contains(stderr, "Usage") {
			t.Errorf("%v: %v, %q; want usage and an error", args, err, stderr)
		}
	}
	for _, args := range [][]string{{"token", "--help"}, {"token", "mint", "--help"}, {"token", "revoke", "--help"}, {"keys", "jwks", "--help"}} {
		if _, _, err := runCLI(t, args...); !errors.Is(err, errHelp) {
			t.Errorf("%v = %v; want help", args, err)
		}
	}
}

// The whole story against a real `mediator serve` that requires tokens: no
// token is refused (401, recorded), a minted token works and names its
// agent and task in the record, `token revoke` from a shell cuts it off
// within about a second, an expired token is refused.
func TestE2EAgentTokens(t *testing.T) {
	t.Parallel()
	p := startServe(t, `
auth:
  leeway: 0s
upstreams:
  - name: demo
    command: "@mediator"
    args: [demo-upstream, --root, {{DIR}}/sandbox]
`)
	cfg := filepath.Join(p.Dir, "mediator.yaml")

	status, hdr, body := postInitialize(t, p.URL, "")
	if status != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), `Bearer error="invalid_token"`) ||
		!strings.Contains(body, "no bearer token") {
		t.Fatalf("no token: %d %q %q; want 401 with WWW-Authenticate", status, hdr.Get("WWW-Authenticate"), body)
	}

	tok := mintCLI(t, p.Dir, "--agent", "e2e-agent", "--task", "task-42", "--role", "writer", "--config", cfg)
	c := tokenClient(t, p.URL, tok)
	if res := callTool(t, c, "demo__echo", map[string]any{"message": "hello"}); res.IsError {
		t.Fatalf("echo with a minted token: %s", resultText(res))
	}

	out, stderr, code := runMediator(t, p.Dir, "token", "revoke", "--task", "task-42", "--reason", "task done", "--config", cfg, "--db", p.DB)
	if code != 0 || !strings.Contains(out, "task-42") {
		t.Fatalf("token revoke: exit %d %q %s", code, out, stderr)
	}
	revoked := time.Now()
	for {
		status, _, body = postInitialize(t, p.URL, tok)
		if status == http.StatusUnauthorized {
			break
		}
		if time.Since(revoked) > 3*time.Second {
			t.Fatalf("token still accepted %s after `token revoke` (status %d)", time.Since(revoked), status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d := time.Since(revoked); d > 2500*time.Millisecond || !strings.Contains(body, "token revoked (task 'task-42'") {
		t.Fatalf("revocation took %s, body %q", d, body)
	}

	short := mintCLI(t, p.Dir, "--agent", "e2e-agent", "--ttl", "1s", "--config", cfg)
	time.Sleep(2100 * time.Millisecond) // exp has second precision; leeway is 0
	if status, _, body = postInitialize(t, p.URL, short); status != http.StatusUnauthorized || !strings.Contains(body, "token expired at") {
		t.Fatalf("expired token: %d %q", status, body)
	}

	checkAuthRecords(t, p, tok)
}

// checkAuthRecords reads the audit chain: the refusals are recorded with
// their reason, the allowed call names its agent and task, and the token
// itself appears nowhere.
func checkAuthRecords(t *testing.T, p *mediatorProc, tok string) {
	t.Helper()
	out, _, code := runMediator(t, p.Dir, "audit", "export", "--db", p.DB)
	if code != 0 {
		t.Fatalf("audit export: exit %d", code)
	}
	if strings.Contains(out, tok) || strings.Contains(out, strings.Split(tok, ".")[2]) {
		t.Fatal("the audit chain holds the bearer token")
	}
	var noToken, revoked, expired, echo bool
	for _, r := range exportRecords(t, p.Dir, p.DB) {
		switch {
		case r.Outcome == mediator.OutcomeDenied && strings.Contains(r.Error, "no bearer token"):
			noToken = true
		case r.Outcome == mediator.OutcomeDenied && strings.Contains(r.Error, "token revoked"):
			revoked = true
		case r.Outcome == mediator.OutcomeDenied && strings.Contains(r.Error, "token expired"):
			expired = true
		case r.Name == "demo__echo" && r.Outcome == mediator.OutcomeOK:
			echo = r.AgentID == "e2e-agent" && r.TaskID == "task-42"
		}
	}
	if !noToken || !revoked || !expired || !echo {
		t.Fatalf("records: no-token denial %v, revoked denial %v, expired denial %v, echo naming agent and task %v",
			noToken, revoked, expired, echo)
	}
}

// mintCLI runs `mediator token mint` and returns the token. It mints with
// the key file: unless args name a --server, the command is pointed at an
// address where nothing listens, never at the config's default admin port
// (a developer's own mediator may answer there).
func mintCLI(t *testing.T, dir string, args ...string) string {
	t.Helper()
	if !slices.Contains(args, "--server") {
		args = append(args, "--server", noServer(t))
	}
	out, stderr, code := runMediator(t, dir, append([]string{"token", "mint"}, args...)...)
	if code != 0 {
		t.Fatalf("token mint: exit %d: %s", code, stderr)
	}
	return strings.TrimSpace(out)
}

// tokenClient is an initialized MCP client that sends tok as its bearer.
func tokenClient(t *testing.T, url, tok string) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok}))
	if err != nil {
		t.Fatal(err)
	}
	return initClient(t, client.NewClient(tr))
}

// postInitialize sends one initialize request, with tok as bearer unless
// empty, and returns the status, headers and body.
func postInitialize(t *testing.T, url, tok string) (int, http.Header, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	const init = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(init))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, resp.Header, string(b)
}

package main

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"golang.org/x/crypto/bcrypt"

	"github.com/mcp-mediator/mediator/approvals"
	"github.com/mcp-mediator/mediator/approvals/web"
	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/store"
)

const testPassword = "correct horse battery"

// approverCLI runs `mediator approver ...` in process with stdin.
func approverCLI(t *testing.T, db, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errb strings.Builder
	e := env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, lookup: func(string) (string, bool) { return "", false }}
	err := Run(t.Context(), append(append([]string{"approver"}, args...), "--db", db), e)
	return out.String() + errb.String(), err
}

func TestApproverCommand(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "m.db")
	steps := []struct {
		name, stdin string
		args        []string
		wantErr     bool
		wantOut     string
	}{
		{"add an approver", testPassword + "\n", []string{"add", "alice", "--role", "approver"}, false, "added approver alice"},
		{"add an auditor", testPassword + "\n", []string{"add", "audrey", "--role", "auditor"}, false, "added approver audrey"},
		{"refuse a duplicate", testPassword + "\n", []string{"add", "alice"}, true, "exists"},
		{"refuse an unknown role", testPassword + "\n", []string{"add", "bob", "--role", "root"}, true, "use approver, admin or auditor"},
		{"refuse a short password", "short\n", []string{"add", "bob"}, true, "unusable password"},
		{"refuse a name with spaces", testPassword + "\n", []string{"add", "bo b"}, true, "name"},
		{"list", "", []string{"list"}, false, "audrey"},
		{"change a password", "another long password\n", []string{"passwd", "alice"}, false, "changed the password"},
		{"remove", "", []string{"remove", "audrey"}, false, "removed approver audrey"},
		{"remove an unknown name", "", []string{"remove", "audrey"}, true, "unknown approver"},
	}
	for _, s := range steps {
		out, err := approverCLI(t, db, s.stdin, s.args...)
		if (err != nil) != s.wantErr || !strings.Contains(out+errText(err), s.wantOut) {
			t.Errorf("%s: out %q err %v; want error %v and %q", s.name, out, err, s.wantErr, s.wantOut)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// approvalRig is a queue over a real store, with the page served.
type approvalRig struct {
	st  *store.Store
	q   *approvals.Queue
	srv *httptest.Server
}

func newApprovalRig(t *testing.T, path string, hold time.Duration, sso *web.SSO) *approvalRig {
	return newApprovalRigWith(t, path, web.Config{SSO: sso}, approvals.WithHold(hold))
}

// newApprovalRigWith is a rig whose queue has opts (after the rig's own)
// and whose page has cfg's settings.
func newApprovalRigWith(t *testing.T, path string, cfg web.Config, opts ...approvals.Option) *approvalRig {
	t.Helper()
	st, err := store.Open(t.Context(), path, store.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	q := approvals.New(st, append([]approvals.Option{approvals.WithPollInterval(20 * time.Millisecond),
		approvals.WithHistory(history(st)), approvals.WithRecorder(st)}, opts...)...)
	cfg.Queue, cfg.Accounts, cfg.History = q, st, history(st)
	h, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &approvalRig{st: st, q: q, srv: httptest.NewServer(h)}
	t.Cleanup(r.srv.Close)
	return r
}

func (r *approvalRig) addAccount(t *testing.T, name string, role mediator.ApproverRole) {
	t.Helper()
	// The cheapest bcrypt cost keeps sign-ins fast in tests; CheckPassword
	// reads the cost from the hash.
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.st.PutApprover(t.Context(), mediator.ApproverAccount{Name: name, Role: role, PasswordHash: string(hash)}); err != nil {
		t.Fatal(err)
	}
}

func approvalCall(args map[string]any) *mediator.Call {
	return &mediator.Call{ID: "call-" + rand.Text(),
		Method: "tools/call", Name: "demo__transfer_funds", Arguments: args, Prompt: "pay the invoice",
		Agent:   &mediator.Agent{ID: "finance-bot", Owner: "olivia"},
		Target:  &mediator.Target{Kind: mediator.KindTool, Server: "demo", Name: "demo__transfer_funds", Risk: mediator.RiskHigh},
		Session: mediator.SessionInfo{ID: "sess-1", Transport: "stdio"}}
}

func approvalPending(c *mediator.Call) mediator.Pending {
	return mediator.Pending{Call: c, Decision: mediator.Decision{Effect: mediator.EffectApprove, Rule: "funds-above-limit", Reason: "amount above 1000"}}
}

// A call waiting in one process is decided through another process's
// store within a second; a process killed mid-wait leaves its approval
// pending, and after a "restart" the identical call runs exactly once.
func TestApprovalAcrossProcessesAndRestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "m.db")
	stdio, serve := newApprovalRig(t, path, 5*time.Second, nil), newApprovalRig(t, path, time.Second, nil)
	args := map[string]any{"amount": 2500, "to": "acme"}

	done := make(chan error, 1)
	var verdict mediator.Verdict
	go func() {
		var err error
		verdict, err = stdio.q.Await(t.Context(), approvalPending(approvalCall(args)))
		done <- err
	}()
	a := waitQueued(t, serve.st)
	decided := time.Now()
	if _, err := serve.q.Decide(t.Context(), a.ID, approvals.Decider{Name: "bob", Role: mediator.RoleApprover}, true, "ok", nil); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || !verdict.Approved {
		t.Fatalf("cross-process approval: %+v %v", verdict, err)
	}
	if d := time.Since(decided); d > time.Second {
		t.Fatalf("the waiting process noticed after %s", d)
	}

	// Restart mid-wait: the waiting process is killed (its context ends
	// and its store closes); the approval survives.
	ctx, kill := context.WithCancel(t.Context())
	go func() {
		_, err := stdio.q.Await(ctx, approvalPending(approvalCall(map[string]any{"amount": 9000})))
		done <- err
	}()
	b := waitQueued(t, serve.st)
	kill()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("killed wait: %v", err)
	}
	_ = stdio.st.Close()
	restarted := newApprovalRig(t, path, 50*time.Millisecond, nil)
	if _, err := serve.q.Decide(t.Context(), b.ID, approvals.Decider{Name: "bob", Role: mediator.RoleApprover}, true, "after restart", nil); err != nil {
		t.Fatal(err)
	}
	v, err := restarted.q.Await(t.Context(), approvalPending(approvalCall(map[string]any{"amount": 9000})))
	if err != nil || !v.Approved || v.ApprovalID != b.ID {
		t.Fatalf("repeat after restart: %+v %v", v, err)
	}
	_, err = restarted.q.Await(t.Context(), approvalPending(approvalCall(map[string]any{"amount": 9000})))
	if !errors.Is(err, mediator.ErrApprovalPending) {
		t.Fatalf("a second repeat ran without a new approval: %v", err)
	}
}

func waitQueued(t *testing.T, st *store.Store) mediator.Approval {
	t.Helper()
	for range 200 {
		list, _ := st.Approvals(t.Context(), mediator.ApprovalFilter{State: mediator.ApprovalPending})
		if len(list) > 0 {
			return list[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no approval queued")
	return mediator.Approval{}
}

// browser is a cookie-keeping HTTP client that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(method, path string, form url.Values, hdr ...string) (int, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequestWithContext(b.t.Context(), method, b.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in page:\n%s", page)
	}
	return m[1]
}

func (b *browser) login(name, pw string) int {
	b.t.Helper()
	_, page := b.do("GET", "/approvals/login", nil)
	code, _ := b.do("POST", "/approvals/login", url.Values{"csrf": {csrfOf(b.t, page)}, "name": {name}, "password": {pw}})
	return code
}

// The page refuses what it must: wrong passwords, forms without their
// token or from another origin, unknown ids, decisions on decided
// approvals, over-long reasons, deciders without the right; it escapes
// tool-supplied text and sends a strict CSP.
func TestApprovalPageRefusals(t *testing.T) {
	t.Parallel()
	r := newApprovalRig(t, filepath.Join(t.TempDir(), "m.db"), 10*time.Millisecond, nil)
	r.addAccount(t, "bob", mediator.RoleApprover)
	r.addAccount(t, "olivia", mediator.RoleApprover)
	r.addAccount(t, "audrey", mediator.RoleAuditor)
	_, _ = r.q.Await(t.Context(), approvalPending(approvalCall(map[string]any{"memo": "<script>alert(1)</script>", "amount": 5000})))
	a := waitQueued(t, r.st)

	anon := newBrowser(t, r.srv.URL)
	if _, page := anon.do("GET", "/approvals/login", nil); !strings.Contains(page, "mediator approver add NAME --role approver --config FILE") {
		t.Errorf("the sign-in page does not say how to create the first account:\n%s", page)
	}
	if code := anon.login("bob", "wrong password!"); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", code)
	}
	if code, _ := anon.do("POST", "/approvals/login", url.Values{"name": {"bob"}, "password": {testPassword}}); code != http.StatusForbidden {
		t.Errorf("sign-in without CSRF token: %d, want 403", code)
	}
	if code, _ := anon.do("GET", "/approvals/a/"+a.ID, nil); code != http.StatusSeeOther {
		t.Errorf("detail without sign-in: %d, want a redirect to sign in", code)
	}

	bob := newBrowser(t, r.srv.URL)
	if code := bob.login("bob", testPassword); code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", code)
	}
	code, page := bob.do("GET", "/approvals/a/"+a.ID, nil)
	if code != 200 || strings.Contains(page, "<script>alert(1)</script>") || !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatalf("detail page (%d) does not escape the argument:\n%s", code, page)
	}
	tok := csrfOf(t, page)
	deny := func(reason string) url.Values {
		return url.Values{"csrf": {tok}, "decision": {"deny"}, "reason": {reason}}
	}
	cases := []struct {
		name   string
		who    *browser
		path   string
		form   url.Values
		hdr    []string
		status int
	}{
		{"no CSRF token", bob, "/approvals/a/" + a.ID + "/decide", url.Values{"decision": {"approve"}}, nil, 403},
		{"forged CSRF token", bob, "/approvals/a/" + a.ID + "/decide", url.Values{"csrf": {"forged"}, "decision": {"approve"}}, nil, 403},
		{"cross-origin post", bob, "/approvals/a/" + a.ID + "/decide", deny("x"), []string{"Origin", "https://evil.example"}, 403},
		{"unknown approval id", bob, "/approvals/a/apr_nope/decide", deny("x"), nil, 404},
		{"denial without a reason", bob, "/approvals/a/" + a.ID + "/decide", deny(" "), nil, 400},
		{"over-long reason", bob, "/approvals/a/" + a.ID + "/decide", deny(strings.Repeat("x", 2001)), nil, 400},
		{"bad grant", bob, "/approvals/a/" + a.ID + "/decide", url.Values{"csrf": {tok}, "decision": {"approve"},
			"grant_minutes": {"5"}, "grant_pattern": {"("}}, nil, 400},
		{"deny with a reason", bob, "/approvals/a/" + a.ID + "/decide", deny("not this month"), nil, 303},
		{"replayed decision", bob, "/approvals/a/" + a.ID + "/decide", deny("not this month"), nil, 409},
	}
	for _, tc := range cases {
		if code, body := tc.who.do("POST", tc.path, tc.form, tc.hdr...); code != tc.status {
			t.Errorf("%s: %d, want %d\n%s", tc.name, code, tc.status, body)
		}
	}
	pages := []struct {
		path, want string
		status     int
	}{
		{"/approvals/a/apr_nope", "no approval with that id", 404},
		{"/approvals/history?approver=bob&state=denied", "not this month", 200},
		{"/approvals/history?approver=mallory", "No approvals match", 200},
		{"/approvals/session?agent=finance-bot", "demo__transfer_funds", 200},
	}
	for _, pg := range pages {
		if code, body := bob.do("GET", pg.path, nil); code != pg.status || !strings.Contains(body, pg.want) {
			t.Errorf("GET %s: %d, want %d with %q", pg.path, code, pg.status, pg.want)
		}
	}
	_, _ = r.q.Await(t.Context(), approvalPending(approvalCall(map[string]any{"amount": 4000})))
	b := waitQueued(t, r.st)
	for _, who := range []struct{ name string }{{"olivia"}, {"audrey"}} {
		br := newBrowser(t, r.srv.URL)
		if code := br.login(who.name, testPassword); code != http.StatusSeeOther {
			t.Fatalf("sign-in %s: %d", who.name, code)
		}
		_, page := br.do("GET", "/approvals/a/"+b.ID, nil)
		code, _ := br.do("POST", "/approvals/a/"+b.ID+"/decide", url.Values{"csrf": {csrfOf(t, page)}, "decision": {"approve"}})
		if code != http.StatusForbidden {
			t.Errorf("%s (owner or auditor) approved: %d, want 403", who.name, code)
		}
	}
	resp, err := http.Get(r.srv.URL + "/approvals/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
}

// Repeated wrong passwords lock the name out for a while.
func TestApprovalPageRateLimitsSignIn(t *testing.T) {
	t.Parallel()
	r := newApprovalRig(t, filepath.Join(t.TempDir(), "m.db"), time.Millisecond, nil)
	r.addAccount(t, "bob", mediator.RoleApprover)
	b := newBrowser(t, r.srv.URL)
	for range 5 {
		b.login("bob", "wrong password!")
	}
	if code := b.login("bob", testPassword); code != http.StatusTooManyRequests {
		t.Fatalf("sign-in after 5 failures: %d, want 429", code)
	}
}

// The SSO header counts only from the configured proxy, and only for a
// name that could not pass for another (issue 14, finding 10).
func TestApprovalPageSSO(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		proxy string
		user  string
		want  int
	}{
		{"from the proxy", "127.0.0.1/32", "sam", http.StatusOK},
		{"from anywhere else", "10.9.9.9/32", "sam", http.StatusSeeOther},
		{"a zero-width space in the name", "127.0.0.1/32", "sam\u200b", http.StatusSeeOther},
		{"a Cyrillic look-alike", "127.0.0.1/32", "s\u0430m", http.StatusSeeOther},
	}
	for _, tc := range cases {
		sso := &web.SSO{Header: "X-Forwarded-User", Proxies: []netip.Prefix{netip.MustParsePrefix(tc.proxy)}}
		r := newApprovalRig(t, filepath.Join(t.TempDir(), "m.db"), time.Millisecond, sso)
		code, _ := newBrowser(t, r.srv.URL).do("GET", "/approvals/", nil, "X-Forwarded-User", tc.user)
		if code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.want)
		}
	}
}

var rowIDRe = regexp.MustCompile(`data-id="(apr_[a-z0-9]+)"`)

// A `mediator stdio` agent's call waits in the shared database; an approver
// decides it on the page of a `mediator serve` using the same file, and the
// waiting stdio process notices within a second and runs the call. The
// stdio process opens the database itself (--attach never): attached, the
// serve holds the call and decides it in-process.
func TestE2EStdioApprovedOnServePage(t *testing.T) {
	t.Parallel()
	p := startServe(t, approvalServeConfig(t))
	if out, err := approverCLI(t, p.DB, testPassword+"\n", "add", "bob", "--role", "approver"); err != nil {
		t.Fatalf("approver add: %v\n%s", err, out)
	}
	tr := transport.NewStdio(binary(t), nil, "stdio", "--attach", "never", "--config", filepath.Join(p.Dir, "mediator.yaml"), "--db", p.DB)
	agent := initClient(t, client.NewClient(tr))
	waiting := callAsync(t.Context(), agent, "fake__echo", map[string]any{"text": "from stdio"})

	bob := newBrowser(t, p.Base)
	if code := bob.login("bob", testPassword); code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", code)
	}
	var id string
	for deadline := time.Now().Add(20 * time.Second); id == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, rows := bob.do("GET", "/approvals/queue/rows", nil)
		if m := rowIDRe.FindStringSubmatch(rows); m != nil {
			id = m[1]
		}
	}
	if id == "" {
		t.Fatal("the stdio agent's call never reached the serve page's queue")
	}
	_, page := bob.do("GET", "/approvals/a/"+id, nil)
	if code, body := bob.do("POST", "/approvals/a/"+id+"/decide", url.Values{"csrf": {csrfOf(t, page)}, "decision": {"approve"}}); code != http.StatusSeeOther {
		t.Fatalf("approve: %d\n%s", code, body)
	}
	decided := time.Now()
	r := wait(t, waiting)
	if r.err != nil || r.res.IsError || !strings.Contains(resultText(r.res), "from stdio") {
		t.Fatalf("the stdio call did not run: %v %+v", r.err, r.res)
	}
	if d := time.Since(decided); d > time.Second {
		t.Fatalf("the stdio process noticed the decision after %s, want within a second", d)
	}
}

// stdioAgent starts `mediator stdio` on p's config and database and
// returns the client and the process (to kill it).
func stdioAgent(t *testing.T, p *mediatorProc) (*client.Client, *exec.Cmd) {
	t.Helper()
	var proc *exec.Cmd
	tr := transport.NewStdioWithOptions(binary(t), nil, []string{"stdio", "--config", filepath.Join(p.Dir, "mediator.yaml"), "--db", p.DB},
		transport.WithCommandFunc(func(ctx context.Context, cmd string, _ []string, args []string) (*exec.Cmd, error) {
			proc = exec.CommandContext(ctx, cmd, args...)
			proc.Dir = p.Dir
			return proc, nil
		}))
	return initClient(t, client.NewClient(tr)), proc
}

// pendingMeta returns the approval id and URL of an "approval pending" result.
func pendingMeta(t *testing.T, res *mcp.CallToolResult) (string, string) {
	t.Helper()
	info, _ := res.Meta.AdditionalFields[mediator.ErrorMetaKey].(map[string]any)
	id, _ := info["approval_id"].(string)
	u, _ := info["url"].(string)
	if !res.IsError || info["code"] != "approval_pending" || id == "" || !strings.HasSuffix(u, "/approvals/a/"+id) {
		t.Fatalf("want an approval-pending error with id and URL, got %s %v", resultText(res), res.Meta)
	}
	return id, u
}

// An undecided call returns "approval pending" with the id and the page;
// the agent's process is killed (-9); the approval survives, is decided on
// the page, and the identical call from a new process runs exactly once.
func TestE2EApprovalSurvivesKill(t *testing.T) {
	t.Parallel()
	p := startServe(t, approvalConfigHold(t, "1s"))
	if out, err := approverCLI(t, p.DB, testPassword+"\n", "add", "bob", "--role", "approver"); err != nil {
		t.Fatalf("approver add: %v\n%s", err, out)
	}
	args := map[string]any{"text": "pay 5000"}
	agent, proc := stdioAgent(t, p)
	res := callTool(t, agent, "fake__echo", args)
	// The stdio process names the page from its config (approvals.url,
	// or its listen address); pendingMeta checks the path.
	id, _ := pendingMeta(t, res)
	if !strings.Contains(resultText(res), "repeat the identical call later") {
		t.Fatalf("pending text %q", resultText(res))
	}
	if err := proc.Process.Kill(); err != nil {
		t.Fatal(err)
	}

	bob := newBrowser(t, p.Base)
	if code := bob.login("bob", testPassword); code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", code)
	}
	_, page := bob.do("GET", "/approvals/a/"+id, nil)
	if code, _ := bob.do("POST", "/approvals/a/"+id+"/decide", url.Values{"csrf": {csrfOf(t, page)}, "decision": {"approve"}}); code != http.StatusSeeOther {
		t.Fatalf("approve: %d", code)
	}

	again, _ := stdioAgent(t, p)
	if res := callTool(t, again, "fake__echo", map[string]any{"text": "pay 5001"}); res.IsError {
		if other, _ := pendingMeta(t, res); other == id {
			t.Fatal("a changed argument used the approval")
		}
	}
	if res := callTool(t, again, "fake__echo", args); res.IsError || !strings.Contains(resultText(res), "pay 5000") {
		t.Fatalf("the approved call did not run after the restart: %s", resultText(res))
	}
	if res := callTool(t, again, "fake__echo", args); !res.IsError {
		t.Fatal("the approval ran a second call")
	} else if next, _ := pendingMeta(t, res); next == id {
		t.Fatal("the used approval was offered again")
	}
}

// An approval nobody decides expires in the background; the expiry is a
// denial recorded in the audit chain (which still verifies), the next
// identical call is told so, and a late decision is refused.
func TestApprovalExpiryIsRecorded(t *testing.T) {
	t.Parallel()
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "m.db"), store.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	q := approvals.New(st, approvals.WithHold(time.Millisecond), approvals.WithExpiry(time.Minute),
		approvals.WithRecorder(st), approvals.WithClock(clock))
	args := map[string]any{"amount": 7777}
	if _, err := q.Await(t.Context(), approvalPending(approvalCall(args))); !errors.Is(err, mediator.ErrApprovalPending) {
		t.Fatal(err)
	}
	a := waitQueued(t, st)
	offset.Store(int64(2 * time.Minute))
	go q.RunExpiry(t.Context(), 10*time.Millisecond)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if got, _ := st.Approval(t.Context(), a.ID); got.State == mediator.ApprovalExpired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the approval did not expire")
		}
	}
	if _, err := q.Decide(t.Context(), a.ID, approvals.Decider{Name: "bob", Role: mediator.RoleApprover}, true, "late", nil); !errors.Is(err, mediator.ErrApprovalExpired) && !errors.Is(err, mediator.ErrApprovalDecided) {
		t.Fatalf("late decision: %v", err)
	}
	v, err := q.Await(t.Context(), approvalPending(approvalCall(args)))
	if err != nil || v.Approved || !strings.Contains(v.Reason, "expired") {
		t.Fatalf("repeat after expiry: %+v %v", v, err)
	}
	recs, err := st.Records(t.Context(), store.Filter{AgentID: "finance-bot"})
	methods := map[string]int{}
	for _, r := range recs {
		if r.Outcome == mediator.OutcomeDenied {
			methods[r.Method]++
		}
	}
	// One expiry, and the late decision refused.
	if err != nil || methods["approvals/expire"] != 1 || methods["approvals/decide"] != 1 {
		t.Fatalf("denials recorded by method: %v (%v); want one expiry and one refused decision", methods, err)
	}
	if res, err := st.Verify(t.Context()); err != nil || !res.OK {
		t.Fatalf("chain: %+v %v", res, err)
	}
}

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-mediator/mediator/mediator"
)

// requireChromium finds headless Chromium (Debian package chromium).
func requireChromium(t *testing.T) string {
	return requireTool(t, "chromium", "apt-get install chromium (scripts/install-test-deps.sh does under CI)", func() (string, bool) {
		for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(name); err == nil {
				return p, true
			}
		}
		return "", false
	})
}

// approvalServeConfig holds echo and wipe for a human, allows the rest of
// the fake upstream's tools, and names the HTTP agent (owned by olivia).
func approvalServeConfig(t *testing.T) string { return approvalConfigHold(t, "90s") }

// approvalConfigHold is approvalServeConfig with another hold.
func approvalConfigHold(t *testing.T, hold string) string {
	return policyFragment(t, "p, *, tool, fake__echo, approve, echo-needs-a-human\n"+
		"p, *, tool, fake__wipe, approve, destructive-needs-a-human\n"+
		"p, *, tool, fake__*, allow, fake-all\n") + `
agent: {id: finance-bot}
auth:
  anonymous: {id: finance-bot, owner: olivia, roles: [finance], attrs: {purpose: "Pay this month's approved vendor invoices"}}
approvals: {hold: ` + hold + `}
upstreams:
  - name: fake
    command: ` + buildTool(t, "tools/testdata/fakeupstream") + `
    tools:
      echo: {risk: medium, data_class: confidential}
      wipe: {risk: critical, data_class: internal}
`
}

// newChromium starts a headless browser for the test.
func newChromium(t *testing.T, path string) context.Context {
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 860)}
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelT)
	return ctx
}

type callResult struct {
	res *mcp.CallToolResult
	err error
}

// callAsync calls a tool without blocking the test.
func callAsync(ctx context.Context, c *client.Client, name string, args map[string]any) <-chan callResult {
	ch := make(chan callResult, 1)
	go func() {
		req := mcp.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = name, args
		req.Params.Meta = mcp.NewMetaFromMap(map[string]any{mediator.PromptMetaKey: "Clean up after the vendor payment run and confirm it"})
		res, err := c.CallTool(ctx, req)
		ch <- callResult{res, err}
	}()
	return ch
}

// The approver's whole path in real headless Chromium against a real
// `mediator serve`: a wrong password is refused; after sign-in a pending
// call appears in the queue live (SSE, no reload); its detail shows a
// <script> argument as text; approving it completes the waiting call; a
// POST without the CSRF token is refused. Screenshots of the queue and the
// detail view go to testresults/screenshots/ (docs/screenshots/ with
// UPDATE_SCREENSHOTS=1).
func TestBrowserApprovalFlow(t *testing.T) {
	t.Parallel()
	chromium := requireChromium(t)
	p := startServe(t, approvalServeConfig(t))
	if out, err := approverCLI(t, p.DB, testPassword+"\n", "add", "alice", "--role", "approver"); err != nil {
		t.Fatalf("approver add: %v\n%s", err, out)
	}
	ctx := newChromium(t, chromium)
	var dialogs atomic.Int32
	if err := chromedp.Listen(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			dialogs.Add(1)
		}
	}); err != nil {
		t.Fatal(err)
	}
	signIn(t, ctx, p.Base, "wrong password!", "Wrong name or password")
	signIn(t, ctx, p.Base, testPassword, "")
	waitJS(t, ctx, `document.getElementById("live").dataset.state === "live"`)

	agent := httpClient(t, p.URL)
	callTool(t, agent, "fake__env", nil) // an earlier call in the session
	script := "<script>alert(1)</script>"
	waiting := callAsync(t.Context(), agent, "fake__echo", map[string]any{"text": script})
	wipe := callAsync(t.Context(), agent, "fake__wipe", map[string]any{"scope": "staging-cache", "api_key": "sk-live-abcdefghijklmnopqrstuvwx"})
	waitJS(t, ctx, `document.querySelectorAll("#queue-rows tr[data-id]").length === 2`)
	screenshot(t, ctx, "approvals-queue.png")
	must(t, chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2))))
	screenshot(t, ctx, "approvals-phone.png")
	must(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 860)))

	openApproval(t, ctx, p, "fake__echo")
	args, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("arguments")))
	must(t, err)
	if !strings.Contains(args, script) {
		t.Fatalf("the argument does not render as text: %q", args)
	}
	screenshot(t, ctx, "approval-detail.png")
	must(t, chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("approve-reason"), "invoice matches PO-1234")))
	submit(t, ctx, "form.approve button[type=submit]", ".alert-ok")
	if r := wait(t, waiting); r.err != nil || r.res.IsError || !strings.Contains(resultText(r.res), script) {
		t.Fatalf("the approved call did not complete: %v %+v", r.err, r.res)
	}
	if dialogs.Load() != 0 {
		t.Fatal("a JavaScript dialog opened: tool-supplied text ran as script")
	}
	csrfRefused(t, ctx, p)
	must(t, chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("deny-reason"), "wipe only after the change window")))
	submit(t, ctx, "form.deny button[type=submit]", ".alert-ok")
	if r := wait(t, wipe); r.err != nil || !r.res.IsError || !strings.Contains(resultText(r.res), "wipe only after the change window") {
		t.Fatalf("the denied call did not get the reason: %v %+v", r.err, r.res)
	}
	must(t, chromedp.Do(ctx, chromedp.Navigate(p.Base+"/approvals/history"), chromedp.WaitVisible(chromedp.CSS("form.filters"))))
	screenshot(t, ctx, "approvals-history.png")
}

func wait(t *testing.T, ch <-chan callResult) callResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting call did not complete after the decision")
	}
	return callResult{}
}

// waitJS polls a JavaScript condition in the page.
func waitJS(t *testing.T, ctx context.Context, cond string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(20*time.Second)))
	must(t, err)
}

// openApproval opens the pending approval of tool from the queue.
func openApproval(t *testing.T, ctx context.Context, p *mediatorProc, tool string) {
	t.Helper()
	must(t, chromedp.Do(ctx, chromedp.Navigate(p.Base+"/approvals/"), chromedp.WaitVisible(chromedp.CSS("#queue-rows a"))))
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
		`[...document.querySelectorAll("#queue-rows a")].find(a => a.textContent === %q).href`, tool)))
	must(t, err)
	must(t, chromedp.Do(ctx, chromedp.Navigate(href), chromedp.WaitVisible(chromedp.ID("arguments"))))
}

// csrfRefused posts a decision without the token from the signed-in page.
func csrfRefused(t *testing.T, ctx context.Context, p *mediatorProc) {
	t.Helper()
	openApproval(t, ctx, p, "fake__wipe")
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch(location.pathname + "/decide", {method: "POST",
		headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "decision=approve"}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	must(t, err)
	if status != 403 {
		t.Fatalf("a POST without the CSRF token got %d, want 403", status)
	}
}

func signIn(t *testing.T, ctx context.Context, base, pw, wantErr string) {
	t.Helper()
	must(t, chromedp.Do(ctx, chromedp.Navigate(base+"/approvals/login"),
		chromedp.SetValue(chromedp.ID("name"), "alice"), chromedp.SetValue(chromedp.ID("password"), pw)))
	if wantErr == "" {
		submit(t, ctx, "button[type=submit]", "#queue")
		return
	}
	submit(t, ctx, "button[type=submit]", ".alert-error")
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".alert-error")))
	must(t, err)
	if !strings.Contains(msg, wantErr) {
		t.Fatalf("sign-in with a wrong password: %q, want %q", msg, wantErr)
	}
}

// submit clicks a form's button, waits for the page it leads to, and for
// sel on it; on failure it reports what the page says.
func submit(t *testing.T, ctx context.Context, button, sel string) {
	t.Helper()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(button))); err != nil {
		t.Fatalf("submit %s: %v", button, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		t.Fatalf("after %s, no %s: %v\npage: %s", button, sel, err, body)
	}
}

// screenshot saves the page to testresults/screenshots/name (ignored by
// git), and to docs/screenshots/name, which the README shows, when
// UPDATE_SCREENSHOTS=1, so that an ordinary test run leaves the tree clean.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	must(t, err)
	dirs := []string{filepath.Join(repoRoot(t), "testresults", "screenshots")}
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		dirs = append(dirs, filepath.Join(repoRoot(t), "docs", "screenshots"))
	}
	for _, dir := range dirs {
		must(t, os.MkdirAll(dir, 0o755))
		must(t, os.WriteFile(filepath.Join(dir, name), png, 0o644))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// An approver decides faster in real headless Chromium, against a real
// serve: the keyboard selects and opens a call from the queue (j, Enter),
// shows the shortcuts (?), and goes to the denial reason (d), where
// Ctrl+Enter denies; the same call from two agents is approved at once
// from the detail page's "identical calls" form, and both waiting calls
// run; an approval id smuggled into that form that is not the same call is
// refused and stays pending.
func TestBrowserKeyboardAndBatchDecisions(t *testing.T) {
	t.Parallel()
	chromium := requireChromium(t)
	p := startServe(t, approvalServeConfig(t))
	if out, err := approverCLI(t, p.DB, testPassword+"\n", "add", "alice", "--role", "approver"); err != nil {
		t.Fatalf("approver add: %v\n%s", err, out)
	}
	tokB, errOut, code := runMediator(t, p.Dir, "token", "mint", "--agent", "bot-b", "--server", p.Admin, "--config", filepath.Join(p.Dir, "mediator.yaml"))
	if code != 0 {
		t.Fatalf("token mint: exit %d: %s", code, errOut)
	}
	ctx := newChromium(t, chromium)
	signIn(t, ctx, p.Base, testPassword, "")
	waitJS(t, ctx, `document.getElementById("live").dataset.state === "live"`)

	agentA, agentB := httpClient(t, p.URL), tokenClient(t, p.URL, strings.TrimSpace(tokB))
	same := map[string]any{"text": "the same call"}
	fromA := callAsync(t.Context(), agentA, "fake__echo", same)
	waitJS(t, ctx, `document.querySelectorAll("#queue-rows tr[data-id]").length === 1`)
	fromB := callAsync(t.Context(), agentB, "fake__echo", same)
	wipe := callAsync(t.Context(), agentA, "fake__wipe", map[string]any{"scope": "staging-cache"})
	waitJS(t, ctx, `document.querySelectorAll("#queue-rows tr[data-id]").length === 3`)
	wipeID, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`[...document.querySelectorAll("#queue-rows tr[data-id]")].find(tr => tr.querySelector("a").textContent === "fake__wipe").dataset.id`))
	must(t, err)

	// j until the selected row is fake__echo, then Enter opens it.
	for i := 0; ; i++ {
		must(t, chromedp.Do(ctx, chromedp.KeyEvent("j")))
		tool, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector("#queue-rows tr.selected a") || {}).textContent || ""`))
		must(t, err)
		if tool == "fake__echo" {
			break
		}
		if i == 3 {
			t.Fatalf("j selected %q after %d presses; no fake__echo row", tool, i+1)
		}
	}
	must(t, chromedp.Do(ctx, chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.ID("arguments"))))
	must(t, chromedp.Do(ctx, chromedp.KeyEvent("?")))
	waitJS(t, ctx, `!document.getElementById("shortcuts").hidden`)
	screenshot(t, ctx, "approval-shortcuts.png")
	must(t, chromedp.Do(ctx, chromedp.KeyEvent(kb("Escape"))))
	waitJS(t, ctx, `document.getElementById("shortcuts").hidden`)

	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#identical input[name=also]:checked").length`))
	must(t, err)
	if n != 1 {
		t.Fatalf("the detail page offers %d identical calls; want the other agent's one", n)
	}
	// A smuggled id of another call: refused, and it stays pending.
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(
		`document.querySelector("#batch tbody").insertAdjacentHTML("beforeend", '<tr><td><input type="checkbox" name="also" value=%q checked></td></tr>'); true`,
		wipeID)))
	must(t, err)
	must(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#batch input[value=approve]`))))
	submit(t, ctx, "#batch button[type=submit]", ".alert-error")
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".alert-error")))
	must(t, err)
	if !strings.Contains(msg, "and 1 identical call(s) with it") || !strings.Contains(msg, wipeID+": not a pending call identical to this one") {
		t.Fatalf("the batch with a smuggled id: %q", msg)
	}
	for name, ch := range map[string]<-chan callResult{"agent A": fromA, "agent B": fromB} {
		if r := wait(t, ch); r.err != nil || r.res.IsError || !strings.Contains(resultText(r.res), "the same call") {
			t.Fatalf("%s's call after the batch approval: %v %+v", name, r.err, r.res)
		}
	}

	// The keyboard's way to a denial: d, type, Ctrl+Enter.
	must(t, chromedp.Do(ctx, chromedp.Navigate(p.Base+"/approvals/a/"+wipeID), chromedp.WaitVisible(chromedp.ID("deny-reason"))))
	must(t, chromedp.Do(ctx, chromedp.KeyEvent("d")))
	waitJS(t, ctx, `document.activeElement.id === "deny-reason"`)
	must(t, chromedp.Do(ctx, chromedp.KeyEvent("not during the freeze")))
	if _, err := chromedp.RunResponse(ctx, chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl))); err != nil {
		t.Fatalf("Ctrl+Enter in the denial reason: %v", err)
	}
	waitJS(t, ctx, `(document.querySelector(".alert-ok") || {}).textContent === "Denied. The agent receives your reason."`)
	if r := wait(t, wipe); r.err != nil || !r.res.IsError || !strings.Contains(resultText(r.res), "not during the freeze") {
		t.Fatalf("the call denied from the keyboard: %v %+v", r.err, r.res)
	}
}

// kb is the key a DOM key name stands for in chromedp.KeyEvent.
func kb(name string) string {
	return map[string]string{"Escape": "\u001b"}[name]
}

package main

import (
	"html"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// offTaskConfig holds fake__echo for a human when a session calls it
// outside the intent it declared.
func offTaskConfig(t *testing.T) string {
	return policyFragment(t, "# Echo outside the declared task needs a human.\n"+
		"p, *, tool, fake__echo, approve, off-task-echo, r.intent.OutOfScope && r.obj.Args.text != 'x'\n"+
		"p, *, tool, fake__*, allow, fake-all\n") + `
agent: {id: finance-bot}
auth:
  anonymous: {id: finance-bot, owner: olivia, roles: [finance]}
approvals: {hold: 1s}
upstreams:
  - name: fake
    command: ` + buildTool(t, "tools/testdata/fakeupstream") + `
`
}

var declaredTaskRE = regexp.MustCompile(`as task (\S+):`)

// Issue 19 item 8, against a real serve: the approval page shows the
// agent's reasoning, the intent it declared in-band (its task and scope),
// and the policy rule in words with its note, the expression folded. Once
// drift suspends the declared task, the page offers only a denial and says
// why, and a forged approval is refused; once the task ends, the mediator
// closes the approval itself (recorded). History shows when each approval
// was decided and its arguments; the session chain labels a decision as one.
func TestE2EApprovalPageShowsContext(t *testing.T) {
	t.Parallel()
	p := startServe(t, offTaskConfig(t))
	if out, err := approverCLI(t, p.DB, testPassword+"\n", "add", "bob", "--role", "approver"); err != nil {
		t.Fatalf("approver add: %v\n%s", err, out)
	}
	// A stdio session: over streamable HTTP the current protocol has no
	// session to declare an intent for without a task token.
	c, _ := stdioAgent(t, p)
	res := callWithPrompt(t, c, mediator.ToolDeclareIntent, map[string]any{"purpose": "wipe the staging cache",
		"scope": map[string]any{"tools": []any{"fake__wipe"}}}, "please wipe the staging cache")
	m := declaredTaskRE.FindStringSubmatch(resultText(res))
	if res.IsError || m == nil {
		t.Fatalf("declare_intent: %s", resultText(res))
	}
	task := m[1]
	res = callWithPrompt(t, c, "fake__echo", map[string]any{"text": "hello"},
		map[string]any{"text": "please wipe the staging cache", "reasoning": "checking the echo tool answers before I wipe"})
	id, _ := pendingMeta(t, res)

	b := newBrowser(t, p.Base)
	if code := b.login("bob", testPassword); code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", code)
	}
	_, page := b.do("GET", "/approvals/a/"+id, nil)
	text := html.UnescapeString(page)
	for _, want := range []string{
		`<pre class="text" id="reasoning">checking the echo tool answers before I wipe</pre>`,
		"Checked against", task, "(declared in-band by the agent)", `<span class="mono">fake__wipe</span>`,
		"A human must approve each call of tool fake__echo by any agent when the call is outside its declared intent and argument text is not 'x'.",
		"Echo outside the declared task needs a human.",
		"<summary>The rule as written</summary>", "r.intent.OutOfScope && r.obj.Args.text != 'x'", "policy.csv:2",
		`value="approve"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("detail page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("page:\n%s", page)
	}

	// Two more calls off the declared task: the third suspends it.
	for _, s := range []string{"two", "three"} {
		callWithPrompt(t, c, "fake__echo", map[string]any{"text": s}, "x")
	}
	cfg := filepath.Join(p.Dir, "mediator.yaml")
	waitFor(t, 10*time.Second, func() bool {
		out, _, code := runMediator(t, p.Dir, "task", "show", task, "--config", cfg, "--server", p.Admin)
		return code == 0 && strings.Contains(out, "suspended")
	}, "the declared task was not suspended")
	_, page = b.do("GET", "/approvals/a/"+id, nil)
	text = html.UnescapeString(page)
	if !strings.Contains(text, "Approving would run nothing.") || !strings.Contains(text, "task "+task+" is suspended") ||
		!strings.Contains(text, "mediator task resume "+task) || strings.Contains(text, `value="approve"`) ||
		!strings.Contains(text, `value="deny"`) {
		t.Fatalf("a suspended task's approval should offer only a denial, saying why:\n%s", page)
	}
	code, body := b.do("POST", "/approvals/a/"+id+"/decide", url.Values{"csrf": {csrfOf(t, page)}, "decision": {"approve"}})
	if code != http.StatusForbidden || !strings.Contains(html.UnescapeString(body), "is suspended") {
		t.Fatalf("approving a suspended task's call: %d\n%s", code, body)
	}

	// The task ends: the mediator closes its pending approvals.
	if out, stderr, code := runMediator(t, p.Dir, "task", "end", task, "--config", cfg, "--server", p.Admin); code != 0 {
		t.Fatalf("task end: %d %s %s", code, out, stderr)
	}
	waitFor(t, 20*time.Second, func() bool {
		_, page = b.do("GET", "/approvals/a/"+id, nil)
		return strings.Contains(page, "state-denied") && strings.Contains(page, "mediator:task-ended")
	}, "the mediator did not close the approval of the ended task")
	if text := html.UnescapeString(page); !strings.Contains(text, "closed by the mediator: task "+task+" is completed") {
		t.Fatalf("closed approval:\n%s", page)
	}
	recs := exportRecords(t, p.Dir, p.DB)
	closed := false
	for _, r := range recs {
		closed = closed || (r.Method == "approvals/decide" && strings.Contains(r.Decision.Reason, "denied by mediator:task-ended"))
	}
	if !closed {
		t.Error("the mediator's closing of the approval is not in the audit chain")
	}

	_, hist := b.do("GET", "/approvals/history", nil)
	text = html.UnescapeString(hist)
	if !strings.Contains(text, `<th scope="col">Decided</th>`) || !strings.Contains(text, `{"text":"hello"}`) ||
		strings.Count(text, "mediator:task-ended") < 1 {
		t.Fatalf("history lacks the decision time, the arguments or the decider:\n%s", hist)
	}
	_, chain := b.do("GET", "/approvals/session?agent=finance-bot", nil)
	if !strings.Contains(chain, `approval <a class="mono" href="/approvals/a/`+id+`">`+id+`</a> of <span class="mono">fake__echo</span>`) {
		t.Fatalf("the session chain does not label the decision as an approval's:\n%s", chain)
	}
}

// Issue 19 item 8: a call repeated from another session names that session
// on the page, with that session's own calls.
func TestE2EApprovalPageShowsRepeatingSession(t *testing.T) {
	t.Parallel()
	p := startServe(t, approvalConfigHold(t, "500ms"))
	if out, err := approverCLI(t, p.DB, testPassword+"\n", "add", "bob", "--role", "approver"); err != nil {
		t.Fatalf("approver add: %v\n%s", err, out)
	}
	args := map[string]any{"text": "pay 5000"}
	first, _ := stdioAgent(t, p)
	second, _ := stdioAgent(t, p)
	id, _ := pendingMeta(t, callTool(t, first, "fake__echo", args))
	_, page := func() (int, string) {
		b := newBrowser(t, p.Base)
		b.login("bob", testPassword)
		return b.do("GET", "/approvals/a/"+id, nil)
	}()
	if strings.Contains(page, "Repeated from other sessions") {
		t.Fatalf("no other session asked yet:\n%s", page)
	}
	callTool(t, second, "fake__wipe", map[string]any{}) // an earlier call of the second session
	if again, _ := pendingMeta(t, callTool(t, second, "fake__echo", args)); again != id {
		t.Fatalf("the identical call opened %s, not %s", again, id)
	}
	b := newBrowser(t, p.Base)
	b.login("bob", testPassword)
	_, page = b.do("GET", "/approvals/a/"+id, nil)
	i := strings.Index(page, `id="askers"`)
	if i < 0 || !strings.Contains(page[i:], "Calls of the latest") || !strings.Contains(page[i:], "fake__wipe") {
		t.Fatalf("the repeating session is not shown with its calls:\n%s", page)
	}
}

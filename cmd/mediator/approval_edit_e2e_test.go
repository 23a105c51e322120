package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/mcp-mediator/mediator/mediator"
)

// editConfig holds every fake__echo for a human, and denies an echo of
// "forbidden" or of a secret: the rules an edited call must pass again.
func editConfig(t *testing.T, hold string) string {
	return policyFragment(t, "p, *, tool, fake__echo, deny, echo-no-forbidden, \"has(r.obj.Args, 'text') && r.obj.Args.text == 'forbidden'\"\n"+
		"p, *, tool, fake__echo, deny, echo-no-secrets, r.obj.ArgSecrets > 0\n"+
		"p, *, tool, fake__echo, approve, echo-needs-a-human\n"+
		"p, *, tool, fake__*, allow, fake-all\n") + `
agent: {id: finance-bot}
auth:
  anonymous: {id: finance-bot, owner: olivia, roles: [finance]}
approvals: {hold: ` + hold + `}
upstreams:
  - name: fake
    command: ` + buildTool(t, "tools/testdata/fakeupstream") + `
    tools:
      echo: {risk: medium, data_class: confidential}
`
}

// decideForm posts the approval page's decide form for id with extra
// fields, as the signed-in browser b, and returns the status and page.
func decideForm(t *testing.T, b *browser, id string, fields url.Values) (int, string) {
	t.Helper()
	_, page := b.do("GET", "/approvals/a/"+id, nil)
	fields.Set("csrf", csrfOf(t, page))
	return b.do("POST", "/approvals/a/"+id+"/decide", fields)
}

// recordsOf returns the audit records pred picks.
func recordsOf(t *testing.T, p *mediatorProc, pred func(mediator.ChainRecord) bool) []mediator.ChainRecord {
	t.Helper()
	var out []mediator.ChainRecord
	for _, r := range exportRecords(t, p.Dir, p.DB) {
		if pred(r) {
			out = append(out, r)
		}
	}
	return out
}

// An approver edits a held call's arguments: the edited call is what runs
// and is recorded, with the asked arguments beside it; an edit the rules
// refuse (a forbidden value, a secret the outbound scan finds) is refused
// with nothing forwarded; an edit of a call whose values are withheld from
// the page, malformed JSON, and an edit with a denial are refused on the
// page and leave the approval pending. All against a real mediator and a
// real upstream process, through the page's own forms.
func TestE2EApproveWithEditedArguments(t *testing.T) {
	t.Parallel()
	p := startServe(t, editConfig(t, "1s"))
	if out, err := approverCLI(t, p.DB, testPassword+"\n", "add", "bob", "--role", "approver"); err != nil {
		t.Fatalf("approver add: %v\n%s", err, out)
	}
	b := newBrowser(t, p.Base)
	if code := b.login("bob", testPassword); code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", code)
	}
	agent := httpClient(t, p.URL)
	secret := "ghp_" + strings.Repeat("aB3dE5fG7h", 3) + "K9mN2p"

	cases := []struct {
		name     string
		asked    map[string]any
		edit     string
		wantText string // in the repeated call's result
		wantErr  string // in the repeated call's error
	}{
		{"the edited call runs", map[string]any{"text": "pay 5000"}, `{"text": "pay 50"}`, "pay 50", ""},
		{"an edit policy denies is refused", map[string]any{"text": "hello"}, `{"text": "forbidden"}`, "", "echo-no-forbidden"},
		{"an edit with a secret is refused by the outbound scan", map[string]any{"text": "hi"}, `{"text": "token ` + secret + `"}`, "", "echo-no-secrets"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, _ := pendingMeta(t, callTool(t, agent, "fake__echo", tc.asked))
			if code, body := decideForm(t, b, id, url.Values{"decision": {"approve"}, "arguments": {tc.edit}}); code != http.StatusSeeOther {
				t.Fatalf("approve %s with an edit: %d\n%s", id, code, tail(body, 4<<10))
			}
			res := callTool(t, agent, "fake__echo", tc.asked) // the identical call takes the decision
			text := resultText(res)
			if tc.wantErr != "" {
				if !res.IsError || !strings.Contains(text, "edited the call's arguments, and the edited call is refused") || !strings.Contains(text, tc.wantErr) {
					t.Fatalf("the refused edit: %s", text)
				}
			} else if res.IsError || !strings.Contains(text, tc.wantText) || strings.Contains(text, tc.asked["text"].(string)) {
				t.Fatalf("the edited call returned %q; want the edited %q, not the asked %q", text, tc.wantText, tc.asked["text"])
			}
			recs := recordsOf(t, p, func(r mediator.ChainRecord) bool {
				return r.Approval != nil && r.Approval.ID == id && r.Method == "tools/call"
			})
			if len(recs) == 0 {
				t.Fatal("no record of the call that took the approval")
			}
			var forwarded bool
			for _, r := range recs {
				forwarded = forwarded || r.Outcome == mediator.OutcomeForwarding
				if strings.Contains(string(r.Arguments), secret) || strings.Contains(string(r.Approval.AskedArguments), secret) {
					t.Fatalf("the record holds the secret: %s / %s", r.Arguments, r.Approval.AskedArguments)
				}
			}
			last := recs[len(recs)-1]
			asked, _ := mediator.CanonicalValue(tc.asked)
			if !mediator.SameArguments(last.Approval.AskedArguments, asked) {
				t.Fatalf("the record's asked arguments %s, want %s", last.Approval.AskedArguments, asked)
			}
			if tc.wantErr == "" {
				if !mediator.SameArguments(last.Arguments, json.RawMessage(tc.edit)) || last.Outcome != mediator.OutcomeOK {
					t.Fatalf("the record: arguments %s outcome %s; want the edit %s, ok", last.Arguments, last.Outcome, tc.edit)
				}
				return
			}
			if forwarded || last.Outcome != mediator.OutcomeDenied || last.Decision.Rule != tc.wantErr {
				t.Fatalf("the refused edit's record: outcome %s rule %s (forwarded %v); want denied by %s, nothing forwarded",
					last.Outcome, last.Decision.Rule, forwarded, tc.wantErr)
			}
		})
	}

	refusals := []struct {
		name   string
		asked  map[string]any
		fields url.Values
		status int
		want   string
	}{
		{"malformed JSON", map[string]any{"text": "a"}, url.Values{"decision": {"approve"}, "arguments": {`{"text": `}}, http.StatusBadRequest, "are not JSON"},
		{"not an object", map[string]any{"text": "b"}, url.Values{"decision": {"approve"}, "arguments": {`["x"]`}}, http.StatusBadRequest, "must be a JSON object"},
		{"a withheld value", map[string]any{"text": "c", "password": "Sup3rS3cretValue9"}, url.Values{"decision": {"approve"}, "arguments": {`{"text": "c2", "password": "x"}`}},
			http.StatusForbidden, "withheld from the page"},
		{"with a grant", map[string]any{"text": "d"}, url.Values{"decision": {"approve"}, "arguments": {`{"text": "d2"}`}, "grant_minutes": {"5"}, "grant_pattern": {".*"}},
			http.StatusBadRequest, "approve the edit without a grant"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			id, _ := pendingMeta(t, callTool(t, agent, "fake__echo", tc.asked))
			code, page := decideForm(t, b, id, tc.fields)
			if code != tc.status || !strings.Contains(page, tc.want) {
				t.Fatalf("%s: %d, want %d with %q:\n%s", tc.name, code, tc.status, tc.want, tail(page, 4<<10))
			}
			_, detail := b.do("GET", "/approvals/a/"+id, nil)
			if !strings.Contains(detail, `data-id="`+id+`"`) || !strings.Contains(detail, `class="badge state-pending"`) {
				t.Fatalf("after a refused edit the approval is not pending:\n%s", tail(detail, 4<<10))
			}
			if tc.name == "a withheld value" && strings.Contains(detail, `id="edit-args"`) {
				t.Fatal("the page offers an editor for a call whose values it withholds")
			}
			refused := recordsOf(t, p, func(r mediator.ChainRecord) bool {
				return r.Method == "approvals/decide" && r.Decision.Rule == "approvals.refused" && strings.Contains(string(r.Arguments), id)
			})
			if len(refused) == 0 {
				t.Fatal("the refused edit left no audit record")
			}
		})
	}
}

// The approval page's editor in a real browser: open it, change the
// arguments, approve; the waiting call runs with the edit.
func TestBrowserApproveWithEditedArguments(t *testing.T) {
	t.Parallel()
	chromium := requireChromium(t)
	p := startServe(t, editConfig(t, "90s"))
	if out, err := approverCLI(t, p.DB, testPassword+"\n", "add", "alice", "--role", "approver"); err != nil {
		t.Fatalf("approver add: %v\n%s", err, out)
	}
	ctx := newChromium(t, chromium)
	signIn(t, ctx, p.Base, testPassword, "")
	waitJS(t, ctx, `document.getElementById("live").dataset.state === "live"`)
	waiting := callAsync(t.Context(), httpClient(t, p.URL), "fake__echo", map[string]any{"text": "pay 5000"})
	waitJS(t, ctx, `document.querySelectorAll("#queue-rows tr[data-id]").length === 1`)
	id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#queue-rows tr[data-id]").dataset.id`))
	must(t, err)
	openApproval(t, ctx, p, "fake__echo")
	form, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector("form.approve") || {outerHTML: "no approve form"}).outerHTML`))
	must(t, err)
	if !strings.Contains(form, `id="edit-args"`) {
		t.Fatalf("the approve form has no argument editor:\n%s", form)
	}
	must(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#edit summary")), chromedp.WaitVisible(chromedp.ID("edit-args"))))
	shown, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("edit-args")))
	must(t, err)
	if !strings.Contains(shown, `"pay 5000"`) {
		t.Fatalf("the editor starts from %q; want the asked arguments", shown)
	}
	must(t, chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("edit-args"), `{"text": "pay 50"}`)))
	screenshot(t, ctx, "approval-edit.png")
	submit(t, ctx, "form.approve button[type=submit]", ".alert-ok")
	r := <-waiting
	if r.err != nil || r.res.IsError || !strings.Contains(resultText(r.res), "pay 50") || strings.Contains(resultText(r.res), "pay 5000") {
		t.Fatalf("the waiting call after the edit: %v %v", r.err, r.res)
	}
	must(t, chromedp.Do(ctx, chromedp.Navigate(p.Base+"/approvals/a/"+id), chromedp.WaitVisible(chromedp.CSS(".decisions .edited"))))
}

package approvals

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mcp-mediator/mediator/mediator"
)

func TestEditOf(t *testing.T) {
	t.Parallel()
	asked := mediator.Approval{ID: "apr_1", Arguments: json.RawMessage(`{"amount":5000,"to":"acct-9"}`)}
	withheld := mediator.Approval{ID: "apr_2", Arguments: json.RawMessage(`{"amount":5000,"password":"[WITHHELD 7 bytes, sha256 1a2b3c4d5e6f]"}`)}
	redacted := mediator.Approval{ID: "apr_3", Arguments: json.RawMessage(`{"note":"key [REDACTED] here"}`)}
	cut := mediator.Approval{ID: "apr_4", Arguments: json.RawMessage(`"{\"amount\":5000,\"to\":\"ac"`)}
	cases := []struct {
		name    string
		a       mediator.Approval
		ch      Choice
		want    string // canonical edit; "" for none
		wantErr error
	}{
		{"no arguments: approved as asked", asked, Choice{Approve: true}, "", nil},
		{"white space only: approved as asked", asked, Choice{Approve: true, Arguments: json.RawMessage(" \n")}, "", nil},
		{"the asked arguments again: no edit", asked, Choice{Approve: true, Arguments: json.RawMessage(`{ "to": "acct-9", "amount": 5000 }`)}, "", nil},
		{"an edit, canonical", asked, Choice{Approve: true, Arguments: json.RawMessage(`{ "to": "acct-9", "amount": 50 }`)}, `{"amount":50,"to":"acct-9"}`, nil},
		{"an edit with a denial", asked, Choice{Reason: "no", Arguments: json.RawMessage(`{"amount":50}`)}, "", mediator.ErrInvalidRequest},
		{"not JSON", asked, Choice{Approve: true, Arguments: json.RawMessage(`{"amount":`)}, "", mediator.ErrInvalidRequest},
		{"trailing text", asked, Choice{Approve: true, Arguments: json.RawMessage(`{} {}`)}, "", mediator.ErrInvalidRequest},
		{"not an object", asked, Choice{Approve: true, Arguments: json.RawMessage(`[1,2]`)}, "", mediator.ErrInvalidRequest},
		{"null", asked, Choice{Approve: true, Arguments: json.RawMessage(`null`)}, "", mediator.ErrInvalidRequest},
		{"too long", asked, Choice{Approve: true, Arguments: json.RawMessage(`{"x":"` + strings.Repeat("a", mediator.MaxEditedArgumentsBytes) + `"}`)}, "", mediator.ErrInvalidRequest},
		{"a withheld value", withheld, Choice{Approve: true, Arguments: json.RawMessage(`{"amount":50,"password":"[WITHHELD 7 bytes, sha256 1a2b3c4d5e6f]"}`)}, "", mediator.ErrApprovalForbidden},
		{"a redacted value", redacted, Choice{Approve: true, Arguments: json.RawMessage(`{"note":"other"}`)}, "", mediator.ErrApprovalForbidden},
		{"cut asked arguments", cut, Choice{Approve: true, Arguments: json.RawMessage(`{"amount":50}`)}, "", mediator.ErrApprovalForbidden},
		{"with a grant", asked, Choice{Approve: true, Grant: &GrantSpec{Minutes: 5, Pattern: ".*"}, Arguments: json.RawMessage(`{"amount":50}`)}, "", ErrInvalidGrant},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := editOf(tc.a, tc.ch)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("edit %q (err %v), want %q", got, err, tc.want)
			}
		})
	}
}

// TestEditedVerdict: the verdict of an approval edited by its approvers
// carries the edit to the pipeline; one approved as asked carries none.
func TestEditedVerdict(t *testing.T) {
	t.Parallel()
	edit := json.RawMessage(`{"amount":50}`)
	for _, tc := range []struct {
		name string
		ds   []mediator.ApprovalDecision
		want json.RawMessage
	}{
		{"as asked", []mediator.ApprovalDecision{{Approver: "bob", Approve: true}}, nil},
		{"edited", []mediator.ApprovalDecision{{Approver: "bob", Approve: true, Arguments: edit}}, edit},
		{"edited by two", []mediator.ApprovalDecision{{Approver: "bob", Approve: true, Arguments: edit}, {Approver: "carol", Approve: true, Arguments: edit}}, edit},
	} {
		v := verdictOf(mediator.Approval{ID: "apr_1", State: mediator.ApprovalApproved, Decisions: tc.ds})
		if !v.Approved || string(v.Arguments) != string(tc.want) {
			t.Errorf("%s: verdict %+v, want approved with arguments %s", tc.name, v, tc.want)
		}
	}
}

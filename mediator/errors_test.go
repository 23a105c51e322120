package mediator

import (
	"go/ast"
	goparser "go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// Every Err* sentinel of the package is in the sentinels table, once, with
// a code of its own: the machine codes in _meta and "is this a denial"
// cannot drift from the errors there are.
func TestSentinelsTableIsComplete(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := goparser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, sp := range g.Specs {
				for _, n := range sp.(*ast.ValueSpec).Names {
					if strings.HasPrefix(n.Name, "Err") && n.IsExported() {
						declared = append(declared, n.Name)
					}
				}
			}
		}
	}
	codes := map[string]bool{}
	inTable := map[error]bool{}
	for _, s := range sentinels {
		if codes[s.code] {
			t.Errorf("code %q used twice", s.code)
		}
		if inTable[s.err] {
			t.Errorf("%v in the table twice", s.err)
		}
		codes[s.code], inTable[s.err] = true, true
	}
	for _, name := range declared {
		e := sentinelByName[name]
		if e == nil {
			t.Errorf("%s is declared but not in sentinelByName (add it to the sentinels table and here)", name)
			continue
		}
		if !inTable[e] {
			t.Errorf("%s is not in the sentinels table: its code and whether it is a denial are undefined", name)
		}
	}
	if len(sentinelByName) != len(declared) {
		t.Errorf("sentinelByName has %d entries, the package declares %d Err* variables: %v", len(sentinelByName), len(declared), declared)
	}
	for _, tc := range []struct {
		err    error
		code   string
		denial bool
	}{
		{&DenyError{Decision: Decision{Rule: "r"}}, "denied", true},
		{&PendingError{ApprovalID: "a"}, "approval_pending", true},
		{&ArgumentError{Arg: "x"}, "invalid_request", true},
		{ErrToolQuarantined, "tool_quarantined", true},
		{ErrResultBlocked, "result_blocked", false},
		{ErrUpstreamTimeout, "upstream_timeout", false},
	} {
		if got := ErrorCode(tc.err); got != tc.code {
			t.Errorf("ErrorCode(%v) = %q, want %q", tc.err, got, tc.code)
		}
		if got := IsDenial(tc.err); got != tc.denial {
			t.Errorf("IsDenial(%v) = %v, want %v", tc.err, got, tc.denial)
		}
	}
}

// sentinelByName maps each declared sentinel's name to its value.
var sentinelByName = map[string]error{
	"ErrUnauthenticated": ErrUnauthenticated, "ErrDenied": ErrDenied, "ErrPolicy": ErrPolicy,
	"ErrApprovalPending": ErrApprovalPending, "ErrApprovalUnavailable": ErrApprovalUnavailable,
	"ErrUnknownTool": ErrUnknownTool, "ErrUnknownResource": ErrUnknownResource, "ErrUnknownPrompt": ErrUnknownPrompt,
	"ErrMethodNotAllowed": ErrMethodNotAllowed, "ErrInvalidRequest": ErrInvalidRequest,
	"ErrUpstreamUnavailable": ErrUpstreamUnavailable, "ErrUpstreamTimeout": ErrUpstreamTimeout, "ErrUpstream": ErrUpstream,
	"ErrAudit": ErrAudit, "ErrNotSupported": ErrNotSupported, "ErrTaskState": ErrTaskState, "ErrUnknownTask": ErrUnknownTask,
	"ErrInternal": ErrInternal, "ErrInvalidIdentity": ErrInvalidIdentity, "ErrToolQuarantined": ErrToolQuarantined, "ErrWithheld": ErrWithheld,
	"ErrResultBlocked": ErrResultBlocked, "ErrUnknownApproval": ErrUnknownApproval, "ErrApprovalDecided": ErrApprovalDecided,
	"ErrApprovalExpired": ErrApprovalExpired, "ErrApprovalForbidden": ErrApprovalForbidden, "ErrUnknownApprover": ErrUnknownApprover,
	"ErrReviewStale": ErrReviewStale, "ErrPinNotFound": ErrPinNotFound,
}

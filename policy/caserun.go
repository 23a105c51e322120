package policy

import (
	"errors"
	"fmt"

	"github.com/mcp-mediator/mediator/mediator"
)

// CaseResult is the outcome of one case.
type CaseResult struct {
	Case     *Case
	Where    string // file:line
	Decision mediator.Decision
	// Err is the evaluation error, if the decision failed to evaluate.
	Err  error
	Pass bool
	// Problem says why a failing case failed.
	Problem string
}

// Summary is a one-line report: "PASS name: allow by rule r" or
// "FAIL name (file:line): got ..., want ...".
func (r CaseResult) Summary() string {
	got := describe(r.Decision, r.Err)
	if r.Pass {
		return "PASS " + r.Case.Name + ": " + got
	}
	return fmt.Sprintf("FAIL %s (%s): %s", r.Case.Name, r.Where, r.Problem)
}

func describe(d mediator.Decision, err error) string {
	switch {
	case errors.As(err, new(*mediator.ArgumentError)):
		return "deny: " + err.Error()
	case err != nil:
		return "deny: policy error (" + err.Error() + ")"
	case d.Rule == "":
		return string(d.Effect) + " (no rule matched)"
	}
	return string(d.Effect) + " by rule " + d.Rule
}

// Failed returns the failing results.
func Failed(rs []CaseResult) []CaseResult {
	var out []CaseResult
	for _, r := range rs {
		if !r.Pass {
			out = append(out, r)
		}
	}
	return out
}

// Test runs cases against the policy in force, with the engine's
// environment settings but each case's own time, address and alert level.
// Enforcement modes do not apply: cases test the policy.
func (e *Engine) Test(cf *CaseFile) []CaseResult {
	return e.runCases(e.cur.Load(), cf)
}

func (e *Engine) runCases(c *compiled, cf *CaseFile) []CaseResult {
	out := make([]CaseResult, 0, len(cf.Cases))
	for i := range cf.Cases {
		out = append(out, e.runCase(c, cf, &cf.Cases[i]))
	}
	return out
}

func (e *Engine) runCase(c *compiled, cf *CaseFile, tc *Case) CaseResult {
	res := CaseResult{Case: tc, Where: tc.Where(cf)}
	req, s, err := cf.request(tc, e.env.zone())
	if err != nil {
		res.Err, res.Problem = err, "case does not build: "+err.Error()
		return res
	}
	res.Decision, _, res.Err = e.evaluate(c, req, s)
	res.Problem = mismatch(tc, res.Decision, res.Err)
	res.Pass = res.Problem == ""
	return res
}

// mismatch explains how a decision differs from the case's expectation,
// or returns "".
func mismatch(tc *Case, d mediator.Decision, err error) string {
	want := string(tc.Want)
	if tc.Rule != nil {
		want += " by rule " + *tc.Rule
		if *tc.Rule == "" {
			want = string(tc.Want) + " (no rule matched)"
		}
	}
	if tc.Error {
		want = "deny: policy error or argument error"
	}
	got := describe(d, err)
	switch {
	case tc.Error != (err != nil):
		return "got " + got + ", want " + want
	case d.Effect != tc.Want:
		return "got " + got + ", want " + want
	case tc.Rule != nil && !tc.Error && d.Rule != *tc.Rule:
		return "got " + got + ", want " + want
	}
	return ""
}

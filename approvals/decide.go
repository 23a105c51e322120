package approvals

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// Limits of a grant.
const (
	MaxGrantMinutes      = 8 * 60
	MaxGrantPatternBytes = 1000
)

// Decider is who decides: a signed-in account or an SSO identity.
type Decider struct {
	Name string
	Role mediator.ApproverRole
}

// GrantSpec asks, with an approval, that later calls of the same tool in
// the same agent session run without approval for Minutes while their
// canonical JSON arguments fully match Pattern.
type GrantSpec struct {
	Minutes int
	Pattern string
}

// Decide records who decided what about approval id. It refuses an
// auditor, the owner of the calling agent (separation of duties), and
// anything the store refuses (already decided, expired, the same approver
// twice, a denial without a reason).
// Every refusal is an audit record (approvals/decide, denied, naming who
// tried and why).
func (q *Queue) Decide(ctx context.Context, id string, who Decider, approve bool, reason string, grant *GrantSpec) (mediator.Approval, error) {
	return q.DecideChoice(ctx, id, who, Choice{Approve: approve, Reason: reason, Grant: grant})
}

// Choice is what an approver decides about one approval.
type Choice struct {
	Approve bool
	// Reason is required for a denial.
	Reason string
	// Grant, with an approval, lets later similar calls run (see
	// GrantSpec); not with edited arguments.
	Grant *GrantSpec
	// Arguments, with an approval, are the arguments the call is to run
	// with instead of the asked ones: a JSON object of at most
	// mediator.MaxEditedArgumentsBytes. Equal to the asked ones (or
	// empty), the call is approved as asked. The edited call is decided
	// by intent and policy again before it runs.
	Arguments json.RawMessage
}

// DecideChoice is Decide with everything an approver may choose: as
// Decide, and an approval may edit the call's arguments. An edit is
// refused for a denial, with a grant, and when any asked value is
// withheld from the page (the approver would send the placeholder); on a
// two-person approval every approver must approve the same arguments.
func (q *Queue) DecideChoice(ctx context.Context, id string, who Decider, ch Choice) (mediator.Approval, error) {
	a, err := q.decide(ctx, id, who, ch)
	if err != nil && a.State != mediator.ApprovalApproved {
		if a.ID == "" {
			a.ID = id
		}
		q.RecordRefusal(ctx, a, "approvals/decide", who.Name, err)
	}
	return a, err
}

func (q *Queue) decide(ctx context.Context, id string, who Decider, ch Choice) (mediator.Approval, error) {
	approve, reason, grant := ch.Approve, ch.Reason, ch.Grant
	if who.Role != mediator.RoleApprover && who.Role != mediator.RoleAdmin {
		return mediator.Approval{}, fmt.Errorf("%w: role %q may not decide approvals", mediator.ErrApprovalForbidden, who.Role)
	}
	a, err := q.store.Approval(ctx, id)
	if err != nil {
		return a, err
	}
	// SameIdentity also reads "alice ", "alice\u200b" and a Cyrillic
	// "аlice" as alice.
	if a.AgentOwner != "" && mediator.SameIdentity(a.AgentOwner, who.Name) {
		return a, fmt.Errorf("%w: %s owns agent %s and may not approve its calls", mediator.ErrApprovalForbidden, who.Name, a.AgentID)
	}
	if why := q.Blocked(ctx, a); approve && why != "" {
		return a, fmt.Errorf("%w: %s", mediator.ErrApprovalForbidden, why)
	}
	if w := Withheld(a.Arguments); approve && q.refuseWithheld && len(w) > 0 {
		return a, fmt.Errorf("%w: %d argument value(s) of this call are withheld from the page (%s first); "+
			"approvals.refuse_withheld allows only a denial: deny it, and have the agent pass secrets by reference",
			mediator.ErrApprovalForbidden, len(w), w[0].Path)
	}
	edit, err := editOf(a, ch)
	if err != nil {
		return a, err
	}
	var re *regexp.Regexp
	if approve && grant != nil {
		if re, err = grant.compile(); err != nil {
			return a, err
		}
	}
	a, err = q.store.DecideApproval(ctx, id, mediator.ApprovalDecision{Approver: who.Name, Approve: approve, Reason: reason, At: q.now(), Arguments: edit})
	if errors.Is(err, mediator.ErrApprovalExpired) {
		// Too late: the approval expires now (and that is recorded).
		if next, rerr := q.refresh(ctx, a); rerr == nil {
			a = next
		}
	}
	if err != nil {
		return a, err
	}
	q.log.Info("approval decided", "approval", id, "approver", who.Name, "approve", approve, "edited", edit != nil, "state", a.State)
	if edit != nil {
		reason = strings.TrimSpace("with edited arguments " + string(edit) + "; " + reason)
	}
	q.recordDecision(ctx, a, who.Name, approve, reason)
	if re != nil && a.State == mediator.ApprovalApproved {
		err = q.addGrant(ctx, a, who.Name, grant)
	}
	return a, err
}

// Editable reports whether an approver may edit a's arguments before
// approving: every asked value is shown in full (none withheld or
// redacted, the arguments not cut) and no grant is involved.
func Editable(a mediator.Approval) bool { return uneditable(a) == nil }

// uneditable says why a's asked arguments cannot be the start of an edit
// (nil when they can).
func uneditable(a mediator.Approval) error {
	if asked, err := mediator.DecodeJSON(canonicalOrEmpty(a.Arguments)); err != nil {
		return fmt.Errorf("%w: the asked arguments cannot be read (%w), so an edit cannot start from them: approve the call as asked or deny it", mediator.ErrApprovalForbidden, err)
	} else if _, ok := asked.(map[string]any); !ok {
		return fmt.Errorf("%w: the asked arguments are longer than the page shows (they are cut), so an edit would drop the rest: approve the call as asked or deny it", mediator.ErrApprovalForbidden)
	}
	if w := Withheld(a.Arguments); len(w) > 0 {
		return fmt.Errorf("%w: %d asked value(s) are withheld from the page (%s first), so an edit would send their placeholders: "+
			"approve the call as asked or deny it", mediator.ErrApprovalForbidden, len(w), w[0].Path)
	}
	return nil
}

// editOf checks the arguments ch edits a's call to and returns them as
// canonical JSON, or nil when ch edits nothing (no arguments, or the
// asked ones).
func editOf(a mediator.Approval, ch Choice) (json.RawMessage, error) {
	if len(bytes.TrimSpace(ch.Arguments)) == 0 {
		return nil, nil
	}
	switch {
	case !ch.Approve:
		return nil, fmt.Errorf("%w: edited arguments go with an approval; a denial runs nothing (deny without them)", mediator.ErrInvalidRequest)
	case len(ch.Arguments) > mediator.MaxEditedArgumentsBytes:
		return nil, fmt.Errorf("%w: the edited arguments are %d bytes, more than the %d allowed", mediator.ErrInvalidRequest, len(ch.Arguments), mediator.MaxEditedArgumentsBytes)
	}
	v, err := mediator.DecodeJSON(ch.Arguments)
	if err != nil {
		return nil, fmt.Errorf("%w: the edited arguments are not JSON (%w); correct them", mediator.ErrInvalidRequest, err)
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, fmt.Errorf("%w: the edited arguments must be a JSON object ({\"name\": value, ...}), as a tool call's are", mediator.ErrInvalidRequest)
	}
	edit, err := mediator.CanonicalJSON(ch.Arguments)
	if err != nil {
		return nil, err
	}
	if mediator.SameArguments(edit, canonicalOrEmpty(a.Arguments)) {
		return nil, nil // edited back to what was asked
	}
	if err := uneditable(a); err != nil {
		return nil, err
	}
	if ch.Grant != nil {
		return nil, fmt.Errorf("%w: a grant lets later calls run as they are asked, and this approval edits the call; approve the edit without a grant", ErrInvalidGrant)
	}
	return edit, nil
}

// compile checks the spec and returns its anchored pattern.
func (g *GrantSpec) compile() (*regexp.Regexp, error) {
	if g.Minutes < 1 || g.Minutes > MaxGrantMinutes {
		return nil, fmt.Errorf("%w: minutes must be 1..%d", ErrInvalidGrant, MaxGrantMinutes)
	}
	if g.Pattern == "" || len(g.Pattern) > MaxGrantPatternBytes {
		return nil, fmt.Errorf("%w: the pattern must be 1..%d bytes", ErrInvalidGrant, MaxGrantPatternBytes)
	}
	// The pattern must stand alone, so that it cannot close the anchoring
	// group (`a)|(b` would leave both ends unanchored).
	if _, err := regexp.Compile(g.Pattern); err != nil {
		return nil, fmt.Errorf("%w: the pattern is not a regular expression: %w", ErrInvalidGrant, err)
	}
	re, err := regexp.Compile(`^(?:` + g.Pattern + `)$`)
	if err != nil {
		return nil, fmt.Errorf("%w: the pattern is not a regular expression: %w", ErrInvalidGrant, err)
	}
	return re, nil
}

func (q *Queue) addGrant(ctx context.Context, a mediator.Approval, who string, g *GrantSpec) error {
	now := q.now()
	err := q.store.AddGrant(ctx, mediator.ApprovalGrant{
		ApprovalID: a.ID, AgentID: a.AgentID, TaskID: a.TaskID, SessionID: a.SessionID, Tool: a.Tool,
		Pattern: g.Pattern, Approver: who, Created: now, Expires: now.Add(time.Duration(g.Minutes) * time.Minute),
	})
	if err != nil {
		return fmt.Errorf("approval %s is approved, but its grant was not stored: %w", a.ID, err)
	}
	return nil
}

// granted reports whether a grant covers the call.
func (q *Queue) granted(ctx context.Context, c *mediator.Call) (mediator.Verdict, bool) {
	if c.Agent == nil || c.Target == nil {
		return mediator.Verdict{}, false
	}
	grants, err := q.store.MatchingGrants(ctx, c.Agent.ID, c.Agent.TaskID, c.Session.ID, c.Target.Name, q.now())
	if err != nil || len(grants) == 0 {
		return mediator.Verdict{}, false
	}
	args, err := canonicalArgs(c)
	if err != nil {
		return mediator.Verdict{}, false
	}
	for _, g := range grants {
		re, err := (&GrantSpec{Minutes: 1, Pattern: g.Pattern}).compile()
		if err == nil && re.Match(args) {
			return mediator.Verdict{Approved: true, ApprovalID: g.ApprovalID, Approver: g.Approver,
				Reason: "grant " + g.ID + " until " + g.Expires.UTC().Format(time.RFC3339)}, true
		}
	}
	return mediator.Verdict{}, false
}

// RunExpiry expires pending approvals past their time every interval until
// ctx ends, recording each expiry as a denial in the audit chain.
func (q *Queue) RunExpiry(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			list, err := q.store.ExpireApprovals(ctx, q.now())
			if err != nil {
				q.log.Warn("approval expiry failed", "err", err)
				continue
			}
			q.recordExpiries(ctx, list)
			q.closeEnded(ctx)
		}
	}
}

func (q *Queue) recordExpiries(ctx context.Context, list []mediator.Approval) {
	for _, a := range list {
		q.log.Info("approval expired", "approval", a.ID, "agent", a.AgentID, "tool", a.Tool)
		q.record(ctx, a, "approvals/expire", mediator.Decision{Effect: mediator.EffectDeny, Rule: a.Rule,
			Reason: "expired undecided"}, mediator.OutcomeDenied, "")
	}
}

// RecordRefusal appends a refused action on approval a (a decision by
// someone who may not decide it, one after its expiry, a forged form) to
// the audit chain: method, who tried, and the error they were given.
func (q *Queue) RecordRefusal(ctx context.Context, a mediator.Approval, method, who string, err error) {
	what := "refused"
	if who != "" {
		what += " for " + who
	}
	q.record(ctx, a, method, mediator.Decision{Effect: mediator.EffectDeny, Rule: "approvals.refused",
		Reason: what + ": " + err.Error()}, mediator.OutcomeDenied, err.Error())
}

func (q *Queue) recordDecision(ctx context.Context, a mediator.Approval, who string, approve bool, reason string) {
	d := mediator.Decision{Effect: mediator.EffectDeny, Rule: a.Rule, Reason: "denied by " + who + ": " + reason}
	out := mediator.OutcomeDenied
	if approve {
		d.Effect, d.Reason, out = mediator.EffectAllow, "approved by "+who+": "+reason, mediator.OutcomeOK
	}
	q.record(ctx, a, "approvals/decide", d, out, "")
}

// record appends a decision about a to the audit chain; the approval
// itself is already durable, so a failure is logged, not returned.
func (q *Queue) record(ctx context.Context, a mediator.Approval, method string, d mediator.Decision, out mediator.Outcome, errText string) {
	if q.recorder == nil {
		return
	}
	args, _ := json.Marshal(map[string]any{"approval_id": a.ID, "state": a.State, "call_id": a.CallID})
	r := mediator.ChainRecord{Time: q.now(), SessionID: a.SessionID, Transport: a.Transport, AgentID: a.AgentID,
		TaskID: a.TaskID, Method: method, Kind: mediator.KindTool, Server: a.Server, Name: a.Tool,
		Arguments: args, Decision: d, Outcome: out, Error: errText}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := q.recorder.Record(rctx, r); err != nil {
		q.log.Error("recording an approval decision failed", "approval", a.ID, "err", err)
	}
}

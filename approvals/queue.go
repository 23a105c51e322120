package approvals

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// Defaults of the queue.
const (
	DefaultHold         = 45 * time.Second
	DefaultExpiry       = 15 * time.Minute
	DefaultPollInterval = 250 * time.Millisecond
	// DefaultEarlierCalls is how many of the session's earlier calls an
	// approval holds.
	DefaultEarlierCalls = 20
)

// HistoryFunc returns up to limit of the newest chain records of an
// agent's session, oldest first (the store's Records, adapted by the
// caller so that this package imports no store).
type HistoryFunc func(ctx context.Context, agentID, sessionID string, limit int) ([]mediator.ChainRecord, error)

// Queue is the approval queue. It implements mediator.Approver.
type Queue struct {
	store   mediator.ApprovalStore
	log     *slog.Logger
	hold    time.Duration
	expiry  time.Duration
	poll    time.Duration
	baseURL string
	// refuseWithheld: see WithRefuseWithheld.
	refuseWithheld bool
	twoPerson      []string
	history        HistoryFunc
	notifier       *Webhook
	recorder       mediator.Recorder
	tasks          mediator.TaskStore
	ruleText       RuleTextFunc
	elicit         bool
	now            func() time.Time
}

var _ mediator.Approver = (*Queue)(nil)

// Option configures a Queue.
type Option func(*Queue)

// WithHold sets how long a call waits for a decision (default DefaultHold).
func WithHold(d time.Duration) Option { return func(q *Queue) { q.hold = max(d, 0) } }

// WithExpiry sets how long an approval stays pending (default DefaultExpiry).
func WithExpiry(d time.Duration) Option {
	return func(q *Queue) {
		if d > 0 {
			q.expiry = d
		}
	}
}

// WithPollInterval sets how often a waiting call reads the store.
func WithPollInterval(d time.Duration) Option {
	return func(q *Queue) {
		if d > 0 {
			q.poll = d
		}
	}
}

// WithRefuseWithheld refuses approval of a call whose arguments the page
// withholds in whole or in part (see Withheld): it can only be denied.
func WithRefuseWithheld(on bool) Option { return func(q *Queue) { q.refuseWithheld = on } }

// WithBaseURL sets the page's public URL, e.g. http://127.0.0.1:8080/approvals.
func WithBaseURL(u string) Option { return func(q *Queue) { q.baseURL = strings.TrimRight(u, "/") } }

// WithTwoPersonRules names the policy rules whose approvals need two
// distinct approvers.
func WithTwoPersonRules(rules []string) Option {
	return func(q *Queue) { q.twoPerson = slices.Clone(rules) }
}

// RuleTextFunc says a policy rule in words (nil when no rule has that
// name); the caller adapts the policy engine, so that this package imports
// no policy.
type RuleTextFunc func(rule string) *mediator.PolicyText

// WithRuleText shows approvers the deciding rule in words.
func WithRuleText(f RuleTextFunc) Option { return func(q *Queue) { q.ruleText = f } }

// WithHistory sets where the session's earlier calls come from.
func WithHistory(h HistoryFunc) Option { return func(q *Queue) { q.history = h } }

// WithWebhook sends each new pending approval to w.
func WithWebhook(w *Webhook) Option { return func(q *Queue) { q.notifier = w } }

// WithRecorder records decisions and expiries in the audit chain.
func WithRecorder(r mediator.Recorder) Option { return func(q *Queue) { q.recorder = r } }

// WithElicitation asks the agent's own user, through MCP URL-mode
// elicitation pointing at the approval page, when the client supports it:
// for a local single-user setup. The decision is still made, signed in, on
// the page; the elicitation only shows the user where.
func WithElicitation(on bool) Option { return func(q *Queue) { q.elicit = on } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option {
	return func(q *Queue) {
		if l != nil {
			q.log = l
		}
	}
}

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(q *Queue) { q.now = now } }

// New returns a queue over store.
func New(store mediator.ApprovalStore, opts ...Option) *Queue {
	q := &Queue{store: store, log: slog.New(slog.DiscardHandler), hold: DefaultHold, expiry: DefaultExpiry,
		poll: DefaultPollInterval, baseURL: "/approvals", now: time.Now}
	for _, o := range opts {
		o(q)
	}
	return q
}

// Store returns the queue's store.
func (q *Queue) Store() mediator.ApprovalStore { return q.store }

// URL returns the page of approval id.
func (q *Queue) URL(id string) string { return q.baseURL + "/a/" + url.PathEscape(id) }

// Await implements mediator.Approver: see the package comment.
func (q *Queue) Await(ctx context.Context, p mediator.Pending) (mediator.Verdict, error) {
	c := p.Call
	if v, ok := q.granted(ctx, c); ok {
		return v, nil
	}
	key, err := CallKey(c)
	if err != nil {
		return mediator.Verdict{}, err
	}
	var a mediator.Approval
	for range 3 {
		if a, err = q.find(ctx, p, key); err != nil {
			return mediator.Verdict{}, err
		}
		v, err := q.wait(ctx, c, a)
		if !errors.Is(err, errTaken) {
			return v, err
		}
	}
	return mediator.Verdict{}, &mediator.PendingError{ApprovalID: a.ID, URL: q.URL(a.ID)}
}

// find returns the undelivered approval of the call, or queues one.
func (q *Queue) find(ctx context.Context, p mediator.Pending, key string) (mediator.Approval, error) {
	a, ok, err := q.store.UndeliveredApproval(ctx, key, q.now())
	if err == nil && ok {
		a, err = q.refresh(ctx, a)
	}
	if err != nil {
		return a, fmt.Errorf("%w: the approval queue cannot be read: %w", mediator.ErrApprovalUnavailable, err)
	}
	if ok && !q.lapsed(ctx, a) {
		q.noteAsker(ctx, a, p.Call)
		return a, nil
	}
	return q.open(ctx, p, key)
}

// lapsed retires an approval granted longer ago than the expiry and never
// used: an approval answers a request made now, not one made days ago. It
// is marked delivered to no call, and the call asks again.
func (q *Queue) lapsed(ctx context.Context, a mediator.Approval) bool {
	if a.State != mediator.ApprovalApproved || q.now().Before(a.Decided.Add(q.expiry)) {
		return false
	}
	took, err := q.store.DeliverApproval(ctx, a.ID, "(lapsed unused)", q.now())
	if err == nil && took {
		q.log.Info("approval lapsed unused", "approval", a.ID)
	}
	return true
}

// noteAsker lists the session of c on a when another session queued it,
// so that the approver sees who repeats the call; a failure only costs
// that context.
func (q *Queue) noteAsker(ctx context.Context, a mediator.Approval, c *mediator.Call) {
	sess := c.Session.ID
	if c.Session.Key != "" {
		sess = c.Session.Key
	}
	if a.Final() || sess == "" || sess == a.SessionID || slices.ContainsFunc(a.Askers, func(x mediator.ApprovalAsker) bool {
		return x.SessionID == sess && q.now().Sub(x.At) < time.Minute
	}) {
		return
	}
	ask := mediator.ApprovalAsker{SessionID: sess, Transport: c.Session.Transport, Client: c.Session.Client, CallID: c.ID, At: q.now()}
	if err := q.store.NoteApprovalAsker(ctx, a.ID, ask); err != nil {
		q.log.Warn("approval: noting the repeating session failed", "approval", a.ID, "err", err)
	}
}

// open queues a new pending approval for the call.
func (q *Queue) open(ctx context.Context, p mediator.Pending, key string) (mediator.Approval, error) {
	a, err := q.newApproval(ctx, p, key)
	if err != nil {
		return a, err
	}
	a, created, err := q.store.OpenApproval(ctx, a)
	if err != nil {
		return a, fmt.Errorf("%w: the approval could not be queued: %w", mediator.ErrApprovalUnavailable, err)
	}
	if created {
		q.log.Info("approval queued", "approval", a.ID, "agent", a.AgentID, "tool", a.Tool, "rule", a.Rule)
		if q.notifier != nil {
			q.notifier.Notify(a, q.URL(a.ID))
		}
	}
	return a, nil
}

// newApproval gathers what an approver needs about the call.
func (q *Queue) newApproval(ctx context.Context, p mediator.Pending, key string) (mediator.Approval, error) {
	c := p.Call
	args, err := canonicalArgs(c)
	if err != nil {
		return mediator.Approval{}, err
	}
	now := q.now()
	a := mediator.Approval{
		Key: key, Created: now, Expires: now.Add(q.expiry), CallID: c.ID, Arguments: args, Prompt: c.Prompt,
		SessionID: c.Session.ID, Transport: c.Session.Transport, Client: c.Session.Client,
		Rule: p.Decision.Rule, Reason: p.Decision.Reason, Intent: c.Intent, Required: q.required(p.Decision.Rule),
		Tool: c.Name, Behaviour: c.Behaviour, Reasoning: c.Reasoning,
	}
	if q.ruleText != nil && p.Decision.Rule != "" {
		a.Policy = q.ruleText(p.Decision.Rule)
	}
	if c.Session.Key != "" {
		a.SessionID = c.Session.Key // how the session's records name it
	}
	if c.Agent != nil {
		a.AgentID, a.AgentOwner, a.TaskID, a.Purpose = c.Agent.ID, c.Agent.Owner, c.Agent.TaskID, c.Agent.Attrs["purpose"]
	}
	if t, ok := q.task(ctx, c.Intent.TaskID); ok {
		a.Purpose = q.purpose(ctx, t)
		a.Declared = &mediator.DeclaredIntent{TaskID: t.ID, Source: t.Source, Purpose: t.Purpose, Scope: t.Scope}
	}
	if c.Target != nil {
		a.Server, a.Tool, a.Risk, a.DataClass = c.Target.Server, c.Target.Name, c.Target.Risk, c.Target.DataClass
	}
	a.Earlier = q.earlier(ctx, a.AgentID, a.SessionID)
	return a, nil
}

// WithTasks lets the queue show the purpose of the task a call was checked
// against.
func WithTasks(ts mediator.TaskStore) Option { return func(q *Queue) { q.tasks = ts } }

// task reads task id; ok is false when there is none or it cannot be read.
func (q *Queue) task(ctx context.Context, id string) (mediator.Task, bool) {
	if q.tasks == nil || id == "" {
		return mediator.Task{}, false
	}
	t, ok, err := q.tasks.Task(ctx, id)
	if err != nil {
		q.log.Warn("approval: reading task failed", "task", id, "err", err)
		return mediator.Task{}, false
	}
	return t, ok
}

// purpose is the purpose of t, and of the task it narrows.
func (q *Queue) purpose(ctx context.Context, t mediator.Task) string {
	if t.ParentID != "" {
		if p, ok := q.task(ctx, t.ParentID); ok {
			return t.Purpose + " (within task " + p.ID + ": " + p.Purpose + ")"
		}
	}
	return t.Purpose
}

func (q *Queue) required(rule string) int {
	if rule != "" && slices.Contains(q.twoPerson, rule) {
		return 2
	}
	return 1
}

// earlier returns the session's earlier calls; a failure only costs context.
func (q *Queue) earlier(ctx context.Context, agentID, sessionID string) []mediator.ChainRecord {
	if q.history == nil || (agentID == "" && sessionID == "") {
		return nil
	}
	recs, err := q.history(ctx, agentID, sessionID, DefaultEarlierCalls)
	if err != nil {
		q.log.Warn("approval: reading the session's earlier calls failed", "err", err)
		return nil
	}
	for i := range recs {
		recs[i].Result = nil // the approver needs what was asked, not every answer
	}
	return recs
}

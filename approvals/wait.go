package approvals

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-mediator/mediator/mediator"
)

// progressEvery is how often a waiting call tells the client it waits.
const progressEvery = 5 * time.Second

// errTaken: an identical call took the decision first.
var errTaken = errors.New("an identical call took this approval's decision")

// wait holds the call until a is decided, the hold runs out or ctx ends.
func (q *Queue) wait(ctx context.Context, c *mediator.Call, a mediator.Approval) (mediator.Verdict, error) {
	hold := time.NewTimer(q.hold)
	defer hold.Stop()
	poll := time.NewTicker(q.poll)
	defer poll.Stop()
	progress := newProgress(ctx, c, q.hold)
	defer progress.stop()
	if q.elicit && !a.Final() {
		ectx, cancel := context.WithCancel(ctx)
		defer cancel()
		go q.askUser(ectx, a)
	}
	for {
		if a.Final() {
			return q.take(ctx, c, a)
		}
		select {
		case <-ctx.Done():
			return mediator.Verdict{}, fmt.Errorf("stopped waiting for approval %s (it stays pending; repeat the call later): %w",
				a.ID, context.Cause(ctx))
		case <-hold.C:
			return mediator.Verdict{}, &mediator.PendingError{ApprovalID: a.ID, URL: q.URL(a.ID)}
		case <-progress.tick():
			progress.send(a.ID)
		case <-poll.C:
			next, err := q.refresh(ctx, a)
			if err != nil {
				q.log.Warn("approval: polling the store failed", "approval", a.ID, "err", err)
				continue
			}
			a = next
		}
	}
}

// refresh reads a again, expiring it when its time has passed.
func (q *Queue) refresh(ctx context.Context, a mediator.Approval) (mediator.Approval, error) {
	now := q.now()
	if a.State == mediator.ApprovalPending && !now.Before(a.Expires) {
		expired, err := q.store.ExpireApprovals(ctx, now)
		if err != nil {
			return a, err
		}
		q.recordExpiries(ctx, expired)
	}
	return q.store.Approval(ctx, a.ID)
}

// take delivers a's decision to c. When another identical call took it
// first, c needs an approval of its own.
func (q *Queue) take(ctx context.Context, c *mediator.Call, a mediator.Approval) (mediator.Verdict, error) {
	took, err := q.store.DeliverApproval(ctx, a.ID, c.ID, q.now())
	if err != nil {
		return mediator.Verdict{}, fmt.Errorf("%w: the approval could not be taken: %w", mediator.ErrApprovalUnavailable, err)
	}
	if !took {
		return mediator.Verdict{}, errTaken
	}
	return verdictOf(a), nil
}

// verdictOf turns a decided approval into the pipeline's Verdict.
func verdictOf(a mediator.Approval) mediator.Verdict {
	v := mediator.Verdict{ApprovalID: a.ID}
	switch a.State {
	case mediator.ApprovalApproved:
		v.Approved = true
		var names, reasons []string
		for _, d := range a.Decisions {
			names, reasons = append(names, d.Approver), append(reasons, d.Reason)
		}
		v.Approver, v.Reason = strings.Join(names, "+"), strings.Join(reasons, "; ")
		v.Arguments = a.Edited()
	case mediator.ApprovalDenied:
		d, _ := a.DeniedBy()
		v.Approver, v.Reason = d.Approver, d.Reason
	default:
		v.Approver = "(nobody)"
		v.Reason = fmt.Sprintf("approval %s expired undecided at %s; repeat the call to ask again",
			a.ID, a.Expires.UTC().Format(time.RFC3339))
	}
	return v
}

// askUser points the agent's user at the approval page with a URL-mode
// elicitation. Its answer decides nothing: the page does. A client without
// the capability is simply not asked.
func (q *Queue) askUser(ctx context.Context, a mediator.Approval) {
	peer := mediator.PeerFromContext(ctx)
	if peer == nil {
		return
	}
	req := mcp.ElicitationRequest{}
	req.Params.Mode = mcp.ElicitationModeURL
	req.Params.ElicitationID = a.ID
	req.Params.URL = q.URL(a.ID)
	req.Params.Message = fmt.Sprintf("The agent wants to call %s, which needs a human's approval (rule %s). "+
		"Open the page, sign in and decide.", a.Tool, a.Rule)
	if _, err := peer.Elicit(ctx, req); err != nil && ctx.Err() == nil {
		q.log.Debug("approval: URL elicitation not shown", "approval", a.ID, "err", err)
	}
}

// progress sends notifications/progress while a call waits, when the
// client asked for them with a progress token.
type progress struct {
	ctx    context.Context
	peer   mediator.Peer
	token  mcp.ProgressToken
	total  time.Duration
	start  time.Time
	ticker *time.Ticker
}

func newProgress(ctx context.Context, c *mediator.Call, total time.Duration) *progress {
	p := &progress{ctx: ctx, peer: mediator.PeerFromContext(ctx), total: total, start: time.Now()}
	if req, ok := c.Request.(*mcp.CallToolRequest); ok && req.Params.Meta != nil {
		p.token = req.Params.Meta.ProgressToken
	}
	if p.peer != nil && p.token != nil {
		p.ticker = time.NewTicker(progressEvery)
	}
	return p
}

// tick is nil (blocks forever in a select) when no progress is sent.
func (p *progress) tick() <-chan time.Time {
	if p.ticker == nil {
		return nil
	}
	return p.ticker.C
}

func (p *progress) send(id string) {
	elapsed := time.Since(p.start)
	_ = p.peer.Notify(p.ctx, "notifications/progress", map[string]any{
		"progressToken": p.token,
		"progress":      int(elapsed.Seconds()),
		"total":         int(p.total.Seconds()),
		"message":       "waiting for a human to approve (approval " + id + ")",
	})
}

func (p *progress) stop() {
	if p.ticker != nil {
		p.ticker.Stop()
	}
}

package approvals

import (
	"context"
	"fmt"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// TaskEndedDecider is the name on a denial the mediator made itself
// because the task a pending approval was asked under ended.
const TaskEndedDecider = "mediator:task-ended"

// maxSweep bounds the pending approvals one sweep reads.
const maxSweep = 1000

// taskIDs are the tasks a's call was checked against: the one its intent
// named and the token's own.
func taskIDs(a mediator.Approval) []string {
	var ids []string
	if a.Declared != nil && a.Declared.TaskID != "" {
		ids = append(ids, a.Declared.TaskID)
	}
	if a.TaskID != "" && (len(ids) == 0 || ids[0] != a.TaskID) {
		ids = append(ids, a.TaskID)
	}
	return ids
}

// Blocked says why approving a would run nothing, "" when nothing does: a
// task the call was checked against is suspended, ended or expired, so the
// mediator refuses the call whatever the approver decides. A task that
// cannot be read blocks nothing here: the call's own checks still run
// when it is repeated.
func (q *Queue) Blocked(ctx context.Context, a mediator.Approval) string {
	why, _ := q.blocked(ctx, a, nil)
	return why
}

// blocked is Blocked, and whether the block is for good (the task ended).
// seen caches tasks across one sweep.
func (q *Queue) blocked(ctx context.Context, a mediator.Approval, seen map[string]mediator.Task) (string, bool) {
	for _, id := range taskIDs(a) {
		t, ok := seen[id]
		if !ok {
			if t, ok = q.task(ctx, id); !ok {
				continue
			}
			if seen != nil {
				seen[id] = t
			}
		}
		if why, final := taskStop(t, q.now()); why != "" {
			return why, final
		}
	}
	return "", false
}

// taskStop says why t lets no call through ("" when it does).
func taskStop(t mediator.Task, now time.Time) (string, bool) {
	by := ""
	if t.StatusBy != "" || t.StatusReason != "" {
		by = " (" + t.StatusBy
		if t.StatusReason != "" {
			if by != " (" {
				by += ": "
			}
			by += t.StatusReason
		}
		by += ")"
	}
	switch t.Status {
	case mediator.TaskSuspended:
		return fmt.Sprintf("task %s is suspended%s: the mediator refuses its calls, so an approval would run nothing; "+
			"resume the task first (mediator task resume %s), or deny", t.ID, by, t.ID), false
	case mediator.TaskCompleted, mediator.TaskRevoked:
		return fmt.Sprintf("task %s is %s%s: its calls are refused for good; deny this approval", t.ID, t.Status, by), true
	}
	if !t.Expires.IsZero() && !now.Before(t.Expires) {
		return fmt.Sprintf("task %s expired at %s: its calls are refused; deny this approval", t.ID,
			t.Expires.UTC().Format(time.RFC3339)), true
	}
	return "", false
}

// closeEnded denies the pending approvals whose task has ended (completed,
// revoked or expired): nobody can act on them any more, and an approver
// should not spend time on them. Each is a recorded decision by
// TaskEndedDecider naming the task. A suspended task's approvals stay
// pending (the task may be resumed), but cannot be approved (Blocked).
func (q *Queue) closeEnded(ctx context.Context) {
	if q.tasks == nil {
		return
	}
	list, err := q.store.Approvals(ctx, mediator.ApprovalFilter{State: mediator.ApprovalPending, Limit: maxSweep})
	if err != nil {
		q.log.Warn("approval: reading pending approvals failed", "err", err)
		return
	}
	seen := map[string]mediator.Task{}
	for _, a := range list {
		why, final := q.blocked(ctx, a, seen)
		if !final {
			continue
		}
		reason := "closed by the mediator: " + why
		got, err := q.store.DecideApproval(ctx, a.ID, mediator.ApprovalDecision{Approver: TaskEndedDecider, Reason: reason, At: q.now()})
		if err != nil {
			continue // decided or expired meanwhile
		}
		q.log.Info("approval closed: its task ended", "approval", a.ID, "why", why)
		q.recordDecision(ctx, got, TaskEndedDecider, false, reason)
	}
}

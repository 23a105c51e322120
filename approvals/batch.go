package approvals

import (
	"bytes"
	"context"
	"fmt"

	"github.com/mcp-mediator/mediator/mediator"
)

// MaxBatch bounds how many identical approvals one decision takes along.
const MaxBatch = 50

// Identical returns the other pending approvals of a's call: the same
// server and tool, the same canonical (redacted) arguments, held by the
// same rule — typically the same call from other agents or tasks, which
// their own identity keeps apart (CallKey). An approver may decide them
// together with a; each is still decided on its own terms (Decide), so
// separation of duties, two-person rules and suspended tasks hold for
// every one. At most MaxBatch, oldest first.
func (q *Queue) Identical(ctx context.Context, a mediator.Approval) ([]mediator.Approval, error) {
	list, err := q.store.Approvals(ctx, mediator.ApprovalFilter{State: mediator.ApprovalPending, Tool: a.Tool, Limit: 500})
	if err != nil {
		return nil, fmt.Errorf("reading identical approvals: %w", err)
	}
	var out []mediator.Approval
	for i := len(list) - 1; i >= 0 && len(out) < MaxBatch; i-- {
		b := list[i]
		if b.ID != a.ID && b.Server == a.Server && b.Rule == a.Rule && bytes.Equal(canonicalOrEmpty(b.Arguments), canonicalOrEmpty(a.Arguments)) {
			out = append(out, b)
		}
	}
	return out, nil
}

func canonicalOrEmpty(b []byte) []byte {
	if len(bytes.TrimSpace(b)) == 0 {
		return []byte("{}")
	}
	return b
}

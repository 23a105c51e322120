// Package approvals is the human approval queue of MCP Mediator. It
// implements mediator.Approver: a call whose policy decision is "approve"
// becomes a persistent pending approval in the store (mediator.ApprovalStore),
// with everything an approver needs to decide: the agent and its owner, the
// task, the prompt, the session's earlier calls, the tool, its (redacted)
// arguments, risk, data class, and the rule that asked for a human.
//
// # Waiting
//
// Real MCP clients give up on slow tool calls (Claude Desktop after about
// 60 s, whatever progress they receive), so a call is held only for a
// configurable time (WithHold, default 45 s), with progress notifications
// when the client sent a progress token. Decided in time, the call runs or
// is denied. Otherwise the agent gets a *mediator.PendingError naming the
// approval and the page, and is told to repeat the identical call later.
//
// # Call identity and exactly-once
//
// A call is identified by CallKey: the agent, its task, the tool and the
// canonical JSON of the arguments, hashed before redaction. An identical
// call finds the approval opened for it (OpenApproval returns the existing
// undelivered one); a changed argument is a different key and needs a new
// approval. Each decision is delivered to exactly one call: delivery is a
// conditional update in one BEGIN IMMEDIATE transaction
// (DeliverApproval), so two processes racing for the same approval cannot
// both run it. A waiting call polls the store (WithPollInterval, default
// 250 ms), so a decision made by any process sharing the database (the
// page of `mediator serve`, for a `mediator stdio` agent) is noticed within
// a second.
//
// # State machine
//
//	pending ──approve×Required──► approved ─┐
//	pending ──deny (reason)─────► denied   ─┼─► delivered to one call
//	pending ──expiry passes─────► expired  ─┘
//
// An approval granted but not used within the expiry lapses: the next
// identical call asks again. Deciding an already decided or expired
// approval is refused
// (mediator.ErrApprovalDecided, mediator.ErrApprovalExpired); an approver
// may not decide a call of an agent they own, an auditor decides nothing,
// and rules listed as two-person need two distinct approvers.
package approvals

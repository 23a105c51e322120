package mediator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Tasks (MCP 2025-11-25, experimental): an agent may call a tool whose
// upstream lists execution.taskSupport "optional" or "required" as a task.
// The mediator is the task's receiver: it answers the tools/call at once
// with a CreateTaskResult, runs the call through the whole chain in the
// background (policy, intent, approval, forwarding, scanning, the record),
// and answers tasks/get, tasks/list, tasks/result and tasks/cancel itself,
// for the agent that created the task only. A task's id is the id of the
// tool call's (first) audit record. An upstream whose tool requires tasks is
// called as a task in turn (tools.Registry.CallTool), and polled.
//
// A call that needs approval waits inside its task instead of coming back
// to the agent as "approval pending": the task stays "working", its status
// message names the approval, and the call is asked again (as an agent
// repeating it would) until the approver decides or the task's lifetime
// ends.
//
// Tasks live in the mediator's memory: a restart ends them, and a task
// the agent asks for afterwards is not found (the audit chain still holds
// what the call did). Bounded: taskTTLMax per task, maxAgentTasks per
// agent, maxTasks in all.

// Task limits.
const (
	// taskTTLMax is the longest a task is kept after it was created; an
	// agent asking for more (or for none) gets this.
	taskTTLMax = time.Hour
	// taskPollMillis is the polling interval suggested to agents.
	taskPollMillis = 1000
	// maxAgentTasks is how many tasks one agent may hold, finished ones
	// included; its oldest finished task makes room for a new one.
	maxAgentTasks = 32
	// maxTasks is how many tasks the mediator holds in all.
	maxTasks = 4096
	// maxTaskBytes bounds the results the mediator holds for tasks, in
	// all: the oldest finished tasks are forgotten to make room, and a
	// result larger than this on its own is not kept (its task fails,
	// saying so).
	maxTaskBytes = 256 << 20
	// taskRetryGap is the least time between two askings of a call that
	// waits for approval.
	taskRetryGap = time.Second
)

// relatedTaskKey is the _meta key relating a message to its task.
const relatedTaskKey = "io.modelcontextprotocol/related-task"

// taskRun is one task.
type taskRun struct {
	id, agent, tool string
	created         time.Time
	ttl             time.Duration
	done            chan struct{} // closed when the task reaches a terminal status
	cancel          context.CancelFunc

	// Guarded by taskBoard.mu.
	status  mcp.TaskStatus
	message string
	updated time.Time
	result  json.RawMessage   // tasks/result's result, once terminal
	rpcErr  *UpstreamRPCError // or its JSON-RPC error
}

// taskBoard holds the tasks of every agent.
type taskBoard struct {
	mu    sync.Mutex
	runs  map[string]*taskRun
	bytes int // the results held
	// limits: 0 means maxAgentTasks, maxTasks and maxTaskBytes (tests set
	// smaller ones)
	perAgent, total, maxBytes int
}

// limits returns the board's bounds.
func (b *taskBoard) limits() (perAgent, total, maxBytes int) {
	perAgent, total, maxBytes = maxAgentTasks, maxTasks, maxTaskBytes
	if b.perAgent > 0 {
		perAgent = b.perAgent
	}
	if b.total > 0 {
		total = b.total
	}
	if b.maxBytes > 0 {
		maxBytes = b.maxBytes
	}
	return perAgent, total, maxBytes
}

// errTaskNotFound is the answer for a task that is not the agent's, never
// was, or is gone.
func errTaskNotFound(method, id string) error {
	return ownRPC(ErrInvalidRequest, method, mcp.INVALID_PARAMS,
		fmt.Sprintf("task %q not found: it is not one of this agent's tasks, or it ended (tasks are kept for their ttl, at most %s, and not across a mediator restart); call tasks/list", trimForError(id, 64), taskTTLMax))
}

// taskTTL is the lifetime of a task the agent asked ttl (ms) for.
func taskTTL(ttl *int64) time.Duration {
	if ttl != nil && *ttl > 0 && *ttl < taskTTLMax.Milliseconds() {
		return time.Duration(*ttl) * time.Millisecond
	}
	return taskTTLMax
}

// create adds a task for agent, living d and stopped by cancel, unless
// the agent or the mediator holds as many as they may.
func (b *taskBoard) create(id, agent, tool string, d time.Duration, cancel context.CancelFunc, now time.Time) (*taskRun, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.runs == nil {
		b.runs = map[string]*taskRun{}
	}
	b.sweep(now)
	perAgent, total, _ := b.limits()
	if !b.makeRoom(func(t *taskRun) bool { return t.agent == agent }, perAgent) {
		return nil, ownRPC(ErrInvalidRequest, "tools/call", mcp.INVALID_REQUEST,
			fmt.Sprintf("this agent already has %d unfinished tasks (the mediator's cap); wait for one with tasks/result, or cancel one with tasks/cancel", perAgent))
	}
	if !b.makeRoom(func(*taskRun) bool { return true }, total) {
		return nil, ownRPC(ErrInvalidRequest, "tools/call", mcp.INVALID_REQUEST,
			fmt.Sprintf("the mediator holds %d unfinished tasks (its cap); try again when some have finished, or call the tool without a task", total))
	}
	t := &taskRun{id: id, agent: agent, tool: tool, created: now, ttl: d, done: make(chan struct{}),
		status: mcp.TaskStatusWorking, message: "running", updated: now, cancel: cancel}
	b.runs[id] = t
	return t, nil
}

// sweep forgets the tasks whose lifetime is over, cancelling those still
// running. Called with b.mu held.
func (b *taskBoard) sweep(now time.Time) {
	for id, t := range b.runs {
		if now.Sub(t.created) > t.ttl {
			b.end(t, mcp.TaskStatusCancelled, "the task's lifetime (ttl) ended before it finished", nil, nil, now)
			t.cancel()
			b.forget(id)
		}
	}
}

// makeRoom drops the oldest finished tasks among those mine selects until
// fewer than limit remain; false if unfinished ones alone reach it. Called
// with b.mu held.
func (b *taskBoard) makeRoom(mine func(*taskRun) bool, limit int) bool {
	var held []*taskRun
	for _, t := range b.runs {
		if mine(t) {
			held = append(held, t)
		}
	}
	slices.SortFunc(held, func(x, y *taskRun) int { return x.created.Compare(y.created) })
	for _, t := range held {
		if len(held) < limit {
			break
		}
		if t.status.IsTerminal() {
			b.forget(t.id)
			held = slices.DeleteFunc(held, func(o *taskRun) bool { return o == t })
		}
	}
	return len(held) < limit
}

// get returns agent's task id.
func (b *taskBoard) get(method, agent, id string, now time.Time) (*taskRun, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweep(now)
	t, ok := b.runs[id]
	if !ok || t.agent != agent {
		return nil, errTaskNotFound(method, id)
	}
	return t, nil
}

// list returns agent's tasks, oldest first.
func (b *taskBoard) list(agent string, now time.Time) []mcp.Task {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweep(now)
	var out []*taskRun
	for _, t := range b.runs {
		if t.agent == agent {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(x, y *taskRun) int { return x.created.Compare(y.created) })
	tasks := make([]mcp.Task, 0, len(out))
	for _, t := range out {
		tasks = append(tasks, t.viewLocked())
	}
	return tasks
}

// view is t as MCP shows a task.
func (b *taskBoard) view(t *taskRun) mcp.Task {
	b.mu.Lock()
	defer b.mu.Unlock()
	return t.viewLocked()
}

func (t *taskRun) viewLocked() mcp.Task {
	ttl, poll := t.ttl.Milliseconds(), int64(taskPollMillis)
	return mcp.Task{TaskId: t.id, Status: t.status, StatusMessage: t.message,
		CreatedAt: t.created.UTC().Format(time.RFC3339Nano), LastUpdatedAt: t.updated.UTC().Format(time.RFC3339Nano),
		TTL: &ttl, PollInterval: &poll}
}

// note changes a running task's status message.
func (b *taskBoard) note(t *taskRun, msg string, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !t.status.IsTerminal() {
		t.message, t.updated = msg, now
	}
}

// forget drops task id and its result. Called with b.mu held.
func (b *taskBoard) forget(id string) {
	if t, ok := b.runs[id]; ok {
		b.bytes -= len(t.result)
		delete(b.runs, id)
	}
}

// finish ends t with its outcome, unless it ended already (cancelled). The
// oldest finished tasks are forgotten while the results would exceed
// maxTaskBytes; a result that cannot fit is not kept.
func (b *taskBoard) finish(t *taskRun, status mcp.TaskStatus, msg string, result json.RawMessage, rpcErr *UpstreamRPCError, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.status.IsTerminal() {
		return
	}
	_, _, maxBytes := b.limits()
	if b.bytes+len(result) > maxBytes {
		var done []*taskRun
		for _, o := range b.runs {
			if o.status.IsTerminal() && len(o.result) > 0 {
				done = append(done, o)
			}
		}
		slices.SortFunc(done, func(x, y *taskRun) int { return x.created.Compare(y.created) })
		for _, o := range done {
			if b.bytes+len(result) <= maxBytes {
				break
			}
			b.forget(o.id)
		}
	}
	if b.bytes+len(result) > maxBytes {
		status, msg = mcp.TaskStatusFailed, fmt.Sprintf("the call's result of %d bytes is more than the mediator keeps for tasks (%d bytes in all); call the tool without a task", len(result), maxBytes)
		result, rpcErr = nil, &UpstreamRPCError{Method: "tools/call", Code: mcp.INTERNAL_ERROR, Message: msg}
	}
	if b.end(t, status, msg, result, rpcErr, now) {
		b.bytes += len(result)
	}
}

// end sets t's terminal status once. Called with b.mu held.
func (b *taskBoard) end(t *taskRun, status mcp.TaskStatus, msg string, result json.RawMessage, rpcErr *UpstreamRPCError, now time.Time) bool {
	if t.status.IsTerminal() {
		return false
	}
	t.status, t.message, t.updated, t.result, t.rpcErr = status, trimForError(msg, 1024), now, result, rpcErr
	close(t.done)
	return true
}

// cancelTask cancels agent's running task id.
func (b *taskBoard) cancelTask(agent, id string, now time.Time) (mcp.Task, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweep(now)
	t, ok := b.runs[id]
	if !ok || t.agent != agent {
		return mcp.Task{}, errTaskNotFound("tasks/cancel", id)
	}
	if !b.end(t, mcp.TaskStatusCancelled, "cancelled by the agent (tasks/cancel)", nil, nil, now) {
		return mcp.Task{}, ownRPC(ErrInvalidRequest, "tasks/cancel", mcp.INVALID_PARAMS,
			fmt.Sprintf("task %q is already %s; only a working task can be cancelled", id, t.status))
	}
	t.cancel()
	return t.viewLocked(), nil
}

// ownRPCError is a refusal of the mediator's own that the agent gets as a
// JSON-RPC error with a given code (a task not found: -32602), as an
// upstream's error is passed on (passthrough.go). kind is the sentinel
// that names it in the record.
type ownRPCError struct {
	kind error
	rpc  *UpstreamRPCError
}

func ownRPC(kind error, method string, code int, msg string) error {
	return &ownRPCError{kind: kind, rpc: &UpstreamRPCError{Method: method, Code: code, Message: msg}}
}

func (e *ownRPCError) Error() string { return e.kind.Error() + ": " + e.rpc.Message }
func (e *ownRPCError) Unwrap() error { return e.kind }

// taskMode checks a tools/call against the tool's execution.taskSupport:
// a task for a tool that does not take one, or a plain call for a tool
// that must be one, is refused with -32601 as MCP says.
func taskMode(t Tool, asTask bool) error {
	switch {
	case asTask && t.TaskSupport == "":
		return ownRPC(ErrInvalidRequest, "tools/call", mcp.METHOD_NOT_FOUND,
			fmt.Sprintf("tool %q cannot be called as a task (its upstream lists no execution.taskSupport); call it without params.task", t.Name))
	case !asTask && t.TaskSupport == TaskRequired:
		return ownRPC(ErrInvalidRequest, "tools/call", mcp.METHOD_NOT_FOUND,
			fmt.Sprintf("tool %q must be called as a task (its execution.taskSupport is \"required\"); add \"task\": {} to the call's params and poll tasks/get", t.Name))
	}
	return nil
}

// tasksOffered reports whether the agent of ctx is served tasks: over a
// transport whose responses the mediator writes (stdio, streamable HTTP),
// to a client of a protocol revision before 2026-07-28 (which reshaped
// tasks).
func tasksOffered(ctx context.Context) bool {
	return scopeOf(ctx) != nil && !mcp.IsModernProtocol(server.RequestProtocolVersion(ctx))
}

// toolCall builds the Call for a tools/call request.
func (s *Server) toolCall(ctx context.Context, req *mcp.CallToolRequest) *Call {
	c := s.newCall(ctx, "tools/call", req.Params.Name)
	c.Arguments = req.GetArguments()
	takePrompt(c, req.Params.Meta, s.promptCap())
	takeTrace(c, req.Params.Meta)
	stripMediatorMeta(req.Params.Meta)
	req.Params.Task = nil // the mediator is the task's receiver
	c.Request = req
	return c
}

// taskCheck refuses a tools/call whose task augmentation does not fit its
// tool; it reports whether the call is to run as a task.
func (s *Server) taskCheck(ctx context.Context, req *mcp.CallToolRequest) (asTask bool, err error) {
	asTask = req.Params.Task != nil
	t, ok := s.deps.Upstreams.Catalog().Tool(req.Params.Name)
	if !ok {
		return false, nil // the chain refuses an unknown tool, saying so
	}
	if asTask && !tasksOffered(ctx) {
		return false, ownRPC(ErrInvalidRequest, "tools/call", mcp.METHOD_NOT_FOUND,
			"tasks are offered to clients of protocol 2025-11-25 over stdio and streamable HTTP; call the tool without params.task")
	}
	if t.TaskSupport == TaskRequired && !tasksOffered(ctx) {
		// An agent that cannot be offered tasks calls it plainly: the
		// mediator calls the upstream's task and waits for its result.
		return false, nil
	}
	return asTask, taskMode(t, asTask)
}

// refuseCall records c as refused for err and returns what the handler
// hands mcp-go: err's JSON-RPC error when it carries one.
func (s *Server) refuseCall(ctx context.Context, c *Call, err error) (*mcp.CallToolResult, error) {
	if rerr := s.reject(ctx, c, err); rerr != nil {
		err = rerr // the cause, or why it could not be recorded
	}
	if perr := s.passed.errorFor(ctx, err); perr != nil {
		return nil, &recordedError{perr}
	}
	return ErrorResult(err), nil
}

// startTask answers a task-augmented tools/call with its CreateTaskResult
// and runs the call in the background.
func (s *Server) startTask(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	ttl := req.Params.Task.TTL
	c := s.toolCall(ctx, &req)
	s.identify(ctx, c)
	if c.Agent == nil {
		// Not authenticated: the chain refuses it, saying why.
		if err := s.run(ctx, c, req.Header); err != nil {
			return ErrorResult(err), nil
		}
		return ErrorResult(fmt.Errorf("%w: the call was not authenticated", ErrInternal)), nil
	}
	// The task outlives the request. Its notifications and the upstream's
	// requests go through the agent's session, not the request's stream.
	d := taskTTL(ttl)
	rctx, cancel := context.WithTimeout(withPassScope(context.WithoutCancel(ctx), nil), d)
	t, err := s.tasks.create(c.ID, c.Agent.ID, c.Name, d, cancel, s.now())
	if err != nil {
		cancel()
		return s.refuseCall(ctx, c, err)
	}
	created, err := marshalAsSent(mcp.CreateTaskResult{Task: s.tasks.view(t)})
	if err != nil {
		s.tasks.finish(t, mcp.TaskStatusFailed, "the task could not be created", nil, nil, s.now())
		cancel()
		return s.refuseCall(ctx, c, fmt.Errorf("%w: encoding the task: %w", ErrInternal, err))
	}
	meta := s.passed.listingMeta(scopeOf(ctx), passEntry{whole: created})
	if meta == nil {
		s.tasks.finish(t, mcp.TaskStatusFailed, "the task could not be created", nil, nil, s.now())
		cancel()
		return s.refuseCall(ctx, c, fmt.Errorf("%w: the mediator holds too many answers not yet written; try again", ErrInternal))
	}
	go s.runTask(rctx, t, c, req)
	res := &mcp.CallToolResult{}
	res.Meta = meta
	return res, nil
}

// runTask runs c for t and keeps its outcome. A call that waits for
// approval is asked again until its approval is decided, the task is
// cancelled or its lifetime ends.
func (s *Server) runTask(ctx context.Context, t *taskRun, c *Call, req mcp.CallToolRequest) {
	defer t.cancel()
	for {
		began := time.Now()
		err := s.run(ctx, c, nil)
		var pe *PendingError
		if !errors.As(err, &pe) || ctx.Err() != nil {
			s.endTask(ctx, t, c, err)
			return
		}
		s.tasks.note(t, fmt.Sprintf("waiting for approval %s (%s)", pe.ApprovalID, pe.URL), s.now())
		select {
		case <-ctx.Done():
			s.endTask(ctx, t, c, err)
			return
		case <-time.After(taskRetryGap - time.Since(began)):
		}
		again := req
		c = s.toolCall(ctx, &again)
	}
}

// endTask keeps the outcome of t's call c: the result (isError for a
// refusal, as the call would have had it), or the upstream's JSON-RPC error.
func (s *Server) endTask(ctx context.Context, t *taskRun, c *Call, err error) {
	now := s.now()
	var rpc *UpstreamRPCError
	if errors.As(err, &rpc) {
		s.tasks.finish(t, mcp.TaskStatusFailed, rpc.Message, nil, rpc, now)
		return
	}
	res, _ := c.Result.(*mcp.CallToolResult)
	switch {
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded):
		res = ErrorResult(fmt.Errorf("%w: the task's lifetime (ttl) ended before the call finished; ask for a longer ttl (at most %s)", ErrUpstreamTimeout, taskTTLMax))
	case err != nil:
		res = ErrorResult(err)
	case res == nil:
		res = ErrorResult(fmt.Errorf("%w: upstream returned no result", ErrUpstream))
	}
	out := *res
	fields := map[string]any{}
	if out.Meta != nil {
		for k, v := range out.Meta.AdditionalFields {
			fields[k] = v
		}
	}
	fields[relatedTaskKey] = map[string]string{"taskId": t.id}
	out.Meta = &mcp.Meta{ProgressToken: nil, AdditionalFields: fields}
	b, merr := marshalAsSent(&out)
	if merr != nil {
		s.tasks.finish(t, mcp.TaskStatusFailed, "the result could not be encoded", nil,
			&UpstreamRPCError{Method: "tools/call", Code: mcp.INTERNAL_ERROR, Message: "the mediator could not encode the call's result"}, now)
		return
	}
	status, msg := mcp.TaskStatusCompleted, "completed"
	if out.IsError {
		status, msg = mcp.TaskStatusFailed, "the call failed: "+resultText(&out)
	}
	s.tasks.finish(t, status, msg, b, nil, now)
}

// resultText is the first text of an error result, for a status message.
func resultText(r *mcp.CallToolResult) string {
	for _, c := range r.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			return tc.Text
		}
	}
	return "the tool reported an error"
}

// taskRequest is the Request of a tasks/* call: the chain's last step runs
// it once the call is authenticated and allowed, so that what it refuses
// (a task not found) is recorded as the call's outcome.
type taskRequest struct {
	run func(ctx context.Context, c *Call) error
	// answer is the result to send, once run succeeded.
	answer json.RawMessage
}

// isTaskMethod reports whether method is one of the tasks/* methods.
func isTaskMethod(method string) bool {
	switch method {
	case "tasks/get", "tasks/list", "tasks/result", "tasks/cancel":
		return true
	}
	return false
}

// gateTask answers a tasks/* request. mcp-go's own task store is never
// used: the gate runs the chain with the task operation as its last step
// and hands the answer to the transport under a token, which the writer
// puts in place of the error response mcp-go writes for the gate's error.
func (s *Server) gateTask(ctx context.Context, c *Call, raw json.RawMessage) error {
	if !tasksOffered(ctx) {
		return s.refuse(ctx, c, fmt.Errorf("%w: %s is offered to clients of protocol 2025-11-25 over stdio and streamable HTTP", ErrMethodNotAllowed, c.Method))
	}
	var msg struct {
		Params struct {
			TaskID string  `json:"taskId"`
			Cursor *string `json:"cursor"`
		} `json:"params"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		return s.refuse(ctx, c, ownRPC(ErrInvalidRequest, c.Method, mcp.INVALID_PARAMS, "params: "+err.Error()))
	}
	id := msg.Params.TaskID
	c.Name = trimForError(id, 128)
	if c.Method != "tasks/list" {
		c.Arguments = map[string]any{"taskId": c.Name}
	}
	tr := &taskRequest{}
	tr.run = func(ctx context.Context, c *Call) error {
		var v any
		switch c.Method {
		case "tasks/list":
			if msg.Params.Cursor != nil {
				return ownRPC(ErrInvalidRequest, c.Method, mcp.INVALID_PARAMS,
					"cursor not found: the mediator lists all of an agent's tasks on one page; call tasks/list without a cursor")
			}
			v = mcp.ListTasksResult{Tasks: s.tasks.list(c.Agent.ID, s.now())}
		case "tasks/get":
			t, err := s.tasks.get(c.Method, c.Agent.ID, id, s.now())
			if err != nil {
				return err
			}
			v = s.tasks.view(t)
		case "tasks/cancel":
			task, err := s.tasks.cancelTask(c.Agent.ID, id, s.now())
			if err != nil {
				return err
			}
			v = task
		case "tasks/result":
			return s.taskResult(ctx, c, tr, id)
		}
		b, err := marshalAsSent(v)
		tr.answer = b
		return err
	}
	c.Request = tr
	if err := s.chain(ctx, c); err != nil {
		if perr := s.passed.errorFor(ctx, err); perr != nil {
			return &recordedError{perr}
		}
		return &recordedError{err}
	}
	token := s.passed.issueListing(scopeOf(ctx), passEntry{whole: tr.answer})
	if token == "" {
		return &recordedError{fmt.Errorf("%w: the mediator holds too many answers not yet written; try again", ErrInternal)}
	}
	return &recordedError{errors.New("the mediator answers this request itself [" + token + "]")}
}

// taskResult waits for agent's task id to end and keeps what tasks/result
// answers: the call's result, or its JSON-RPC error.
func (s *Server) taskResult(ctx context.Context, c *Call, tr *taskRequest, id string) error {
	t, err := s.tasks.get(c.Method, c.Agent.ID, id, s.now())
	if err != nil {
		return err
	}
	select {
	case <-t.done:
	case <-ctx.Done():
		return fmt.Errorf("%w: the request ended before task %q finished; call tasks/result again", ErrInvalidRequest, id)
	}
	s.tasks.mu.Lock()
	status, result, rpcErr := t.status, t.result, t.rpcErr
	s.tasks.mu.Unlock()
	switch {
	case rpcErr != nil:
		return &ownRPCError{kind: ErrUpstream, rpc: rpcErr}
	case status == mcp.TaskStatusCancelled:
		return ownRPC(ErrInvalidRequest, c.Method, mcp.INTERNAL_ERROR,
			fmt.Sprintf("task %q was cancelled before it finished (%s); it has no result", id, s.tasks.view(t).StatusMessage))
	}
	tr.answer = result
	return nil
}

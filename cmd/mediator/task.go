package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy/intent"
	"github.com/mcp-mediator/mediator/policy/token"
	"github.com/mcp-mediator/mediator/store"
)

const taskUsage = `Usage:
  mediator task start --agent ID --purpose TEXT [--tools GLOB]... [--constraint ARG:KIND=V[,V]]...
                      [--max-data-class C] [--max-risk R] [--ttl 30m] [--role R]... [--json]
  mediator task list [--agent ID] [--status S] [--limit N] [--json]
  mediator task show ID [--json]
  mediator task end ID [--reason R]
  mediator task resume ID [--reason R]

A task is a stored intent: what an agent was asked to do and the scope its
calls must stay in. start prints a token bound to the task on stdout (and
the task on stderr); end completes the task and revokes its tokens; resume
lifts a suspension after too many out-of-scope calls.
Constraint kinds: prefix and glob (paths), host (URLs), max (numbers), enum,
e.g. --constraint path:prefix=/srv/reports --constraint amount:max=100.

Every command acts through the admin API of a running mediator (--server,
default admin.listen of the config), or on the database directly when
none answers. Common flags: --config FILE, --db FILE, --server URL.
`

// defaultTaskTTL is a task's lifetime unless --ttl says otherwise.
const defaultTaskTTL = 30 * time.Minute

// maxTaskTTL caps a task's lifetime.
const maxTaskTTL = 30 * 24 * time.Hour

func cmdTask(ctx context.Context, args []string, e env) error {
	if len(args) > 0 {
		switch args[0] {
		case "start":
			return taskStart(ctx, args[1:], e)
		case "list":
			return taskList(ctx, args[1:], e)
		case "show":
			return taskShow(ctx, args[1:], e)
		case "end":
			return taskChange(ctx, "end", args[1:], e)
		case "resume":
			return taskChange(ctx, "resume", args[1:], e)
		}
	}
	fmt.Fprint(e.stderr, taskUsage)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		return errHelp
	}
	return &exitError{code: 2, err: errors.New("task: want start, list, show, end or resume")}
}

// taskStartRequest is the body of POST /admin/v1/tasks.
type taskStartRequest struct {
	Agent   string `json:"agent"`
	Purpose string `json:"purpose"`
	// Scope is the task's scope; Constraints adds constraints in the
	// command-line form ARG:KIND=V[,V].
	Scope       mediator.Scope `json:"scope"`
	Constraints []string       `json:"constraints,omitempty"`
	TTL         string         `json:"ttl,omitempty"` // Go duration, default 30m
	// Roles are the roles of the token minted for the task.
	Roles []string `json:"roles,omitempty"`
	// NoToken skips minting (an orchestrator mints its own).
	NoToken bool `json:"no_token,omitempty"`
}

// taskStartResponse is the answer to POST /admin/v1/tasks.
type taskStartResponse struct {
	Task           mediator.Task `json:"task"`
	Token          string        `json:"token,omitempty"`
	JTI            string        `json:"jti,omitempty"`
	TokenExpiresAt *time.Time    `json:"token_expires_at,omitempty"`
}

// taskView is a task with its in-band declarations.
type taskView struct {
	mediator.Task
	Declarations []mediator.Task `json:"declarations,omitempty"`
}

// taskChangeRequest is the body of POST /admin/v1/tasks/{id}/end|resume.
type taskChangeRequest struct {
	Reason string `json:"reason,omitempty"`
}

// build validates the request and turns it into a task.
func (r *taskStartRequest) build(now time.Time) (mediator.Task, error) {
	t := mediator.Task{AgentID: strings.TrimSpace(r.Agent), Purpose: strings.TrimSpace(r.Purpose), Scope: r.Scope,
		Source: mediator.TaskSourceAdmin}
	if t.AgentID == "" {
		return t, errors.New("agent: required; name the agent the task is for")
	}
	if t.Purpose == "" {
		return t, errors.New("purpose: required; say what the agent was asked to do")
	}
	for _, s := range r.Constraints {
		c, err := intent.ParseConstraint(s)
		if err != nil {
			return t, fmt.Errorf("constraint %q: %w", s, err)
		}
		t.Scope.Constraints = append(t.Scope.Constraints, c)
	}
	ttl := defaultTaskTTL
	if r.TTL != "" {
		d, err := time.ParseDuration(r.TTL)
		if err != nil || d <= 0 {
			return t, fmt.Errorf("ttl %q: use a positive duration such as 30m", r.TTL)
		}
		if d > maxTaskTTL {
			return t, fmt.Errorf("ttl %s: a task lasts at most %s", d, maxTaskTTL)
		}
		ttl = d
	}
	t.Expires = now.Add(ttl)
	if err := intent.ValidateScope(t.Scope); err != nil {
		return t, fmt.Errorf("scope: %w", err)
	}
	return t, nil
}

// startTask stores the task of r and mints its token with mint (nil:
// none). The token lives as long as the task, at most maxLifetime.
func startTask(ctx context.Context, ts mediator.TaskStore, mint func(token.Claims, time.Duration) (string, error),
	maxLifetime time.Duration, r taskStartRequest, now time.Time) (taskStartResponse, error) {
	t, err := r.build(now)
	if err != nil {
		return taskStartResponse{}, fmt.Errorf("%w: %w", mediator.ErrInvalidRequest, err)
	}
	if t, err = intent.StartTask(ctx, ts, t, now); err != nil {
		return taskStartResponse{}, err
	}
	resp := taskStartResponse{Task: t}
	if r.NoToken || mint == nil {
		return resp, nil
	}
	claims := token.ClaimsFor(mediator.Agent{ID: t.AgentID, Roles: r.Roles, TaskID: t.ID})
	raw, err := mint(claims, min(t.Expires.Sub(now), maxLifetime))
	if err != nil {
		return resp, fmt.Errorf("task %s stored, but its token could not be minted: %w", t.ID, err)
	}
	m, err := peekMinted(raw)
	if err != nil {
		return resp, err
	}
	resp.Token, resp.JTI, resp.TokenExpiresAt = raw, m.JTI, &m.ExpiresAt
	return resp, nil
}

// --- admin API ---------------------------------------------------------

func (s *adminServer) startTask(r *http.Request, log *slog.Logger) (int, any, error) {
	var req taskStartRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	resp, err := startTask(r.Context(), s.tasks, s.auth.Mint, s.auth.MaxLifetime(), req, s.now())
	if err != nil {
		return 0, nil, taskAPIError(err, "task")
	}
	log.Info("admin: task started", "task", resp.Task.ID, "agent", resp.Task.AgentID, "expires", resp.Task.Expires,
		"jti", resp.JTI)
	return http.StatusCreated, resp, nil
}

func (s *adminServer) listTasks(r *http.Request, _ *slog.Logger) (int, any, error) {
	q := r.URL.Query()
	f := mediator.TaskFilter{AgentID: q.Get("agent"), Status: mediator.TaskStatus(q.Get("status"))}
	if f.Status != "" && !f.Status.Valid() {
		return 0, nil, apiErr(http.StatusBadRequest, nil, "status %q: use active, suspended, completed or revoked", f.Status)
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return 0, nil, apiErr(http.StatusBadRequest, nil, "limit %q: use 1..1000", l)
		}
		f.Limit = n
	}
	ts, err := s.tasks.Tasks(r.Context(), f)
	if err != nil {
		return 0, nil, fmt.Errorf("list tasks: %w", err)
	}
	if ts == nil {
		ts = []mediator.Task{}
	}
	return http.StatusOK, ts, nil
}

func (s *adminServer) showTask(r *http.Request, _ *slog.Logger) (int, any, error) {
	v, err := viewTask(r.Context(), s.tasks, r.PathValue("id"))
	if err != nil {
		return 0, nil, taskAPIError(err, "task")
	}
	return http.StatusOK, v, nil
}

func (s *adminServer) changeTask(op string) adminHandler {
	return func(r *http.Request, log *slog.Logger) (int, any, error) {
		var req taskChangeRequest
		if err := decodeBody(r, &req); err != nil {
			return 0, nil, err
		}
		by := "admin"
		if c, ok := r.Context().Value(adminClaimsKey{}).(*token.Claims); ok {
			by = c.Subject
		}
		t, err := changeTask(r.Context(), s.intent, op, r.PathValue("id"), by, req.Reason)
		if err != nil {
			return 0, nil, taskAPIError(err, "task "+op)
		}
		log.Info("admin: task "+op, "task", t.ID, "status", t.Status, "reason", req.Reason)
		return http.StatusOK, t, nil
	}
}

// adminClaimsKey carries the admin's claims in a request's context.
type adminClaimsKey struct{}

func changeTask(ctx context.Context, svc *intent.Service, op, id, by, reason string) (mediator.Task, error) {
	if reason == "" {
		reason = map[string]string{"end": "ended", "resume": "resumed"}[op] + " by " + by
	}
	if op == "end" {
		return svc.End(ctx, id, by, reason)
	}
	return svc.Resume(ctx, id, by, reason)
}

func viewTask(ctx context.Context, ts mediator.TaskStore, id string) (taskView, error) {
	t, ok, err := ts.Task(ctx, id)
	if err != nil {
		return taskView{}, fmt.Errorf("read task: %w", err)
	}
	if !ok {
		return taskView{}, fmt.Errorf("%w %q", mediator.ErrUnknownTask, id)
	}
	ds, err := ts.Tasks(ctx, mediator.TaskFilter{ParentID: id})
	if err != nil {
		return taskView{}, fmt.Errorf("read declarations: %w", err)
	}
	return taskView{Task: t, Declarations: ds}, nil
}

// taskAPIError maps task errors to statuses.
func taskAPIError(err error, what string) error {
	switch {
	case errors.Is(err, mediator.ErrUnknownTask):
		return apiErr(http.StatusNotFound, err, "%s", what)
	case errors.Is(err, mediator.ErrTaskState):
		return apiErr(http.StatusConflict, err, "%s", what)
	case errors.Is(err, mediator.ErrInvalidRequest):
		return apiErr(http.StatusBadRequest, err, "%s", what)
	}
	return err
}

// --- command line ------------------------------------------------------

// taskFlags are the flags every task command takes.
type taskFlags struct {
	commonFlags
	adminFlags
	json bool
}

func (f *taskFlags) register(fs *flag.FlagSet) {
	f.commonFlags.register(fs)
	f.adminFlags.register(fs)
	fs.BoolVar(&f.json, "json", false, "print JSON")
}

// openExisting opens the database of cfg, refusing to create one: a
// command that reads or changes what a mediator stored must not answer
// from a new, empty database because a path was mistyped.
func openExisting(ctx context.Context, cfg *Config) (*store.Store, error) {
	path := cfg.path(cfg.Database)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("database %s does not exist: pass the --db or --config of the mediator", path)
	}
	st, err := store.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	return st, nil
}

func taskStart(ctx context.Context, args []string, e env) error {
	fs := newFlags("task start", "task start --agent ID --purpose TEXT [flags]", e.stderr)
	var f taskFlags
	f.register(fs)
	var req taskStartRequest
	var toolsF, constraints, roles listFlag
	fs.StringVar(&req.Agent, "agent", "", "agent id; required")
	fs.StringVar(&req.Purpose, "purpose", "", "what the agent was asked to do; required")
	fs.Var(&toolsF, "tools", "catalog tool glob the task may call, e.g. demo__read_* (repeatable; none: any tool)")
	fs.Var(&constraints, "constraint", "argument constraint ARG:KIND=V[,V] (repeatable)")
	fs.Var(&roles, "role", "a role of the task's token (repeatable)")
	dc := fs.String("max-data-class", "", "highest data class: public, internal, confidential, pii, financial")
	risk := fs.String("max-risk", "", "highest risk: low, medium, high, critical")
	ttl := fs.Duration("ttl", defaultTaskTTL, "how long the task lasts")
	noToken := fs.Bool("no-token", false, "store the task without minting a token")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	req.Scope = mediator.Scope{Tools: toolsF, MaxDataClass: mediator.DataClass(*dc), MaxRisk: mediator.Risk(*risk)}
	req.Constraints, req.Roles, req.TTL, req.NoToken = constraints, roles, ttl.String(), *noToken
	if _, err := req.build(timeNow()); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("task start: %w", err)}
	}
	cfg, err := f.load(e)
	if err != nil {
		return err
	}
	var resp taskStartResponse
	done, err := viaAdmin(ctx, cfg, f.server, e, "storing the task and minting with the key file directly", func(c *adminClient) error {
		return c.do(ctx, http.MethodPost, "/tasks", req, &resp)
	})
	if err != nil {
		return fmt.Errorf("task start: %w", err)
	}
	if !done {
		if resp, err = taskStartLocal(ctx, cfg, req, e); err != nil {
			return fmt.Errorf("task start: %w", err)
		}
	}
	if f.json {
		return printJSON(e.stdout, resp)
	}
	t := resp.Task
	fmt.Fprintf(e.stderr, "task %s started for agent %s until %s: %s\n", t.ID, t.AgentID,
		t.Expires.UTC().Format(time.RFC3339), describeScope(t.Scope))
	if resp.Token != "" {
		fmt.Fprintf(e.stderr, "the token below is bound to the task (until %s); `mediator task end %s` revokes it\n",
			resp.TokenExpiresAt.UTC().Format(time.RFC3339), t.ID)
		fmt.Fprintln(e.stdout, resp.Token)
	} else {
		fmt.Fprintln(e.stdout, t.ID)
	}
	return nil
}

func taskStartLocal(ctx context.Context, cfg *Config, req taskStartRequest, e env) (taskStartResponse, error) {
	st, err := openExisting(ctx, cfg)
	if err != nil {
		return taskStartResponse{}, err
	}
	defer st.Close()
	var mint func(token.Claims, time.Duration) (string, error)
	if !req.NoToken {
		var done func()
		if mint, done, err = localMinter(ctx, cfg, e); err != nil {
			return taskStartResponse{}, err
		}
		defer done()
	}
	return startTask(ctx, st, mint, cfg.Auth.MaxLifetime, req, timeNow())
}

func taskList(ctx context.Context, args []string, e env) error {
	fs := newFlags("task list", "task list [--agent ID] [--status S] [--limit N] [--json]", e.stderr)
	var f taskFlags
	f.register(fs)
	agent := fs.String("agent", "", "only this agent's tasks")
	status := fs.String("status", "", "only tasks in this state: active, suspended, completed, revoked")
	limit := fs.Int("limit", 100, "at most this many (newest first, up to 1000)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *status != "" && !mediator.TaskStatus(*status).Valid() {
		return &exitError{code: 2, err: fmt.Errorf("--status %q: use active, suspended, completed or revoked", *status)}
	}
	if *limit < 1 || *limit > 1000 {
		return &exitError{code: 2, err: fmt.Errorf("--limit %d: use 1..1000", *limit)}
	}
	cfg, err := f.load(e)
	if err != nil {
		return err
	}
	var ts []mediator.Task
	q := url.Values{}
	for k, v := range map[string]string{"agent": *agent, "status": *status, "limit": strconv.Itoa(*limit)} {
		if v != "" {
			q.Set(k, v)
		}
	}
	done, err := viaAdmin(ctx, cfg, f.server, e, "reading the database directly", func(c *adminClient) error {
		return c.do(ctx, http.MethodGet, "/tasks?"+q.Encode(), nil, &ts)
	})
	if err != nil {
		return fmt.Errorf("task list: %w", err)
	}
	if !done {
		st, err := openExisting(ctx, cfg)
		if err != nil {
			return fmt.Errorf("task list: %w", err)
		}
		defer st.Close()
		if ts, err = st.Tasks(ctx, mediator.TaskFilter{AgentID: *agent, Status: mediator.TaskStatus(*status), Limit: *limit}); err != nil {
			return fmt.Errorf("task list: %w", err)
		}
	}
	if f.json {
		if ts == nil {
			ts = []mediator.Task{}
		}
		return printJSON(e.stdout, ts)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tAGENT\tSTATUS\tSOURCE\tEXPIRES\tPURPOSE")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, oneLine(t.AgentID, 40), t.Status, t.Source,
			t.Expires.UTC().Format(time.RFC3339), oneLine(t.Purpose, 60))
	}
	return tw.Flush()
}

// idArg parses flags around one positional ID argument.
func idArg(fs *flag.FlagSet, args []string, what string) (string, error) {
	id, err := parseRevokeArgs(fs, args)
	if err != nil {
		return "", err
	}
	if id == "" {
		return "", &exitError{code: 2, err: fmt.Errorf("%s: name the task id", what)}
	}
	return id, nil
}

func taskShow(ctx context.Context, args []string, e env) error {
	fs := newFlags("task show", "task show ID [--json]", e.stderr)
	var f taskFlags
	f.register(fs)
	id, err := idArg(fs, args, "task show")
	if err != nil {
		return err
	}
	cfg, err := f.load(e)
	if err != nil {
		return err
	}
	var v taskView
	done, err := viaAdmin(ctx, cfg, f.server, e, "reading the database directly", func(c *adminClient) error {
		return c.do(ctx, http.MethodGet, "/tasks/"+url.PathEscape(id), nil, &v)
	})
	if err != nil {
		return fmt.Errorf("task show: %w", err)
	}
	if !done {
		st, err := openExisting(ctx, cfg)
		if err != nil {
			return fmt.Errorf("task show: %w", err)
		}
		defer st.Close()
		if v, err = viewTask(ctx, st, id); err != nil {
			return fmt.Errorf("task show: %w", err)
		}
	}
	if f.json {
		return printJSON(e.stdout, v)
	}
	printTask(e.stdout, v)
	return nil
}

func printTask(w io.Writer, v taskView) {
	t := v.Task
	fmt.Fprintf(w, "task      %s\nagent     %s\nstatus    %s", t.ID, t.AgentID, t.Status)
	if t.StatusReason != "" {
		fmt.Fprintf(w, " (%s", oneLine(t.StatusReason, 200))
		if t.StatusBy != "" {
			fmt.Fprintf(w, "; by %s", t.StatusBy)
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintf(w, "\nsource    %s\npurpose   %s\nscope     %s\ncreated   %s\nexpires   %s\n", t.Source,
		oneLine(t.Purpose, 400), describeScope(t.Scope), t.Created.UTC().Format(time.RFC3339), t.Expires.UTC().Format(time.RFC3339))
	if t.ParentID != "" {
		fmt.Fprintf(w, "narrows   %s\n", t.ParentID)
	}
	for _, d := range v.Declarations {
		fmt.Fprintf(w, "declared  %s %s %q: %s\n", d.ID, d.Status, oneLine(d.Purpose, 120), describeScope(d.Scope))
	}
}

// describeScope is a one-line description of a scope.
func describeScope(s mediator.Scope) string {
	var parts []string
	if len(s.Tools) == 0 {
		parts = append(parts, "any tool")
	} else {
		parts = append(parts, "tools "+strings.Join(s.Tools, ", "))
	}
	for _, c := range s.Constraints {
		parts = append(parts, intent.FormatConstraint(c))
	}
	if s.MaxDataClass != "" {
		parts = append(parts, "data class ≤ "+string(s.MaxDataClass))
	}
	if s.MaxRisk != "" {
		parts = append(parts, "risk ≤ "+string(s.MaxRisk))
	}
	return strings.Join(parts, "; ")
}

func taskChange(ctx context.Context, op string, args []string, e env) error {
	fs := newFlags("task "+op, "task "+op+" ID [--reason R]", e.stderr)
	var f taskFlags
	f.register(fs)
	reason := fs.String("reason", "", "why (recorded)")
	id, err := idArg(fs, args, "task "+op)
	if err != nil {
		return err
	}
	cfg, err := f.load(e)
	if err != nil {
		return err
	}
	var t mediator.Task
	done, err := viaAdmin(ctx, cfg, f.server, e, "changing the database directly", func(c *adminClient) error {
		return c.do(ctx, http.MethodPost, "/tasks/"+url.PathEscape(id)+"/"+op, taskChangeRequest{Reason: *reason}, &t)
	})
	if err != nil {
		return fmt.Errorf("task %s: %w", op, err)
	}
	if !done {
		st, err := openExisting(ctx, cfg)
		if err != nil {
			return fmt.Errorf("task %s: %w", op, err)
		}
		defer st.Close()
		svc, err := intent.New(intent.Config{Tasks: st, Revoke: st.Revoke})
		if err != nil {
			return err
		}
		if t, err = changeTask(ctx, svc, op, id, "mediator-cli", *reason); err != nil {
			return fmt.Errorf("task %s: %w", op, err)
		}
	}
	if f.json {
		return printJSON(e.stdout, t)
	}
	switch op {
	case "end":
		fmt.Fprintf(e.stdout, "task %s completed; its tokens are revoked\n", t.ID)
	default:
		fmt.Fprintf(e.stdout, "task %s is active again; its out-of-scope count starts from zero\n", t.ID)
	}
	return nil
}

// oneLine flattens s to one line of at most n runes, for tables.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

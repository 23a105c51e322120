package main

// The admin API: JSON under /admin/v1 on a listener of its own (loopback
// only; see config_admin.go), through which the management commands act on
// a running `mediator serve` so that a revocation, an alert level, a policy
// reload or a newly registered upstream takes effect at once. Every request
// needs a bearer token with the admin role, verified by the same Verifier
// as agents' tokens; every action is logged, never the token.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy"
	"github.com/mcp-mediator/mediator/policy/behaviour"
	"github.com/mcp-mediator/mediator/policy/intent"
	"github.com/mcp-mediator/mediator/policy/token"
	"github.com/mcp-mediator/mediator/store"
	"github.com/mcp-mediator/mediator/tools"
)

const (
	// adminRole is the role a token needs for the admin API.
	adminRole = "admin"
	// maxAdminBody caps a request body of the admin API.
	maxAdminBody = 64 << 10
	// adminPrefix is the path prefix of every endpoint.
	adminPrefix = "/admin/v1"
)

// adminAuth is what the admin API needs of the token Verifier.
type adminAuth interface {
	// VerifyAdmin checks an admin token: the mediator's own key, the
	// admin audience (token.Verifier.VerifyAdmin).
	VerifyAdmin(ctx context.Context, raw string) (*token.Claims, error)
	Mint(c token.Claims, ttl time.Duration) (string, error)
	Revoke(ctx context.Context, r mediator.Revocation) error
	MaxLifetime() time.Duration
}

// adminUpstreams is what the admin API needs of the tools.Registry.
type adminUpstreams interface {
	Add(ctx context.Context, cfg tools.Config) error
	Remove(ctx context.Context, name string) error
	Catalog() *mediator.Catalog
}

// registrationStore persists upstreams registered at run time
// (implemented by store.Store).
type registrationStore interface {
	RegisterUpstream(ctx context.Context, name, spec string) error
	UnregisterUpstream(ctx context.Context, name string) (bool, error)
	RegisteredUpstreams(ctx context.Context) ([]store.RegisteredUpstream, error)
}

var _ registrationStore = (*store.Store)(nil)

// adminServer serves the admin API. Fields are set by newAdminServer (or
// by tests).
type adminServer struct {
	log   *slog.Logger
	auth  adminAuth
	allow AdminConfig // what registrations may run (allowed_commands, allowed_env)
	// audit records refused requests; nil in tests that do not look.
	audit interface {
		Record(ctx context.Context, r mediator.ChainRecord) error
	}
	ups      adminUpstreams
	regs     registrationStore
	settings mediator.SettingStore
	alert    *policy.AlertState
	tasks    mediator.TaskStore
	intent   *intent.Service
	// behave is the behaviour engine (nil when off); behaveStore what it
	// stores in.
	behave      *behaviour.Engine
	behaveStore *store.Store
	// pins are the tool-supply pins; revet re-applies them to a running
	// upstream after a review (nil in tests that do not use them).
	pins  pinStore
	revet func(ctx context.Context, upstream string) error
	// reload reloads the policy files now; nil when there is nothing to
	// reload (the embedded policy).
	reload func() (changed bool, version string, err error)
	// prepare turns a registration into what the registry runs: @mediator
	// resolved, ${VAR} expanded with the server's environment.
	prepare func(tools.Config) (tools.Config, error)
	now     func() time.Time

	configured []tools.Config // from the config file; not removable here
	// ops serializes registrations and removals; it is held while an
	// upstream starts or drains, so listings do not take it.
	ops sync.Mutex
	// mu guards registered, briefly.
	mu         sync.Mutex
	registered map[string]*registration // by name
}

// registration is an upstream registered through the API, as registered
// (before ${VAR} expansion, so that secrets given as references stay out
// of the database).
type registration struct {
	cfg     tools.Config
	running bool // added to the registry (false when it failed at restore)
}

// apiError is an admin API failure: the HTTP status and the message of the
// JSON error body.
type apiError struct {
	status int
	msg    string
	err    error
}

func (e *apiError) Error() string { return e.msg }
func (e *apiError) Unwrap() error { return e.err }

// apiErr builds an apiError; err, if not nil, is wrapped and its text
// appended to the message.
func apiErr(status int, err error, format string, args ...any) *apiError {
	msg := fmt.Sprintf(format, args...)
	if err != nil {
		msg += ": " + err.Error()
	}
	return &apiError{status: status, msg: msg, err: err}
}

// handler returns the admin API's routes.
func (s *adminServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+adminPrefix+"/tokens", s.admin("token.mint", s.mintToken))
	mux.HandleFunc("POST "+adminPrefix+"/revocations", s.admin("token.revoke", s.revoke))
	mux.HandleFunc("GET "+adminPrefix+"/alert", s.admin("alert.show", s.getAlert))
	mux.HandleFunc("PUT "+adminPrefix+"/alert", s.admin("alert.set", s.setAlert))
	mux.HandleFunc("POST "+adminPrefix+"/policy/reload", s.admin("policy.reload", s.reloadPolicy))
	mux.HandleFunc("GET "+adminPrefix+"/upstreams", s.admin("upstream.list", s.listUpstreams))
	mux.HandleFunc("POST "+adminPrefix+"/upstreams", s.admin("upstream.add", s.addUpstream))
	mux.HandleFunc("DELETE "+adminPrefix+"/upstreams/{name}", s.admin("upstream.remove", s.removeUpstream))
	mux.HandleFunc("GET "+adminPrefix+"/upstreams/{name}/pins", s.admin("upstream.pins", s.listPins))
	mux.HandleFunc("POST "+adminPrefix+"/upstreams/{name}/pins/{tool}/review", s.admin("upstream.review", s.reviewPin))
	mux.HandleFunc("GET "+adminPrefix+"/tasks", s.admin("task.list", s.listTasks))
	mux.HandleFunc("POST "+adminPrefix+"/tasks", s.admin("task.start", s.startTask))
	mux.HandleFunc("GET "+adminPrefix+"/tasks/{id}", s.admin("task.show", s.showTask))
	mux.HandleFunc("POST "+adminPrefix+"/tasks/{id}/end", s.admin("task.end", s.changeTask("end")))
	mux.HandleFunc("POST "+adminPrefix+"/tasks/{id}/resume", s.admin("task.resume", s.changeTask("resume")))
	mux.HandleFunc("GET "+adminPrefix+"/agents", s.admin("agent.list", s.listAgents))
	mux.HandleFunc("GET "+adminPrefix+"/agents/{id}", s.admin("agent.show", s.showAgent))
	mux.HandleFunc("POST "+adminPrefix+"/agents/{id}/trust", s.admin("agent.trust", s.setAgentTrust))
	mux.HandleFunc("POST "+adminPrefix+"/agents/{id}/baseline", s.admin("agent.baseline", s.actOnBaseline))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("no such endpoint: %s %s (see README.md, Admin API)",
			r.Method, r.URL.Path)})
	})
	return mux
}

// adminHandler handles one authenticated request: it returns the status
// and the JSON body, or an error (an *apiError names the status).
type adminHandler func(r *http.Request, log *slog.Logger) (int, any, error)

// errorBody is the JSON body of every failure.
type errorBody struct {
	Error string `json:"error"`
	// Reason is a refused credential's cause in one fixed word
	// (unknown_key, expired, ...), for the CLI to name the fix.
	Reason string `json:"reason,omitempty"`
}

// admin authenticates the request, bounds its body, runs h and logs the
// outcome under action.
func (s *adminServer) admin(action string, h adminHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		log := s.log.With("action", action, "remote", r.RemoteAddr)
		who, err := s.authenticate(r)
		if err != nil {
			log.Warn("admin request refused", "err", err)
			s.recordRefusal(r, action, nil, err)
			if errors.Is(err, mediator.ErrUnauthenticated) || errors.Is(err, errNoBearer) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="mediator-admin", error="invalid_token"`)
			}
			writeFailure(w, err)
			return
		}
		log = log.With("admin", who.Subject, "admin_jti", who.ID)
		r = r.WithContext(context.WithValue(r.Context(), adminClaimsKey{}, who))
		r.Body = http.MaxBytesReader(w, r.Body, maxAdminBody)
		status, body, err := h(r, log)
		if err != nil {
			log.Warn("admin action failed", "err", err)
			s.recordRefusal(r, action, who, err)
			writeFailure(w, err)
			return
		}
		log.Debug("admin request served", "status", status) // changes are also logged at info by h
		writeJSON(w, status, body)
	}
}

var errNoBearer = errors.New("no bearer token")

// recordRefusal appends a refused admin request (401 or 403) to the audit
// chain, with who asked when known and from where.
func (s *adminServer) recordRefusal(r *http.Request, action string, who *token.Claims, err error) {
	var ae *apiError
	if s.audit == nil || !errors.As(err, &ae) || (ae.status != http.StatusUnauthorized && ae.status != http.StatusForbidden) {
		return
	}
	host, _, splitErr := net.SplitHostPort(r.RemoteAddr)
	if splitErr != nil {
		host = r.RemoteAddr
	}
	rec := mediator.ChainRecord{Time: time.Now(), Transport: "http", RemoteAddr: host,
		Method: "admin/" + action, Kind: mediator.KindProtocol, Outcome: mediator.OutcomeDenied, Error: ae.msg,
		Decision: mediator.Decision{Effect: mediator.EffectDeny, Rule: "admin.api", Reason: ae.msg}}
	if who != nil {
		rec.AgentID, rec.TaskID = who.Subject, who.Task
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if rerr := s.audit.Record(ctx, rec); rerr != nil {
		s.log.Error("recording a refused admin request failed", "err", rerr)
	}
}

// authenticate verifies the bearer token and requires the admin role.
// Requests without a token are refused even where agents have an
// anonymous identity.
func (s *adminServer) authenticate(r *http.Request) (*token.Claims, error) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(raw) == "" {
		return nil, &apiError{status: http.StatusUnauthorized, err: errNoBearer, msg: "unauthenticated: no bearer token; " +
			"send Authorization: Bearer <an admin token: mediator token mint --admin>"}
	}
	c, err := s.auth.VerifyAdmin(r.Context(), strings.TrimSpace(raw))
	if err != nil {
		return nil, apiErr(http.StatusUnauthorized, err, "unauthenticated")
	}
	if !slices.Contains(c.Roles, adminRole) {
		return nil, apiErr(http.StatusForbidden, nil, "forbidden: agent %q lacks the %s role", c.Subject, adminRole)
	}
	return c, nil
}

// writeFailure writes err as a JSON error body; an error that is not an
// *apiError is an internal failure.
func writeFailure(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = apiErr(http.StatusInternalServerError, err, "internal error")
	}
	eb := errorBody{Error: ae.msg}
	if ae.status == http.StatusUnauthorized && errors.Is(err, mediator.ErrUnauthenticated) {
		eb.Reason = mediator.AuthFailureReason(err)
	}
	writeJSON(w, ae.status, eb)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// decodeBody decodes the request body, a single JSON object with only
// known fields, into v.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&json.RawMessage{}) != io.EOF {
		err = errors.New("data after the JSON object")
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return apiErr(http.StatusRequestEntityTooLarge, nil, "request body over %d bytes", maxAdminBody)
	case errors.Is(err, io.EOF):
		return apiErr(http.StatusBadRequest, nil, "empty request body: send a JSON object")
	}
	return apiErr(http.StatusBadRequest, err, "request body")
}

// mintRequest is the body of POST /admin/v1/tokens.
type mintRequest struct {
	Agent            string            `json:"agent"`
	Roles            []string          `json:"roles,omitempty"`
	Task             string            `json:"task,omitempty"`
	TTL              string            `json:"ttl,omitempty"` // a Go duration; default 15m, at most auth.max_lifetime
	Owner            string            `json:"owner,omitempty"`
	Confidence       *float64          `json:"confidence,omitempty"`
	Attrs            map[string]string `json:"attrs,omitempty"`
	AgentVersion     string            `json:"agent_version,omitempty"`
	BusinessFunction string            `json:"business_function,omitempty"`
	// TrustCeiling is the passport's trust_ceiling claim.
	TrustCeiling string `json:"trust_ceiling,omitempty"`
}

// mintResponse is the answer to POST /admin/v1/tokens.
type mintResponse struct {
	Token     string    `json:"token"`
	JTI       string    `json:"jti"`
	ExpiresAt time.Time `json:"expires_at"`
}

// claims checks the request and turns it into passport claims.
func (m *mintRequest) claims() (token.Claims, error) {
	if m.Agent == "" {
		return token.Claims{}, errors.New("agent: required; name the agent the token is for")
	}
	a := mediator.Agent{ID: m.Agent, Roles: m.Roles, TaskID: m.Task, Owner: m.Owner, Attrs: m.Attrs,
		Version: m.AgentVersion, BusinessFunction: m.BusinessFunction, TrustCeiling: m.TrustCeiling}
	if m.TrustCeiling != "" {
		if _, err := mediator.ParseTrustLevel(m.TrustCeiling); err != nil {
			return token.Claims{}, fmt.Errorf("trust_ceiling: %w", err)
		}
	}
	if m.Confidence != nil {
		if c := *m.Confidence; !(c >= 0 && c <= 1) {
			return token.Claims{}, fmt.Errorf("confidence %v: use a number between 0 and 1", c)
		}
		a.Confidence = *m.Confidence
	}
	for k := range m.Attrs {
		if k == "" {
			return token.Claims{}, errors.New("attrs: empty key")
		}
	}
	return token.ClaimsFor(a), nil
}

// ttl is the requested lifetime, or the default capped by maxLifetime.
func (m *mintRequest) ttl(maxLifetime time.Duration) (time.Duration, error) {
	if m.TTL == "" {
		return min(defaultTTL, maxLifetime), nil
	}
	d, err := time.ParseDuration(m.TTL)
	if err != nil {
		return 0, fmt.Errorf("ttl %q: use a duration such as 15m", m.TTL)
	}
	return d, nil
}

func (s *adminServer) mintToken(r *http.Request, log *slog.Logger) (int, any, error) {
	var req mintRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	claims, err := req.claims()
	if err != nil {
		return 0, nil, apiErr(http.StatusBadRequest, err, "token")
	}
	ttl, err := req.ttl(s.auth.MaxLifetime())
	if err != nil {
		return 0, nil, apiErr(http.StatusBadRequest, err, "token")
	}
	raw, err := s.auth.Mint(claims, ttl)
	if err != nil {
		return 0, nil, apiErr(http.StatusBadRequest, err, "token mint")
	}
	resp, err := peekMinted(raw)
	if err != nil {
		return 0, nil, err
	}
	log.Info("admin: token minted", "agent", req.Agent, "roles", req.Roles, "task", req.Task, "jti", resp.JTI,
		"expires_at", resp.ExpiresAt)
	return http.StatusCreated, resp, nil
}

// peekMinted reads jti and exp back from a token just minted (so already
// trusted; no verification).
func peekMinted(raw string) (mintResponse, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return mintResponse{}, errors.New("minted token is not a compact JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return mintResponse{}, fmt.Errorf("minted token payload: %w", err)
	}
	var p struct {
		JTI string `json:"jti"`
		Exp int64  `json:"exp"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return mintResponse{}, fmt.Errorf("minted token payload: %w", err)
	}
	return mintResponse{Token: raw, JTI: p.JTI, ExpiresAt: time.Unix(p.Exp, 0).UTC()}, nil
}

// revokeRequest is the body of POST /admin/v1/revocations: exactly one of
// JTI, Task and Agent.
type revokeRequest struct {
	JTI    string `json:"jti,omitempty"`
	Task   string `json:"task,omitempty"`
	Agent  string `json:"agent,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// revokeResponse is the answer to POST /admin/v1/revocations.
type revokeResponse struct {
	Revoked string    `json:"revoked"`
	At      time.Time `json:"at"`
}

func (s *adminServer) revoke(r *http.Request, log *slog.Logger) (int, any, error) {
	var req revokeRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if countSet(req.JTI, req.Task, req.Agent) != 1 {
		return 0, nil, apiErr(http.StatusBadRequest, nil, "revocation: name exactly one of jti, task or agent")
	}
	rev := mediator.Revocation{JTI: req.JTI, TaskID: req.Task, AgentID: req.Agent, Reason: req.Reason, At: s.now()}
	if err := s.auth.Revoke(r.Context(), rev); err != nil {
		if errors.Is(err, token.ErrInvalidRevocation) || errors.Is(err, store.ErrInvalidRevocation) {
			return 0, nil, apiErr(http.StatusBadRequest, err, "revocation")
		}
		return 0, nil, fmt.Errorf("revoke: %w", err)
	}
	what := revokedWhat(rev)
	log.Info("admin: revoked", "what", what, "reason", req.Reason)
	return http.StatusOK, revokeResponse{Revoked: what, At: rev.At.UTC()}, nil
}

// alertBody is the body of GET and PUT /admin/v1/alert.
type alertBody struct {
	Level string `json:"level"`
}

func (s *adminServer) getAlert(*http.Request, *slog.Logger) (int, any, error) {
	return http.StatusOK, alertBody{Level: string(s.alert.Level())}, nil
}

func (s *adminServer) setAlert(r *http.Request, log *slog.Logger) (int, any, error) {
	var req alertBody
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	level, err := policy.ParseAlertLevel(req.Level)
	if err != nil {
		return 0, nil, apiErr(http.StatusBadRequest, err, "level")
	}
	// Stored first, so that other processes sharing the database follow
	// and a restart keeps it; then in force here at once.
	if err := policy.WriteAlert(r.Context(), s.settings, level); err != nil {
		return 0, nil, fmt.Errorf("alert set: %w", err)
	}
	before := s.alert.Level()
	s.alert.Set(level)
	log.Warn("admin: alert level set", "level", level, "was", before)
	return http.StatusOK, alertBody{Level: string(level)}, nil
}

// reloadResponse is the answer to POST /admin/v1/policy/reload.
type reloadResponse struct {
	Changed bool   `json:"changed"`
	Version string `json:"version"`
}

func (s *adminServer) reloadPolicy(_ *http.Request, log *slog.Logger) (int, any, error) {
	if s.reload == nil {
		return 0, nil, apiErr(http.StatusConflict, nil, "nothing to reload: the policy in force is the embedded example; "+
			"name policy.model and policy.file in the config to use policy files")
	}
	changed, version, err := s.reload()
	if err != nil {
		return 0, nil, apiErr(http.StatusUnprocessableEntity, err,
			"policy rejected; version %s stays in force", version)
	}
	log.Info("admin: policy reloaded", "changed", changed, "version", version)
	return http.StatusOK, reloadResponse{Changed: changed, Version: version}, nil
}

// upstreamSpec is an upstream's configuration as the admin API takes and
// stores it: a tools.Config in JSON, with the timeout as a Go duration
// ("30s") rather than nanoseconds.
type upstreamSpec struct {
	tools.Config
	Timeout string `json:"timeout,omitempty"`
}

// config returns the tools.Config the spec describes.
func (u *upstreamSpec) config() (tools.Config, error) {
	c := u.Config
	if u.Timeout != "" {
		d, err := time.ParseDuration(u.Timeout)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("timeout %q: use a positive duration such as 30s", u.Timeout)
		}
		c.Timeout = d
	}
	return c, nil
}

// specOf is the inverse of upstreamSpec.config.
func specOf(c tools.Config) upstreamSpec {
	s := upstreamSpec{Config: c}
	if c.Timeout != 0 {
		s.Timeout = c.Timeout.String()
	}
	s.Config.Timeout = 0
	return s
}

// upstreamList is the answer to GET /admin/v1/upstreams.
type upstreamList struct {
	Servers []serverView `json:"servers"`
	Tools   []toolView   `json:"tools"`
}

// serverView is one upstream, with where it comes from.
type serverView struct {
	mediator.ServerState
	// Source is "config" (the config file) or "admin" (registered through
	// the admin API).
	Source string `json:"source"`
}

// toolView is one tool of the catalog, without its definition.
type toolView struct {
	Name      string             `json:"name"`
	Server    string             `json:"server"`
	Original  string             `json:"original"`
	Risk      mediator.Risk      `json:"risk,omitempty"`
	DataClass mediator.DataClass `json:"data_class,omitempty"`
	Hints     mediator.Hints     `json:"hints"`
	Hash      string             `json:"hash"`
	// State is the tool's pin state: pinned, or new / changed / rejected
	// for a tool withheld until reviewed (Reason says why).
	State  mediator.PinState `json:"state,omitempty"`
	Reason string            `json:"reason,omitempty"`
}

func (s *adminServer) listUpstreams(*http.Request, *slog.Logger) (int, any, error) {
	return http.StatusOK, s.view(""), nil
}

// view describes the catalog: every upstream, or only server when set.
func (s *adminServer) view(server string) upstreamList {
	cat, regs := s.ups.Catalog(), s.registrations()
	out := upstreamList{Servers: []serverView{}, Tools: []toolView{}}
	for _, st := range cat.Servers {
		if server != "" && st.Name != server {
			continue
		}
		src := "config"
		if _, ok := regs[st.Name]; ok {
			src = "admin"
		}
		out.Servers = append(out.Servers, serverView{ServerState: st, Source: src})
	}
	for _, t := range cat.Tools {
		if server == "" || t.Server == server {
			out.Tools = append(out.Tools, toolView{Name: t.Name, Server: t.Server, Original: t.Original,
				Risk: t.Risk, DataClass: t.DataClass, Hints: t.Hints, Hash: t.Hash, State: mediator.PinPinned})
		}
	}
	for _, q := range cat.Quarantined {
		if t := q.Tool; server == "" || t.Server == server {
			out.Tools = append(out.Tools, toolView{Name: t.Name, Server: t.Server, Original: t.Original,
				Risk: t.Risk, DataClass: t.DataClass, Hints: t.Hints, Hash: t.Hash, State: q.State, Reason: q.Reason})
		}
	}
	return out
}

func (s *adminServer) addUpstream(r *http.Request, log *slog.Logger) (int, any, error) {
	var spec upstreamSpec
	if err := decodeBody(r, &spec); err != nil {
		return 0, nil, err
	}
	cfg, err := spec.config()
	if err != nil {
		return 0, nil, apiErr(http.StatusBadRequest, err, "upstream")
	}
	s.ops.Lock()
	defer s.ops.Unlock()
	if err := s.register(r.Context(), cfg, true); err != nil {
		return 0, nil, err
	}
	view := s.view(cfg.Name)
	if cfg.IsRequired() {
		// A required upstream that does not answer its first initialize
		// (a command that does not exist or exits, a URL nobody serves)
		// would turn /readyz red from now on: it is not registered.
		for _, sv := range view.Servers {
			if sv.Connected {
				continue
			}
			s.unregister(context.WithoutCancel(r.Context()), cfg.Name)
			return 0, nil, apiErr(http.StatusBadGateway, nil, "upstream %s did not answer initialize (%s); it is not registered: "+
				"fix its command or URL, or register it with optional (upstream add --optional) to let the mediator keep retrying",
				cfg.Name, sv.Error)
		}
	}
	log.Info("admin: upstream registered", "upstream", cfg)
	return http.StatusCreated, view, nil
}

// unregister removes a registration just made. The caller holds ops.
func (s *adminServer) unregister(ctx context.Context, name string) {
	if _, err := s.regs.UnregisterUpstream(ctx, name); err != nil {
		s.log.Error("admin: removing a registration that failed", "upstream", name, "err", err)
	}
	s.setRegistration(name, nil)
	if err := s.ups.Remove(ctx, name); err != nil {
		s.log.Error("admin: stopping an upstream that failed", "upstream", name, "err", err)
	}
}

// register checks cfg against the upstreams there are, adds it to the
// registry and, when persist is set, stores it. The caller holds ops.
func (s *adminServer) register(ctx context.Context, cfg tools.Config, persist bool) error {
	if err := s.check(cfg); err != nil {
		return err
	}
	run, err := s.prepare(cfg)
	if err != nil {
		return apiErr(http.StatusBadRequest, err, "upstream %s", cfg.Name)
	}
	if err := s.ups.Add(ctx, run); err != nil {
		if errors.Is(err, tools.ErrInvalidConfig) {
			return apiErr(http.StatusBadRequest, err, "upstream %s", cfg.Name)
		}
		// Anything else may have left it running: it is not registered.
		_ = s.ups.Remove(context.WithoutCancel(ctx), cfg.Name)
		if errors.Is(err, tools.ErrNameCollision) {
			return apiErr(http.StatusConflict, err, "upstream %s: its names collide with ones already served; give it a prefix", cfg.Name)
		}
		return fmt.Errorf("upstream %s: %w", cfg.Name, err)
	}
	if persist {
		b, err := json.Marshal(specOf(cfg))
		if err == nil {
			err = s.regs.RegisterUpstream(ctx, cfg.Name, string(b))
		}
		if err != nil {
			_ = s.ups.Remove(context.WithoutCancel(ctx), cfg.Name)
			return fmt.Errorf("upstream %s: not registered: %w", cfg.Name, err)
		}
	}
	s.setRegistration(cfg.Name, &registration{cfg: cfg, running: true})
	return nil
}

// check validates cfg on its own (400) and against the upstreams there
// are (409). The caller holds ops.
func (s *adminServer) check(cfg tools.Config) error {
	if err := cfg.Validate(); err != nil {
		return apiErr(http.StatusBadRequest, err, "invalid upstream")
	}
	if err := checkRegistration(cfg); err != nil {
		return apiErr(http.StatusBadRequest, err, "invalid upstream")
	}
	if err := s.allow.allowRegistration(cfg); err != nil {
		return apiErr(http.StatusForbidden, err, "upstream %s refused", cfg.Name)
	}
	if slices.ContainsFunc(s.configured, func(c tools.Config) bool { return c.Name == cfg.Name }) {
		return apiErr(http.StatusConflict, nil, "upstream %q already exists (from the config file); choose another name", cfg.Name)
	}
	regs := s.registrations()
	if _, ok := regs[cfg.Name]; ok {
		return apiErr(http.StatusConflict, nil, "upstream %q already exists; remove it first (mediator upstream remove %s)",
			cfg.Name, cfg.Name)
	}
	all := slices.Clone(s.configured)
	for _, r := range regs {
		if r.running { // one that failed at restore holds its name only
			all = append(all, r.cfg)
		}
	}
	if err := tools.ValidateAll(append(all, cfg)); err != nil {
		return apiErr(http.StatusConflict, err, "upstream %s conflicts with the upstreams there are", cfg.Name)
	}
	return nil
}

// checkRegistration refuses what only a config file may say: paths
// relative to a directory the server cannot know, and shadow mode (the
// policy engine learns shadow servers from the config at start).
func checkRegistration(c tools.Config) error {
	var errs []error
	if strings.Contains(c.Command, "/") && !filepath.IsAbs(c.Command) {
		errs = append(errs, fmt.Errorf("command: %q is relative; give an absolute path", c.Command))
	}
	if c.Dir != "" && !filepath.IsAbs(c.Dir) {
		errs = append(errs, fmt.Errorf("dir: %q is relative; give an absolute path", c.Dir))
	}
	if c.Mode == string(policy.ModeShadow) {
		errs = append(errs, errors.New("mode: shadow is set in the config file only; register the upstream in enforce mode"))
	}
	return errors.Join(errs...)
}

// removeResponse is the answer to DELETE /admin/v1/upstreams/{name}.
type removeResponse struct {
	Removed string `json:"removed"`
}

func (s *adminServer) removeUpstream(r *http.Request, log *slog.Logger) (int, any, error) {
	name := r.PathValue("name")
	s.ops.Lock()
	defer s.ops.Unlock()
	reg, ok := s.registrations()[name]
	switch {
	case !ok && slices.ContainsFunc(s.configured, func(c tools.Config) bool { return c.Name == name }):
		return 0, nil, apiErr(http.StatusConflict, nil, "upstream %q comes from the config file; remove it there and restart", name)
	case !ok:
		return 0, nil, apiErr(http.StatusNotFound, nil, "no upstream %q was registered through the admin API", name)
	}
	if _, err := s.regs.UnregisterUpstream(r.Context(), name); err != nil {
		return 0, nil, fmt.Errorf("upstream %s: %w", name, err)
	}
	s.setRegistration(name, nil)
	if reg.running {
		// Calls in flight drain (up to the upstream's timeout) even if the
		// client that asked goes away.
		if err := s.ups.Remove(context.WithoutCancel(r.Context()), name); err != nil {
			return 0, nil, fmt.Errorf("upstream %s: unregistered, but stopping it: %w", name, err)
		}
	}
	log.Info("admin: upstream removed", "upstream", name)
	return http.StatusOK, removeResponse{Removed: name}, nil
}

// restore adds the persisted registrations, in the order they were made,
// after the configured upstreams. One that no longer starts (its config
// is refused, say, or a ${VAR} is gone) is logged and kept, so that it can
// still be removed; only failing to read the store is an error.
func (s *adminServer) restore(ctx context.Context) error {
	regs, err := s.regs.RegisteredUpstreams(ctx)
	if err != nil {
		return fmt.Errorf("registered upstreams: %w", err)
	}
	s.ops.Lock()
	defer s.ops.Unlock()
	for _, r := range regs {
		cfg, err := decodeRegistration(r)
		if err == nil {
			err = s.register(ctx, cfg, false)
		}
		if err != nil {
			s.log.Error("registered upstream not started; remove it with `mediator upstream remove`",
				"upstream", r.Name, "err", err)
			s.setRegistration(r.Name, &registration{cfg: tools.Config{Name: r.Name}})
			continue
		}
		s.log.Info("registered upstream restored", "upstream", cfg, "registered_at", r.At)
	}
	return nil
}

// decodeRegistration reads a stored registration back.
func decodeRegistration(r store.RegisteredUpstream) (tools.Config, error) {
	var spec upstreamSpec
	dec := json.NewDecoder(strings.NewReader(r.Spec))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return tools.Config{}, fmt.Errorf("stored registration: %w", err)
	}
	cfg, err := spec.config()
	if err == nil && cfg.Name != r.Name {
		err = fmt.Errorf("stored registration: stored under %q but named %q", r.Name, cfg.Name)
	}
	return cfg, err
}

// registrations returns a copy of the registrations.
func (s *adminServer) registrations() map[string]*registration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.registered)
}

// setRegistration records reg under name; nil deletes.
func (s *adminServer) setRegistration(name string, reg *registration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if reg == nil {
		delete(s.registered, name)
		return
	}
	s.registered[name] = reg
}

// adminVerifier is the token Verifier of a serving mediator, as the admin
// API needs it.
func (a *app) adminVerifier() (adminAuth, error) {
	v, ok := a.auth.(adminAuth)
	if !ok {
		return nil, errors.New("admin API: the authenticator cannot verify tokens")
	}
	return v, nil
}

// newAdminServer wires the admin API to the app.
func (a *app) newAdminServer(e env) (*adminServer, error) {
	v, err := a.adminVerifier()
	if err != nil {
		return nil, err
	}
	s := a.upstreamRegistry(e)
	s.auth = v
	return s, nil
}

// restoreUpstreams starts the upstreams registered through the admin API
// of any mediator on this database: `mediator stdio` serves them as
// `serve` does. It has no admin API of its own.
func (a *app) restoreUpstreams(ctx context.Context, e env) error {
	return a.upstreamRegistry(e).restore(ctx)
}

// upstreamRegistry is the admin server's state without its credentials:
// the registrations and what they act on.
func (a *app) upstreamRegistry(e env) *adminServer {
	s := &adminServer{log: a.log, allow: a.cfg.Admin, audit: a.store, ups: a.reg, regs: a.store, settings: a.store, alert: a.pol.alert,
		tasks: a.store, intent: a.intent, behave: a.behave, behaveStore: a.store,
		pins: a.store, revet: a.reg.Revet,
		now: timeNow, configured: a.cfg.Upstreams, registered: map[string]*registration{},
		prepare: func(c tools.Config) (tools.Config, error) {
			if c.Command == SelfCommand {
				c.Command = e.self
			}
			return c, c.Expand(e.lookup)
		}}
	if w := a.pol.watcher; w != nil {
		s.reload = func() (bool, string, error) {
			changed, err := w.Reload()
			return changed, a.policy.Version(), err
		}
	}
	return s
}

// startAdmin restores the upstreams registered through the admin API and
// serves the API on admin.listen (unless it is ""), until the returned
// function is called.
func (a *app) startAdmin(ctx context.Context, e env) (func(), error) {
	s, err := a.newAdminServer(e)
	if err != nil {
		return nil, err
	}
	if err := s.restore(ctx); err != nil {
		return nil, err
	}
	if a.cfg.Admin.Listen == "" {
		a.log.Info("admin API off (admin.listen is empty)")
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", a.cfg.Admin.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin.listen: %w (choose a free loopback port, or \"\" to turn the admin API off)", err)
	}
	hs := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin API stopped", "err", err)
		}
	}()
	a.log.Info("admin API", "url", adminURL(ln.Addr().String())+adminPrefix)
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Limits.ShutdownGrace)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			_ = hs.Close()
		}
	}, nil
}

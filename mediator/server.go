package mediator

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Server is the MCP server agents connect to. It presents the upstream
// catalog as its own, and runs every request through the chain built by
// BuildChain.
type Server struct {
	deps    Deps
	chain   Handler
	builtin Handler
	// outcome records what an agent tool did (RecordToolOutcome).
	outcome Handler
	// stdioKey names this process's stdio session in records.
	stdioKey string
	reject   func(ctx context.Context, c *Call, cause error) error
	mcp      *server.MCPServer
	log      *slog.Logger
	opts     options
	sessions sessionTable
	subs     subscriptions
	passed   passthrough
	// clientErrs: agents' error responses to relayed requests (clienterr.go)
	clientErrs clientErrors
	// asks: requests written to agents on their calls' own streams (asks.go)
	asks asks
	// levels: the agents' logging/setLevel (logging.go)
	levels logLevels
	// cancelled: the requests agents cancelled (cancelled.go)
	cancelled cancelledIDs
	// tasks: the agents' tasks (tasks.go)
	tasks taskBoard
	// live: the registered MCP sessions, by id (server.ClientSession)
	live   sync.Map
	syncMu sync.Mutex
	synced syncedLists // guarded by syncMu
	// inflight: the completion/complete and resources/read requests in
	// flight (complete.go)
	inflight inflight
	// routeOnce registers the template that routes resources/read.
	routeOnce sync.Once
	// shown: the catalog's objects as agents are shown them (listing.go)
	shown atomic.Pointer[shownLists]
}

// Option configures a Server.
type Option func(*options)

type options struct {
	name, version    string
	instructions     string
	maxBody          int64
	maxHeader        int
	readTimeout      time.Duration
	sessionIdle      time.Duration
	sessionsPerAgent int
}

// WithImplementation sets the server name and version sent at initialize.
func WithImplementation(name, version string) Option {
	return func(o *options) { o.name, o.version = name, version }
}

// WithInstructions replaces the default server instructions.
func WithInstructions(s string) Option { return func(o *options) { o.instructions = s } }

// WithMaxRequestBytes caps an HTTP request body (default 16 MiB).
func WithMaxRequestBytes(n int64) Option { return func(o *options) { o.maxBody = n } }

// WithMaxHeaderBytes caps an HTTP request's line and headers (default
// 64 KiB); larger ones are answered 431 and recorded. The http.Server in
// front must allow more than this, or it answers them itself, unrecorded.
func WithMaxHeaderBytes(n int) Option { return func(o *options) { o.maxHeader = n } }

// WithReadTimeout bounds how long an authenticated agent may take to send
// its request body (default 30s; 0 for none).
func WithReadTimeout(d time.Duration) Option { return func(o *options) { o.readTimeout = d } }

// WithSessionLimits closes an HTTP session idle for longer than idle (0:
// never) and caps the sessions one agent may hold open (0: no cap).
// Defaults: DefaultSessionIdleTTL, DefaultSessionsPerAgent.
func WithSessionLimits(idle time.Duration, perAgent int) Option {
	return func(o *options) { o.sessionIdle, o.sessionsPerAgent = idle, perAgent }
}

// DefaultInstructions tell agents how to work with the mediator.
const DefaultInstructions = "This is MCP Mediator: every tool call is checked against policy and against the intent " +
	"declared for your session, and recorded. Before other tools, call declare_intent with the user's purpose " +
	"(and the narrowest scope you need); call complete_task when the request is done. " +
	"Pass the user's request that led to each tool call in the call's _meta under the key \"" + PromptMetaKey + "\" " +
	"(a string, or {\"text\": ..., \"reasoning\": ...}). A denied call returns an error that says why; do not retry " +
	"a denial unchanged. A call that needs human approval returns an error naming the approval; repeat the " +
	"identical call later."

// NewServer builds the agent-facing server over deps.
func NewServer(deps Deps, opts ...Option) (*Server, error) {
	if err := deps.Validate(); err != nil {
		return nil, err
	}
	o := options{name: "mcp-mediator", version: "dev", instructions: DefaultInstructions, maxBody: 16 << 20,
		maxHeader: DefaultMaxHeaderBytes, readTimeout: 30 * time.Second,
		sessionIdle: DefaultSessionIdleTTL, sessionsPerAgent: DefaultSessionsPerAgent}
	for _, fn := range opts {
		fn(&o)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{deps: deps, chain: BuildChain(deps), reject: RecordRejection(deps), log: deps.Logger, opts: o}
	s.builtin = BuildBuiltinChain(deps, s.runBuiltin)
	s.outcome = BuildBuiltinChain(deps, s.runToolOutcome)
	s.stdioKey = "stdio-" + randomHex(8)
	mcpOpts := []server.ServerOption{
		server.WithToolCapabilities(true),
		server.WithResourceCapabilities(true, true),
		server.WithPromptCapabilities(true),
		server.WithLogging(),
		// The mediator answers tasks/* itself (tasks.go); mcp-go's own
		// task store stays empty, as no tool is registered with it as a
		// task tool.
		server.WithTaskCapabilities(true, true, true),
		// No WithElicitation or EnableSampling: sampling and elicitation
		// are client capabilities, which mcp-go would advertise as the
		// server's; relaying them needs neither.
		server.WithCompletions(),
		server.WithPromptCompletionProvider(completer{s}),
		server.WithResourceCompletionProvider(completer{s}),
		server.WithInstructions(o.instructions),
		server.WithHooks(s.hooks()),
	}
	// mcp-go logs two lines per request at INFO. The audit chain already
	// holds every request, so they are only wanted when debugging; with
	// the logger off, mcp-go does not even time or format them.
	if deps.Logger.Enabled(context.Background(), slog.LevelDebug) {
		mcpOpts = append(mcpOpts, server.WithLogger(slog.New(debugLevel{deps.Logger.Handler()})))
	}
	s.mcp = server.NewMCPServer(o.name, o.version, mcpOpts...)
	s.mcp.AddNotificationHandler(string(mcp.MethodNotificationRootsListChanged), func(ctx context.Context, _ mcp.JSONRPCNotification) {
		if cs := server.ClientSessionFromContext(ctx); cs != nil {
			s.deps.Upstreams.RootsChanged(s.logKey(cs.SessionID())) // the upstream asks again
		}
	})
	s.syncCatalog(deps.Upstreams.Catalog())
	deps.Upstreams.OnChange(s.syncCatalog)
	deps.Upstreams.OnResourceUpdated(s.resourceUpdated)
	deps.Upstreams.OnLog(s.logBetweenCalls)
	return s, nil
}

// debugLevel logs every record at DEBUG, whatever level it was logged at:
// it is how mcp-go's per-request lines are demoted.
type debugLevel struct{ slog.Handler }

func (h debugLevel) Enabled(ctx context.Context, _ slog.Level) bool {
	return h.Handler.Enabled(ctx, slog.LevelDebug)
}

func (h debugLevel) Handle(ctx context.Context, r slog.Record) error {
	r.Level = slog.LevelDebug
	return h.Handler.Handle(ctx, r)
}

func (h debugLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return debugLevel{h.Handler.WithAttrs(as)}
}
func (h debugLevel) WithGroup(g string) slog.Handler { return debugLevel{h.Handler.WithGroup(g)} }

// MCPServer exposes the underlying mcp-go server (tests, in-process clients).
func (s *Server) MCPServer() *server.MCPServer { return s.mcp }

// syncCatalog registers the catalog's objects with mcp-go, which also tells
// initialised sessions that the lists changed.
func (s *Server) syncCatalog(cat *Catalog) {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	tools := make([]server.ServerTool, 0, len(cat.Tools)+2)
	tools = append(tools, s.builtinTools()...)
	for _, t := range cat.Tools {
		mt, err := ToMCPTool(t)
		if err != nil {
			s.log.Warn("tool definition not usable; hidden", "tool", t.Name, "server", t.Server, "err", err)
			continue
		}
		tools = append(tools, server.ServerTool{Tool: mt, Handler: s.handleTool})
	}
	for _, q := range cat.Quarantined {
		// Registered so that a call reaches the pipeline and is refused
		// with the reason; never listed (filterTools keeps catalog tools).
		tools = append(tools, server.ServerTool{Tool: mcp.Tool{Name: q.Tool.Name,
			InputSchema: mcp.ToolInputSchema{Type: "object"}}, Handler: s.handleTool})
	}
	shown := showLists(cat)
	shown.templateList = s.usableTemplates(cat)
	s.shown.Store(shown)
	// Each kind is registered again only when it changed: mcp-go tells
	// every session that the kind's list changed on each registration, and
	// one upstream change must reach agents as one notification, of its
	// own kind.
	// What agents are shown is the upstreams' own definitions in their
	// order (listing.go), so a change there counts as well as one to what
	// mcp-go holds.
	shownTools := project(cat.Tools, func(t Tool) any { return []any{t.Definition, t.Order} })
	if s.synced.changed("tools", []any{project(tools, func(t server.ServerTool) mcp.Tool { return t.Tool }), shownTools}) {
		s.mcp.SetTools(tools...)
	}
	s.syncPrompts(cat)
	s.syncResources(cat)
}

// syncedLists remembers what was last registered with mcp-go, per kind, as
// a digest of its encoding; guarded by Server.syncMu.
type syncedLists map[string][sha256.Size]byte

// changed reports whether v differs from what was last registered as kind
// (always, the first time), and remembers v.
func (l *syncedLists) changed(kind string, v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		return true // register it again rather than miss a change
	}
	sum := sha256.Sum256(b)
	if last, ok := (*l)[kind]; ok && last == sum {
		return false
	}
	if *l == nil {
		*l = syncedLists{}
	}
	(*l)[kind] = sum
	return true
}

// project maps xs through f (the definitions of registered objects, without
// their handlers, which do not encode).
func project[T, D any](xs []T, f func(T) D) []D {
	out := make([]D, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

func (s *Server) syncPrompts(cat *Catalog) {
	prompts := make([]server.ServerPrompt, 0, len(cat.Prompts))
	for _, p := range cat.Prompts {
		var mp mcp.Prompt
		if err := json.Unmarshal(p.Definition, &mp); err != nil {
			s.log.Warn("prompt definition not usable; hidden", "prompt", p.Name, "err", err)
			continue
		}
		mp.Name = p.Name
		prompts = append(prompts, server.ServerPrompt{Prompt: mp, Handler: s.handlePrompt})
	}
	for _, w := range cat.WithheldPrompts {
		// Registered so that a prompts/get reaches the pipeline and is
		// refused with the reason; never listed (filterPrompts keeps
		// catalog prompts).
		prompts = append(prompts, server.ServerPrompt{Prompt: mcp.Prompt{Name: w.Name}, Handler: s.handlePrompt})
	}
	if s.synced.changed("prompts", []any{project(cat.Prompts, func(p Prompt) any { return []any{p.Definition, p.Order} }), cat.WithheldPrompts}) {
		s.mcp.SetPrompts(prompts...)
	}
}

func (s *Server) syncResources(cat *Catalog) {
	resources := make([]server.ServerResource, 0, len(cat.Resources))
	for _, r := range cat.Resources {
		var mr mcp.Resource
		if err := json.Unmarshal(r.Definition, &mr); err != nil || mr.URI == "" {
			s.log.Warn("resource definition not usable; hidden", "uri", r.URI, "err", err)
			continue
		}
		resources = append(resources, server.ServerResource{Resource: mr, Handler: s.handleResource})
	}
	// What mcp-go holds derives from the definitions, which agents are
	// shown as they are (listing.go): they tell a change.
	resourcesChanged := s.synced.changed("resources", project(cat.Resources, func(r Resource) json.RawMessage { return r.Definition }))
	if resourcesChanged {
		s.mcp.SetResources(resources...) // tells the sessions
	}
	// Templates are not registered with mcp-go one by one: each
	// registration would send its own resources/list_changed, two for one
	// change that touches resources and templates. One template that
	// matches every URI routes resources/read to the handler (the chain
	// resolves the URI against the catalog, and refuses one no upstream
	// offers); filterTemplates lists the catalog's. Only a URI that is not
	// one by RFC 3986 (a raw space, a non-ASCII letter) fails to match it,
	// and gets mcp-go's "resource not found".
	s.routeOnce.Do(func() {
		s.mcp.AddResourceTemplate(mcp.NewResourceTemplate("{+uri}", "mediator resource router"), s.handleResource)
	})
	if s.synced.changed("templates", project(cat.Templates, func(t ResourceTemplate) json.RawMessage { return t.Definition })) && !resourcesChanged {
		s.mcp.SendNotificationToAllClients(string(mcp.MethodNotificationResourcesListChanged), nil)
	}
}

// usableTemplates parses cat's templates as agents are shown them (in
// filterTemplates), leaving out and logging those mcp-go cannot read.
func (s *Server) usableTemplates(cat *Catalog) []shownTemplate {
	var out []shownTemplate
	for _, t := range cat.Templates {
		var mt mcp.ResourceTemplate
		if err := json.Unmarshal(t.Definition, &mt); err != nil || mt.URITemplate == nil {
			s.log.Warn("resource template not usable; hidden", "template", t.URITemplate, "err", err)
			continue
		}
		out = append(out, shownTemplate{cat: t, mt: mt})
	}
	return out
}

// ToMCPTool turns a catalog tool into mcp-go's type for listing, keeping the
// upstream's input and output schemas as raw JSON (mcp-go's parsed schema
// type would drop oneOf, $defs and the like).
func ToMCPTool(t Tool) (mcp.Tool, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(t.Definition, &fields); err != nil {
		return mcp.Tool{}, fmt.Errorf("tool %q: %w", t.Name, err)
	}
	var mt mcp.Tool
	if err := json.Unmarshal(t.Definition, &mt); err != nil {
		return mcp.Tool{}, fmt.Errorf("tool %q: %w", t.Name, err)
	}
	mt.Name = t.Name
	mt.InputSchema, mt.OutputSchema = mcp.ToolInputSchema{}, mcp.ToolOutputSchema{}
	mt.RawInputSchema = fields["inputSchema"]
	if len(mt.RawInputSchema) == 0 || string(mt.RawInputSchema) == "null" {
		mt.RawInputSchema = json.RawMessage(`{"type":"object"}`)
	}
	if raw := fields["outputSchema"]; len(raw) > 0 && string(raw) != "null" {
		mt.RawOutputSchema = raw
	}
	// mcp-go must not run a task itself: the mediator is every task's
	// receiver (tasks.go), and listings show the upstream's "execution".
	mt.Execution = nil
	return mt, nil
}

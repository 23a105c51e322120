package tools

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mcp-mediator/mediator/mediator"
)

var _ mediator.Upstreams = (*Registry)(nil)

// defaultMaxMessage bounds one JSON-RPC message from an upstream (a listing
// page, a result, a notification). A stdio child that sends more is killed;
// an HTTP response that holds more fails.
const defaultMaxMessage = 16 << 20

// Registry runs the configured upstreams and implements mediator.Upstreams
// over them. Create it with New, then Start it; Close stops every upstream.
// All methods are safe for concurrent use.
type Registry struct {
	log        *slog.Logger
	baseEnv    map[string]string
	clientInfo mcp.Implementation
	backoffMin time.Duration
	backoffMax time.Duration
	maxMessage int

	ctx    context.Context // lifetime of all supervisors; ended by Close
	cancel context.CancelFunc

	mu      sync.Mutex
	ups     []*upstream // in configuration order, then in order of Add
	pending []Config    // configs before Start
	started bool
	closed  bool

	catalog    atomic.Pointer[mediator.Catalog]
	mergeMu    sync.Mutex
	collisions []collision

	subsMu  sync.Mutex
	subs    []func(*mediator.Catalog)
	updated []func(server, uri, session string)

	logMu    sync.Mutex
	logs     logLevels
	logFwdMu sync.Mutex // serialises forwarding the levels (logging.go)

	routesMu sync.Mutex
	routes   map[string]*route

	ids atomic.Int64 // JSON-RPC request ids and progress tokens

	guard SupplyGuard
}

// SupplyGuard decides which of an upstream's tools are served: pinned
// definitions are, changed and new ones may be withheld (see package
// tools/scan). mode is the upstream's Config.Pinning; others are the tool
// names the other upstreams serve.
type SupplyGuard interface {
	Vet(ctx context.Context, server, mode string, offered []mediator.Tool, others []string) mediator.Vetted
	// VetDefinitions scans an upstream's prompts, resources or templates
	// (kind; definitions by the name agents see) and returns why, by name,
	// those it withholds are withheld.
	VetDefinitions(ctx context.Context, server, mode string, kind mediator.Kind, defs map[string][]byte, others []string) map[string]string
}

// WithSupplyGuard makes g decide which tools of each listing are served.
// Without it every tool listed is served.
func WithSupplyGuard(g SupplyGuard) Option {
	return func(r *Registry) { r.guard = g }
}

// vet applies the supply guard to l in place.
func (r *Registry) vet(ctx context.Context, cfg *Config, l *listing) {
	if r.guard == nil || l == nil {
		return
	}
	var others []string
	for _, t := range r.Catalog().Tools {
		if t.Server != cfg.Name {
			others = append(others, t.Name, t.Original)
		}
	}
	mode := cfg.EffectivePinning()
	v := r.guard.Vet(ctx, cfg.Name, mode, l.offered, others)
	l.tools, l.quarantined = v.Serve, v.Quarantined
	var held map[string]string
	l.prompts, held = withhold(ctx, r.guard, cfg.Name, mode, mediator.KindPrompt, l.offeredPrompts, others,
		func(p mediator.Prompt) (string, []byte) { return p.Name, p.Definition })
	l.withheldPrompts = nil
	for _, p := range l.offeredPrompts {
		if reason := held[p.Name]; reason != "" {
			l.withheldPrompts = append(l.withheldPrompts, mediator.WithheldPrompt{Name: p.Name, Server: p.Server, Reason: reason})
		}
	}
	l.resources, _ = withhold(ctx, r.guard, cfg.Name, mode, mediator.KindResource, l.offeredResources, others,
		func(x mediator.Resource) (string, []byte) { return x.URI, x.Definition })
	l.templates, _ = withhold(ctx, r.guard, cfg.Name, mode, mediator.KindResource, l.offeredTemplates, others,
		func(x mediator.ResourceTemplate) (string, []byte) { return x.URITemplate, x.Definition })
}

// withhold returns items without those the guard withholds, and why
// those are, by name.
func withhold[T any](ctx context.Context, g SupplyGuard, server, mode string, kind mediator.Kind, items []T, others []string, key func(T) (string, []byte)) ([]T, map[string]string) {
	if len(items) == 0 {
		return items, nil
	}
	// Each name once, its first definition: the one the catalog serves
	// (buildListing refuses a second already; a second definition is never
	// served unscanned).
	defs := make(map[string][]byte, len(items))
	dup := false
	for _, it := range items {
		name, def := key(it)
		if _, ok := defs[name]; ok {
			dup = true
			continue
		}
		defs[name] = def
	}
	out := g.VetDefinitions(ctx, server, mode, kind, defs, others)
	if len(out) == 0 && !dup {
		return items, nil
	}
	kept := make([]T, 0, len(items))
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		if name, _ := key(it); out[name] == "" && !seen[name] {
			seen[name] = true
			kept = append(kept, it)
		}
	}
	return kept, out
}

// SecretAction returns what is done with a secret in a result of the named
// upstream (Config.Secrets: redact, block or flag); redact for an unknown
// upstream.
func (r *Registry) SecretAction(name string) string {
	u, err := r.lookup(name)
	if err != nil {
		return "redact"
	}
	return u.cfg.EffectiveSecrets()
}

// Revet applies the supply guard again to the named upstream's last
// listing (after a review changed its pins) and publishes the catalog;
// agents are told with list_changed.
func (r *Registry) Revet(ctx context.Context, name string) error {
	u, err := r.lookup(name)
	if err != nil {
		return err
	}
	u.mu.Lock()
	old := u.listing
	u.mu.Unlock()
	if old == nil {
		return nil
	}
	l := *old
	r.vet(ctx, &u.cfg, &l)
	u.mu.Lock()
	if u.listing == old {
		u.listing = &l
	}
	u.mu.Unlock()
	r.rebuild()
	return nil
}

// Option configures a Registry.
type Option func(*Registry)

// WithMaxMessageBytes bounds one JSON-RPC message from an upstream (default
// 16 MiB). A response over it fails the call it answers; the upstream runs on.
func WithMaxMessageBytes(n int) Option {
	return func(r *Registry) {
		if n > 0 {
			r.maxMessage = n
		}
	}
}

// WithLogger sets the logger (default slog.Default()). Each upstream logs
// with an "upstream" attribute.
func WithLogger(l *slog.Logger) Option {
	return func(r *Registry) {
		if l != nil {
			r.log = l
		}
	}
}

// WithBaseEnv sets the environment that PATH and HOME of stdio children are
// taken from. The registry never reads the process environment itself:
// without this option children get no PATH and no HOME.
func WithBaseEnv(env map[string]string) Option {
	return func(r *Registry) { r.baseEnv = maps.Clone(env) }
}

// WithClientInfo sets the name and version the registry gives upstreams at
// initialize (default "mcp-mediator", "dev").
func WithClientInfo(name, version string) Option {
	return func(r *Registry) { r.clientInfo = mcp.Implementation{Name: name, Version: version} }
}

// WithRestartBackoff sets the smallest and largest delay before an upstream
// is restarted or reconnected (default 100ms and 30s). The delay doubles
// with each failure and starts over once a connection stayed up a minute.
func WithRestartBackoff(min, max time.Duration) Option {
	return func(r *Registry) {
		if min > 0 {
			r.backoffMin = min
		}
		if max >= r.backoffMin {
			r.backoffMax = max
		}
	}
}

// New returns a registry for cfgs; nothing runs until Start. The configs
// are copied. They should have been expanded (Config.Expand) by the caller;
// Start validates them.
func New(cfgs []Config, opts ...Option) *Registry {
	r := &Registry{
		log:        slog.Default(),
		clientInfo: mcp.Implementation{Name: "mcp-mediator", Version: "dev"},
		backoffMin: defaultBackoffMin,
		backoffMax: defaultBackoffMax,
		maxMessage: defaultMaxMessage,
		routes:     map[string]*route{},
	}
	for _, o := range opts {
		o(r)
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	for _, c := range cfgs {
		r.pending = append(r.pending, cloneConfig(c))
	}
	r.catalog.Store(pendingCatalog(r.pending))
	return r
}

// cloneConfig copies c so that the caller's maps and slices are not shared.
func cloneConfig(c Config) Config {
	c.Args = slices.Clone(c.Args)
	c.Env = maps.Clone(c.Env)
	c.Headers = maps.Clone(c.Headers)
	c.Tools = maps.Clone(c.Tools)
	if c.Prefix != nil {
		p := *c.Prefix
		c.Prefix = &p
	}
	if c.Required != nil {
		b := *c.Required
		c.Required = &b
	}
	return c
}

// pendingCatalog is the catalog before Start: every upstream, none
// connected.
func pendingCatalog(cfgs []Config) *mediator.Catalog {
	servers := make([]mediator.ServerState, 0, len(cfgs))
	for i := range cfgs {
		servers = append(servers, mediator.ServerState{
			Name: cfgs[i].Name, Transport: cfgs[i].EffectiveTransport(),
			Required: cfgs[i].IsRequired(), Error: "not started",
		})
	}
	return mediator.NewCatalog(nil, nil, nil, nil, servers)
}

// Start validates the configuration, then connects every upstream
// concurrently and waits until each has connected or failed once (or ctx
// ends). An upstream that fails to connect is not an error: it is retried
// in the background, and the catalog shows it with Connected false and the
// reason in Error. Start returns an error for an invalid configuration
// (nothing is started then), and for catalog name collisions (wrapping
// ErrNameCollision; everything runs, the later object is refused).
func (r *Registry) Start(ctx context.Context) error {
	r.mu.Lock()
	if r.started || r.closed {
		r.mu.Unlock()
		return errors.New("registry already started or closed")
	}
	if err := ValidateAll(r.pending); err != nil {
		r.mu.Unlock()
		return err
	}
	r.started = true
	for _, c := range r.pending {
		r.ups = append(r.ups, newUpstream(r, c))
	}
	r.pending = nil
	ups := slices.Clone(r.ups)
	r.mu.Unlock()

	r.rebuild()
	for _, u := range ups {
		go u.run()
	}
	r.awaitFirst(ctx, ups)
	return collisionsError(r.currentCollisions())
}

// awaitFirst waits until each upstream's first connection attempt ended, or
// ctx did.
func (r *Registry) awaitFirst(ctx context.Context, ups []*upstream) {
	for _, u := range ups {
		select {
		case <-u.first:
		case <-ctx.Done():
			r.log.Warn("stopped waiting for upstreams to connect; they keep connecting in the background",
				"err", ctx.Err())
			return
		}
	}
}

// Close stops every upstream: calls in flight fail, stdio children are
// stopped (stdin closed, then SIGTERM, then SIGKILL) and reaped. It waits for
// all of it and is safe to call more than once.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	ups := slices.Clone(r.ups)
	r.mu.Unlock()

	r.cancel()
	for _, u := range ups {
		<-u.done
	}
	return nil
}

// Add validates cfg against the running configuration (its name and prefix
// must be new) and starts it, waiting for its first connection attempt as
// Start does. Before Start it only records cfg. Like Start, it returns an
// error wrapping ErrNameCollision when the new upstream's objects collide
// with names already served.
func (r *Registry) Add(ctx context.Context, cfg Config) error {
	cfg = cloneConfig(cfg)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return fmt.Errorf("%w: registry is closed", mediator.ErrUpstreamUnavailable)
	}
	all := append(r.configsLocked(), cfg)
	if err := ValidateAll(all); err != nil {
		r.mu.Unlock()
		return err
	}
	if !r.started {
		r.pending = append(r.pending, cfg)
		r.mu.Unlock()
		r.catalog.Store(pendingCatalog(all))
		return nil
	}
	u := newUpstream(r, cfg)
	r.ups = append(r.ups, u)
	r.mu.Unlock()

	r.rebuild()
	go u.run()
	r.awaitFirst(ctx, []*upstream{u})
	var mine []collision
	for _, c := range r.currentCollisions() {
		if c.second == cfg.Name {
			mine = append(mine, c)
		}
	}
	return collisionsError(mine)
}

// configsLocked returns the configs of all upstreams; r.mu is held.
func (r *Registry) configsLocked() []Config {
	if !r.started {
		return slices.Clone(r.pending)
	}
	out := make([]Config, 0, len(r.ups))
	for _, u := range r.ups {
		out = append(out, u.cfg)
	}
	return out
}

// Remove stops the named upstream and drops it from the catalog. New calls
// to it are refused at once; calls in flight get until ctx ends, or the
// upstream's timeout, to finish, and are then cancelled.
func (r *Registry) Remove(ctx context.Context, name string) error {
	r.mu.Lock()
	if !r.started {
		i := slices.IndexFunc(r.pending, func(c Config) bool { return c.Name == name })
		if i < 0 {
			r.mu.Unlock()
			return unknownUpstream(name)
		}
		r.pending = slices.Delete(r.pending, i, i+1)
		pending := slices.Clone(r.pending)
		r.mu.Unlock()
		r.catalog.Store(pendingCatalog(pending))
		return nil
	}
	i := slices.IndexFunc(r.ups, func(u *upstream) bool { return u.name == name })
	if i < 0 {
		r.mu.Unlock()
		return unknownUpstream(name)
	}
	u := r.ups[i]
	r.ups = slices.Delete(r.ups, i, i+1)
	r.mu.Unlock()

	u.drain(ctx)
	u.stop()
	r.rebuild()
	return nil
}

// Ready returns nil when every required upstream is connected, and
// otherwise an error (wrapping mediator.ErrUpstreamUnavailable) naming each
// one that is not, with the reason.
func (r *Registry) Ready() error {
	r.mu.Lock()
	started, closed := r.started, r.closed
	ups := slices.Clone(r.ups)
	r.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("%w: the upstream registry is closed", mediator.ErrUpstreamUnavailable)
	case !started:
		return fmt.Errorf("%w: the upstream registry has not been started", mediator.ErrUpstreamUnavailable)
	}
	var down []string
	for _, u := range ups {
		st, _ := u.snapshot()
		if st.Required && !st.Connected {
			down = append(down, fmt.Sprintf("%s (%s)", st.Name, orDefault(st.Error, "connecting")))
		}
	}
	if len(down) > 0 {
		return fmt.Errorf("%w: required upstreams not connected: %s", mediator.ErrUpstreamUnavailable,
			strings.Join(down, ", "))
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Restarts returns, per upstream, how many times its connection was lost
// and restarted since this process started (metrics).
func (r *Registry) Restarts() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int64, len(r.ups))
	for _, u := range r.ups {
		out[u.name] = u.restarts.Load()
	}
	return out
}

// Catalog returns the current catalog (never nil).
func (r *Registry) Catalog() *mediator.Catalog { return r.catalog.Load() }

// OnChange registers fn to be called after each catalog change, with the
// newest catalog. fn is called from the registry's goroutines: it should
// return quickly and must not call Add, Remove or Close (they wait for
// those goroutines).
func (r *Registry) OnChange(fn func(*mediator.Catalog)) {
	if fn == nil {
		return
	}
	r.subsMu.Lock()
	r.subs = append(r.subs, fn)
	r.subsMu.Unlock()
}

// lookup returns the running upstream called name.
func (r *Registry) lookup(name string) (*upstream, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("%w: the upstream registry is closed", mediator.ErrUpstreamUnavailable)
	}
	for _, u := range r.ups {
		if u.name == name {
			return u, nil
		}
	}
	return nil, unknownUpstream(name)
}

func unknownUpstream(name string) error {
	return fmt.Errorf("%w: no upstream named %q is configured", mediator.ErrUpstreamUnavailable, name)
}

// rebuild merges the upstreams' offers into a new catalog, publishes it,
// logs collisions it has not logged before, and tells the subscribers.
func (r *Registry) rebuild() {
	r.mu.Lock()
	ups := slices.Clone(r.ups)
	r.mu.Unlock()

	r.mergeMu.Lock()
	snaps := make([]snapshot, 0, len(ups))
	for _, u := range ups {
		st, l := u.snapshot()
		snaps = append(snaps, snapshot{state: st, listing: l})
	}
	cat, found := merge(snaps)
	fresh := newCollisions(r.collisions, found)
	r.collisions = found
	r.catalog.Store(cat)
	r.mergeMu.Unlock()

	for _, c := range fresh {
		r.log.Error("catalog name collision: object refused", "kind", c.kind, "name", c.name,
			"served_by", c.first, "refused_from", c.second)
	}
	r.notify()
}

func (r *Registry) currentCollisions() []collision {
	r.mergeMu.Lock()
	defer r.mergeMu.Unlock()
	return slices.Clone(r.collisions)
}

// notify calls every subscriber with the newest catalog. A panicking
// subscriber is logged, not fatal.
func (r *Registry) notify() {
	r.subsMu.Lock()
	subs := slices.Clone(r.subs)
	r.subsMu.Unlock()
	for _, fn := range subs {
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.log.Error("catalog subscriber panicked", "panic", p)
				}
			}()
			fn(r.catalog.Load())
		}()
	}
}

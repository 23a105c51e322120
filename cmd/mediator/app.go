package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/mcp-mediator/mediator/approvals"
	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/mediator/metrics"
	"github.com/mcp-mediator/mediator/mediator/tracing"
	"github.com/mcp-mediator/mediator/policy"
	"github.com/mcp-mediator/mediator/policy/behaviour"
	"github.com/mcp-mediator/mediator/policy/intent"
	"github.com/mcp-mediator/mediator/store"
	"github.com/mcp-mediator/mediator/tools"
	"github.com/mcp-mediator/mediator/tools/scan"
)

// app is a wired mediator: store, upstreams, policy, server.
type app struct {
	cfg      *Config
	log      *slog.Logger
	logClose func() error
	store    *store.Store
	reg      *tools.Registry
	policy   *policy.Engine
	pol      *policyRuntime // policy watcher and alert level (config_policy.go)
	auth     authenticator
	srv      *mediator.Server
	builtins *agentTools        // builtins: (config_builtins.go); nil when off
	queue    *approvals.Queue   // human approvals (approvers.go)
	intent   *intent.Service    // tasks, declared intent, drift, judge (config_intent.go)
	metrics  *metrics.Metrics   // Prometheus (config_metrics.go); nil when off
	tracer   *tracing.Tracer    // OpenTelemetry (config_tracing.go); nil when off
	behave   *behaviour.Engine  // baselines and trust (config_behaviour.go); nil when off
	stopBG   context.CancelFunc // stops the queue's expiry and webhook
	bgCtx    context.Context    // what stopBG cancels
	bg       sync.WaitGroup     // the behaviour sync and the checkpointer, done after their last write
}

// newLogger builds the logger; never stdout (the stdio protocol lives there).
func newLogger(cfg LogConfig, stderr io.Writer) (*slog.Logger, func() error, error) {
	w, closeFn := stderr, func() error { return nil }
	if cfg.File != "" {
		f, err := os.OpenFile(cfg.File, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("log.file: %w", err)
		}
		w, closeFn = f, f.Close
	}
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), closeFn, nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), closeFn, nil
}

// openApp wires everything; the caller must call close.
func openApp(ctx context.Context, cfg *Config, e env) (a *app, err error) {
	a = &app{cfg: cfg, builtins: newAgentTools(cfg.Builtins)}
	if a.log, a.logClose, err = newLogger(cfg.Log, e.stderr); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	for _, n := range cfg.notices {
		a.log.Warn(n)
	}
	if a.pol, err = loadPolicy(cfg, a.log); err != nil {
		return a, err
	}
	a.policy = a.pol.engine
	if a.store, err = openStore(ctx, cfg, a.log); err != nil {
		return a, err
	}
	a.closeUnfinishedForwards(ctx)
	a.pol.start(ctx, a.store)
	if a.auth, err = newAuthenticator(ctx, cfg, a.store, a.log); err != nil {
		return a, err
	}
	var bg context.Context
	bg, a.stopBG = context.WithCancel(ctx)
	a.bgCtx = bg
	a.queue = newQueue(bg, cfg, a.store, a.pol.engine, a.log, e.lookup)
	if err = a.startCheckpoints(ctx, bg, e.lookup); err != nil {
		return a, err
	}
	a.reg = tools.New(cfg.resolveUpstreams(e.self),
		tools.WithLogger(a.log), tools.WithMaxMessageBytes(cfg.Limits.MaxMessageBytes),
		tools.WithBaseEnv(baseEnv(e.lookup)),
		tools.WithClientInfo("mcp-mediator", version),
		tools.WithSupplyGuard(&scan.Guard{Pins: a.store, Recorder: a.store, Log: a.log.With("component", "supply")}))
	if err = a.reg.Start(ctx); err != nil {
		if !errors.Is(err, tools.ErrNameCollision) {
			return a, fmt.Errorf("upstreams: %w", err)
		}
		// The later upstream's colliding objects are refused; the rest serve.
		a.log.Warn("upstreams: colliding objects refused", "err", err)
		err = nil
	}
	if a.intent, err = a.newIntentService(e.lookup); err != nil {
		return a, err
	}
	inspector, err := scan.NewInspector(a.reg.SecretAction)
	if err != nil {
		return a, fmt.Errorf("secret scanner: %w", err)
	}
	var monitor mediator.BehaviourMonitor
	if a.behave, err = a.newBehaviour(bg); err != nil {
		return a, err
	} else if a.behave != nil {
		monitor = a.behave
	}
	a.metrics = a.newMetrics()
	if a.tracer, err = newTracer(cfg.Tracing, e.lookup); err != nil {
		return a, err
	}
	a.srv, err = mediator.NewServer(mediator.Deps{
		Upstreams:     a.reg,
		Authenticator: a.auth,
		Intent:        a.intent,
		Behaviour:     monitor,
		Authorizer:    a.policy,
		Approver:      a.queue,
		Recorder:      a.store,
		Health:        a.store,
		Tracker:       a.store,
		Declarer:      a.intent,
		ToolUses:      a.store,
		Inspector:     inspector,
		Flows:         mediator.NewFlowTracker(0),
		AgentTools:    a.agentTools(),
		Telemetry:     a.telemetry(),
		Tracer:        a.tracerDep(),
		Logger:        a.log,
		Caps:          mediator.Caps{PromptBytes: cfg.Limits.PromptBytes},
	}, mediator.WithImplementation("mcp-mediator", version), mediator.WithMaxRequestBytes(cfg.Limits.MaxRequestBytes),
		mediator.WithMaxHeaderBytes(cfg.Limits.MaxHeaderBytes), mediator.WithReadTimeout(cfg.Limits.ReadTimeout),
		mediator.WithSessionLimits(cfg.Limits.SessionIdleTimeout, cfg.Limits.SessionsPerAgent))
	return a, err
}

// agentTools are the agent tools of builtins: (nil when off).
func (a *app) agentTools() mediator.AgentTools {
	if a.builtins == nil {
		return nil // a nil *agentTools in the interface would not be nil
	}
	return a.builtins
}

// close stops upstreams first (no more results), then flushes the audit log.
func (a *app) close() {
	if a.reg != nil {
		if err := a.reg.Close(); err != nil {
			a.log.Warn("stopping upstreams", "err", err)
		}
	}
	if a.auth != nil {
		_ = a.auth.Close() // stops the revocation poll before the store closes
	}
	if a.pol != nil {
		a.pol.stop() // stops the alert poll before the store closes
	}
	if a.stopBG != nil {
		a.stopBG() // stops approval expiry, webhook deliveries and the behaviour sync
	}
	a.bg.Wait() // the behaviour engine wrote what it learned, the last checkpoint is signed
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			a.log.Error("closing the audit store", "err", err)
		}
	}
	a.stopTracing() // after the last call's span ended
	if a.logClose != nil {
		_ = a.logClose()
	}
}

// startCheckpoints signs the chain head into the checkpoint file in the
// background, after checking the database against the newest checkpoint.
func (a *app) startCheckpoints(ctx, bg context.Context, lookup func(string) (string, bool)) error {
	key, err := a.cfg.loadKey(a.log)
	if err != nil {
		return err
	}
	cp, err := newCheckpointer(a.cfg, a.store, key, lookup, a.log)
	if err != nil || cp == nil {
		return err
	}
	cp.checkAtStart(ctx)
	a.bg.Go(func() { cp.run(bg) })
	return nil
}

// startShipping sends committed records to the configured collectors
// (syslog, OTLP logs) in the background (serve only: one shipper per
// database and collector).
func (a *app) startShipping(ctx context.Context) error {
	var sinks []sink
	if a.cfg.Audit.Ship.Syslog.Address != "" {
		sinks = append(sinks, newSyslogSink(a.cfg.Audit.Ship.Syslog))
	}
	if a.cfg.Audit.Ship.OTLP.Endpoint != "" {
		sk, err := newOTLPSink(ctx, a.cfg.Audit.Ship.OTLP, os.LookupEnv)
		if err != nil {
			return err
		}
		sinks = append(sinks, sk)
	}
	for _, sk := range sinks {
		sh, err := newShipper(ctx, sk, a.store, a.log)
		if err != nil {
			sk.close()
			return err
		}
		a.bg.Go(func() { sh.run(a.bgCtx) })
	}
	return nil
}

// closeUnfinishedForwards records "outcome unknown" for the forwarded
// calls a crashed mediator left without an outcome.
func (a *app) closeUnfinishedForwards(ctx context.Context) {
	closed, err := a.store.CloseUnfinishedForwards(ctx)
	if err != nil {
		a.log.Error("audit: recording the outcome of calls a crashed mediator forwarded failed; `mediator audit verify` lists them", "err", err)
	}
	for _, r := range closed {
		a.log.Warn("audit: a call was forwarded by a mediator that stopped before recording its outcome: outcome unknown, check the upstream",
			"forwarded_record", r.Ref, "tool", r.Name, "agent", r.AgentID, "session", r.SessionID)
	}
}

// newBehaviour starts the behaviour engine over the store, or returns nil
// when behaviour.enabled is false.
func (a *app) newBehaviour(bg context.Context) (*behaviour.Engine, error) {
	if !a.cfg.Behaviour.on() {
		a.log.Info("behavioural monitoring is off (behaviour.enabled: false): policy sees every agent at trust high")
		return nil, nil
	}
	cfg, err := a.cfg.Behaviour.engineConfig(a.cfg.behaviourZone())
	if err != nil {
		return nil, err
	}
	eng, err := behaviour.New(cfg, a.store, a.store, a.log)
	if err != nil {
		return nil, err
	}
	if err := eng.Load(bg); err != nil {
		return nil, fmt.Errorf("behaviour: %w", err)
	}
	a.bg.Go(func() { eng.Run(bg) })
	return eng, nil
}

func agentFromConfig(c AgentConfig) mediator.Agent {
	return mediator.Agent{ID: c.ID, Roles: c.Roles, Owner: c.Owner, Attrs: c.Attrs}
}

// baseEnv is all an upstream child inherits from the mediator: PATH and HOME.
func baseEnv(lookup func(string) (string, bool)) map[string]string {
	out := map[string]string{}
	for _, k := range []string{"PATH", "HOME"} {
		if v, ok := lookup(k); ok {
			out[k] = v
		}
	}
	return out
}

func openStore(ctx context.Context, cfg *Config, log *slog.Logger) (*store.Store, error) {
	opts := []store.Option{store.WithLogger(log),
		store.WithMaxArgBytes(cfg.Audit.MaxArgumentBytes), store.WithMaxResultBytes(cfg.Audit.MaxResultBytes)}
	if cfg.Audit.Sync == "full" {
		opts = append(opts, store.WithSynchronousFull())
	}
	var pats []*regexp.Regexp
	for _, r := range cfg.Audit.Redact {
		pats = append(pats, regexp.MustCompile(r)) // validated in Config.Validate
	}
	if len(pats) > 0 {
		opts = append(opts, store.WithRedactPatterns(pats))
	}
	s, err := store.Open(ctx, cfg.path(cfg.Database), opts...)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", cfg.path(cfg.Database), err)
	}
	if err := s.Writable(); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// isLoopback reports whether addr's host is a loopback name or address.
func isLoopback(addr string) bool {
	host := addr
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		host = strings.Trim(addr[:i], "[]")
	}
	switch host {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return strings.HasPrefix(host, "127.")
}

var errNotLoopback = errors.New("refusing to listen beyond loopback while auth.anonymous is set: " +
	"every client that sends no token would get that identity; remove auth.anonymous to require tokens, " +
	"or bind to 127.0.0.1")

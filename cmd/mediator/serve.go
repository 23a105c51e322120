package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/mcp-mediator/mediator/mediator/claudecode"
	"io"
	"net"
	"net/http"
	"time"
)

// newFlags makes a FlagSet whose --help prints to out and returns errHelp.
// maxHTTPHeaderBytes is net/http's hard cap on the agent listener; requests
// above it are answered 431 by Go before the gate sees them.
const maxHTTPHeaderBytes = 1 << 20

func newFlags(name, synopsis string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: mediator %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// commonFlags are --config and --db, shared by serve and stdio.
type commonFlags struct {
	config, db string
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "", "config file (default: the embedded default)")
	fs.StringVar(&c.db, "db", "", "SQLite database file (overrides database: in the config)")
}

func (c *commonFlags) load(e env) (*Config, error) {
	cfg, err := LoadConfig(c.config, e.lookup)
	if err != nil {
		return nil, err
	}
	if c.db != "" {
		cfg.Database = c.db
		cfg.dbGiven = true
	}
	return cfg, nil
}

func cmdServe(ctx context.Context, args []string, e env) error {
	fs := newFlags("serve", "serve [--config FILE] [--listen ADDR] [--admin-listen ADDR] [--db FILE]", e.stderr)
	var cf commonFlags
	cf.register(fs)
	listen := fs.String("listen", "", "agent-facing address (overrides listen: in the config)")
	adminListen := fs.String("admin-listen", "", "admin API address, loopback only, or off (overrides admin.listen)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := cf.load(e)
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if err := cfg.Admin.override(*adminListen); err != nil {
		return &exitError{code: 2, err: err}
	}
	if cfg.Auth.Anonymous != nil && !isLoopback(cfg.Listen) {
		return fmt.Errorf("listen %s: %w", cfg.Listen, errNotLoopback)
	}
	if err := cfg.Metrics.resolve(e.lookup); err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, e)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.startShipping(ctx); err != nil { // serve ships, stdio instances do not
		return err
	}
	stopMetrics, err := a.startMetrics(a.log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	stopDebug, err := startDebug(ctx, cfg.Debug, a.log, a.store)
	if err != nil {
		return err
	}
	defer stopDebug()
	stopAdmin, err := a.startAdmin(ctx, e) // also restores registered upstreams
	if err != nil {
		return err
	}
	defer stopAdmin()
	defer a.pol.reloadOnSIGHUP()() // SIGHUP reloads the policy files
	defer a.startLocal(ctx)()      // mediator stdio attaches here
	return a.serveHTTP(ctx)
}

// serveHTTP serves until ctx ends, then shuts down gracefully: stop
// accepting, let in-flight calls finish within the grace period; the caller
// then stops upstreams and flushes the audit log.
func (a *app) serveHTTP(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.Handle("/mcp", a.srv.HTTPHandler("/mcp"))
	mux.Handle(claudeHookPath, claudecode.Handler(a.srv))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	if err := a.mountApprovals(ctx, mux); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Go's own cap sits well above limits.max_header_bytes, so that the
	// gate, not net/http, refuses (and records) an oversize header.
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: maxHTTPHeaderBytes,
		IdleTimeout: 2 * time.Minute}
	// Where this server's state lives: the management commands act on the
	// same only with the same --config.
	a.log.Info("serving agents", "url", "http://"+ln.Addr().String()+"/mcp", "config", a.cfg.source(),
		"database", a.cfg.absPath(a.cfg.Database), "key", a.cfg.absPath(a.cfg.Auth.KeyFile))
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("shutting down: finishing in-flight calls", "grace", a.cfg.Limits.ShutdownGrace)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Limits.ShutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		a.log.Warn("grace period over; closing remaining connections", "err", err)
		_ = hs.Close()
	}
	return nil
}

func (a *app) readyz(w http.ResponseWriter, r *http.Request) {
	var problems []string
	if err := a.store.Ping(r.Context()); err != nil {
		problems = append(problems, "store: "+err.Error())
	}
	if err := a.reg.Ready(); err != nil {
		problems = append(problems, "upstreams: "+err.Error())
	}
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, p := range problems {
			_, _ = io.WriteString(w, p+"\n")
		}
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

func cmdStdio(ctx context.Context, args []string, e env) error {
	fs := newFlags("stdio", "stdio [--config FILE] [--db FILE] [--attach auto|always|never]", e.stderr)
	var cf commonFlags
	cf.register(fs)
	attach := fs.String("attach", "auto", "auto: relay to a serve running with the same config and database, else open the database; always: only relay; never: open the database")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch *attach {
	case "auto", "always", "never":
	default:
		return &exitError{code: 2, err: fmt.Errorf("stdio --attach %q: use auto, always or never", *attach)}
	}
	cfg, err := cf.load(e)
	if err != nil {
		return err
	}
	log, closeLog, err := newLogger(cfg.Log, e.stderr)
	if err != nil {
		return err
	}
	attached, err := attachStdio(ctx, cfg, e, *attach, log)
	_ = closeLog()
	if err != nil {
		return fmt.Errorf("stdio: %w", err)
	}
	if attached {
		return nil
	}
	cfg.Auth.stdio = true // one local agent: the agent: identity, no tokens
	a, err := openApp(ctx, cfg, e)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.restoreUpstreams(ctx, e); err != nil {
		return err
	}
	stopDebug, err := startDebug(ctx, cfg.Debug, a.log, a.store)
	if err != nil {
		return err
	}
	defer stopDebug()
	a.log.Info("serving one agent over stdio", "agent", cfg.Agent.ID)
	err = a.srv.ServeStdio(ctx, e.stdin, e.stdout)
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("stdio: %w", err)
	}
	return nil
}

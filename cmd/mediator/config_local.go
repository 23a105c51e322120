package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/mediator/local"
)

// LocalConfig is serve's local socket: `mediator stdio` processes started
// with the same config and database relay their agents to the running
// serve through it, so that one process owns policy, behaviour state,
// approvals and the audit chain, and one writer writes the database.
type LocalConfig struct {
	// Socket is the Unix socket's path: empty for the database's path
	// with ".sock" appended, "off" for none (every stdio mediator then
	// opens the database itself).
	Socket string `yaml:"socket"`
}

func (l LocalConfig) validate() []error {
	if l.Socket != "" && l.Socket != "off" && len(l.Socket) > local.MaxSocketPath {
		return []error{fmt.Errorf("local.socket: %d bytes, longer than a Unix socket path may be (%d); use a shorter path", len(l.Socket), local.MaxSocketPath)}
	}
	return nil
}

// localSocket is the local socket's path, "" when off.
func (c *Config) localSocket() string {
	switch c.Local.Socket {
	case "off":
		return ""
	case "":
		if strings.Contains(c.Database, "://") {
			return ""
		}
		return c.absPath(c.Database) + ".sock"
	}
	return c.absPath(c.Local.Socket)
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// hello is what this serve tells a stdio mediator probing its socket.
func (c *Config) hello() local.Hello {
	return local.Hello{PID: os.Getpid(), Version: versionLine(), Config: c.file, ConfigDigest: c.digest,
		Database: c.absPath(c.Database), MaxRequestBytes: c.Limits.MaxRequestBytes}
}

// sameServe says why a probed serve is not one this stdio mediator may
// attach to ("" if it is): it must run the same config file, as this
// process read it, on the same database.
func (c *Config) sameServe(h *local.Hello) string {
	switch {
	case h.Database != c.absPath(c.Database):
		return fmt.Sprintf("it serves database %s, not %s", h.Database, c.absPath(c.Database))
	case h.Config != c.file:
		return fmt.Sprintf("it runs config %q, this process %q (%s)", h.Config, c.file, c.source())
	case h.ConfigDigest != c.digest:
		return fmt.Sprintf("config %s changed since the serve (pid %d) loaded it; restart the serve", c.source(), h.PID)
	}
	return ""
}

// startLocal serves the local socket until ctx ends or stop is called;
// both let its in-flight calls finish within the shutdown grace. A socket that cannot be
// served is said, not fatal: stdio mediators then open the database.
func (a *app) startLocal(ctx context.Context) (stop func()) {
	path := a.cfg.localSocket()
	if path == "" {
		a.log.Info("no local socket (local.socket: off, or a database that is not a file): every mediator stdio opens the database itself")
		return func() {}
	}
	ln, err := local.Listen(path)
	if err != nil {
		a.log.Warn("mediator stdio cannot attach to this serve; each opens the database itself", "err", err)
		return func() {}
	}
	mux := http.NewServeMux()
	mux.Handle(local.MCPPath, a.srv.LocalHandler(local.MCPPath, local.SameUser))
	hello := local.HelloHandler(a.cfg.hello())
	mux.HandleFunc("GET "+local.HelloPath, func(w http.ResponseWriter, r *http.Request) {
		if err := local.SameUser(r); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		hello.ServeHTTP(w, r)
	})
	hs := &http.Server{Handler: mux, ConnContext: local.ConnContext, ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes: maxHTTPHeaderBytes}
	a.log.Info("mediator stdio with this config attaches here", "socket", path)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("local socket", "err", err)
		}
	}()
	shutdown := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Limits.ShutdownGrace)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			_ = hs.Close()
		}
	}
	// Shut down with the agents' HTTP listener, not after it.
	go func() {
		select {
		case <-ctx.Done():
			shutdown()
		case <-done:
		}
	}()
	// Also when serve ends for another reason (its address taken): the
	// stop must not wait for a ctx that never ends.
	return func() {
		shutdown()
		<-done
	}
}

// attachStdio relays this stdio agent to a running serve on the same
// database when there is one (attach "auto" or "always"). It reports
// whether it did; false with a nil error means: open the database.
func attachStdio(ctx context.Context, cfg *Config, e env, attach string, log *slog.Logger) (bool, error) {
	if attach == "never" {
		log.Info("opening the database itself (--attach never)", "database", cfg.absPath(cfg.Database))
		return false, nil
	}
	path := cfg.localSocket()
	reason := "local.socket is off"
	if path != "" {
		h, err := local.Probe(ctx, path)
		if err == nil {
			reason = cfg.sameServe(h)
			if reason == "" {
				log.Info("attached to the running serve: it mediates and records this agent's calls",
					"socket", path, "serve_pid", h.PID, "database", h.Database, "config", cfg.source())
				b := &local.Bridge{Socket: path, In: e.stdin, Out: e.stdout, Log: log, MaxLine: int(h.MaxRequestBytes)}
				if err := b.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
					return true, err
				}
				return true, nil
			}
			reason = fmt.Sprintf("the serve on %s is not this config's: %s", path, reason)
		} else {
			reason = err.Error()
		}
	}
	if attach == "always" {
		return false, fmt.Errorf("stdio --attach always: %s; start mediator serve with the same --config and --db, or use --attach auto", reason)
	}
	log.Info("no serve to attach to: opening the database itself", "database", cfg.absPath(cfg.Database), "reason", reason)
	return false, nil
}

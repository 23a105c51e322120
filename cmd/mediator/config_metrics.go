package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/mediator/metrics"
)

// MetricsConfig is the Prometheus endpoint of serve: GET /metrics on a
// listener of its own. Off unless Listen is set; an address that is not
// loopback needs a bearer token (TokenEnv names the variable holding it,
// so that the token is not in the config file).
type MetricsConfig struct {
	// Listen is the address, e.g. 127.0.0.1:9464; empty turns it off.
	Listen string `yaml:"listen"`
	// TokenEnv names the environment variable whose value scrapers must
	// send as "Authorization: Bearer <token>" (empty: none needed).
	TokenEnv string `yaml:"token_env"`

	token string // read from TokenEnv at load
}

// validate names the key and the fix; the other listeners must differ.
func (m MetricsConfig) validate(others ...string) []error {
	if m.Listen == "" {
		if m.TokenEnv != "" {
			return []error{errors.New("metrics.token_env: set but metrics.listen is empty; set metrics.listen (e.g. 127.0.0.1:9464) or remove token_env")}
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(m.Listen); err != nil {
		return []error{fmt.Errorf("metrics.listen: %q is not host:port (e.g. 127.0.0.1:9464)", m.Listen)}
	}
	var errs []error
	for _, o := range others {
		if o != "" && o == m.Listen {
			errs = append(errs, fmt.Errorf("metrics.listen: %q is also used by another listener of the mediator; use its own port", m.Listen))
		}
	}
	if !isLoopback(m.Listen) && m.TokenEnv == "" {
		errs = append(errs, fmt.Errorf("metrics.listen: %q is not a loopback address and no token is set; "+
			"set metrics.token_env to a variable holding a bearer token, or bind to 127.0.0.1", m.Listen))
	}
	return errs
}

// resolve reads the token from the environment.
func (m *MetricsConfig) resolve(lookup func(string) (string, bool)) error {
	if m.Listen == "" || m.TokenEnv == "" {
		return nil
	}
	v, ok := lookup(m.TokenEnv)
	if !ok || v == "" {
		return fmt.Errorf("metrics.token_env: the environment variable %s is not set (or empty); set it to the bearer token scrapers send", m.TokenEnv)
	}
	m.token = v
	return nil
}

// newMetrics builds the registry over the app's parts (nil when off, or
// for mediator stdio, which serves no listener of its own).
func (a *app) newMetrics() *metrics.Metrics {
	if a.cfg.Metrics.Listen == "" || a.cfg.Auth.stdio {
		return nil
	}
	src := metrics.Sources{
		Approvals: a.store.ApprovalCounts,
		Audit: func() (int64, int64) {
			s := a.store.WriterStats()
			return s.Records, s.Commits
		},
		Upstreams: func() []mediator.ServerState { return a.reg.Catalog().Servers },
		Restarts:  a.reg.Restarts,
		Version:   version,
	}
	if a.behave != nil {
		src.Trust = a.behave.TrustCounts
	}
	return metrics.New(src)
}

// telemetry is the chain's Telemetry (nil when metrics are off: a nil
// *Metrics in the interface would not be nil).
func (a *app) telemetry() mediator.Telemetry {
	if a.metrics == nil {
		return nil
	}
	return a.metrics
}

// startMetrics serves /metrics until the returned function is called. The
// listener is opened before it returns: a port in use fails the start.
func (a *app) startMetrics(log *slog.Logger) (stop func(), err error) {
	if a.metrics == nil {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", a.cfg.Metrics.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.Handler(a.cfg.Metrics.token, log))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	log.Info("metrics endpoint", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}, nil
}

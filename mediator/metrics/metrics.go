// Package metrics exposes the mediator's Prometheus metrics: what the chain
// decided and how long each step took (as a mediator.Telemetry), and what
// the rest of the mediator holds at scrape time (approvals, the audit
// writer, upstreams, trust levels), with the Go runtime and process
// collectors and mediator_build_info.
//
// Label sets are bounded: method is one of the mediator's MCP methods or
// "other", tool is a catalog name or "" (an unknown name an agent sends
// creates no series), and past MaxSeries label sets of calls the tool and
// rule labels fold into "_other".
package metrics

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcp-mediator/mediator/mediator"
)

// MaxSeries bounds the label sets of mediator_calls_total; later ones
// fold tool and rule into "_other".
const MaxSeries = 5000

// Sources are what the metrics read at scrape time; a nil field leaves its
// metrics out.
type Sources struct {
	// Approvals counts approvals by state.
	Approvals func(ctx context.Context) (map[mediator.ApprovalState]int, error)
	// Audit returns the audit writer's totals: records written and
	// commits (their ratio is the mean group size).
	Audit func() (records, commits int64)
	// Upstreams are the upstreams and their state.
	Upstreams func() []mediator.ServerState
	// Restarts counts each upstream's lost and restarted connections.
	Restarts func() map[string]int64
	// Trust counts agents by trust level.
	Trust func() map[mediator.TrustLevel]int
	// Version is the mediator's version string.
	Version string
}

// Metrics is a Prometheus registry of the mediator's metrics, and the
// mediator.Telemetry that feeds the chain's part of it.
type Metrics struct {
	reg      *prometheus.Registry
	calls    *prometheus.CounterVec
	callDur  *prometheus.HistogramVec
	steps    map[mediator.StepName]prometheus.Observer
	authFail *prometheus.CounterVec

	series  sync.Map // callKey -> prometheus.Counter
	nSeries atomic.Int64
}

var _ mediator.Telemetry = (*Metrics)(nil)

// Buckets of the latency histograms, in seconds: 50 µs to 60 s (an
// approval wait is long, a policy check short).
var latencyBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// New builds the registry over src.
func New(src Sources) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediator_calls_total",
			Help: "Calls through the mediation chain, by MCP method, upstream, catalog tool, decision, matched rule and outcome.",
		}, []string{"method", "upstream", "tool", "decision", "rule", "outcome"}),
		callDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mediator_call_duration_seconds",
			Help:    "Time from a call entering the chain to its record being durable, by method and outcome.",
			Buckets: latencyBuckets,
		}, []string{"method", "outcome"}),
		authFail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediator_auth_failures_total",
			Help: "Credentials refused, by reason (expired, revoked, signature, unknown_key, no_token, ...).",
		}, []string{"reason"}),
	}
	stepDur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mediator_step_duration_seconds",
		Help:    "Time spent in one step of the chain alone: authenticate, intent, behaviour, policy, approval (the wait for a human), forward (the upstream), record (until the record is durable).",
		Buckets: latencyBuckets,
	}, []string{"step"})
	m.steps = make(map[mediator.StepName]prometheus.Observer, len(mediator.Steps))
	for _, s := range mediator.Steps {
		m.steps[s] = stepDur.WithLabelValues(string(s))
	}
	m.reg.MustRegister(m.calls, m.callDur, stepDur, m.authFail,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(src.Version), &state{src: src})
	return m
}

// Registry returns the registry, for tests and for adding metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Step implements mediator.Telemetry.
func (m *Metrics) Step(_ context.Context, _ *mediator.Call, step mediator.StepName, d time.Duration) {
	if o, ok := m.steps[step]; ok {
		o.Observe(d.Seconds())
	}
}

type callKey struct {
	method, upstream, tool, decision, rule, outcome string
}

// Call implements mediator.Telemetry.
// A denial that no rule made (a refused credential, a quarantined tool,
// an intent check that failed) is labelled rule="mediator:<error code>",
// so that a dashboard of denials by rule says what refused it.
func (m *Metrics) Call(_ context.Context, c *mediator.Call, rec *mediator.ChainRecord, d time.Duration, callErr, recordErr error) {
	method := methodLabel(rec.Method)
	outcome := string(rec.Outcome)
	if recordErr != nil {
		outcome = "record_failed"
	}
	k := callKey{method: method, upstream: rec.Server, decision: string(rec.Decision.Effect), rule: rec.Decision.Rule, outcome: outcome}
	if k.rule == "" && rec.Decision.Effect == mediator.EffectDeny {
		code := "denied"
		if callErr != nil {
			code = mediator.ErrorCode(callErr) // a fixed set of codes
		}
		k.rule = "mediator:" + code
	}
	if c.Target != nil && c.Target.Kind != mediator.KindResource && c.Target.Kind != mediator.KindProtocol {
		k.tool = c.Target.Name // a catalog name: the agent's unknown names resolve to no target
	}
	if k.decision == "" {
		k.decision = "none"
	}
	m.counter(k).Inc()
	m.callDur.WithLabelValues(method, outcome).Observe(d.Seconds())
}

// counter returns the counter of k, folding tool and rule into "_other"
// once MaxSeries label sets exist.
func (m *Metrics) counter(k callKey) prometheus.Counter {
	if c, ok := m.series.Load(k); ok {
		return c.(prometheus.Counter)
	}
	if m.nSeries.Load() >= MaxSeries {
		k.tool, k.rule = "_other", "_other"
		if c, ok := m.series.Load(k); ok {
			return c.(prometheus.Counter)
		}
	}
	c := m.calls.WithLabelValues(k.method, k.upstream, k.tool, k.decision, k.rule, k.outcome)
	if _, loaded := m.series.LoadOrStore(k, c); !loaded {
		m.nSeries.Add(1)
	}
	return c
}

// AuthFailed implements mediator.Telemetry.
func (m *Metrics) AuthFailed(reason string) {
	if !validReason(reason) {
		reason = "other"
	}
	m.authFail.WithLabelValues(reason).Inc()
}

// validReason keeps the reason label to short lowercase words.
func validReason(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '_' {
			return false
		}
	}
	return true
}

// methodLabel is method when the mediator knows it, else "other".
func methodLabel(method string) string {
	switch {
	case mediator.IsKnownMethod(method), method == mediator.MethodToolUse, method == mediator.MethodToolOutcome:
		return method
	case strings.HasPrefix(method, "mediator/"):
		return method // the mediator's own records (supply, trust, ...): a fixed set
	}
	return "other"
}

// buildInfo is mediator_build_info: always 1, its labels the version, the
// VCS revision and time, and the Go version of the binary.
func buildInfo(version string) prometheus.Collector {
	revision, built, goVersion := "unknown", "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.time":
				built = s.Value
			}
		}
		if version == "" {
			version = bi.Main.Version
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "mediator_build_info",
		Help:        "The mediator's build: always 1; labels version, revision (VCS), build_time (VCS commit time) and goversion.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "build_time": built, "goversion": goVersion},
	})
	g.Set(1)
	return g
}

// Handler serves the registry in the Prometheus text format. With a
// non-empty token it requires "Authorization: Bearer <token>".
func (m *Metrics) Handler(token string, log *slog.Logger) http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slogAdapter{log}, ErrorHandling: promhttp.ContinueOnError})
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mediator metrics"`)
			http.Error(w, "unauthorized: send Authorization: Bearer <metrics.token>", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Println(v ...any) {
	if a.log != nil {
		a.log.Warn("metrics: scrape error", "err", fmt.Sprint(v...))
	}
}

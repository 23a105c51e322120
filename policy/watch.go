package policy

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// Watcher reloads a policy when its files change: it reads the model,
// policy and cases files about every second and, when their content
// differs from what it last tried, loads them with Engine.LoadFiles. A
// version that fails to parse or fails its cases is rejected and logged;
// the policy in force stays. Polling needs no file-system notification
// support and survives editors that replace files.
type Watcher struct {
	e                                *Engine
	log                              *slog.Logger
	modelPath, policyPath, casesPath string
	interval                         time.Duration

	mu      sync.Mutex
	last    [32]byte // content last tried, installed or rejected
	lastErr string   // last read error logged, to log each once
	rec     mediator.Recorder
}

// ReloadMethod is the method of the audit record of a rejected policy
// reload.
const ReloadMethod = "policy/reload"

// SetRecorder makes every rejected reload (unreadable files, a policy that
// does not load or fails its cases) an audit record as well as a log line,
// so that an attempt to change the policy in force leaves a trace in the
// chain. Set it before Run.
func (w *Watcher) SetRecorder(r mediator.Recorder) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rec = r
}

// WatchOption configures a Watcher.
type WatchOption func(*Watcher)

// WithInterval sets how often the files are read (default 1s).
func WithInterval(d time.Duration) WatchOption { return func(w *Watcher) { w.interval = d } }

// NewWatcher watches the files f was read from; f is the version in force,
// so that only a change triggers a reload.
func NewWatcher(e *Engine, f Files, opts ...WatchOption) *Watcher {
	w := &Watcher{e: e, log: e.log, modelPath: f.ModelPath, policyPath: f.PolicyPath, casesPath: f.CasesPath,
		interval: time.Second, last: f.hash()}
	for _, o := range opts {
		o(w)
	}
	return w
}

// Run polls until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = w.check(false)
		}
	}
}

// Reload reads and loads the files now, even if they did not change (for
// SIGHUP and `policy reload`). It reports whether a new version was put in
// force; on error the old policy stays.
func (w *Watcher) Reload() (bool, error) { return w.check(true) }

func (w *Watcher) check(force bool) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f, err := ReadFiles(w.modelPath, w.policyPath, w.casesPath)
	if err != nil {
		if msg := err.Error(); force || msg != w.lastErr {
			w.lastErr = msg
			w.log.Error("policy reload failed; the old policy stays in force", "err", err)
			w.recordRejection("policy files unreadable", err)
		}
		return false, err
	}
	w.lastErr = ""
	sum := f.hash()
	if sum == w.last && !force {
		return false, nil
	}
	w.last = sum
	before := w.e.Version()
	if err := w.e.LoadFiles(f); err != nil {
		w.log.Error("policy rejected; the old policy stays in force", "policy", w.policyPath, "version", before, "err", err)
		w.recordRejection("policy rejected", err)
		return false, err
	}
	return w.e.Version() != before, nil
}

// recordRejection appends a denied policy/reload record naming the files,
// the version that stays in force and why. Called with w.mu held. The
// policy in force is unchanged whatever happens here, so a failure to
// record is logged, not returned.
func (w *Watcher) recordRejection(what string, cause error) {
	if w.rec == nil {
		return
	}
	version := w.e.Version()
	args, _ := json.Marshal(map[string]string{"model": w.modelPath, "policy": w.policyPath, "cases": w.casesPath,
		"version_in_force": version})
	r := mediator.ChainRecord{Time: time.Now(), Method: ReloadMethod, Kind: mediator.KindProtocol, Name: w.policyPath,
		Arguments: args, Outcome: mediator.OutcomeDenied, Error: cause.Error(),
		Decision: mediator.Decision{Effect: mediator.EffectDeny, Rule: "policy.reload", PolicyVersion: version,
			Reason: what + "; the old policy (version " + version + ") stays in force: fix the files and reload"}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.rec.Record(ctx, r); err != nil {
		w.log.Error("recording a rejected policy reload failed", "err", err)
	}
}

package policy

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// syncBuffer is a log sink safe for the watcher's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// policyDir copies the example model, policy and cases into a temp dir.
func policyDir(t *testing.T) (dir string, f Files) {
	t.Helper()
	dir = t.TempDir()
	for _, p := range []string{exampleModel, examplePolicy, exampleCases} {
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), []byte(readText(t, p)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f, err := ReadFiles(filepath.Join(dir, "model.conf"), filepath.Join(dir, "policy.csv"), filepath.Join(dir, "cases.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, f
}

func TestWatcherReloads(t *testing.T) {
	t.Parallel()
	echo := mediator.AuthzRequest{Agent: quickstart, Target: demoTool("echo", mediator.DataPublic, true)}
	cases := []struct {
		name     string
		edit     func(policy string) string
		effect   mediator.Effect
		replaced bool
		logged   string
	}{
		{"a valid change is put in force", func(p string) string { return p + "p, role:tester, tool, demo__*, allow, testers\n" },
			mediator.EffectAllow, true, "policy loaded"},
		{"a broken policy is rejected", func(p string) string { return p + "p, *, tool, a\"b, allow, x\n" },
			mediator.EffectAllow, false, "policy rejected; the old policy stays in force"},
		{"a policy failing its cases is rejected", func(p string) string {
			return strings.Replace(p, "p, *, tool, demo__echo, allow, echo", "p, *, tool, demo__echo, deny, echo", 1)
		}, mediator.EffectAllow, false, "policy test cases failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, f := policyDir(t)
			var logs syncBuffer
			e, err := NewFromFiles(f, WithEnv(utcEnv()), WithClock(func() time.Time { return tuesday10 }),
				WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			if err != nil {
				t.Fatal(err)
			}
			before := e.Version()
			w := NewWatcher(e, f, WithInterval(10*time.Millisecond))
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go w.Run(ctx)
			path := filepath.Join(dir, "policy.csv")
			if err := os.WriteFile(path, []byte(tc.edit(readText(t, path))), 0o600); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool {
				return (e.Version() != before) == tc.replaced && (tc.logged == "" || strings.Contains(logs.String(), tc.logged))
			})
			d, err := e.Decide(t.Context(), echo)
			if err != nil || d.Effect != tc.effect {
				t.Fatalf("after the edit: %+v, %v", d, err)
			}
		})
	}
}

// Reload (SIGHUP) reloads on demand and reports whether anything changed;
// a missing file is an error and the old policy stays.
func TestWatcherReloadOnDemand(t *testing.T) {
	t.Parallel()
	dir, f := policyDir(t)
	e, err := NewFromFiles(f, WithEnv(utcEnv()))
	if err != nil {
		t.Fatal(err)
	}
	w := NewWatcher(e, f)
	if changed, err := w.Reload(); err != nil || changed {
		t.Fatalf("reload of unchanged files: changed=%v err=%v", changed, err)
	}
	if err := os.Remove(filepath.Join(dir, "cases.yaml")); err != nil {
		t.Fatal(err)
	}
	before := e.Version()
	if _, err := w.Reload(); err == nil || e.Version() != before {
		t.Fatalf("reload without the cases file: err=%v, version %s→%s", err, before, e.Version())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recorderFunc is a mediator.Recorder made of a function.
type recorderFunc func(context.Context, mediator.ChainRecord) error

func (f recorderFunc) Record(ctx context.Context, r mediator.ChainRecord) error { return f(ctx, r) }

// Every rejected reload is an audit record naming the version that stays
// in force; an accepted one is not a rejection.
func TestWatcherRecordsRejections(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		edit  func(dir string) error
		cause string
	}{
		{"unparseable policy", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "policy.csv"), []byte("p, *, tool, a\"b, allow, x\n"), 0o600)
		}, "policy rejected"},
		{"missing cases file", func(dir string) error { return os.Remove(filepath.Join(dir, "cases.yaml")) },
			"policy files unreadable"},
		{"accepted change", func(dir string) error {
			path := filepath.Join(dir, "policy.csv")
			return os.WriteFile(path, []byte(readText(t, path)+"p, role:tester, tool, demo__*, allow, testers\n"), 0o600)
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, f := policyDir(t)
			e, err := NewFromFiles(f, WithEnv(utcEnv()), WithClock(func() time.Time { return tuesday10 }))
			if err != nil {
				t.Fatal(err)
			}
			before := e.Version()
			var got []mediator.ChainRecord
			w := NewWatcher(e, f)
			w.SetRecorder(recorderFunc(func(_ context.Context, r mediator.ChainRecord) error {
				got = append(got, r)
				return nil
			}))
			if err := tc.edit(dir); err != nil {
				t.Fatal(err)
			}
			_, rerr := w.Reload()
			if tc.cause == "" {
				if rerr != nil || len(got) != 0 {
					t.Fatalf("accepted reload: err %v, %d records; want none", rerr, len(got))
				}
				return
			}
			if rerr == nil || len(got) != 1 {
				t.Fatalf("rejected reload: err %v, %d records; want an error and one record", rerr, len(got))
			}
			r := got[0]
			if r.Method != ReloadMethod || r.Decision.Effect != mediator.EffectDeny || r.Outcome != mediator.OutcomeDenied ||
				!strings.Contains(r.Decision.Reason, tc.cause) || !strings.Contains(r.Decision.Reason, before) ||
				r.Decision.PolicyVersion != before || r.Error == "" {
				t.Fatalf("record %+v; want a denied %s naming %q and version %s", r, ReloadMethod, tc.cause, before)
			}
		})
	}
}

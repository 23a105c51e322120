package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/store"
)

// Issue 12: kill -9 of serve at random points during 32-way load of calls
// that change things (the fake upstream's ledger appends and syncs each
// entry before it answers), 20 times on one database. After every kill,
// every entry the upstream executed is in the chain — as the forwarding
// record written before the call went out, or its outcome — and the chain
// verifies. Each restart records "outcome unknown" for the forwards the
// killed process left open, and audit verify lists them. Each round also
// leaves a call held for a human; no pending approval is lost to a kill:
// every one is still pending, with its arguments, after every round.
func TestE2EKillNineLeavesNoCallUnrecorded(t *testing.T) {
	t.Parallel()
	ledger := filepath.Join(t.TempDir(), "ledger.txt")
	cfg := policyFragment(t, "p, *, tool, fake__echo, approve, echo-needs-a-human\np, *, tool, fake__*, allow, fake-all\n") + `
agent: {id: e2e-agent}
auth: {anonymous: {id: e2e-agent}}
approvals: {hold: 200ms}
upstreams:
  - name: fake
    command: ` + buildTool(t, "tools/testdata/fakeupstream") + "\n"
	pending := map[string]string{} // approval id → the text it holds
	var dir string
	rounds, executed, unknown := 20, 0, 0
	rng := rand.New(rand.NewPCG(12, 9))
	for round := range rounds {
		p := startServeIn(t, dir, cfg)
		dir = p.Dir
		held := httpClient(t, p.URL)
		text := fmt.Sprintf("held in round %d", round)
		id, _ := pendingMeta(t, callTool(t, held, "fake__echo", map[string]any{"text": text}))
		pending[id] = text
		var sent atomic.Int64
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		for w := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := rawClient(ctx, p.URL)
				if err != nil {
					return // the kill came first
				}
				defer c.Close()
				for k := 0; ctx.Err() == nil; k++ {
					req := mcp.CallToolRequest{}
					req.Params.Name = "fake__ledger"
					req.Params.Arguments = map[string]any{"file": ledger, "entry": fmt.Sprintf("r%02d-w%02d-%04d", round, w, k)}
					sent.Add(1)
					if _, err := c.CallTool(ctx, req); err != nil {
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(150+rng.IntN(850)) * time.Millisecond)
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-p.done
		cancel()
		wg.Wait()
		time.Sleep(300 * time.Millisecond) // the fake upstream sees stdin close and exits
		entries := readLedger(t, ledger)
		recorded := map[string]bool{}
		for _, r := range exportRecords(t, dir, p.DB) {
			var args struct{ Entry string }
			if r.Name == "fake__ledger" && json.Unmarshal(r.Arguments, &args) == nil && args.Entry != "" {
				recorded[args.Entry] = true
			}
		}
		var missing []string
		for _, e := range entries {
			if !recorded[e] {
				missing = append(missing, e)
			}
		}
		if len(missing) > 0 {
			t.Fatalf("round %d: %d calls the upstream executed have no record, e.g. %v", round, len(missing), missing[:min(5, len(missing))])
		}
		out, errOut, code := runMediator(t, dir, "audit", "verify", "--db", p.DB)
		if code != 0 || !strings.HasPrefix(out, "OK: ") {
			t.Fatalf("round %d: audit verify after kill -9: %d\n%s%s", round, code, out, errOut)
		}
		executed = len(entries)
		checkPending(t, round, p.DB, pending)
		if strings.Contains(out, "outcome unknown") {
			unknown++
		}
		t.Logf("round %d: %d calls sent, %d executed so far, all recorded", round, sent.Load(), executed)
	}
	// The last restart closes what the last kill left open.
	p := startServeIn(t, dir, cfg)
	p.stop(t)
	var unknowns, forwards, outcomes int
	for _, r := range exportRecords(t, dir, p.DB) {
		switch r.Outcome {
		case mediator.OutcomeUnknown:
			unknowns++
			if !strings.Contains(r.Error, "may have executed it") || r.Ref == "" {
				t.Errorf("outcome-unknown record %+v", r)
			}
		case mediator.OutcomeForwarding:
			forwards++
		default:
			if r.Ref != "" {
				outcomes++
			}
		}
	}
	if forwards != outcomes+unknowns {
		t.Errorf("%d forwarding records, %d outcomes and %d outcome-unknown records: every forward must be closed after a clean start",
			forwards, outcomes, unknowns)
	}
	out, _, _ := runMediator(t, dir, "audit", "verify", "--db", p.DB)
	if unknowns > 0 && !strings.Contains(out, fmt.Sprintf("outcome unknown: %d forwarded calls", unknowns)) {
		t.Errorf("audit verify does not list the %d calls of unknown outcome:\n%s", unknowns, out)
	}
	if executed == 0 {
		t.Fatal("no call reached the upstream in any round")
	}
	t.Logf("%d rounds: %d calls executed by the upstream, all recorded; %d forwards, %d outcomes, %d outcome unknown (%d rounds left some)",
		rounds, executed, forwards, outcomes, unknowns, unknown)
}

// checkPending fails unless every approval in want is still pending in the
// database at path, holding its text.
func checkPending(t *testing.T, round int, path string, want map[string]string) {
	t.Helper()
	st, err := store.Open(t.Context(), path, store.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	list, err := st.Approvals(t.Context(), mediator.ApprovalFilter{State: mediator.ApprovalPending, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]string{}
	for _, a := range list {
		var args struct{ Text string }
		_ = json.Unmarshal(a.Arguments, &args)
		have[a.ID] = args.Text
	}
	for id, text := range want {
		if got, ok := have[id]; !ok || got != text {
			t.Fatalf("round %d: approval %s (%q) is no longer pending after kill -9 (pending: %v)", round, id, text, have)
		}
	}
}

// rawClient is an initialized MCP client that reports errors instead of
// failing the test (the server is killed under it).
func rawClient(ctx context.Context, url string) (*client.Client, error) {
	tr, err := transport.NewStreamableHTTP(url)
	if err != nil {
		return nil, err
	}
	c := client.NewClient(tr)
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "crash", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

func readLedger(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

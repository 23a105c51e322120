package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mcp-mediator/mediator/mediator"
)

// Issue 18, item 4, with a client and a server nobody here wrote: the
// official TypeScript SDK's task client (callToolStream: tools/call with a
// task, tasks/get polling, tasks/result) calls server-everything's
// simulate-research-query, which the server requires as a task, directly
// and through the mediator over streamable HTTP and stdio. Through the
// mediator the agent's task is the mediator's and the upstream's task the
// mediator's own; what the client gets is the same report.
func TestInteropTSClientTasks(t *testing.T) {
	t.Parallel()
	k := requireNode(t)
	everything := k.bin(t, "mcp-server-everything")
	args := map[string]any{"topic": "tool-call mediation"}

	direct := k.runTaskClient(t, []toolCall{{"simulate-research-query", args}},
		"--stdio", "--", k.node, everything, "stdio").Calls[0]
	if direct.refused() || !strings.Contains(direct.text(), "# Research Report: tool-call mediation") {
		t.Fatalf("direct: %s, want the research report", direct)
	}

	cfg := fmt.Sprintf(`agent: {id: interop-agent}
auth: {anonymous: {id: interop-agent}}
%supstreams:
  - name: everything
    command: %s
    args: [%s, stdio]
`, writePolicy(t, "p, *, tool, everything__*, allow, everything-all"), yq(k.node), yq(everything))
	p := startServe(t, cfg)
	viaHTTP := k.runTaskClient(t, []toolCall{{"everything__simulate-research-query", args}}, "--url", p.URL).Calls[0]
	stdioDB := filepath.Join(p.Dir, "stdio.db")
	viaStdio := k.runTaskClient(t, []toolCall{{"everything__simulate-research-query", args}},
		"--stdio", "--", binary(t), "stdio", "--config", filepath.Join(p.Dir, "mediator.yaml"), "--db", stdioDB).Calls[0]

	for via, got := range map[string]callOut{"http": viaHTTP, "stdio": viaStdio} {
		if got.refused() || got.text() != direct.text() {
			t.Errorf("through the mediator over %s: %s\nwant the direct report:\n%s", via, got, direct.text())
		}
		if len(got.Statuses) == 0 || got.Statuses[0] != "working" || !slices.Contains(got.Statuses, "completed") {
			t.Errorf("through the mediator over %s: statuses %v, want working first and completed", via, got.Statuses)
		}
	}
	// The client's task is the call's audit record.
	found := false
	for _, r := range exportRecords(t, p.Dir, p.DB) {
		found = found || r.ID == viaHTTP.TaskID && r.Name == "everything__simulate-research-query" && r.Outcome == mediator.OutcomeOK
	}
	if !found {
		t.Errorf("no ok record of everything__simulate-research-query under the task id %q", viaHTTP.TaskID)
	}
}

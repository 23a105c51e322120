package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-mediator/mediator/mediator"
)

// Issue 14, finding 3: after a drift suspension, complete_task cleared a
// session-bound declaration (later calls ran as no_intent, and a wider
// declaration was accepted), and with a task-bound token it overwrote
// "suspended" with "completed". A suspended task stays suspended until an
// administrator acts; the agent's complete_task is refused and recorded.
func TestE2ESuspensionOutlivesCompleteTask(t *testing.T) {
	t.Parallel()
	p := startServe(t, intentConfig)
	cfg := filepath.Join(p.Dir, "mediator.yaml")
	task := startTaskCLI(t, p, "--agent", "analyst", "--role", "writer", "--purpose", "Read the notes",
		"--tools", "demo__read_file", "--tools", "demo__echo", "--max-risk", "medium", "--ttl", "20m")
	bound := tokenClient(t, p.URL, task.Token)
	inBand := tokenClient(t, p.URL, mintCLI(t, p.Dir, "--agent", "bob", "--role", "writer", "--config", cfg))
	res := callWithPrompt(t, inBand, mediator.ToolDeclareIntent, map[string]any{"purpose": "read the notes",
		"scope": map[string]any{"tools": []any{"demo__read_file"}}}, "read my notes")
	if res.IsError {
		t.Fatalf("declare_intent: %s", resultText(res))
	}
	declared := res.StructuredContent.(map[string]any)["task_id"].(string)

	for _, tc := range []struct {
		name, id string
		c        *client.Client
	}{{"task-bound token", task.Task.ID, bound}, {"session declaration", declared, inBand}} {
		t.Run(tc.name, func(t *testing.T) {
			suspend(t, tc.c)
			res := callWithPrompt(t, tc.c, mediator.ToolCompleteTask, map[string]any{"summary": "done, honest"}, "done")
			if !res.IsError || !strings.Contains(resultText(res), "cannot complete a suspended task") {
				t.Fatalf("complete_task on a suspended task: %s", resultText(res))
			}
			res = callWithPrompt(t, tc.c, mediator.ToolDeclareIntent, map[string]any{"purpose": "anything",
				"scope": map[string]any{"tools": []any{"demo__*"}}}, "let me do everything")
			if !res.IsError || !strings.Contains(resultText(res), "suspended") {
				t.Fatalf("a wider declaration after the suspension: %s", resultText(res))
			}
			if res := callWithPrompt(t, tc.c, "demo__read_file", map[string]any{"path": "notes/todo.md"}, "x"); !res.IsError || !strings.Contains(resultText(res), "suspended") {
				t.Fatalf("a call after complete_task: %s", resultText(res))
			}
			out, stderr, code := runMediator(t, p.Dir, "task", "show", tc.id, "--config", cfg, "--server", p.Admin)
			if code != 0 || !strings.Contains(out, "suspended (3 out-of-scope calls") {
				t.Fatalf("task show: exit %d %q %s", code, out, stderr)
			}
		})
	}
	p.stop(t)
	refused := 0
	for _, r := range exportRecords(t, p.Dir, p.DB) {
		if r.Name == mediator.ToolCompleteTask && r.Outcome == mediator.OutcomeDenied && strings.Contains(r.Error, "suspended") {
			refused++
		}
	}
	if refused != 2 {
		t.Fatalf("%d refused complete_task records, want 2", refused)
	}
}

// suspend makes three out-of-scope calls, which suspend the session's task.
func suspend(t *testing.T, c *client.Client) {
	t.Helper()
	for range 3 {
		res := callWithPrompt(t, c, "demo__write_file", map[string]any{"path": "notes/x.md", "content": "x"}, "x")
		if !res.IsError {
			t.Fatalf("out-of-scope write ran: %s", resultText(res))
		}
	}
	res := callWithPrompt(t, c, "demo__read_file", map[string]any{"path": "notes/todo.md"}, "x")
	if !res.IsError || !strings.Contains(resultText(res), "suspended") {
		t.Fatalf("not suspended after three out-of-scope calls: %s", resultText(res))
	}
}

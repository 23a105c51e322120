package mediator

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// rpcCode is the JSON-RPC code an error of the board carries (0: none).
func rpcCode(err error) int {
	var own *ownRPCError
	if errors.As(err, &own) {
		return own.rpc.Code
	}
	return 0
}

func TestTaskBoardBounds(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ms := func(d time.Duration) *int64 { v := d.Milliseconds(); return &v }
	tests := []struct {
		name string
		run  func(t *testing.T, b *taskBoard)
	}{
		{"ttl is capped at an hour and given when absent", func(t *testing.T, b *taskBoard) {
			for _, tc := range []struct {
				ttl  *int64
				want time.Duration
			}{{nil, taskTTLMax}, {ms(time.Minute), time.Minute}, {ms(48 * time.Hour), taskTTLMax}, {ms(-5), taskTTLMax}} {
				tk, err := b.create(fmt.Sprint(tc.ttl, tc.want), "a", "tool", taskTTL(tc.ttl), func() {}, t0)
				if err != nil || tk.ttl != tc.want {
					t.Errorf("ttl %v: %v %v, want %s", tc.ttl, tk, err, tc.want)
				}
			}
		}},
		{"an agent's cap counts unfinished tasks; its oldest finished one makes room", func(t *testing.T, b *taskBoard) {
			b.perAgent = 2
			first, _ := b.create("1", "a", "tool", taskTTL(nil), func() {}, t0)
			if _, err := b.create("2", "a", "tool", taskTTL(nil), func() {}, t0.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := b.create("3", "a", "tool", taskTTL(nil), func() {}, t0.Add(2*time.Second)); rpcCode(err) != mcp.INVALID_REQUEST || !strings.Contains(err.Error(), "2 unfinished tasks") {
				t.Fatalf("a third unfinished task: %v, want -32600 naming the cap", err)
			}
			if _, err := b.create("x", "other", "tool", taskTTL(nil), func() {}, t0); err != nil {
				t.Fatalf("another agent is not held by a's cap: %v", err)
			}
			b.finish(first, mcp.TaskStatusCompleted, "done", []byte(`{}`), nil, t0)
			if _, err := b.create("3", "a", "tool", taskTTL(nil), func() {}, t0.Add(3*time.Second)); err != nil {
				t.Fatalf("with a finished task to drop: %v", err)
			}
			if _, err := b.get("tasks/get", "a", "1", t0); rpcCode(err) != mcp.INVALID_PARAMS {
				t.Errorf("the dropped finished task: %v, want not found", err)
			}
		}},
		{"the mediator's total cap", func(t *testing.T, b *taskBoard) {
			b.total = 1
			_, _ = b.create("1", "a", "tool", taskTTL(nil), func() {}, t0)
			if _, err := b.create("2", "b", "tool", taskTTL(nil), func() {}, t0); rpcCode(err) != mcp.INVALID_REQUEST {
				t.Errorf("past the total cap: %v", err)
			}
		}},
		{"a task past its ttl is cancelled and forgotten", func(t *testing.T, b *taskBoard) {
			cancelled := false
			tk, _ := b.create("1", "a", "tool", taskTTL(ms(time.Minute)), func() { cancelled = true }, t0)
			if _, err := b.get("tasks/get", "a", "1", t0.Add(2*time.Minute)); rpcCode(err) != mcp.INVALID_PARAMS || !cancelled {
				t.Errorf("after its ttl: %v, cancelled %v", err, cancelled)
			}
			select {
			case <-tk.done:
			default:
				t.Error("a waiting tasks/result was not released")
			}
		}},
		{"another agent's task is not found", func(t *testing.T, b *taskBoard) {
			_, _ = b.create("1", "a", "tool", taskTTL(nil), func() {}, t0)
			for _, op := range []func() error{
				func() error { _, err := b.get("tasks/get", "b", "1", t0); return err },
				func() error { _, err := b.cancelTask("b", "1", t0); return err },
			} {
				if err := op(); rpcCode(err) != mcp.INVALID_PARAMS || !strings.Contains(err.Error(), "not found") {
					t.Errorf("b on a's task: %v", err)
				}
			}
			if got := b.list("b", t0); len(got) != 0 {
				t.Errorf("b lists %v", got)
			}
		}},
		{"cancel: once, and never a finished task; a cancelled task stays so", func(t *testing.T, b *taskBoard) {
			tk, _ := b.create("1", "a", "tool", taskTTL(nil), func() {}, t0)
			if v, err := b.cancelTask("a", "1", t0); err != nil || v.Status != mcp.TaskStatusCancelled {
				t.Fatalf("cancel: %+v %v", v, err)
			}
			b.finish(tk, mcp.TaskStatusCompleted, "late", []byte(`{"late":true}`), nil, t0)
			if v := b.view(tk); v.Status != mcp.TaskStatusCancelled || tk.result != nil {
				t.Errorf("a result after the cancel changed the task: %+v", v)
			}
			if _, err := b.cancelTask("a", "1", t0); rpcCode(err) != mcp.INVALID_PARAMS || !strings.Contains(err.Error(), "already cancelled") {
				t.Errorf("a second cancel: %v", err)
			}
		}},
		{"results are bounded in all: the oldest finished go, one too large is not kept", func(t *testing.T, b *taskBoard) {
			b.maxBytes = 10
			one, _ := b.create("1", "a", "tool", taskTTL(nil), func() {}, t0)
			two, _ := b.create("2", "a", "tool", taskTTL(nil), func() {}, t0.Add(time.Second))
			three, _ := b.create("3", "a", "tool", taskTTL(nil), func() {}, t0.Add(2*time.Second))
			b.finish(one, mcp.TaskStatusCompleted, "done", []byte("123456"), nil, t0)
			b.finish(two, mcp.TaskStatusCompleted, "done", []byte("123456"), nil, t0)
			if _, err := b.get("tasks/get", "a", "1", t0); err == nil || b.bytes != 6 {
				t.Errorf("the oldest result was kept: %v, %d bytes held", err, b.bytes)
			}
			b.finish(three, mcp.TaskStatusCompleted, "done", []byte("12345678901"), nil, t0)
			if v := b.view(three); v.Status != mcp.TaskStatusFailed || three.rpcErr == nil || !strings.Contains(three.rpcErr.Message, "11 bytes") {
				t.Errorf("a result over the bound: %+v %+v", v, three.rpcErr)
			}
			if b.bytes > b.maxBytes {
				t.Errorf("%d bytes held, bound %d", b.bytes, b.maxBytes)
			}
		}},
		{"tasks/list: the agent's, oldest first, with times, ttl and poll interval", func(t *testing.T, b *taskBoard) {
			_, _ = b.create("2", "a", "tool", taskTTL(nil), func() {}, t0.Add(time.Second))
			_, _ = b.create("1", "a", "tool", taskTTL(nil), func() {}, t0)
			got := b.list("a", t0)
			if len(got) != 2 || got[0].TaskId != "1" || got[0].TTL == nil || got[0].PollInterval == nil || got[0].CreatedAt != "2026-12-07T12:00:00Z" {
				t.Errorf("list: %+v", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, &taskBoard{}) })
	}
}

func TestTaskMode(t *testing.T) {
	tests := []struct {
		support TaskSupport
		asTask  bool
		code    int
	}{
		{"", false, 0}, {"", true, mcp.METHOD_NOT_FOUND},
		{TaskOptional, false, 0}, {TaskOptional, true, 0},
		{TaskRequired, false, mcp.METHOD_NOT_FOUND}, {TaskRequired, true, 0},
	}
	for _, tt := range tests {
		if got := rpcCode(taskMode(Tool{Name: "x", TaskSupport: tt.support}, tt.asTask)); got != tt.code {
			t.Errorf("support %q as task %v: code %d, want %d", tt.support, tt.asTask, got, tt.code)
		}
	}
}

package mediator

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// trackingRecorder is a Recorder that is also a CallTracker.
type trackingRecorder struct {
	fakeRecorder
	running, started atomic.Int64
	atRecord         []int64 // calls running when each record arrived
}

func (r *trackingRecorder) CallStarted() { r.running.Add(1); r.started.Add(1) }
func (r *trackingRecorder) CallEnded()   { r.running.Add(-1) }
func (r *trackingRecorder) Record(ctx context.Context, c ChainRecord) error {
	r.atRecord = append(r.atRecord, r.running.Load())
	return r.fakeRecorder.Record(ctx, c)
}

// The record step tells a CallTracker when a call starts and ends, before
// recording it, whatever the outcome, a panic included.
func TestRecordStepTracksCalls(t *testing.T) {
	t.Parallel()
	boom := func(context.Context, Tool, mcp.CallToolRequest) (*mcp.CallToolResult, error) { panic("boom") }
	fail := func(context.Context, Tool, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return nil, errors.New("down")
	}
	for _, up := range []func(context.Context, Tool, mcp.CallToolRequest) (*mcp.CallToolResult, error){echoResult, fail, boom} {
		rec := &trackingRecorder{}
		deps := newTestDeps(nil, &fakeUpstreams{cat: testCatalog(), callTool: up})
		deps.Recorder, deps.Tracker = rec, rec
		h := BuildChain(deps)
		_ = h(t.Context(), toolCall("demo__echo", map[string]any{"message": "hi"}))
		_ = h(t.Context(), toolCall("demo__nope", nil)) // refused at resolve
		if rec.started.Load() != 2 || rec.running.Load() != 0 {
			t.Fatalf("started %d, still running %d; want 2 and 0", rec.started.Load(), rec.running.Load())
		}
		for i, n := range rec.atRecord {
			if n != 0 {
				t.Fatalf("record %d arrived with %d calls counted as running; a call ends before it is recorded", i, n)
			}
		}
	}
}

package store

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/mcp-mediator/mediator/mediator"
)

func TestToolPinsReview(t *testing.T) {
	t.Parallel()
	path := testDB(t)
	s := openTest(t, path)
	ctx := t.Context()
	pinned := mediator.ToolPin{Server: "up", Tool: "read", State: mediator.PinPinned, Hash: "h1", Definition: json.RawMessage(`{"name":"up__read"}`)}
	if err := s.PutToolPins(ctx, "up", "set1", []mediator.ToolPin{pinned}); err != nil {
		t.Fatal(err)
	}
	changed := pinned
	changed.State, changed.SeenHash, changed.SeenDefinition = mediator.PinChanged, "h2", json.RawMessage(`{"name":"up__read","description":"new"}`)
	changed.Findings = []mediator.Finding{{Rule: "instruction.tag", Family: "model_instruction", Severity: mediator.SeverityHigh}}
	if err := s.PutToolPins(ctx, "up", "set2", []mediator.ToolPin{changed}); err != nil {
		t.Fatal(err)
	}
	if h, err := s.ToolSetHash(ctx, "up"); err != nil || h != "set2" {
		t.Fatalf("set hash %q %v", h, err)
	}
	cases := []struct {
		name    string
		hash    string
		approve bool
		wantErr error
		state   mediator.PinState
		pinHash string
	}{
		{"stale hash is refused", "h1", true, mediator.ErrReviewStale, "", ""},
		{"empty hash is refused", "", true, mediator.ErrReviewStale, "", ""},
		{"reject keeps the old pin", "h2", false, nil, mediator.PinRejected, "h1"},
		{"approve makes the offered definition the pin", "h2", true, nil, mediator.PinPinned, "h2"},
	}
	for _, tc := range cases {
		p, err := s.ReviewToolPin(ctx, "up", "read", tc.hash, tc.approve, "admin alice", "looked at it")
		if !errors.Is(err, tc.wantErr) {
			t.Fatalf("%s: err %v, want %v", tc.name, err, tc.wantErr)
		}
		if err == nil && (p.State != tc.state || p.Hash != tc.pinHash) {
			t.Fatalf("%s: %+v", tc.name, p)
		}
	}
	pins, err := s.ToolPins(ctx, "up")
	if err != nil || len(pins) != 1 || pins[0].State != mediator.PinPinned || string(pins[0].Definition) != `{"name":"up__read","description":"new"}` ||
		pins[0].SeenDefinition != nil || pins[0].Reviewer != "admin alice" {
		t.Fatalf("after approval: %+v %v", pins, err)
	}
	if _, err := s.ReviewToolPin(ctx, "up", "nope", "h", true, "a", ""); !errors.Is(err, mediator.ErrPinNotFound) {
		t.Fatalf("unknown tool: %v", err)
	}
	if err := s.PutToolPins(ctx, "up", "", []mediator.ToolPin{{Server: "other", Tool: "x"}}); err == nil {
		t.Fatal("a pin of another server was stored")
	}
}

// A pin row edited behind the store's back (findings that do not decode)
// makes the read fail, so the guard withholds the upstream's tools.
func TestToolPinsCorruptRowFails(t *testing.T) {
	t.Parallel()
	path := testDB(t)
	s := openTest(t, path)
	if err := s.PutToolPins(t.Context(), "up", "set", []mediator.ToolPin{{Server: "up", Tool: "t", State: mediator.PinPinned, Hash: "h"}}); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	if _, err := db.Exec(`UPDATE tool_pins SET findings = '{not json' WHERE tool = 't'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ToolPins(t.Context(), "up"); err == nil {
		t.Fatal("a corrupt pin row was read without an error")
	}
}

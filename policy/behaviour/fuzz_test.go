package behaviour

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// FuzzDecodeBaseline: a stored row is untrusted input (anyone with the
// database file can write it). Decoding never panics; what decodes
// encodes again, and a call scored against it never panics either.
func FuzzDecodeBaseline(f *testing.F) {
	b := newBaseline()
	b.Learned, b.Calls, b.Seen = true, 300, 300
	b.Tools["demo__read_file"] = 300
	b.Places["demo__read_file\x00path:notes"] = 300
	b.Rate.add(3, 300)
	seedRow, _ := b.encode()
	f.Add(seedRow)
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"calls":-1}`))
	f.Add([]byte(`{"v":1,"fan":{"t":null},"tools":{"x":1e308}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := decodeBaseline(data)
		if err != nil {
			return
		}
		again, err := b.encode()
		if err != nil {
			t.Fatalf("a decoded baseline does not encode: %v", err)
		}
		if _, err := decodeBaseline(again); err != nil && json.Valid(again) {
			t.Fatalf("an encoded baseline does not decode: %v", err)
		}
		b.Learned = true
		e, err := New(Config{Zone: time.UTC}, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ag := &mediator.Agent{ID: "fuzz"}
		a := e.agentFor(ag)
		a.profiles[0].base = b
		tg := &mediator.Target{Kind: mediator.KindTool, Server: "demo", Name: "demo__read_file"}
		c := &mediator.Call{ID: "c", Agent: ag, Target: tg, Started: time.Unix(1_800_000_000, 0),
			Arguments: map[string]any{"path": "/etc/passwd", "customer_id": "C1"}}
		if _, err := e.Check(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		e.Observe(context.Background(), c, mediator.OutcomeOK, 100)
	})
}

// FuzzCallPlaces: argument values are the agent's; places never panic and
// stay bounded.
func FuzzCallPlaces(f *testing.F) {
	for _, s := range []string{"/repo/svc/a.go", "https://h.example/x", "..", `C:\x\y`, "http://[::1", "%zz", ""} {
		f.Add("path", s)
		f.Add("url", s)
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		got := callPlaces(&mediator.Call{Arguments: map[string]any{name: value, "paths": []any{value, value + "/x"}}}, nil)
		if len(got) > maxPlacesPerCall {
			t.Fatalf("%d places", len(got))
		}
		if _, first := callIDs(&mediator.Call{Arguments: map[string]any{name: value}}, nil); len(first) > 128 {
			t.Fatalf("identifying argument name of %d bytes", len(first))
		}
	})
}

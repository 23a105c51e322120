package tools

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/mcp-mediator/mediator/mediator"
)

// The catalog is rebuilt when an upstream's lists change, and read on every
// call: both are measured here with upstreams of 100 tools each.
//
//	go test ./tools -run XXX -bench Catalog -benchmem

func benchListing(n int) rawListing {
	var raw rawListing
	for i := range n {
		raw.tools = append(raw.tools, json.RawMessage(fmt.Sprintf(
			`{"name":"tool_%d","description":"does thing %d","inputSchema":{"type":"object",`+
				`"properties":{"path":{"type":"string"},"n":{"type":"integer"}},"required":["path"]},`+
				`"annotations":{"readOnlyHint":true}}`, i, i)))
	}
	return raw
}

// BenchmarkCatalogBuild turns one upstream's raw tools/list into catalog
// tools: name rewriting, definition hash, annotations and risk.
func BenchmarkCatalogBuild(b *testing.B) {
	cfg := &Config{Name: "files", Command: "x"}
	raw := benchListing(100)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.ReportAllocs()
	for b.Loop() {
		if l := buildListing(cfg, "files__", raw, log); len(l.tools) != 100 {
			b.Fatal(len(l.tools))
		}
	}
}

// BenchmarkCatalogMerge merges ten upstreams' listings into one catalog.
func BenchmarkCatalogMerge(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var snaps []snapshot
	for i := range 10 {
		name := fmt.Sprintf("srv%d", i)
		cfg := &Config{Name: name, Command: "x"}
		snaps = append(snaps, snapshot{state: mediator.ServerState{Name: name, Connected: true},
			listing: buildListing(cfg, name+"__", benchListing(100), log)})
	}
	b.ReportAllocs()
	for b.Loop() {
		if cat, _ := merge(snaps); len(cat.Tools) != 1000 {
			b.Fatal(len(cat.Tools))
		}
	}
}

// BenchmarkCatalogLookup is what a call costs the registry: the current
// catalog (an atomic load) and the tool by name.
func BenchmarkCatalogLookup(b *testing.B) {
	r := New(nil)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var snaps []snapshot
	for i := range 10 {
		name := fmt.Sprintf("srv%d", i)
		snaps = append(snaps, snapshot{state: mediator.ServerState{Name: name},
			listing: buildListing(&Config{Name: name, Command: "x"}, name+"__", benchListing(100), log)})
	}
	cat, _ := merge(snaps)
	r.catalog.Store(cat)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := r.Catalog().Tool("srv7__tool_42"); !ok {
			b.Fatal("not found")
		}
	}
}

package store

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// echoRecord is the record of one tools/call of a trivial echo tool, as
// the pipeline builds it.
func echoRecord() mediator.ChainRecord {
	return mediator.ChainRecord{
		ID: "0123456789abcdef0123456789abcdef", Time: time.Now(), SessionID: "mcp-session-0123456789",
		Transport: "http", AgentID: "bench-agent", Method: "tools/call", Kind: mediator.KindTool,
		Server: "demo", Name: "demo__echo", ToolHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Prompt:    "echo ping for the benchmark",
		Arguments: json.RawMessage(`{"text":"ping"}`),
		Intent:    &mediator.Intent{Verdict: mediator.IntentNone},
		Decision:  mediator.Decision{Effect: mediator.EffectAllow, Rule: "echo", PolicyVersion: "3a7bd3e2360a3d29eea436fcfb7e44c735d117c4"},
		Outcome:   mediator.OutcomeOK,
		Result:    json.RawMessage(`{"content":[{"type":"text","text":"ping"}]}`),
	}
}

// BenchmarkPrepare is the store's per-record work before the writer:
// redaction and canonical JSON of arguments, result and intent.
func BenchmarkPrepare(b *testing.B) {
	s := benchStore(b)
	r := echoRecord()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.prepare(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRedactValue redacts a larger JSON result: 2 KiB of text in a
// few fields, one of them holding a secret.
func BenchmarkRedactValue(b *testing.B) {
	rd := newRedactor(nil)
	raw := json.RawMessage(`{"content":[{"type":"text","text":"` + longText(2048) + `"}],` +
		`"structuredContent":{"rows":[{"id":1,"name":"alpha","note":"token=abcdef123456"},{"id":2,"name":"beta"}]}}`)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		rd.value(raw, 0)
	}
}

func longText(n int) string {
	const words = "the quick brown fox jumps over the lazy dog while reading the quarterly report "
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, words...)
	}
	return string(out[:n])
}

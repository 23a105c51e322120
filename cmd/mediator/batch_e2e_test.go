package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// JSON-RPC batches on a 2025-03-26 session, against a real serve process
// and a real upstream: every message is answered (an event stream or a
// JSON array, as the client accepts), a call's progress precedes its
// result, a bad member gets its own error, every message is recorded, and
// a session of a later revision is refused with the reason.
func TestE2EBatchOn20250326Session(t *testing.T) {
	t.Parallel()
	p := startServe(t, fakeConfig(t, ""))
	old := map[string]string{"Mcp-Protocol-Version": ""} // 2025-03-26 clients send none
	status, hdr, body := rawRequest(t, "POST", p.URL, "", "",
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"batcher","version":"1"}}}`, old)
	sid := hdr.Get("Mcp-Session-Id")
	if status != 200 || sid == "" || !strings.Contains(body, `"protocolVersion":"2025-03-26"`) {
		t.Fatalf("initialize at 2025-03-26: %d %q", status, body)
	}
	rawRequest(t, "POST", p.URL, "", sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, old)

	t.Run("event stream", func(t *testing.T) {
		status, hdr, body := rawRequest(t, "POST", p.URL, "", sid, testBatch, old)
		if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("batch: HTTP %d %s %q", status, hdr.Get("Content-Type"), body)
		}
		var msgs []json.RawMessage
		for l := range strings.SplitSeq(body, "\n") {
			if d, ok := strings.CutPrefix(l, "data: "); ok {
				msgs = append(msgs, json.RawMessage(d))
			}
		}
		checkBatchAnswers(t, msgs)
		if n := strings.Count(body, `"method":"notifications/progress"`); n != 3 {
			t.Errorf("%d progress events on the batch's stream, want 3: %q", n, body)
		}
	})

	t.Run("JSON array", func(t *testing.T) {
		status, hdr, body := rawRequest(t, "POST", p.URL, "", sid, testBatch,
			map[string]string{"Mcp-Protocol-Version": "", "Accept": "application/json"})
		if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			t.Fatalf("batch: HTTP %d %s %q", status, hdr.Get("Content-Type"), body)
		}
		var msgs []json.RawMessage
		if err := json.Unmarshal([]byte(body), &msgs); err != nil {
			t.Fatalf("the answer is not a JSON array: %v %q", err, body)
		}
		checkBatchAnswers(t, msgs)
		if !strings.HasPrefix(string(msgs[0]), `{"jsonrpc":"2.0","id":"p"`) {
			t.Errorf("responses not in the batch's order: %s first", msgs[0])
		}
	})

	t.Run("notifications only", func(t *testing.T) {
		status, _, body := rawRequest(t, "POST", p.URL, "", sid,
			`[{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"x"}},{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}]`, old)
		if status != http.StatusAccepted || body != "" {
			t.Errorf("a batch of notifications: HTTP %d %q, want 202 and no body", status, body)
		}
	})

	t.Run("refused", func(t *testing.T) {
		newSid, _ := rawSession(t, p.URL, `{}`) // 2025-11-25
		cases := []struct {
			name, sid, body string
			status          int
			want            string
		}{
			{"a 2025-11-25 session", newSid, `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, 400, `protocol version \"2025-11-25\"`},
			{"no session", "", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, 400, "without a session"},
			{"empty", sid, `[]`, 400, "batch is empty"},
			{"over the cap", sid, "[" + strings.Repeat(`{"jsonrpc":"2.0","method":"notifications/x"},`, 64) + `{"jsonrpc":"2.0","method":"notifications/x"}]`, 413, "over the cap of 64"},
			{"not JSON", sid, `[{"jsonrpc":"2.0"`, 400, "not valid JSON"},
		}
		for _, c := range cases {
			h := old
			if c.sid == newSid {
				h = map[string]string{"Mcp-Protocol-Version": "2025-11-25"}
			}
			status, _, body := rawRequest(t, "POST", p.URL, "", c.sid, c.body, h)
			if status != c.status || !strings.Contains(body, c.want) || !strings.Contains(body, `"jsonrpc":"2.0"`) {
				t.Errorf("%s: HTTP %d %q, want %d with a JSON-RPC error naming %q", c.name, status, body, c.status, c.want)
			}
		}
	})

	t.Run("recorded", func(t *testing.T) {
		// Two batches ran fake__echo once each; each is a record of its own.
		recs := recordsOf(t, p, func(r mediator.ChainRecord) bool {
			return r.Method == "tools/call" && strings.Contains(r.Name, "echo")
		})
		if len(recs) != 2 {
			t.Errorf("%d records of the batched echo calls, want 2", len(recs))
		}
		refused := recordsOf(t, p, func(r mediator.ChainRecord) bool {
			return strings.Contains(r.Error, "initialize cannot be part of a JSON-RPC batch")
		})
		if len(refused) != 2 {
			t.Errorf("%d records of the batched initialize, want 2", len(refused))
		}
	})
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// testBatch is a batch of a ping, two calls (one with progress), a
// notification, and two bad members: initialize and a nested batch.
var testBatch = `[
	{"jsonrpc":"2.0","id":"p","method":"ping"},
	{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"fake__echo","arguments":{"text":"one of a batch"}}},
	{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"_meta":{"progressToken":"tok"},"name":"fake__progress","arguments":{"steps":3,"linger_ms":200}}},
	{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"nothing-running"}},
	{"jsonrpc":"2.0","id":4,"method":"initialize","params":{}},
	[{"jsonrpc":"2.0","id":5,"method":"ping"}]
]`

// checkBatchAnswers checks the messages that answered testBatch, in the
// order they came: five responses, and the progress call's notifications
// before its result.
func checkBatchAnswers(t *testing.T, msgs []json.RawMessage) {
	t.Helper()
	byID := map[string]map[string]any{}
	resultAt := -1
	for i, m := range msgs {
		var v map[string]any
		if err := json.Unmarshal(m, &v); err != nil {
			t.Fatalf("message %d is not JSON: %s", i, m)
		}
		if v["method"] == "notifications/progress" {
			if resultAt >= 0 {
				t.Errorf("progress after its call's result: %s", m)
			}
			continue
		}
		if _, ok := v["method"]; ok {
			continue // a log message
		}
		id, _ := json.Marshal(v["id"])
		byID[string(id)] = v
		if string(id) == "3" {
			resultAt = i
		}
	}
	if r, ok := byID[`"p"`]; !ok || r["result"] == nil {
		t.Errorf("ping in the batch: %v", r)
	}
	if r, ok := byID["2"]; !ok || !strings.Contains(toJSON(r["result"]), "one of a batch") {
		t.Errorf("tools/call in the batch: %v", r)
	}
	if r, ok := byID["3"]; !ok || !strings.Contains(toJSON(r["result"]), "done") {
		t.Errorf("the progress call in the batch: %v", r)
	}
	if r := byID["4"]; r == nil || !strings.Contains(toJSON(r["error"]), "initialize cannot be part of a JSON-RPC batch") {
		t.Errorf("initialize in the batch: %v", r)
	}
	if r := byID["null"]; r == nil || !strings.Contains(toJSON(r["error"]), "cannot hold another batch") {
		t.Errorf("a nested batch: %v", r)
	}
	if len(byID) != 5 {
		t.Errorf("%d responses, want 5 (no answer to the notification): %v", len(byID), byID)
	}
}

// The same batch from a stdio agent initialized at 2025-03-26: the
// responses come as one JSON array line, after the call's progress lines;
// a stdio agent of a later revision is refused with the reason, recorded.
func TestE2EStdioBatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mediator.yaml")
	if err := os.WriteFile(cfg, []byte(fakeConfig(t, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	// readUntilArray reads lines until one is a JSON array; it returns the
	// lines before it and the array's members.
	readUntilArray := func(t *testing.T, p *stdioPeer) (before, members []json.RawMessage) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		type read struct {
			line []byte
			err  error
		}
		for {
			got := make(chan read, 1)
			go func() { // a pipe takes no deadline
				line, err := p.out.ReadBytes('\n')
				got <- read{line, err}
			}()
			var r read
			select {
			case r = <-got:
			case <-deadline:
				t.Fatalf("no answer to the batch within 20 s (stderr %s)", p.stderr.String())
			}
			line, err := r.line, r.err
			if err != nil {
				t.Fatalf("no answer to the batch: %v (stderr %s)", err, p.stderr.String())
			}
			line = bytes.TrimSpace(line)
			if len(line) > 0 && line[0] == '[' {
				if err := json.Unmarshal(line, &members); err != nil {
					t.Fatalf("the batch's answer: %v %s", err, line)
				}
				return before, members
			}
			before = append(before, json.RawMessage(bytes.Clone(line)))
		}
	}

	t.Run("2025-03-26", func(t *testing.T) {
		p := startStdioPeerAt(t, dir, "2025-03-26", `{}`, binary(t), "stdio", "--config", cfg, "--db", filepath.Join(dir, "old.db"))
		if _, err := io.WriteString(p.in, strings.ReplaceAll(testBatch, "\n", "")+"\n"); err != nil {
			t.Fatal(err)
		}
		before, members := readUntilArray(t, p)
		if len(members) != 5 {
			t.Errorf("%d responses in the array, want 5: %s", len(members), members)
		}
		checkBatchAnswers(t, append(before, members...))
		progress := 0
		for _, l := range before {
			progress += strings.Count(string(l), `"method":"notifications/progress"`)
		}
		if n := progress; n != 3 {
			t.Errorf("%d progress lines before the array, want 3: %s", n, before)
		}
		// Notifications alone get no answer: the next line answers the ping.
		if _, err := io.WriteString(p.in, `[{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"x"}}]`+"\n"); err != nil {
			t.Fatal(err)
		}
		if r := p.call("ping", `{}`); r.Error != nil || strings.Contains(p.skipped, "[") {
			t.Errorf("after a batch of notifications: %+v, skipped %q", r.Error, p.skipped)
		}

		// A member that is a request and a response at once is refused
		// (mcp-go would answer neither, and the batch hung).
		send := func(batch string) {
			t.Helper()
			if _, err := io.WriteString(p.in, batch+"\n"); err != nil {
				t.Fatal(err)
			}
		}
		send(`[{"jsonrpc":"2.0","id":50,"method":"ping","result":{}},{"jsonrpc":"2.0","id":51,"method":"ping"}]`)
		_, members = readUntilArray(t, p)
		if len(members) != 2 || !strings.Contains(string(members[0]), "both a method and a result") || !strings.Contains(string(members[1]), `"result":{}`) {
			t.Errorf("a request with a result: %s", members)
		}
		// A request whose id an earlier batch's running request has is
		// refused and not run: the earlier batch gets its own answer.
		send(`[{"jsonrpc":"2.0","id":60,"method":"tools/call","params":{"name":"fake__sleep","arguments":{"seconds":1}}}]`)
		send(`[{"jsonrpc":"2.0","id":60,"method":"tools/call","params":{"name":"fake__echo","arguments":{"text":"must not run"}}}]`)
		_, first := readUntilArray(t, p)
		_, second := readUntilArray(t, p)
		if len(first) != 1 || !strings.Contains(string(first[0]), "still running") {
			t.Errorf("the second batch with id 60: %s, want it refused at once", first)
		}
		if len(second) != 1 || strings.Contains(string(second[0]), "must not run") || strings.Contains(string(second[0]), `"error"`) {
			t.Errorf("the first batch with id 60: %s, want the sleep's own result", second)
		}
		// The input ends while a batch waits: it is answered all the same.
		send(`[{"jsonrpc":"2.0","id":70,"method":"tools/call","params":{"name":"fake__sleep","arguments":{"seconds":30}}},{"jsonrpc":"2.0","id":71,"method":"ping"}]`)
		time.Sleep(300 * time.Millisecond)
		_ = p.in.Close()
		_, last := readUntilArray(t, p)
		if len(last) != 2 || !strings.Contains(string(last[0]), `"id":70`) || !strings.Contains(string(last[1]), `"id":71,"result":{}`) {
			t.Errorf("a batch waiting at the input's end: %s", last)
		}
		for _, r := range exportRecords(t, dir, filepath.Join(dir, "old.db")) {
			if strings.Contains(r.Name, "echo") && strings.Contains(string(r.Arguments), "must not run") && r.Outcome == mediator.OutcomeOK {
				t.Errorf("the refused request with a running id was forwarded: %+v", r)
			}
		}
	})

	t.Run("2025-11-25 refused", func(t *testing.T) {
		db := filepath.Join(dir, "new.db")
		p := startStdioPeer(t, dir, binary(t), "stdio", "--config", cfg, "--db", db)
		if _, err := io.WriteString(p.in, `[{"jsonrpc":"2.0","id":9,"method":"ping"}]`+"\n"); err != nil {
			t.Fatal(err)
		}
		line, err := p.out.ReadBytes('\n')
		if err != nil || !strings.Contains(string(line), `protocol version \"2025-11-25\"`) || !strings.Contains(string(line), `"code":-32600`) {
			t.Fatalf("a batch at 2025-11-25: %q %v", line, err)
		}
		_ = p.in.Close()
		waitFor(t, 20*time.Second, func() bool {
			for _, r := range exportRecords(t, dir, db) {
				if strings.Contains(r.Error, "JSON-RPC batches are not accepted") {
					return true
				}
			}
			return false
		}, "the refused batch is recorded")
	})
}

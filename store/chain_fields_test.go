package store

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// legacyRows are two records as the build before schema version 4 stored
// them, with the hashes that build computed for them (pinned: computed
// with that code, not with the code under test).
func legacyRows() []row {
	return []row{{
		seq: 1, id: "legacy-1", time: "2025-01-02T03:04:05.000000006Z", sessionID: "sess-1",
		transport: "http", agentID: "agent-7", taskID: "task-3", method: "tools/call", kind: "tool",
		server: "files", name: "files__read_file", toolHash: "abc123", prompt: "read the config \u2028 <ok>",
		arguments: []byte(`{"path":"/tmp/a.txt"}`), intent: []byte(`{"verdict":"in_scope"}`),
		effect: "allow", rule: "r1", reason: "allowed", policyVersion: "v1", shadow: true, outcome: "ok",
		result: []byte(`{"content":[]}`), truncated: true, durationUS: 1234, upstreamUS: 567,
		prevHash: genesisHash,
		hash:     "a87ebb52a1f3e55234b0cce3256c4e976007de7e811924cb175674967aa6ded0",
	}, {
		seq: 2, id: "legacy-2", time: "2025-01-02T03:04:06.000000000Z", method: "tools/list",
		kind: "protocol", effect: "deny", outcome: "denied", errText: "no",
		prevHash: "a87ebb52a1f3e55234b0cce3256c4e976007de7e811924cb175674967aa6ded0",
		hash:     "0ac10d8107fef2d8a4fd7003ab500563ba200aa47c7e2f4d56b1fd92cde39f1e",
	}}
}

// legacyRecord is a record whose hash, written at seq 1 of a new chain,
// the build before schema version 4 pinned below.
func legacyRecord() mediator.ChainRecord {
	return mediator.ChainRecord{
		ID: "pin-1", Time: time.Date(2025, 6, 7, 8, 9, 10, 11, time.UTC), SessionID: "s", Transport: "stdio",
		AgentID: "a", TaskID: "t", Method: "tools/call", Kind: mediator.KindTool, Server: "srv", Name: "srv__x",
		ToolHash: "h", Prompt: "please use password=hunter2", Arguments: json.RawMessage(`{"b": 2, "a": 1}`),
		Intent:   &mediator.Intent{Verdict: mediator.IntentInScope, TaskID: "t"},
		Decision: mediator.Decision{Effect: mediator.EffectAllow, Rule: "r", PolicyVersion: "pv"},
		Outcome:  mediator.OutcomeOK, Result: json.RawMessage(`{"ok":true}`), DurationUS: 10, UpstreamUS: 5,
	}
}

const legacyRecordHash = "faeda132dc20252d539a8c3e9c2e9e283594a7665de454e6f15a5a4a7fdcff8c"

// Records that do not use the fields added in schema version 4 hash
// exactly as the build before it hashed them.
func TestLegacyChainHashesUnchanged(t *testing.T) {
	t.Parallel()
	rows := append(legacyRows(),
		row{seq: 42, id: "rec-42", time: "2025-01-02T03:04:05.000000006Z", sessionID: "sess-1",
			transport: "http", agentID: "agent-7", taskID: "task-3", method: "tools/call", kind: "tool",
			server: "files", name: "files__read_file", toolHash: "abc123", prompt: "read the config \u2028 <ok>",
			arguments: []byte(`{"path":"/tmp/a.txt"}`), intent: []byte(`{"verdict":"in_scope"}`),
			effect: "allow", rule: "r1", reason: "allowed", policyVersion: "v1", shadow: true, outcome: "ok",
			result: []byte(`{"content":[]}`), truncated: true, durationUS: 1234, upstreamUS: 567,
			prevHash: strings.Repeat("1", 64),
			hash:     "885ce5e1dd962f088e874c2d175fc01ada863195b1379122ecdc510161a9ca78"},
		row{seq: 1, id: "x", time: "2025-01-02T03:04:05.000000006Z", prevHash: genesisHash,
			hash: "d7fcb74cff11ec1e91e577a656d288992fce864c59fefcf30fe36ffb6819bc36"},
	)
	for _, r := range rows {
		t.Run(r.id, func(t *testing.T) {
			if got, _ := chainHash(nil, &r); got != r.hash {
				t.Fatalf("hash = %s, want the pinned %s", got, r.hash)
			}
		})
	}
	t.Run("through Record", func(t *testing.T) {
		s := openTest(t, testDB(t))
		if err := s.Record(t.Context(), legacyRecord()); err != nil {
			t.Fatal(err)
		}
		recs, err := s.Records(t.Context(), Filter{})
		if err != nil || len(recs) != 1 {
			t.Fatalf("Records = %d, %v", len(recs), err)
		}
		if recs[0].Hash != legacyRecordHash {
			t.Fatalf("hash = %s, want the pinned %s", recs[0].Hash, legacyRecordHash)
		}
	})
}

// openVersion3 creates a database at path with schema version 3 (the
// build before tasks) holding rows exactly as that build stored them.
func openVersion3(t *testing.T, path string, rows []row) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := slog.New(slog.DiscardHandler)
	if _, err := db.ExecContext(t.Context(), `CREATE TABLE schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations()[:3] {
		if err := applyMigration(t.Context(), db, m, 3, log); err != nil {
			t.Fatal(err)
		}
	}
	const insert = `INSERT INTO audit (seq, id, time, session_id, transport, agent_id, task_id,
		method, kind, server, name, tool_hash, prompt, arguments, intent, decision_effect,
		decision_rule, decision_reason, decision_policy_version, decision_shadow, outcome,
		error, result, truncated, duration_us, upstream_us, prev_hash, hash)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`
	for _, r := range rows {
		_, err := db.ExecContext(t.Context(), insert, r.seq, r.id, r.time, r.sessionID, r.transport, r.agentID,
			r.taskID, r.method, r.kind, r.server, r.name, r.toolHash, r.prompt, nullText(r.arguments),
			nullText(r.intent), r.effect, r.rule, r.reason, r.policyVersion, r.shadow, r.outcome,
			r.errText, nullText(r.result), r.truncated, r.durationUS, r.upstreamUS, r.prevHash, r.hash)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A chain written before schema version 4 still verifies after the
// migration, reads back with the new fields empty, and new records using
// the new fields extend it.
func TestUpgradeFromVersion3KeepsChain(t *testing.T) {
	t.Parallel()
	path := testDB(t)
	openVersion3(t, path, legacyRows())
	s := openTest(t, path)
	mustVerify(t, s, 2)
	recs, err := s.Records(t.Context(), Filter{})
	if err != nil || len(recs) != 2 {
		t.Fatalf("Records = %d, %v", len(recs), err)
	}
	for _, r := range recs {
		if r.Reasoning != "" || r.PromptTruncated || r.Approval != nil {
			t.Errorf("legacy record %d has new fields: %+v", r.Seq, r)
		}
	}
	if recs[1].Hash != legacyRows()[1].hash {
		t.Errorf("hash of seq 2 = %s", recs[1].Hash)
	}
	r := newFieldsRecord("after-upgrade")
	if err := s.Record(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s, 3)
}

// newFieldsRecord returns a record that uses every field added in schema
// version 4, with secrets for the redactor to find.
func newFieldsRecord(id string) mediator.ChainRecord {
	r := testRecord("new", 0)
	r.ID = id
	r.Reasoning = "the user asked; key=sk-abcdefghijklmnopqrstuvwx"
	r.PromptTruncated = true
	r.Approval = &mediator.ApprovalRef{ID: "apr_1", Approved: true, Approver: "alice",
		Reason: "fine, password=hunter2"}
	r.RemoteAddr = "192.0.2.7"
	return r
}

func TestNewRecordFieldsRoundTrip(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	in := newFieldsRecord("n1")
	in.TaskID = "task-new"
	plain := testRecord("new", 1) // same session, none of the new fields
	if err := s.Record(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	if err := s.Record(t.Context(), plain); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s, 2)
	wantReasoning := "the user asked; key=[REDACTED]"
	wantApproval := &mediator.ApprovalRef{ID: "apr_1", Approved: true, Approver: "alice",
		Reason: "fine, password=[REDACTED]"}
	check := func(t *testing.T, got []mediator.ChainRecord) {
		t.Helper()
		if len(got) != 2 {
			t.Fatalf("%d records, want 2", len(got))
		}
		r := got[0]
		if r.Reasoning != wantReasoning || !r.PromptTruncated || !reflect.DeepEqual(r.Approval, wantApproval) || r.RemoteAddr != "192.0.2.7" {
			t.Errorf("record 1: reasoning %q truncated %v approval %+v", r.Reasoning, r.PromptTruncated, r.Approval)
		}
		if p := got[1]; p.Reasoning != "" || p.PromptTruncated || p.Approval != nil || p.RemoteAddr != "" {
			t.Errorf("record 2 gained new fields: %+v", p)
		}
	}
	t.Run("Records", func(t *testing.T) {
		got, err := s.Records(t.Context(), Filter{})
		if err != nil {
			t.Fatal(err)
		}
		check(t, got)
	})
	t.Run("SessionRecords", func(t *testing.T) {
		got, err := s.SessionRecords(t.Context(), in.SessionID, 0)
		if err != nil {
			t.Fatal(err)
		}
		check(t, got)
	})
	t.Run("TaskRecords", func(t *testing.T) {
		got, err := s.TaskRecords(t.Context(), "task-new", 0)
		if err != nil || len(got) != 1 || got[0].Reasoning != wantReasoning || got[0].Approval == nil {
			t.Fatalf("TaskRecords = %+v, %v", got, err)
		}
	})
	t.Run("Export", func(t *testing.T) {
		var buf bytes.Buffer
		if _, err := s.Export(t.Context(), &buf, time.Time{}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		var got []mediator.ChainRecord
		for _, l := range lines {
			var c mediator.ChainRecord
			if err := json.Unmarshal([]byte(l), &c); err != nil {
				t.Fatal(err)
			}
			got = append(got, c)
		}
		check(t, got)
		for _, key := range []string{`"reasoning":`, `"prompt_truncated":true`, `"approval":{`} {
			if !strings.Contains(lines[0], key) || strings.Contains(lines[1], key) {
				t.Errorf("export: %s should be on the first line only:\n%s", key, buf.String())
			}
		}
	})
}

// Editing the new columns, or adding them to a record that had none,
// breaks the chain at that record.
func TestTamperNewColumns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		stmt string
		bad  int64
	}{
		{"edit reasoning", `UPDATE audit SET reasoning = 'nothing to see' WHERE seq = 2`, 2},
		{"clear reasoning", `UPDATE audit SET reasoning = '' WHERE seq = 2`, 2},
		{"add reasoning", `UPDATE audit SET reasoning = 'made up' WHERE seq = 3`, 3},
		{"clear prompt_truncated", `UPDATE audit SET prompt_truncated = 0 WHERE seq = 2`, 2},
		{"set prompt_truncated", `UPDATE audit SET prompt_truncated = 1 WHERE seq = 3`, 3},
		{"edit approval", `UPDATE audit SET approval = replace(approval, 'alice', 'mallory') WHERE seq = 2`, 2},
		{"approval to NULL", `UPDATE audit SET approval = NULL WHERE seq = 2`, 2},
		{"add approval", `UPDATE audit SET approval = '{"approved":true,"id":"apr_x"}' WHERE seq = 3`, 3},
		{"empty approval text", `UPDATE audit SET approval = '' WHERE seq = 3`, 3},
		{"edit remote_addr", `UPDATE audit SET remote_addr = '10.0.0.1' WHERE seq = 2`, 2},
		{"clear remote_addr", `UPDATE audit SET remote_addr = '' WHERE seq = 2`, 2},
		{"add remote_addr", `UPDATE audit SET remote_addr = '10.0.0.1' WHERE seq = 3`, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := testDB(t)
			s := openTest(t, path)
			for _, r := range []mediator.ChainRecord{testRecord("p", 1), newFieldsRecord("n"), testRecord("p", 2)} {
				if err := s.Record(t.Context(), r); err != nil {
					t.Fatal(err)
				}
			}
			mustVerify(t, s, 3)
			db := rawDB(t, path)
			for _, q := range []string{`DROP TRIGGER audit_no_update`, tt.stmt} {
				if _, err := db.ExecContext(t.Context(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			res, err := s.Verify(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if res.OK || res.FirstBad != tt.bad || !strings.Contains(res.Reason, "hash does not match") {
				t.Fatalf("Verify = %+v, want first bad seq %d", res, tt.bad)
			}
		})
	}
}

func TestHashInputOptionalKeys(t *testing.T) {
	t.Parallel()
	base := row{seq: 1, id: "i", time: "t", prevHash: genesisHash}
	tests := []struct {
		name string
		edit func(*row)
		want string // substring of the hash input
		keys int
	}{
		{"none", func(*row) {}, `"agent_id":"","arguments":null`, 26},
		{"approval", func(r *row) { r.approval = []byte(`{"approved":true}`) },
			`"agent_id":"","approval":"{\"approved\":true}","arguments":null`, 27},
		{"prompt_truncated", func(r *row) { r.promptTruncated = true },
			`"prompt":"","prompt_truncated":true,"result":null`, 27},
		{"reasoning", func(r *row) { r.reasoning = "because" },
			`"prompt":"","reasoning":"because","result":null`, 27},
		{"remote_addr", func(r *row) { r.reasoning, r.remoteAddr = "x", "192.0.2.7" },
			`"reasoning":"x","remote_addr":"192.0.2.7","result":null`, 28},
		{"all three", func(r *row) {
			r.approval, r.promptTruncated, r.reasoning = []byte(`{}`), true, "why\u2028"
		}, `"prompt":"","prompt_truncated":true,"reasoning":"why\u2028","result":null`, 29},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			tt.edit(&r)
			in := appendHashInput(nil, &r)
			if !bytes.Contains(in, []byte(tt.want)) {
				t.Errorf("hash input %s does not contain %s", in, tt.want)
			}
			if c := CanonicalJSON(in); !bytes.Equal(c, in) {
				t.Fatalf("hash input is not canonical:\n got %s\nwant %s", in, c)
			}
			var m map[string]any
			if err := json.Unmarshal(in, &m); err != nil || len(m) != tt.keys {
				t.Errorf("hash input has %d keys (%v), want %d", len(m), err, tt.keys)
			}
		})
	}
}

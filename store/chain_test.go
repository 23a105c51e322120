package store

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestTamperDetection(t *testing.T) {
	const n = 10
	tests := []struct {
		name     string
		stmts    []string
		firstBad int64
		reason   string
	}{
		{"edit agent", []string{
			`DROP TRIGGER audit_no_update`,
			`UPDATE audit SET agent_id = 'mallory' WHERE seq = 5`,
		}, 5, "hash does not match"},
		{"edit arguments", []string{
			`DROP TRIGGER audit_no_update`,
			`UPDATE audit SET arguments = '{"path":"/etc/shadow"}' WHERE seq = 3`,
		}, 3, "hash does not match"},
		{"edit decision", []string{
			`DROP TRIGGER audit_no_update`,
			`UPDATE audit SET decision_effect = 'deny' WHERE seq = 8`,
		}, 8, "hash does not match"},
		{"edit time", []string{
			`DROP TRIGGER audit_no_update`,
			`UPDATE audit SET time = '2020-01-01T00:00:00.000000000Z' WHERE seq = 2`,
		}, 2, "hash does not match"},
		{"null result", []string{
			`DROP TRIGGER audit_no_update`,
			`UPDATE audit SET result = NULL WHERE seq = 4`,
		}, 4, "hash does not match"},
		{"delete a row", []string{
			`DROP TRIGGER audit_no_delete`,
			`DELETE FROM audit WHERE seq = 4`,
		}, 4, "missing"},
		{"delete the first row", []string{
			`DROP TRIGGER audit_no_delete`,
			`DELETE FROM audit WHERE seq = 1`,
		}, 1, "missing"},
		{"swap two rows", []string{
			`DROP TRIGGER audit_no_update`,
			`UPDATE audit SET seq = -1 WHERE seq = 3`,
			`UPDATE audit SET seq = 3 WHERE seq = 6`,
			`UPDATE audit SET seq = 6 WHERE seq = -1`,
		}, 3, "prev_hash"},
		{"renumber to close a gap", []string{
			`DROP TRIGGER audit_no_update`, `DROP TRIGGER audit_no_delete`,
			`DELETE FROM audit WHERE seq = 6`,
			`UPDATE audit SET seq = seq - 1 WHERE seq > 6`,
		}, 6, "prev_hash"},
		{"edit a hash", []string{
			`DROP TRIGGER audit_no_update`,
			`UPDATE audit SET hash = '` + strings.Repeat("ab", 32) + `' WHERE seq = 7`,
		}, 7, "hash does not match"},
		{"edit a prev_hash", []string{
			`DROP TRIGGER audit_no_update`,
			`UPDATE audit SET prev_hash = '` + strings.Repeat("cd", 32) + `' WHERE seq = 9`,
		}, 9, "prev_hash"},
		{"wrong column type", []string{
			`DROP TRIGGER audit_no_update`,
			`UPDATE audit SET duration_us = 'lots' WHERE seq = 5`,
		}, 5, "unreadable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := testDB(t)
			s := openTest(t, path)
			if err := recordN(t.Context(), s, "x", n); err != nil {
				t.Fatal(err)
			}
			db := rawDB(t, path)
			for _, stmt := range tt.stmts {
				if _, err := db.ExecContext(t.Context(), stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			res, err := s.Verify(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if res.OK || res.FirstBad != tt.firstBad || !strings.Contains(res.Reason, tt.reason) {
				t.Fatalf("Verify = %+v, want first bad seq %d (%q)", res, tt.firstBad, tt.reason)
			}
			if res.Records != tt.firstBad-1 {
				t.Errorf("Records = %d, want %d good records", res.Records, tt.firstBad-1)
			}
		})
	}
}

// An attacker who edits a record and recomputes its hash breaks the link
// to the next record.
func TestTamperRehashedRecord(t *testing.T) {
	path := testDB(t)
	s := openTest(t, path)
	if err := recordN(t.Context(), s, "r", 5); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Records(t.Context(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	r := recs[2]
	w := row{}
	// Rebuild the stored row for seq 3 with a new agent and rehash it.
	rows, err := s.rdb.QueryContext(t.Context(), "SELECT "+columns+" FROM audit WHERE seq = 3")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		if w, err = scanRow(rows); err != nil {
			t.Fatal(err)
		}
	}
	_ = rows.Close()
	w.agentID = "mallory"
	hash, _ := chainHash(nil, &w)
	db := rawDB(t, path)
	for _, stmt := range []string{`DROP TRIGGER audit_no_update`,
		`UPDATE audit SET agent_id = 'mallory', hash = '` + hash + `' WHERE seq = 3`} {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatal(err)
		}
	}
	res, err := s.Verify(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || res.FirstBad != 4 {
		t.Fatalf("Verify = %+v, want first bad seq 4 (after rehashed seq %d)", res, r.Seq)
	}
}

func TestTailTruncationNeedsAnchor(t *testing.T) {
	path := testDB(t)
	s := openTest(t, path)
	if err := recordN(t.Context(), s, "a", 4); err != nil {
		t.Fatal(err)
	}
	before, err := s.Verify(t.Context())
	if err != nil || !before.OK || before.LastSeq != 4 {
		t.Fatalf("Verify = %+v, %v", before, err)
	}
	db := rawDB(t, path)
	for _, stmt := range []string{`DROP TRIGGER audit_no_delete`, `DELETE FROM audit WHERE seq = 4`} {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatal(err)
		}
	}
	after, err := s.Verify(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !after.OK || after.LastSeq != 3 || after.LastHash == before.LastHash {
		t.Fatalf("after truncation Verify = %+v: the anchor (LastSeq, LastHash) must show the change", after)
	}
}

func TestHashInputIsCanonical(t *testing.T) {
	tests := []struct {
		name string
		r    row
	}{
		{"zero row", row{}},
		{"full row", row{
			seq: 42, id: "id\"1", time: "2025-01-02T03:04:05.000000006Z", sessionID: "s\n",
			transport: "http", agentID: "a<b>", taskID: "t", method: "tools/call", kind: "tool",
			server: "srv", name: "n", toolHash: "h", prompt: "p\u2028", arguments: []byte(`{"a":[1,2]}`),
			intent: []byte(`{"verdict":"in_scope"}`), effect: "allow", rule: "r", reason: "why",
			policyVersion: "v", shadow: true, outcome: "ok", errText: "e", result: []byte(`"x"`),
			truncated: true, durationUS: -5, upstreamUS: 7, prevHash: genesisHash,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := appendHashInput(nil, &tt.r)
			if !json.Valid(in) {
				t.Fatalf("hash input is not valid JSON: %s", in)
			}
			if c := CanonicalJSON(in); !bytes.Equal(c, in) {
				t.Fatalf("hash input is not canonical:\n got %s\nwant %s", in, c)
			}
			var m map[string]any
			_ = json.Unmarshal(in, &m)
			if len(m) != 26 {
				t.Errorf("hash input has %d fields, want 26 (every column but prev_hash and hash)", len(m))
			}
		})
	}
}

func TestHashDependsOnEveryField(t *testing.T) {
	base := row{seq: 1, id: "i", time: "t", prevHash: genesisHash}
	h0, _ := chainHash(nil, &base)
	edits := map[string]func(*row){
		"seq":              func(r *row) { r.seq = 2 },
		"prev_hash":        func(r *row) { r.prevHash = strings.Repeat("1", 64) },
		"time":             func(r *row) { r.time = "u" },
		"arguments":        func(r *row) { r.arguments = []byte(`null`) },
		"shadow":           func(r *row) { r.shadow = true },
		"truncated":        func(r *row) { r.truncated = true },
		"empty vs":         func(r *row) { r.result = []byte(`""`) },
		"upstream":         func(r *row) { r.upstreamUS = 1 },
		"reasoning":        func(r *row) { r.reasoning = "r" },
		"prompt_truncated": func(r *row) { r.promptTruncated = true },
		"approval":         func(r *row) { r.approval = []byte(`{}`) },
		"empty approval":   func(r *row) { r.approval = []byte{} },
	}
	for name, edit := range edits {
		r := base
		edit(&r)
		if h, _ := chainHash(nil, &r); h == h0 {
			t.Errorf("editing %s did not change the hash", name)
		}
	}
}

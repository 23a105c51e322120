package store

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"strings"
	"testing"
	"time"
)

// The tampering table of issue 12: each attack on a database file (with
// the guard triggers dropped, as anyone with the file can) is detected by
// Verify or by the signed checkpoints.
func TestTamperingDetected(t *testing.T) {
	t.Parallel()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]ed25519.PublicKey{"k1": pub}
	sign := func(b []byte) []byte { return ed25519.Sign(priv, b) }
	ctx := context.Background()
	// build returns a closed database of 20 records, checkpointed at 10
	// and at 20.
	build := func(t *testing.T, tag string) (string, []Checkpoint) {
		path := testDB(t)
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		var cps []Checkpoint
		for i := range 2 {
			if err := recordN(ctx, s, tag+string(rune('a'+i)), 10); err != nil {
				t.Fatal(err)
			}
			seq, hash, err := s.Head(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cps = append(cps, NewCheckpoint(seq, hash, time.Now(), "k1", sign))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return path, cps
	}
	unguard := []string{`DROP TRIGGER audit_no_update`, `DROP TRIGGER audit_no_delete`}
	cases := []struct {
		name   string
		attack func(t *testing.T, path string, cps []Checkpoint) (string, []Checkpoint)
		// want is in Verify's reason when chain is true, else in a
		// checkpoint problem.
		chain bool
		want  string
	}{
		{name: "edit a record", chain: true, want: "hash does not match", attack: func(t *testing.T, path string, cps []Checkpoint) (string, []Checkpoint) {
			execSQL(t, path, append(unguard, `UPDATE audit SET name = 'demo__innocent' WHERE seq = 7`)...)
			return path, cps
		}},
		{name: "delete in the middle", chain: true, want: "records missing", attack: func(t *testing.T, path string, cps []Checkpoint) (string, []Checkpoint) {
			execSQL(t, path, append(unguard, `DELETE FROM audit WHERE seq = 12`)...)
			return path, cps
		}},
		{name: "reorder two records", chain: true, want: "prev_hash does not match", attack: func(t *testing.T, path string, cps []Checkpoint) (string, []Checkpoint) {
			execSQL(t, path, append(unguard, `UPDATE audit SET seq = -1 WHERE seq = 5`, `UPDATE audit SET seq = 5 WHERE seq = 6`,
				`UPDATE audit SET seq = 6 WHERE seq = -1`)...)
			return path, cps
		}},
		{name: "delete the tail", want: "were removed (truncated)", attack: func(t *testing.T, path string, cps []Checkpoint) (string, []Checkpoint) {
			execSQL(t, path, append(unguard, `DELETE FROM audit WHERE seq > 15`)...)
			return path, cps
		}},
		{name: "rewrite and rehash the chain", want: "was rewritten", attack: func(t *testing.T, path string, cps []Checkpoint) (string, []Checkpoint) {
			execSQL(t, path, append(unguard, `UPDATE audit SET name = 'demo__innocent' WHERE seq = 3`)...)
			rehash(t, path)
			return path, cps
		}},
		{name: "swap in another database", want: "another database", attack: func(t *testing.T, _ string, cps []Checkpoint) (string, []Checkpoint) {
			other, _ := build(t, "other")
			return other, cps
		}},
		{name: "truncate and replay an old checkpoint", want: "were removed (truncated)", attack: func(t *testing.T, path string, cps []Checkpoint) (string, []Checkpoint) {
			// The database goes back to the first checkpoint, and the
			// copy an operator kept of the newest one is checked.
			execSQL(t, path, append(unguard, `DELETE FROM audit WHERE seq > 10`)...)
			return path, []Checkpoint{cps[0], cps[1]}
		}},
		{name: "forge a checkpoint", want: "signature does not verify", attack: func(t *testing.T, path string, cps []Checkpoint) (string, []Checkpoint) {
			execSQL(t, path, append(unguard, `DELETE FROM audit WHERE seq > 15`)...)
			forged := cps[1]
			forged.Seq = 15
			return path, []Checkpoint{cps[0], forged}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path, cps := build(t, "r")
			path, cps = tc.attack(t, path, cps)
			s := openTest(t, path)
			res, err := s.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tc.chain {
				if res.OK || !strings.Contains(res.Reason, tc.want) {
					t.Fatalf("Verify = %+v, want a break: %q", res, tc.want)
				}
				return
			}
			if !res.OK {
				t.Fatalf("Verify = %+v; this attack leaves a consistent chain", res)
			}
			problems, err := s.CheckCheckpoints(ctx, res, cps, keys)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(problems, "\n"), tc.want) {
				t.Fatalf("checkpoint problems %q, want %q", problems, tc.want)
			}
		})
	}
	// And an untouched database matches its checkpoints.
	path, cps := build(t, "clean")
	s := openTest(t, path)
	res, _ := s.Verify(ctx)
	if problems, err := s.CheckCheckpoints(ctx, res, cps, keys); err != nil || len(problems) != 0 {
		t.Fatalf("clean database: %q, %v", problems, err)
	}
}

func TestCheckpointFileRoundTrip(t *testing.T) {
	t.Parallel()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	path := t.TempDir() + "/cp"
	want := []Checkpoint{NewCheckpoint(1, "h1", time.Now(), "k", func(b []byte) []byte { return ed25519.Sign(priv, b) }),
		NewCheckpoint(2, "h2", time.Now(), "k", func(b []byte) []byte { return ed25519.Sign(priv, b) })}
	for _, c := range want {
		if err := AppendCheckpoint(path, c); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	got, err := ReadCheckpoints(bytes.NewReader(b))
	if err != nil || len(got) != 2 || got[1].Seq != 2 || !got[0].Time.Equal(want[0].Time) {
		t.Fatalf("read %+v, %v", got, err)
	}
	for _, c := range got {
		if err := c.VerifySignature(map[string]ed25519.PublicKey{"k": pub}); err != nil {
			t.Fatalf("a checkpoint read back does not verify: %v", err)
		}
	}
	if err := got[0].VerifySignature(map[string]ed25519.PublicKey{"other": pub}); err == nil || !strings.Contains(err.Error(), "not the mediator's") {
		t.Fatalf("unknown kid: %v", err)
	}
	if _, err := ReadCheckpoints(strings.NewReader("{\"v\":1,\"seq\":1}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("a bad line: %v", err)
	}
}

// execSQL runs statements on the database file directly.
func execSQL(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db := rawDB(t, path)
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	_ = db.Close()
}

// rehash recomputes every record's prev_hash and hash, as an attacker who
// knows the chain format would after an edit.
func rehash(t *testing.T, path string) {
	t.Helper()
	db := rawDB(t, path)
	rows, err := db.Query("SELECT " + columns + " FROM audit ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	var all []row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	rows.Close()
	prev := genesisHash
	for i := range all {
		all[i].prevHash = prev
		all[i].hash, _ = chainHash(nil, &all[i])
		prev = all[i].hash
		if _, err := db.Exec(`UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?`, all[i].prevHash, all[i].hash, all[i].seq); err != nil {
			t.Fatal(err)
		}
	}
	_ = db.Close()
}

// BenchmarkCheckpoint is the cost of one checkpoint: read the head, sign
// it, append and sync it.
func BenchmarkCheckpoint(b *testing.B) {
	ctx := context.Background()
	s := openTest(b, testDB(b))
	if err := recordN(ctx, s, "b", 100); err != nil {
		b.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	file := b.TempDir() + "/cp"
	b.ResetTimer()
	for b.Loop() {
		seq, hash, err := s.Head(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := AppendCheckpoint(file, NewCheckpoint(seq, hash, time.Now(), "k", func(m []byte) []byte { return ed25519.Sign(priv, m) })); err != nil {
			b.Fatal(err)
		}
	}
}

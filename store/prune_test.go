package store

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Prune archives the oldest records to a file that verifies on its own,
// removes them, and leaves a chain that verifies from the archive's head
// and keeps growing; an edited archive, and a base nobody recorded, are
// caught.
func TestPrune(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	keys := map[string]ed25519.PublicKey{"k": pub}
	sign := func(seq int64, hash string) Checkpoint {
		return NewCheckpoint(seq, hash, time.Now(), "k", func(b []byte) []byte { return ed25519.Sign(priv, b) })
	}
	path := testDB(t)
	s := openTest(t, path)
	day := time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC)
	for i := range 30 {
		r := testRecord("p", i)
		r.Time = day.Add(time.Duration(i) * time.Hour)
		if err := s.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	seq10, hash10, _ := func() (int64, string, error) {
		recs, err := s.RecordsAfter(ctx, 9, 1)
		return recs[0].Seq, recs[0].Hash, err
	}()
	cps := []Checkpoint{sign(seq10, hash10)}
	archive := filepath.Join(t.TempDir(), "archive.jsonl")
	res, err := s.Prune(ctx, day.Add(20*time.Hour), archive, sign)
	if err != nil || res.From != 1 || res.To != 20 {
		t.Fatalf("prune = %+v, %v", res, err)
	}
	if _, err := s.Prune(ctx, day.Add(20*time.Hour), archive+"2", sign); err != nil {
		t.Fatalf("a second prune with nothing to do: %v", err)
	}
	if _, err := os.Stat(archive + "2"); err == nil {
		t.Fatal("a prune with nothing to do left an archive")
	}
	if err := recordN(ctx, s, "after", 5); err != nil {
		t.Fatal(err)
	}
	v, err := s.Verify(ctx)
	if err != nil || !v.OK || v.Records != 16 || v.LastSeq != 36 {
		t.Fatalf("after the prune: %+v, %v", v, err)
	}
	headSeq, headHash, _ := s.Head(ctx)
	cps = append(cps, sign(headSeq, headHash))
	if problems, err := s.CheckCheckpoints(ctx, v, cps, keys); err != nil || len(problems) != 0 {
		t.Fatalf("checkpoints across the prune: %q, %v", problems, err)
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	if first, last, err := VerifyArchive(bytes.NewReader(data), keys); err != nil || first != 1 || last != 20 {
		t.Fatalf("VerifyArchive = %d..%d, %v", first, last, err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	for name, bad := range map[string]string{
		"edited":     strings.Replace(string(data), `files__read_file`, `files__wipe_disk`, 1),
		"cut short":  strings.Join(lines[:len(lines)-3], "\n") + "\n",
		"no tail":    strings.Join(lines[:len(lines)-1], "\n") + "\n",
		"a line out": strings.Join(append(append([]string{}, lines[:5]...), lines[6:]...), "\n") + "\n",
	} {
		if _, _, err := VerifyArchive(strings.NewReader(bad), keys); err == nil {
			t.Errorf("an archive %s verifies", name)
		}
	}
	// A base forged by hand (records deleted from the start) is caught.
	path2 := testDB(t)
	s2 := openTest(t, path2)
	if err := recordN(ctx, s2, "f", 10); err != nil {
		t.Fatal(err)
	}
	recs, _ := s2.RecordsAfter(ctx, 4, 1)
	_ = s2.Close()
	execSQL(t, path2, `DROP TRIGGER audit_no_delete`, `DELETE FROM audit WHERE seq <= 4`,
		`INSERT INTO chain_base(id, seq, hash, archived_at) VALUES (1, 4, '`+recs[0].PrevHash+`', 'x')`)
	s3 := openTest(t, path2)
	if v, _ := s3.Verify(ctx); v.OK || !strings.Contains(v.Reason, "no prune record says so") {
		t.Fatalf("a forged base: %+v", v)
	}
}

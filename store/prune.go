package store

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// Retention. `mediator audit prune --before T` moves the oldest records
// into an archive file and removes them from the database. The archive
// holds each record exactly as it was hashed (so it verifies on its own,
// without the database) and, last, a signed checkpoint of its last
// record. The database keeps the archive's head as its chain base, and a
// record (method PruneMethod) naming it, so that the chain still verifies
// from there, and a base nobody recorded is a tampering.

// PruneMethod is the method of the record a prune appends.
const PruneMethod = "mediator/prune"

// ArchiveRecord is one line of an archive: a record as hashed.
type ArchiveRecord struct {
	Seq      int64  `json:"seq"`
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
	// Canonical is the record's hash input (see "Chain format").
	Canonical string `json:"canonical"`
}

// archiveTail is the last line of an archive.
type archiveTail struct {
	Checkpoint Checkpoint `json:"checkpoint"`
}

// PruneResult says what a prune moved.
type PruneResult struct {
	From, To int64 // seqs archived and removed (To 0: none)
	Hash     string
}

// base reads the chain base: the seq and hash a pruned chain continues
// from (0 and the genesis hash when it was never pruned).
func (s *Store) base(ctx context.Context, q querier) (int64, string, error) {
	var seq int64
	var hash string
	err := q.QueryRowContext(ctx, `SELECT seq, hash FROM chain_base WHERE id = 1`).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, genesisHash, nil
	}
	return seq, hash, err
}

// pruneName names the base a prune left in its record.
func pruneName(seq int64, hash string) string { return fmt.Sprintf("seq %d hash %s", seq, hash) }

// Prune archives the records older than before (all but the newest
// record at the most) to a new file at archivePath and removes them, in
// one transaction: the archive is written and synced first, the chain
// checked while it is written. sign makes the archive's checkpoint. It
// then records the prune.
func (s *Store) Prune(ctx context.Context, before time.Time, archivePath string, sign func(seq int64, hash string) Checkpoint) (PruneResult, error) {
	var res PruneResult
	err := s.writeTx(ctx, "prune audit records", func(tx *sql.Tx) error {
		baseSeq, baseHash, err := s.base(ctx, tx)
		if err != nil {
			return err
		}
		var last, head sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT max(seq) FROM audit WHERE time < ?`, formatTime(before)).Scan(&last); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT max(seq) FROM audit`).Scan(&head); err != nil {
			return err
		}
		to := min(last.Int64, head.Int64-1) // the newest record stays: the chain continues from it
		if to <= baseSeq {
			return nil
		}
		f, err := os.OpenFile(archivePath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		defer f.Close()
		bw := bufio.NewWriter(f)
		enc := json.NewEncoder(bw)
		rows, err := tx.QueryContext(ctx, "SELECT "+columns+" FROM audit WHERE seq > ? AND seq <= ? ORDER BY seq", baseSeq, to)
		if err != nil {
			return err
		}
		prev, want := baseHash, baseSeq+1
		var buf []byte
		for rows.Next() {
			r, err := scanRow(rows)
			if err != nil {
				rows.Close()
				return err
			}
			var h string
			h, buf = chainHash(buf, &r)
			if r.seq != want || r.prevHash != prev || h != r.hash {
				rows.Close()
				return fmt.Errorf("%w: the chain is broken at seq %d; run `mediator audit verify` before pruning", mediator.ErrAudit, r.seq)
			}
			canon := appendHashInput(nil, &r)
			if err := enc.Encode(ArchiveRecord{Seq: r.seq, PrevHash: r.prevHash, Hash: r.hash, Canonical: string(canon)}); err != nil {
				rows.Close()
				return err
			}
			prev, want = r.hash, r.seq+1
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if err := enc.Encode(archiveTail{Checkpoint: sign(to, prev)}); err != nil {
			return err
		}
		if err := errors.Join(bw.Flush(), f.Sync()); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		for _, q := range []string{`DROP TRIGGER audit_no_delete`, `DELETE FROM audit WHERE seq <= ` + fmt.Sprint(to),
			`CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
				BEGIN SELECT RAISE(ABORT, 'audit records are append-only: DELETE refused'); END`,
			`INSERT INTO chain_base(id, seq, hash, archived_at) VALUES (1, ?, ?, ?)
				ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, archived_at = excluded.archived_at`} {
			args := []any{}
			if q[0] == 'I' {
				args = []any{to, prev, formatTime(time.Now())}
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
		res = PruneResult{From: baseSeq + 1, To: to, Hash: prev}
		return nil
	})
	if err != nil || res.To == 0 {
		if err != nil && res.To == 0 {
			_ = os.Remove(archivePath) // nothing was removed: the archive is not needed
		}
		return res, err
	}
	rec := mediator.ChainRecord{Time: time.Now(), Method: PruneMethod, Kind: mediator.KindProtocol, Name: pruneName(res.To, res.Hash),
		Outcome: mediator.OutcomeOK, Decision: mediator.Decision{Effect: mediator.EffectAllow, Rule: "audit.prune",
			Reason: fmt.Sprintf("records %d to %d archived to %s and removed; the chain continues from seq %d", res.From, res.To, archivePath, res.To)}}
	if err := s.Record(ctx, rec); err != nil {
		return res, fmt.Errorf("records %d to %d were archived and removed, but the prune record failed: %w", res.From, res.To, err)
	}
	return res, nil
}

// VerifyArchive checks an archive on its own: each record's hash is its
// hash input's, the records link up without gaps, and the last line is a
// checkpoint keys verify of the last record. It returns the first and last
// seq.
func VerifyArchive(r io.Reader, keys map[string]ed25519.PublicKey) (int64, int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	var first, seq int64
	var prev string
	var tail *Checkpoint
	for n := 1; sc.Scan(); n++ {
		if tail != nil {
			return first, seq, fmt.Errorf("archive line %d: lines after the checkpoint", n)
		}
		var line struct {
			ArchiveRecord
			Checkpoint *Checkpoint `json:"checkpoint"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return first, seq, fmt.Errorf("archive line %d: %w", n, err)
		}
		if line.Checkpoint != nil {
			tail = line.Checkpoint
			continue
		}
		a := line.ArchiveRecord
		if first == 0 {
			first = a.Seq
			if a.Seq == 1 && a.PrevHash != genesisHash {
				return first, seq, fmt.Errorf("archive line %d: the first record of the chain does not start from the genesis hash", n)
			}
		} else if a.Seq != seq+1 || a.PrevHash != prev {
			return first, seq, fmt.Errorf("archive line %d: record seq %d does not follow seq %d (removed, reordered or edited)", n, a.Seq, seq)
		}
		sum := sha256.Sum256([]byte(a.PrevHash + a.Canonical))
		if hex.EncodeToString(sum[:]) != a.Hash {
			return first, seq, fmt.Errorf("archive line %d: record seq %d does not match its hash (edited)", n, a.Seq)
		}
		seq, prev = a.Seq, a.Hash
	}
	if err := sc.Err(); err != nil {
		return first, seq, fmt.Errorf("read archive: %w", err)
	}
	switch {
	case tail == nil:
		return first, seq, errors.New("the archive has no signed checkpoint at its end (cut short)")
	case tail.Seq != seq || tail.Hash != prev:
		return first, seq, fmt.Errorf("the archive's checkpoint names seq %d, its last record is seq %d (cut short or edited)", tail.Seq, seq)
	}
	if err := tail.VerifySignature(keys); err != nil {
		return first, seq, fmt.Errorf("the archive's checkpoint: %w", err)
	}
	return first, seq, nil
}

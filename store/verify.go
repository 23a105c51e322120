package store

import (
	"context"
	"fmt"

	"github.com/mcp-mediator/mediator/mediator"
)

// VerifyResult is the outcome of Verify.
type VerifyResult struct {
	// Records is the number of records checked and found good.
	Records int64
	// OK is true when the whole chain is intact.
	OK bool
	// FirstBad is the seq of the first record that is missing, altered or
	// out of place (0 when OK).
	FirstBad int64
	// Reason says what is wrong with FirstBad ("" when OK).
	Reason string
	// LastSeq and LastHash identify the last good record (0 and the genesis
	// hash for an empty chain). Removing records from the end of the chain
	// leaves it valid; compare LastSeq and LastHash with a copy kept
	// elsewhere to detect that.
	LastSeq  int64
	LastHash string
}

// Verify walks the whole chain in seq order, streaming rows, and checks
// that seqs run 1, 2, 3, ... without gaps, that each prev_hash is the hash
// of the record before it (the genesis hash for seq 1) and that each hash
// matches the record's stored fields (see "Chain format" in the package
// documentation). It stops at
// the first bad record. An error means the check itself failed.
func (s *Store) Verify(ctx context.Context) (VerifyResult, error) {
	if s.isClosed() {
		return VerifyResult{}, s.errClosed()
	}
	baseSeq, baseHash, err := s.base(ctx, s.rdb)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("%w: verify audit chain: read the chain base: %w", mediator.ErrAudit, err)
	}
	rows, err := s.rdb.QueryContext(ctx, "SELECT "+columns+" FROM audit ORDER BY seq")
	if err != nil {
		return VerifyResult{}, fmt.Errorf("%w: verify audit chain: %w", mediator.ErrAudit, err)
	}
	defer rows.Close()
	// A pruned chain continues from its base (the archive's head).
	res := VerifyResult{LastSeq: baseSeq, LastHash: baseHash}
	var buf []byte
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return res.bad(res.LastSeq+1, fmt.Sprintf("unreadable record after seq %d: %v", res.LastSeq, err)), nil
		}
		var reason string
		if reason, buf = checkLink(&res, &r, buf); reason != "" {
			return res.bad(min(r.seq, res.LastSeq+1), reason), nil
		}
		res.Records++
		res.LastSeq, res.LastHash = r.seq, r.hash
	}
	if err := rows.Err(); err != nil {
		return VerifyResult{}, fmt.Errorf("%w: verify audit chain: %w", mediator.ErrAudit, err)
	}
	if baseSeq > 0 {
		// The base must be one a prune recorded in the chain itself.
		var n int
		err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM audit WHERE method = ? AND name = ? AND seq > ?`,
			PruneMethod, pruneName(baseSeq, baseHash), baseSeq).Scan(&n)
		if err != nil {
			return VerifyResult{}, fmt.Errorf("%w: verify audit chain: %w", mediator.ErrAudit, err)
		}
		if n == 0 {
			return res.bad(baseSeq+1, fmt.Sprintf("the chain starts after seq %d, but no prune record says so "+
				"(records removed from its start, and the base forged)", baseSeq)), nil
		}
	}
	res.OK = true
	return res, nil
}

// checkLink checks r against the last good record in res and returns what
// is wrong with it ("" if nothing).
func checkLink(res *VerifyResult, r *row, buf []byte) (string, []byte) {
	want := res.LastSeq + 1
	switch {
	case r.seq > want:
		return fmt.Sprintf("records missing: expected seq %d, next stored seq is %d", want, r.seq), buf
	case r.seq != want:
		return fmt.Sprintf("unexpected seq %d where seq %d was expected", r.seq, want), buf
	case r.prevHash != res.LastHash:
		return fmt.Sprintf("prev_hash does not match the hash of seq %d (record removed, replaced or reordered)",
			res.LastSeq), buf
	}
	hash, buf := chainHash(buf, r)
	if hash != r.hash {
		return "hash does not match the record's contents (record or hash edited)", buf
	}
	return "", buf
}

// bad returns res marked as failing at seq.
func (res VerifyResult) bad(seq int64, reason string) VerifyResult {
	res.OK, res.FirstBad, res.Reason = false, seq, reason
	return res
}

package store

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// A checkpoint is the chain head (seq and hash) signed with the mediator's
// key, kept where the database cannot take it back: a file appended
// outside the database's directory, a copy kept by an operator. Anyone
// with the database file can rehash or truncate the chain; nobody without
// the key can make a checkpoint agree with the result.

// Checkpoint is one signed chain head.
type Checkpoint struct {
	V    int       `json:"v"`
	Seq  int64     `json:"seq"`
	Hash string    `json:"hash"`
	Time time.Time `json:"time"`
	// KID is the id of the key that signed it; Sig the base64url Ed25519
	// signature of SigningInput.
	KID string `json:"kid"`
	Sig string `json:"sig"`
}

// checkpointVersion is the checkpoint format.
const checkpointVersion = 1

// maxCheckpointLine bounds one line of a checkpoint file.
const maxCheckpointLine = 4096

// SigningInput is what a checkpoint's signature covers.
func (c Checkpoint) SigningInput() []byte {
	return []byte("mcp-mediator audit checkpoint v" + strconv.Itoa(c.V) + "\n" + strconv.FormatInt(c.Seq, 10) + "\n" +
		c.Hash + "\n" + formatTime(c.Time) + "\n" + c.KID + "\n")
}

// NewCheckpoint signs the head seq/hash at t with sign (the mediator key).
func NewCheckpoint(seq int64, hash string, t time.Time, kid string, sign func([]byte) []byte) Checkpoint {
	c := Checkpoint{V: checkpointVersion, Seq: seq, Hash: hash, Time: t.UTC().Truncate(time.Nanosecond), KID: kid}
	c.Time, _ = time.Parse(time.RFC3339Nano, formatTime(c.Time))
	c.Sig = base64.RawURLEncoding.EncodeToString(sign(c.SigningInput()))
	return c
}

// VerifySignature checks c against the public keys by kid.
func (c Checkpoint) VerifySignature(keys map[string]ed25519.PublicKey) error {
	pub, ok := keys[c.KID]
	if !ok {
		return fmt.Errorf("signed by key %q, which is not the mediator's (pass the JWKS of past keys)", c.KID)
	}
	sig, err := base64.RawURLEncoding.DecodeString(c.Sig)
	if err != nil || !ed25519.Verify(pub, c.SigningInput(), sig) {
		return errors.New("the signature does not verify (checkpoint forged or edited)")
	}
	return nil
}

// AppendCheckpoint appends c to the file at path as one JSON line, and
// syncs it.
func AppendCheckpoint(path string, c Checkpoint) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("checkpoint file: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("checkpoint file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("checkpoint file %s: %w", path, err)
	}
	return f.Close()
}

// ReadCheckpoints reads a checkpoint file (JSON lines; a single
// checkpoint as printed by `mediator audit checkpoint` is one). A line
// that does not parse is an error naming it.
func ReadCheckpoints(r io.Reader) ([]Checkpoint, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), maxCheckpointLine)
	var out []Checkpoint
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var c Checkpoint
		if err := json.Unmarshal(line, &c); err != nil || c.V != checkpointVersion || c.Seq < 0 {
			return out, fmt.Errorf("checkpoint line %d is not a checkpoint of this format", n)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("read checkpoints: %w", err)
	}
	return out, nil
}

// Head returns the seq and hash of the last record (0 and the genesis
// hash for an empty chain), as committed.
func (s *Store) Head(ctx context.Context) (int64, string, error) {
	if s.isClosed() {
		return 0, "", s.errClosed()
	}
	var seq int64
	var hash string
	err := s.rdb.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, genesisHash, nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("%w: read the chain head: %w", mediator.ErrAudit, err)
	}
	return seq, hash, nil
}

// CheckCheckpoints compares a verified chain (res, from Verify) with
// checkpoints whose signatures keys verify, and returns what is wrong, in
// plain words: a checkpoint that does not verify, records after a
// checkpoint that were removed (truncation), a record that no longer has
// the hash a checkpoint signed (rewrite, or another database).
func (s *Store) CheckCheckpoints(ctx context.Context, res VerifyResult, cps []Checkpoint, keys map[string]ed25519.PublicKey) ([]string, error) {
	var problems []string
	baseSeq, baseHash, err := s.base(ctx, s.rdb)
	if err != nil {
		return nil, fmt.Errorf("%w: read the chain base: %w", mediator.ErrAudit, err)
	}
	for i, c := range cps {
		where := fmt.Sprintf("checkpoint %d (seq %d, %s)", i+1, c.Seq, c.Time.UTC().Format(time.RFC3339))
		if err := c.VerifySignature(keys); err != nil {
			problems = append(problems, where+": "+err.Error())
			continue
		}
		if c.Seq > res.LastSeq {
			problems = append(problems, fmt.Sprintf("%s: the chain ends at seq %d, so records %d to %d, which the checkpoint "+
				"covers, were removed (truncated), or this is another database", where, res.LastSeq, res.LastSeq+1, c.Seq))
			continue
		}
		if c.Seq == 0 || (c.Seq < baseSeq) {
			continue // pruned: the archive holds it (audit verify --archive)
		}
		if c.Seq == baseSeq {
			if c.Hash != baseHash {
				problems = append(problems, fmt.Sprintf("%s: the chain's base (seq %d, pruned up to there) has another hash "+
					"(rewritten, or another database)", where, c.Seq))
			}
			continue
		}
		var hash string
		err := s.rdb.QueryRowContext(ctx, `SELECT hash FROM audit WHERE seq = ?`, c.Seq).Scan(&hash)
		if err != nil {
			return problems, fmt.Errorf("%w: read seq %d: %w", mediator.ErrAudit, c.Seq, err)
		}
		if hash != c.Hash {
			problems = append(problems, fmt.Sprintf("%s: record seq %d has hash %s…, the checkpoint signed %s… "+
				"(the chain was rewritten up to there, or this is another database)", where, c.Seq, short8(hash), short8(c.Hash)))
		}
	}
	return problems, nil
}

func short8(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

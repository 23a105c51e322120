package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// processStart is when this process started, for processInstance.
var processStart = time.Now()

// processInstance names this process: host, pid and start time. Written
// into forwarding records, it lets a later start tell a forward whose
// writer crashed from one whose writer is still running.
func processInstance() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return host + "/" + strconv.Itoa(os.Getpid()) + "/" + strconv.FormatInt(processStart.UnixNano(), 10)
}

// writerAlive reports whether the process named by instance may still be
// running: it is this process, or a process with its pid runs on this
// host. A writer on another host counts as alive (it cannot be checked
// from here).
func writerAlive(instance, self string) bool {
	if instance == self {
		return true
	}
	parts := strings.Split(instance, "/")
	if len(parts) != 3 {
		return false // not written by this build: nobody can finish it
	}
	host, _ := os.Hostname()
	if parts[0] != host {
		return true
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return false
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// UnfinishedForwards returns the forwarding records (write-ahead records
// of calls that may change things) that no record completes, oldest
// first: calls that were forwarded, or were about to be, when the process
// recording them stopped, and whose outcome is unknown.
func (s *Store) UnfinishedForwards(ctx context.Context) ([]mediator.ChainRecord, error) {
	if s.isClosed() {
		return nil, s.errClosed()
	}
	return s.queryRecords(ctx, "unfinished forwards", "SELECT "+columns+` FROM audit AS a WHERE outcome = 'forwarding'
		AND NOT EXISTS (SELECT 1 FROM audit AS b WHERE b.ref = a.id AND b.ref != '') ORDER BY seq`)
}

// queryRecords runs a query selecting columns and returns its records.
func (s *Store) queryRecords(ctx context.Context, what, q string, args ...any) ([]mediator.ChainRecord, error) {
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", mediator.ErrAudit, what, err)
	}
	defer rows.Close()
	var out []mediator.ChainRecord
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, err
		}
		rec, err := r.record()
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", mediator.ErrAudit, what, err)
	}
	return out, nil
}

// CloseUnfinishedForwards records "outcome unknown" for every unfinished
// forward whose writer is no longer running, and returns them: the next
// start after a crash says, in the chain, that those calls may have run.
func (s *Store) CloseUnfinishedForwards(ctx context.Context) ([]mediator.ChainRecord, error) {
	list, err := s.UnfinishedForwards(ctx)
	if err != nil {
		return nil, err
	}
	var closed []mediator.ChainRecord
	for _, f := range list {
		if writerAlive(f.Writer, s.instance) {
			continue
		}
		rec := f
		rec.Seq, rec.ID, rec.Time, rec.Ref, rec.Writer, rec.PrevHash, rec.Hash = 0, mediator.NewID(), time.Now(), f.ID, "", "", ""
		rec.Outcome, rec.Result, rec.DurationUS, rec.UpstreamUS = mediator.OutcomeUnknown, nil, 0, 0
		rec.Error = fmt.Sprintf("outcome unknown: the mediator process %s stopped after recording this call as forwarded "+
			"(record seq %d) and before recording its outcome; the upstream %s may have executed it: check there", f.Writer, f.Seq, f.Server)
		if err := s.Record(ctx, rec); err != nil {
			return closed, err
		}
		closed = append(closed, rec)
	}
	return closed, nil
}

// UnknownOutcomes returns the records that closed a forward as outcome
// unknown, oldest first.
func (s *Store) UnknownOutcomes(ctx context.Context) ([]mediator.ChainRecord, error) {
	if s.isClosed() {
		return nil, s.errClosed()
	}
	return s.queryRecords(ctx, "outcome-unknown records", "SELECT "+columns+` FROM audit WHERE outcome = 'unknown' ORDER BY seq`)
}

// FindToolUse returns the newest tool_use record (an agent tool's
// decision) of the session whose recorded answer names the client's use
// id, so that the tool's outcome can be recorded against it
// (mediator.ToolUseFinder).
func (s *Store) FindToolUse(ctx context.Context, session, useID string) (mediator.ChainRecord, bool, error) {
	if s.isClosed() {
		return mediator.ChainRecord{}, false, s.errClosed()
	}
	list, err := s.queryRecords(ctx, "tool use", "SELECT "+columns+` FROM audit WHERE session_id = ? AND method = ?
		AND json_valid(result) AND json_extract(result, '$.tool_use_id') = ? ORDER BY seq DESC LIMIT 1`,
		session, mediator.MethodToolUse, useID)
	if err != nil || len(list) == 0 {
		return mediator.ChainRecord{}, false, err
	}
	return list[0], true, nil
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

var _ mediator.SettingStore = (*Store)(nil)

// MaxSettingBytes caps the length of a setting's key and of its value.
const MaxSettingBytes = 64 << 10

// ErrInvalidSetting is wrapped by SetSetting when the key is empty or the
// key or value is longer than MaxSettingBytes.
var ErrInvalidSetting = errors.New("invalid setting")

// Setting returns the value stored under key; ok is false when there is
// none. It reads what every process sharing the database last committed.
func (s *Store) Setting(ctx context.Context, key string) (string, bool, error) {
	if s.isClosed() {
		return "", false, s.errClosed()
	}
	var v string
	err := s.rdb.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("read setting %q: %w", key, err)
	}
	return v, true, nil
}

// SetSetting stores value under key, replacing any earlier value, and
// returns once it is committed.
func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	if key == "" || len(key) > MaxSettingBytes || len(value) > MaxSettingBytes {
		return fmt.Errorf("%w: the key must be 1..%d bytes and the value at most %d bytes",
			ErrInvalidSetting, MaxSettingBytes, MaxSettingBytes)
	}
	const q = `INSERT INTO settings(key, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`
	return s.smallWrite(ctx, fmt.Sprintf("set setting %q", key), q, key, value, formatTime(time.Now()))
}

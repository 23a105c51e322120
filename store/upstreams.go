package store

import (
	"context"
	"fmt"
	"time"
)

// Upstreams registered at run time (through the admin API) are kept in the
// settings table, one row per upstream under the key "upstream/<name>", so
// that they need no table of their own and no migration. The value is the
// upstream's configuration as JSON; the store does not interpret it.

// upstreamKeyPrefix prefixes the settings keys of registered upstreams.
const upstreamKeyPrefix = "upstream/"

// RegisteredUpstream is one upstream registered at run time.
type RegisteredUpstream struct {
	Name string
	// Spec is the upstream's configuration as JSON, as registered.
	Spec string
	// At is when it was registered (or last replaced).
	At time.Time
}

// RegisterUpstream stores spec under name, replacing any earlier
// registration of that name, and returns once it is committed.
func (s *Store) RegisterUpstream(ctx context.Context, name, spec string) error {
	if name == "" {
		return fmt.Errorf("%w: empty upstream name", ErrInvalidSetting)
	}
	return s.SetSetting(ctx, upstreamKeyPrefix+name, spec)
}

// UnregisterUpstream deletes the registration of name; it reports whether
// there was one.
func (s *Store) UnregisterUpstream(ctx context.Context, name string) (bool, error) {
	if _, ok, err := s.Setting(ctx, upstreamKeyPrefix+name); err != nil || !ok {
		return false, err
	}
	err := s.smallWrite(ctx, fmt.Sprintf("unregister upstream %q", name),
		`DELETE FROM settings WHERE key = ?`, upstreamKeyPrefix+name)
	return err == nil, err
}

// RegisteredUpstreams returns every registration, oldest first, so that a
// restart adds them in the order they were made.
func (s *Store) RegisteredUpstreams(ctx context.Context) ([]RegisteredUpstream, error) {
	if s.isClosed() {
		return nil, s.errClosed()
	}
	// '0' follows '/' in ASCII: the range is exactly the keys with the
	// prefix, without LIKE and its wildcards ('_' is legal in a name).
	rows, err := s.rdb.QueryContext(ctx, `SELECT key, value, updated_at FROM settings
		WHERE key >= ? AND key < ? ORDER BY updated_at, key`, upstreamKeyPrefix, "upstream0")
	if err != nil {
		return nil, fmt.Errorf("read registered upstreams: %w", err)
	}
	defer rows.Close()
	var out []RegisteredUpstream
	for rows.Next() {
		var key, at string
		var u RegisteredUpstream
		if err := rows.Scan(&key, &u.Spec, &at); err != nil {
			return nil, fmt.Errorf("read registered upstreams: %w", err)
		}
		u.Name = key[len(upstreamKeyPrefix):]
		u.At, _ = time.Parse(timeLayout, at)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read registered upstreams: %w", err)
	}
	return out, nil
}

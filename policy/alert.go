package policy

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// AlertState holds the current alert level for decisions: Level is a
// single atomic load. Follow keeps it in step with a mediator.SettingStore,
// so that `mediator alert set` in any process reaches every process
// sharing the database within about a second, without a restart.
type AlertState struct {
	level atomic.Pointer[AlertLevel]
}

// NewAlertState starts at level.
func NewAlertState(level AlertLevel) *AlertState {
	s := &AlertState{}
	s.Set(level)
	return s
}

// Level returns the current level.
func (s *AlertState) Level() AlertLevel { return *s.level.Load() }

// Set changes the level in this process only.
func (s *AlertState) Set(l AlertLevel) { s.level.Store(&l) }

// Refresh reads the level from st. A stored value that is not a level
// counts as incident — the safe reading of a setting nobody can interpret —
// and is reported as an error. A read error leaves the level unchanged.
func (s *AlertState) Refresh(ctx context.Context, st mediator.SettingStore) error {
	l, err := ReadAlert(ctx, st)
	if err != nil && l == "" {
		return err
	}
	s.Set(l)
	return err
}

// Follow refreshes the level from st every interval until ctx ends,
// logging changes and errors (each distinct error once).
func (s *AlertState) Follow(ctx context.Context, st mediator.SettingStore, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		before := s.Level()
		err := s.Refresh(ctx, st)
		switch {
		case err != nil && err.Error() != lastErr && ctx.Err() == nil:
			lastErr = err.Error()
			log.Error("reading the alert level", "err", err, "level", s.Level())
		case err == nil:
			lastErr = ""
		}
		if now := s.Level(); now != before {
			log.Warn("alert level changed", "from", before, "to", now)
		}
	}
}

// ReadAlert returns the stored alert level; normal when none is stored.
// An unreadable stored value returns AlertIncident and an error.
func ReadAlert(ctx context.Context, st mediator.SettingStore) (AlertLevel, error) {
	v, ok, err := st.Setting(ctx, AlertSettingKey)
	if err != nil {
		return "", fmt.Errorf("alert level: %w", err)
	}
	if !ok || v == "" {
		return AlertNormal, nil
	}
	l, err := ParseAlertLevel(v)
	if err != nil {
		return AlertIncident, fmt.Errorf("stored alert level (treated as incident): %w", err)
	}
	return l, nil
}

// WriteAlert stores level for every process sharing st.
func WriteAlert(ctx context.Context, st mediator.SettingStore, level AlertLevel) error {
	if _, err := ParseAlertLevel(string(level)); err != nil {
		return err
	}
	if err := st.SetSetting(ctx, AlertSettingKey, string(level)); err != nil {
		return fmt.Errorf("alert level: %w", err)
	}
	return nil
}

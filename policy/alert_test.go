package policy

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// fakeSettings is a hand-written mediator.SettingStore.
type fakeSettings struct {
	mu     sync.Mutex
	values map[string]string
	getErr error
	setFn  func(key, value string) error
}

var _ mediator.SettingStore = (*fakeSettings)(nil)

func (f *fakeSettings) Setting(_ context.Context, key string) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.getErr != nil {
		return "", false, f.getErr
	}
	v, ok := f.values[key]
	return v, ok, nil
}

func (f *fakeSettings) SetSetting(_ context.Context, key, value string) error {
	if f.setFn != nil {
		if err := f.setFn(key, value); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.values == nil {
		f.values = map[string]string{}
	}
	f.values[key] = value
	return nil
}

func TestReadAlert(t *testing.T) {
	t.Parallel()
	broken := errors.New("database is locked")
	cases := []struct {
		name    string
		store   *fakeSettings
		want    AlertLevel
		wantErr bool
	}{
		{"nothing stored is normal", &fakeSettings{}, AlertNormal, false},
		{"stored level", &fakeSettings{values: map[string]string{AlertSettingKey: "elevated"}}, AlertElevated, false},
		{"an unreadable value counts as incident", &fakeSettings{values: map[string]string{AlertSettingKey: "red"}}, AlertIncident, true},
		{"a store error has no level", &fakeSettings{getErr: broken}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadAlert(t.Context(), tc.store)
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Fatalf("got %q, %v; want %q, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestAlertStateRefresh(t *testing.T) {
	t.Parallel()
	st := &fakeSettings{}
	s := NewAlertState(AlertNormal)
	if err := WriteAlert(t.Context(), st, AlertIncident); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(t.Context(), st); err != nil || s.Level() != AlertIncident {
		t.Fatalf("after refresh: %s, %v", s.Level(), err)
	}
	st.getErr = errors.New("gone")
	if err := s.Refresh(t.Context(), st); err == nil || s.Level() != AlertIncident {
		t.Fatalf("a read error must keep the last level: %s, %v", s.Level(), err)
	}
	if err := WriteAlert(t.Context(), st, "red"); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("writing an unknown level: %v", err)
	}
}

// Follow brings another process's `alert set` into decisions without a
// restart.
func TestAlertFollowReachesDecisions(t *testing.T) {
	t.Parallel()
	st := &fakeSettings{}
	s := NewAlertState(AlertNormal)
	e := loadExample(t, WithAlert(s.Level))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go s.Follow(ctx, st, 5*time.Millisecond, slog.New(slog.DiscardHandler))
	write := mediator.AuthzRequest{Agent: quickstart, Target: demoTool("write_file", mediator.DataInternal, false),
		Arguments: map[string]any{"path": "a", "content": "b"}}
	if d, _ := e.Decide(t.Context(), write); d.Effect != mediator.EffectAllow {
		t.Fatalf("normal: %+v", d)
	}
	if err := WriteAlert(t.Context(), st, AlertIncident); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		d, _ := e.Decide(t.Context(), write)
		return d.Effect == mediator.EffectDeny && d.Rule == "incident-read-only"
	})
}

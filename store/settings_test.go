package store

import (
	"errors"
	"testing"
)

func TestSettings(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	ctx := t.Context()
	if v, ok, err := s.Setting(ctx, "alert_level"); err != nil || ok || v != "" {
		t.Fatalf("unset setting = %q, %v, %v; want not found", v, ok, err)
	}
	for _, v := range []string{"elevated", "normal", ""} {
		if err := s.SetSetting(ctx, "alert_level", v); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := s.Setting(ctx, "alert_level"); err != nil || !ok || got != v {
			t.Fatalf("Setting = %q, %v, %v; want %q", got, ok, err, v)
		}
	}
	bad := []struct {
		name, key, value string
	}{
		{"empty key", "", "x"},
		{"huge key", string(make([]byte, MaxSettingBytes+1)), "x"},
		{"huge value", "k", string(make([]byte, MaxSettingBytes+1))},
	}
	for _, tt := range bad {
		if err := s.SetSetting(ctx, tt.key, tt.value); !errors.Is(err, ErrInvalidSetting) {
			t.Errorf("%s: SetSetting = %v, want ErrInvalidSetting", tt.name, err)
		}
	}
}

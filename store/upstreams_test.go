package store

import (
	"path/filepath"
	"testing"
)

func TestRegisteredUpstreams(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	for _, n := range []string{"b_x", "a", "c"} {
		if err := s.RegisterUpstream(ctx, n, `{"name":"`+n+`"}`); err != nil {
			t.Fatal(err)
		}
	}
	// Neighbours of the key range must not be listed.
	for _, k := range []string{"upstream", "upstream0", "upstreams/x", "alert_level"} {
		if err := s.SetSetting(ctx, k, "v"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.RegisteredUpstreams(ctx)
	if err != nil || len(got) != 3 || got[0].Name != "b_x" || got[1].Name != "a" || got[2].Name != "c" ||
		got[0].Spec != `{"name":"b_x"}` || got[0].At.IsZero() {
		t.Fatalf("registered = %+v, %v; want b_x, a, c in registration order", got, err)
	}
	if ok, err := s.UnregisterUpstream(ctx, "a"); !ok || err != nil {
		t.Fatalf("unregister a = %v, %v", ok, err)
	}
	if ok, err := s.UnregisterUpstream(ctx, "a"); ok || err != nil {
		t.Fatalf("unregister a again = %v, %v; want false, nil", ok, err)
	}
	if got, _ := s.RegisteredUpstreams(ctx); len(got) != 2 {
		t.Fatalf("after unregister: %+v", got)
	}
	if err := s.RegisterUpstream(ctx, "", "{}"); err == nil {
		t.Fatal("empty name accepted")
	}
}

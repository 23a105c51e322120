package mediator

import (
	"encoding/hex"
	"testing"
	"time"
)

// Record ids are 32 hex digits that sort by creation time and do not repeat.
func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for i := range 10000 {
		id := NewID()
		if len(id) != 32 {
			t.Fatalf("id %q: %d characters, want 32", id, len(id))
		}
		if _, err := hex.DecodeString(id); err != nil {
			t.Fatalf("id %q is not hex: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("id %q repeated after %d ids", id, i)
		}
		seen[id] = true
		// The time prefix never goes back (even if the wall clock
		// does); within one millisecond the order is random.
		if prev != "" && id[:12] < prev[:12] {
			t.Fatalf("id %q sorts before the earlier %q", id, prev)
		}
		prev = id
	}
	ms, err := hex.DecodeString(prev[:12])
	if err != nil {
		t.Fatal(err)
	}
	var v int64
	for _, b := range ms {
		v = v<<8 | int64(b)
	}
	if d := time.Since(time.UnixMilli(v)); d < -24*time.Hour || d > 24*time.Hour {
		t.Errorf("id %q: time prefix is %s away from now", prev, d)
	}
}

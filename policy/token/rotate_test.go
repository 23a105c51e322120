package token

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Rotation keeps the old public key for what it signed and puts a new
// key in force; a tampered past keys file is refused.
func TestRotateKey(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "mediator.key")
	first, _, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	old, fresh, err := RotateKey(path, time.Now())
	if err != nil || old.KID() != first.KID() || fresh.KID() == old.KID() {
		t.Fatalf("rotate: %v, %v, %v", old, fresh, err)
	}
	now, err := LoadKey(path)
	if err != nil || now.KID() != fresh.KID() {
		t.Fatalf("the key file holds %v, %v; want the new key", now, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("the new key file has mode %v", fi.Mode().Perm())
	}
	if _, _, err := RotateKey(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	past, err := PastKeys(path)
	if err != nil || len(past) != 2 || past[first.KID()] == nil || past[fresh.KID()] == nil {
		t.Fatalf("past keys %v, %v", past, err)
	}
	data, _ := os.ReadFile(PastKeysFile(path))
	bad := []byte(string(data[:len(data)/2]))
	if err := os.WriteFile(PastKeysFile(path), bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := PastKeys(path); err == nil {
		t.Fatal("a truncated past keys file was read")
	}
	if _, _, err := RotateKey(filepath.Join(t.TempDir(), "none.key"), time.Now()); err == nil {
		t.Fatal("rotated a key that does not exist")
	}
}

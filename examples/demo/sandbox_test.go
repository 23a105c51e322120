package demo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// sandboxFixture builds a root with a sub-directory, a file, a link inside
// the root, links leading outside it, and a dangling link. It returns the
// resolved root and the resolved outside directory.
func sandboxFixture(t testing.TB) (root, outside string) {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root = filepath.Join(base, "root")
	outside = filepath.Join(base, "outside")
	for _, dir := range []string{filepath.Join(root, "sub", "deeper"), outside} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(root, "sub", "file.txt"): "inside",
		filepath.Join(outside, "secret.txt"):   "TOP SECRET",
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		filepath.Join(root, "link-in"):       "sub",                                  // relative, stays inside
		filepath.Join(root, "link-out"):      outside,                                // absolute, leaves
		filepath.Join(root, "link-rel-out"):  filepath.Join("..", "outside"),         // relative, leaves
		filepath.Join(root, "link-file-out"): filepath.Join(outside, "secret.txt"),   // file outside
		filepath.Join(root, "dangling"):      filepath.Join(outside, "missing", "x"), // target missing
		filepath.Join(root, "sub", "up"):     "..",                                   // back to the root
		filepath.Join(root, "sub", "upup"):   filepath.Join("..", ".."),              // above the root
	}
	for link, target := range links {
		if err := os.Symlink(target, link); err != nil {
			t.Skipf("symlinks not supported: %v", err)
		}
	}
	return root, outside
}

func TestResolvePath(t *testing.T) {
	root, _ := sandboxFixture(t)
	tests := []struct {
		path    string
		want    string // relative to root, "/"-separated; "" when an error is expected
		wantErr error
	}{
		{path: "", want: "."},
		{path: ".", want: "."},
		{path: "sub/file.txt", want: "sub/file.txt"},
		{path: "sub//file.txt", want: "sub/file.txt"},
		{path: "./sub/./file.txt", want: "sub/file.txt"},
		{path: "sub/deeper/../file.txt", want: "sub/file.txt"},
		{path: "new/dir/file.md", want: "new/dir/file.md"},
		{path: "link-in/file.txt", want: "sub/file.txt"},
		{path: "link-in/new.txt", want: "sub/new.txt"},
		{path: "sub/up/sub/file.txt", want: "sub/file.txt"},
		{path: "..", wantErr: errOutsideRoot},
		{path: "../etc/passwd", wantErr: errOutsideRoot},
		{path: "sub/../../etc/passwd", wantErr: errOutsideRoot},
		{path: "/etc/passwd", wantErr: errAbsolutePath},
		{path: "//etc/passwd", wantErr: errAbsolutePath},
		{path: root + "/sub/file.txt", wantErr: errAbsolutePath},
		{path: "link-out", wantErr: errOutsideRoot},
		{path: "link-out/secret.txt", wantErr: errOutsideRoot},
		{path: "link-out/new.txt", wantErr: errOutsideRoot},
		{path: "link-rel-out/secret.txt", wantErr: errOutsideRoot},
		{path: "link-file-out", wantErr: errOutsideRoot},
		{path: "sub/upup/outside/secret.txt", wantErr: errOutsideRoot},
		{path: "dangling", wantErr: errInvalidPath},
		{path: "dangling/x", wantErr: errInvalidPath},
		{path: "sub/file.txt/x", wantErr: errInvalidPath},
		{path: "a\x00b", wantErr: errInvalidPath},
		{path: "bad\xffutf8", wantErr: errInvalidPath},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.path, "/", "|"), func(t *testing.T) {
			got, err := resolvePath(root, tt.path)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("resolvePath(%q) = %q, %v; want error %v", tt.path, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolvePath(%q): %v", tt.path, err)
			}
			want := filepath.Join(root, filepath.FromSlash(tt.want))
			if got != want {
				t.Fatalf("resolvePath(%q) = %q, want %q", tt.path, got, want)
			}
		})
	}
}

// FuzzResolvePath checks that whatever the client sends, a path that
// resolvePath accepts is the root or below it, and stays there when its
// existing part is resolved again.
func FuzzResolvePath(f *testing.F) {
	for _, seed := range []string{
		"", ".", "..", "/", "sub/file.txt", "../etc/passwd", "/etc/passwd", "sub/../../x",
		"link-out/secret.txt", "link-in/../link-out", "sub/up/../link-rel-out/secret.txt",
		"sub/upup/outside", "dangling", "a\x00b", `..\..\windows`, "C:/x", "sub/./deeper/../../..",
		"link-in/up/link-in/up/..", strings.Repeat("../", 50) + "etc",
	} {
		f.Add(seed)
	}
	root, _ := sandboxFixture(f)
	f.Fuzz(func(t *testing.T, path string) {
		got, err := resolvePath(root, path)
		if err != nil {
			return
		}
		if !filepath.IsAbs(got) || filepath.Clean(got) != got {
			t.Fatalf("resolvePath(%q) = %q: not absolute and clean", path, got)
		}
		if !within(root, got) {
			t.Fatalf("resolvePath(%q) = %q: outside root %q", path, got, root)
		}
		again, err := resolveExisting(got)
		if err != nil {
			t.Fatalf("resolvePath(%q) = %q, which no longer resolves: %v", path, got, err)
		}
		if !within(root, again) {
			t.Fatalf("resolvePath(%q) = %q, which resolves to %q outside root", path, got, again)
		}
	})
}

func TestSandboxFileOperations(t *testing.T) {
	root, outside := sandboxFixture(t)
	ledger := filepath.Join(root, ".ledger.jsonl")
	if err := os.WriteFile(ledger, []byte(`{"id":"txn_1"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(ledger, filepath.Join(root, "ledger-hardlink")); err != nil {
		t.Fatal(err)
	}
	box, err := openSandbox(root, ledger)
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()

	if _, err := box.ReadFile(".ledger.jsonl"); !errors.Is(err, errReserved) {
		t.Errorf("read ledger: err = %v, want %v", err, errReserved)
	}
	if _, err := box.ReadFile("ledger-hardlink"); !errors.Is(err, errReserved) {
		t.Errorf("read ledger through hard link: err = %v, want %v", err, errReserved)
	}
	if _, err := box.WriteFile(".ledger.jsonl", "forged"); !errors.Is(err, errReserved) {
		t.Errorf("write ledger: err = %v, want %v", err, errReserved)
	}
	if _, err := box.WriteFile("ledger-hardlink", "forged"); !errors.Is(err, errReserved) {
		t.Errorf("write ledger through hard link: err = %v, want %v", err, errReserved)
	}
	if _, err := box.ReadFile("sub"); !errors.Is(err, errIsDir) {
		t.Errorf("read directory: err = %v, want %v", err, errIsDir)
	}
	if _, err := box.WriteFile("big.txt", strings.Repeat("x", maxFileSize+1)); !errors.Is(err, errTooLarge) {
		t.Errorf("write too large: err = %v, want %v", err, errTooLarge)
	}
	if err := os.WriteFile(filepath.Join(root, "huge.txt"), make([]byte, maxFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := box.ReadFile("huge.txt"); !errors.Is(err, errTooLarge) {
		t.Errorf("read too large: err = %v, want %v", err, errTooLarge)
	}
	if err := os.WriteFile(filepath.Join(root, "bin.dat"), []byte{0xff, 0xfe, 0x00}, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := box.ReadFile("bin.dat"); !errors.Is(err, errNotText) {
		t.Errorf("read binary: err = %v, want %v", err, errNotText)
	}

	created, err := box.WriteFile("link-in/new.txt", "hello")
	if err != nil || !created {
		t.Fatalf("write through inside link: created=%v err=%v", created, err)
	}
	if data, _ := os.ReadFile(filepath.Join(root, "sub", "new.txt")); string(data) != "hello" {
		t.Errorf("sub/new.txt = %q", data)
	}
	created, err = box.WriteFile("sub/new.txt", "again")
	if err != nil || created {
		t.Fatalf("overwrite: created=%v err=%v", created, err)
	}
	if _, err := box.WriteFile("link-file-out", "pwned"); !errors.Is(err, errOutsideRoot) {
		t.Errorf("write through outside link: err = %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(outside, "secret.txt")); string(data) != "TOP SECRET" {
		t.Errorf("outside file changed: %q", data)
	}

	entries, truncated, err := box.List("")
	if err != nil || truncated {
		t.Fatalf("list root: %v (truncated %v)", err, truncated)
	}
	for _, e := range entries {
		if e.Path == ".ledger.jsonl" {
			t.Errorf("listing shows the ledger: %+v", entries)
		}
		if strings.Contains(e.Path, ".tmp-") {
			t.Errorf("listing shows a temporary file: %+v", e)
		}
	}
	if _, _, err := box.List("sub/file.txt"); !errors.Is(err, errNotDir) {
		t.Errorf("list file: err = %v, want %v", err, errNotDir)
	}
}

func TestSeedIfEmpty(t *testing.T) {
	dir := t.TempDir()
	box, err := openSandbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	seed := fstest.MapFS{"notes/a.md": {Data: []byte("a")}, "b.txt": {Data: []byte("b")}}
	seeded, err := box.seedIfEmpty(seed)
	if err != nil || !seeded {
		t.Fatalf("first seed: seeded=%v err=%v", seeded, err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "notes", "a.md")); err != nil || string(data) != "a" {
		t.Fatalf("notes/a.md = %q, %v", data, err)
	}
	seeded, err = box.seedIfEmpty(seed)
	if err != nil || seeded {
		t.Fatalf("second seed: seeded=%v err=%v", seeded, err)
	}
}

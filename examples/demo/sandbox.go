package demo

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"
)

// maxFileSize caps what read_file returns and what write_file accepts.
const maxFileSize = 1 << 20 // 1 MiB

// maxPathLen caps the length of a path argument.
const maxPathLen = 4096

// maxListEntries caps the entries list_files returns for one directory.
const maxListEntries = 1000

// Errors returned by the sandbox. Tool handlers report them to the agent as
// tool errors (isError: true).
var (
	errInvalidPath  = errors.New("invalid path")
	errAbsolutePath = errors.New("absolute paths are not allowed; use a path relative to the sandbox root")
	errOutsideRoot  = errors.New("path is outside the sandbox root")
	errReserved     = errors.New("path is reserved by the server")
	errTooLarge     = fmt.Errorf("file is larger than the %d byte limit", maxFileSize)
	errNotText      = errors.New("file is not UTF-8 text")
	errIsDir        = errors.New("path is a directory")
	errNotDir       = errors.New("path is not a directory")
	errNotRegular   = errors.New("path is not a regular file")
)

// resolvePath maps path, as supplied by a client, to an absolute path inside
// root, and fails if it cannot.
//
// root must be absolute, clean, and free of symbolic links (see
// filepath.EvalSymlinks). path must be relative, use "/" or the OS separator,
// and may not contain NUL bytes; "" and "." name the root itself. The path is
// cleaned, rejected if it lexically escapes the root ("../x", "a/../../x"),
// joined to root, and then resolved through every symbolic link that exists
// on disk; the result is checked against root again, so a link inside the
// root that points outside is refused. Components that do not exist yet (a
// file about to be written) are appended as they are, which is safe because
// a missing name cannot be a link. A dangling link, or a path through a
// regular file, is refused.
//
// The result is always root itself or a path below it.
func resolvePath(root, path string) (string, error) {
	if len(path) > maxPathLen {
		return "", fmt.Errorf("%w: longer than %d bytes", errInvalidPath, maxPathLen)
	}
	if strings.IndexByte(path, 0) >= 0 {
		return "", fmt.Errorf("%w: contains a NUL byte", errInvalidPath)
	}
	if !utf8.ValidString(path) {
		return "", fmt.Errorf("%w: not valid UTF-8", errInvalidPath)
	}
	p := filepath.FromSlash(path)
	if filepath.IsAbs(p) || filepath.VolumeName(p) != "" || strings.HasPrefix(path, "/") || strings.HasPrefix(p, string(filepath.Separator)) {
		return "", fmt.Errorf("%q: %w", path, errAbsolutePath)
	}
	clean := filepath.Clean(p)
	if clean != "." && !filepath.IsLocal(clean) {
		return "", fmt.Errorf("%q: %w", path, errOutsideRoot)
	}
	resolved, err := resolveExisting(filepath.Join(root, clean))
	if err != nil {
		return "", fmt.Errorf("%q: %w", path, err)
	}
	if !within(root, resolved) {
		return "", fmt.Errorf("%q resolves through a symbolic link: %w", path, errOutsideRoot)
	}
	return resolved, nil
}

// resolveExisting resolves the symbolic links in the longest prefix of path
// that exists, and appends the rest unchanged.
func resolveExisting(path string) (string, error) {
	cur := path
	var rest []string
	for {
		real, err := filepath.EvalSymlinks(cur)
		if err == nil {
			parts := append([]string{real}, reversed(rest)...)
			return filepath.Join(parts...), nil
		}
		// Walk up only past names that do not exist at all. Anything else
		// (a dangling link, a path through a file, a permission problem)
		// cannot be resolved safely.
		if _, lerr := os.Lstat(cur); !errors.Is(lerr, fs.ErrNotExist) {
			return "", fmt.Errorf("%w: cannot resolve: %v", errInvalidPath, pathErrReason(err))
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return "", fmt.Errorf("%w: cannot resolve: %v", errInvalidPath, pathErrReason(err))
		}
		rest = append(rest, filepath.Base(cur))
		cur = parent
	}
}

// pathErrReason strips the (absolute) path from a *fs.PathError so that
// messages sent to the agent do not reveal where the sandbox lives.
func pathErrReason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func reversed(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// within reports whether path is root or below it. Both must be clean and
// absolute.
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return false
	}
	return rel == "." || filepath.IsLocal(rel)
}

// sandbox confines file access to one directory tree. Paths are checked with
// resolvePath, and the file operations themselves go through an os.Root, so a
// symbolic link swapped in between the check and the use still cannot escape.
type sandbox struct {
	real     string   // the root directory, absolute, symlinks resolved
	root     *os.Root // handle used for every file operation
	reserved []string // absolute resolved paths the file tools refuse (the ledger)
}

// openSandbox opens dir, which must exist, as a sandbox. reserved lists files
// (absolute paths, possibly outside dir) that the file tools must never read,
// write or list.
func openSandbox(dir string, reserved ...string) (*sandbox, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("sandbox root %s: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("sandbox root %s: %w", dir, err)
	}
	root, err := os.OpenRoot(real)
	if err != nil {
		return nil, fmt.Errorf("open sandbox root %s: %w", real, err)
	}
	s := &sandbox{real: real, root: root}
	for _, r := range reserved {
		ra, err := filepath.Abs(r)
		if err != nil {
			root.Close()
			return nil, fmt.Errorf("reserved path %s: %w", r, err)
		}
		rr, err := resolveExisting(ra)
		if err != nil {
			root.Close()
			return nil, fmt.Errorf("reserved path %s: %w", r, err)
		}
		s.reserved = append(s.reserved, rr)
	}
	return s, nil
}

// Close releases the root handle.
func (s *sandbox) Close() error {
	if err := s.root.Close(); err != nil {
		return fmt.Errorf("close sandbox: %w", err)
	}
	return nil
}

// Dir returns the sandbox root, absolute and with symlinks resolved.
func (s *sandbox) Dir() string { return s.real }

// resolve checks path and returns it relative to the root, for os.Root.
func (s *sandbox) resolve(path string) (string, error) {
	abs, err := resolvePath(s.real, path)
	if err != nil {
		return "", err
	}
	if s.isReservedPath(abs) {
		return "", fmt.Errorf("%q: %w", path, errReserved)
	}
	rel, err := filepath.Rel(s.real, abs)
	if err != nil {
		return "", fmt.Errorf("%q: %w", path, errOutsideRoot)
	}
	return rel, nil
}

func (s *sandbox) isReservedPath(abs string) bool {
	for _, r := range s.reserved {
		if abs == r {
			return true
		}
	}
	return false
}

// isReservedFile reports whether fi is one of the reserved files, also when
// reached by another name (a hard link).
func (s *sandbox) isReservedFile(fi fs.FileInfo) bool {
	for _, r := range s.reserved {
		if rfi, err := os.Stat(r); err == nil && os.SameFile(fi, rfi) {
			return true
		}
	}
	return false
}

// displayPath renders a root-relative path for messages, with "/" separators.
func displayPath(rel string) string {
	if rel == "." {
		return "."
	}
	return filepath.ToSlash(rel)
}

// ReadFile returns the text of the file at path.
func (s *sandbox) ReadFile(path string) (string, error) {
	rel, err := s.resolve(path)
	if err != nil {
		return "", err
	}
	f, err := s.root.Open(rel)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", displayPath(rel), pathErrReason(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("stat %s: %w", displayPath(rel), pathErrReason(err))
	}
	switch {
	case fi.IsDir():
		return "", fmt.Errorf("%s: %w; use list_files", displayPath(rel), errIsDir)
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("%s: %w", displayPath(rel), errNotRegular)
	case s.isReservedFile(fi):
		return "", fmt.Errorf("%s: %w", displayPath(rel), errReserved)
	case fi.Size() > maxFileSize:
		return "", fmt.Errorf("%s (%d bytes): %w", displayPath(rel), fi.Size(), errTooLarge)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", displayPath(rel), pathErrReason(err))
	}
	if len(data) > maxFileSize {
		return "", fmt.Errorf("%s: %w", displayPath(rel), errTooLarge)
	}
	if !utf8.Valid(data) {
		return "", fmt.Errorf("%s: %w", displayPath(rel), errNotText)
	}
	return string(data), nil
}

// WriteFile replaces (or creates) the file at path with content, creating
// missing parent directories. The write is atomic: content goes to a
// temporary file in the same directory, which is then renamed over the
// target. It reports whether the file was created.
func (s *sandbox) WriteFile(path, content string) (created bool, err error) {
	if len(content) > maxFileSize {
		return false, fmt.Errorf("content (%d bytes): %w", len(content), errTooLarge)
	}
	rel, err := s.resolve(path)
	if err != nil {
		return false, err
	}
	if rel == "." {
		return false, fmt.Errorf("%q: %w", path, errIsDir)
	}
	fi, err := s.root.Lstat(rel)
	switch {
	case err == nil && fi.IsDir():
		return false, fmt.Errorf("%s: %w", displayPath(rel), errIsDir)
	case err == nil && !fi.Mode().IsRegular():
		return false, fmt.Errorf("%s: %w", displayPath(rel), errNotRegular)
	case err == nil && s.isReservedFile(fi):
		return false, fmt.Errorf("%s: %w", displayPath(rel), errReserved)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("stat %s: %w", displayPath(rel), pathErrReason(err))
	}
	created = err != nil

	dir := filepath.Dir(rel)
	if dir != "." {
		if err := s.root.MkdirAll(dir, 0o755); err != nil {
			return false, fmt.Errorf("create directory %s: %w", displayPath(dir), pathErrReason(err))
		}
	}
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return false, fmt.Errorf("temporary name: %w", err)
	}
	tmp := filepath.Join(dir, "."+filepath.Base(rel)+".tmp-"+hex.EncodeToString(suffix[:]))
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return false, fmt.Errorf("create %s: %w", displayPath(rel), pathErrReason(err))
	}
	if _, err := io.WriteString(f, content); err != nil {
		f.Close()
		_ = s.root.Remove(tmp)
		return false, fmt.Errorf("write %s: %w", displayPath(rel), pathErrReason(err))
	}
	if err := f.Sync(); err != nil {
		f.Close()
		_ = s.root.Remove(tmp)
		return false, fmt.Errorf("sync %s: %w", displayPath(rel), pathErrReason(err))
	}
	if err := f.Close(); err != nil {
		_ = s.root.Remove(tmp)
		return false, fmt.Errorf("close %s: %w", displayPath(rel), pathErrReason(err))
	}
	if err := s.root.Rename(tmp, rel); err != nil {
		_ = s.root.Remove(tmp)
		return false, fmt.Errorf("replace %s: %w", displayPath(rel), pathErrReason(err))
	}
	return created, nil
}

// fileEntry is one entry of a directory listing.
type fileEntry struct {
	Path string `json:"path"`           // relative to the sandbox root, "/"-separated
	Type string `json:"type"`           // "file", "dir", "symlink" or "other"
	Size int64  `json:"size,omitempty"` // bytes, files only
}

// List returns the entries of the directory at path ("" for the root),
// sorted by name, and whether the listing was cut at maxListEntries.
func (s *sandbox) List(path string) (entries []fileEntry, truncated bool, err error) {
	rel, err := s.resolve(path)
	if err != nil {
		return nil, false, err
	}
	f, err := s.root.Open(rel)
	if err != nil {
		return nil, false, fmt.Errorf("open %s: %w", displayPath(rel), pathErrReason(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("stat %s: %w", displayPath(rel), pathErrReason(err))
	}
	if !fi.IsDir() {
		return nil, false, fmt.Errorf("%s: %w; use read_file", displayPath(rel), errNotDir)
	}
	dirents, err := f.ReadDir(-1)
	if err != nil {
		return nil, false, fmt.Errorf("read directory %s: %w", displayPath(rel), pathErrReason(err))
	}
	sort.Slice(dirents, func(i, j int) bool { return dirents[i].Name() < dirents[j].Name() })
	for _, d := range dirents {
		name := filepath.Join(rel, d.Name())
		if s.isReservedPath(filepath.Join(s.real, name)) {
			continue
		}
		if len(entries) == maxListEntries {
			truncated = true
			break
		}
		e := fileEntry{Path: filepath.ToSlash(name), Type: "other"}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			e.Type = "symlink"
		case d.IsDir():
			e.Type = "dir"
		case d.Type().IsRegular():
			e.Type = "file"
			if info, err := d.Info(); err == nil {
				e.Size = info.Size()
			}
		}
		entries = append(entries, e)
	}
	return entries, truncated, nil
}

// seedIfEmpty copies the files of seed into the sandbox when the sandbox
// root has no entries at all. It reports whether it seeded.
func (s *sandbox) seedIfEmpty(seed fs.FS) (bool, error) {
	ents, err := os.ReadDir(s.real)
	if err != nil {
		return false, fmt.Errorf("read sandbox root: %w", err)
	}
	if len(ents) > 0 {
		return false, nil
	}
	err = fs.WalkDir(seed, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if d.IsDir() {
			return s.root.MkdirAll(filepath.FromSlash(p), 0o755)
		}
		data, err := fs.ReadFile(seed, p)
		if err != nil {
			return err
		}
		return s.root.WriteFile(filepath.FromSlash(p), data, 0o644)
	})
	if err != nil {
		return false, fmt.Errorf("seed sandbox: %w", err)
	}
	return true, nil
}

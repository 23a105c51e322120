package store

import (
	"fmt"
	"path/filepath"
	"sync"
	"time"
)

// fileGuard notices when the database file, or its write-ahead log, that
// this process writes to is no longer the file at its path: deleted
// (rm mediator.db-wal while serving), or replaced by a rename. SQLite does
// not notice: it keeps writing to the open file, and every record it
// commits there is lost when the process ends, since no later open finds
// it. The guard checks the files the process has open after a commit (an
// fstat and a stat each, at most every checkEvery). It finds them in
// /proc/self/fd, on Linux, every few seconds and whenever the writer's
// connection changes. Elsewhere it checks nothing.
type fileGuard struct {
	mu      sync.Mutex
	db, wal string // absolute paths
	open    []openFile
	scanned time.Time
	checked time.Time
}

// openFile is a database file the process has open: its descriptor and
// the identity of the file it had when found.
type openFile struct {
	fd       int
	dev, ino uint64
	path     string
}

// rescanEvery bounds how old the list of open files may be, and
// checkEvery how often after a commit the files are checked: a record
// committed to a deleted log meanwhile is not lost, since what lostFile
// saves is everything committed until it runs. Syscalls cost microseconds
// in some sandboxes, which a commit of a single record would feel.
const (
	rescanEvery = 2 * time.Second
	checkEvery  = 50 * time.Millisecond
)

func newFileGuard(path string) *fileGuard {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(dir, filepath.Base(abs))
	}
	return &fileGuard{db: abs, wal: abs + "-wal"}
}

// fileGone is what check finds: which file was removed from under the
// process.
type fileGone struct {
	path string
	wal  bool
	fd   int // the descriptor the process still has it open as
}

func (g fileGone) Error() string {
	what := "the database file"
	if g.wal {
		what = "the database's write-ahead log"
	}
	return fmt.Sprintf("%s %s was deleted or replaced while the mediator was writing to it", what, g.path)
}

// check returns a fileGone when a database file the process has open is
// no longer linked at its path; rescan forces a new look at what is open.
func (g *fileGuard) check(rescan bool) *fileGone {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	if !rescan && now.Sub(g.checked) < checkEvery {
		return nil
	}
	g.checked = now
	if rescan || now.Sub(g.scanned) > rescanEvery {
		g.open = openFiles(g.db, g.wal, g.open[:0])
		g.scanned = now
	}
	for _, f := range g.open {
		switch gone, same := linked(f); {
		case !same:
			g.scanned = time.Time{} // the descriptor now names another file: look again next time
		case gone:
			return &fileGone{path: f.path, wal: f.path == g.wal, fd: f.fd}
		}
	}
	return nil
}

//go:build linux

package store

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// openFiles lists the descriptors of this process open on the database
// file or its write-ahead log, the deleted ones included (the kernel names
// them "PATH (deleted)").
func openFiles(db, wal string, out []openFile) []openFile {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return out
	}
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue
		}
		target = strings.TrimSuffix(target, " (deleted)")
		if target != db && target != wal {
			continue
		}
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Fstat(fd, &st) != nil {
			continue
		}
		if slices.ContainsFunc(out, func(o openFile) bool { return o.dev == uint64(st.Dev) && o.ino == st.Ino }) {
			continue // another connection's descriptor of the same file
		}
		out = append(out, openFile{fd: fd, dev: uint64(st.Dev), ino: st.Ino, path: target})
	}
	return out
}

// linked reports whether f's file has no name left (gone), and whether
// the descriptor still holds the file it was found with (same).
// A file is gone when it has no name left, or when its path now names
// another file (a rename over it, or a hard link kept elsewhere and the
// path removed).
func linked(f openFile) (gone, same bool) {
	var st syscall.Stat_t
	if syscall.Fstat(f.fd, &st) != nil || uint64(st.Dev) != f.dev || st.Ino != f.ino {
		return false, false
	}
	if st.Nlink == 0 {
		return true, true
	}
	var at syscall.Stat_t
	if syscall.Stat(f.path, &at) != nil {
		return true, true
	}
	return uint64(at.Dev) != f.dev || at.Ino != f.ino, true
}

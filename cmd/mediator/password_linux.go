//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// quietTerminal turns the echo of the terminal f off before anything is
// asked, so that a password typed ahead of the prompt is never shown, and
// returns a reader of one line and the function that restores the
// terminal. An interrupt, SIGTERM or SIGHUP while it is quiet restores the
// terminal, then ends the process as the signal would have, so the user's
// shell does not stay blind.
func quietTerminal(f *os.File) (read func() ([]byte, error), restore func(), err error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the terminal's mode: %w", err)
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	quiet.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return nil, nil, fmt.Errorf("turning the terminal's echo off: %w", err)
	}
	sig := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		select {
		case s := <-sig:
			// The terminal first; then the signal does what it would have
			// done without this handler.
			_ = unix.IoctlSetTermios(fd, unix.TCSETS, old)
			fmt.Fprintln(os.Stderr)
			signal.Reset(os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			n, _ := s.(syscall.Signal) // always, on Linux
			_ = syscall.Kill(os.Getpid(), n)
			time.Sleep(time.Second) // the signal ends the process
			os.Exit(128 + int(n))
		case <-done:
		}
	}()
	restore = func() {
		signal.Stop(sig)
		close(done)
		_ = unix.IoctlSetTermios(fd, unix.TCSETS, old)
	}
	return func() ([]byte, error) { return readSecretLine(f) }, restore, nil
}

// readSecretLine reads up to a newline, one byte at a time so that nothing
// after the line is consumed, and at most 4 KiB.
func readSecretLine(r io.Reader) ([]byte, error) {
	var line []byte
	var b [1]byte
	for {
		n, err := r.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				return line, nil
			}
			if b[0] != '\r' {
				line = append(line, b[0])
			}
			if len(line) > 4096 {
				return nil, errors.New("the line is longer than 4 KiB")
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				return line, nil
			}
			return nil, err
		}
	}
}

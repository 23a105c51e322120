//go:build !linux

package main

import (
	"os"

	"golang.org/x/term"
)

// quietTerminal returns a reader of one line of the terminal f with its
// echo off. Outside Linux it is x/term's ReadPassword, which turns the
// echo off only once it reads: a password typed before the prompt
// appears may be shown.
func quietTerminal(f *os.File) (read func() ([]byte, error), restore func(), err error) {
	return func() ([]byte, error) { return term.ReadPassword(int(f.Fd())) }, func() {}, nil
}

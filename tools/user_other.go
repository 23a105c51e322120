//go:build !unix

package tools

import (
	"errors"
	"os/exec"
)

func runAs(*exec.Cmd, string) (string, error) {
	return "", errors.New("user: starting a child as another user is supported on Unix only")
}

func runsAsRoot() bool { return false }

//go:build unix

package tools

import (
	"os/exec"
	"syscall"
)

// The signals the registry sends to a child's process group.
const (
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
)

// setProcessGroup makes the child the leader of a new process group, so
// that it and everything it starts can be signalled together, and so that
// a terminal's Ctrl-C reaches the mediator only (which then stops its
// children in order).
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup sends sig to the child's process group. Errors (the group is
// already gone) are ignored.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process == nil || cmd.Process.Pid <= 0 {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}

//go:build !unix

package tools

import (
	"os"
	"os/exec"
)

// The signals the registry sends to a child. Without process groups, both
// end the child itself.
var (
	sigTerm = os.Kill
	sigKill = os.Kill
)

// setProcessGroup does nothing where process groups do not exist.
func setProcessGroup(cmd *exec.Cmd) {}

// signalGroup kills the child.
func signalGroup(cmd *exec.Cmd, sig os.Signal) {
	if cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
}

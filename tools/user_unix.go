//go:build unix

package tools

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// runAs makes cmd start as spec ("user" or "user:group", names or ids)
// and returns that user's home directory. It fails when the mediator is
// not root: only root can start a process as another user.
func runAs(cmd *exec.Cmd, spec string) (home string, err error) {
	if uid := os.Geteuid(); uid != 0 {
		return "", fmt.Errorf("user %q: the mediator runs as uid %d, not root, and cannot start a child as another user; "+
			"run the mediator as root (it then drops to user for this child), or remove user and run the mediator under "+
			"an account of its own", spec, uid)
	}
	name, group, _ := strings.Cut(spec, ":")
	u, err := lookupUser(name)
	if err != nil {
		return "", fmt.Errorf("user %q: %w", spec, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return "", fmt.Errorf("user %q: uid %q is not numeric", spec, u.Uid)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return "", fmt.Errorf("user %q: gid %q is not numeric", spec, u.Gid)
	}
	var groups []uint32
	if group != "" {
		g, err := lookupGroup(group)
		if err != nil {
			return "", fmt.Errorf("user %q: %w", spec, err)
		}
		if gid, err = strconv.ParseUint(g.Gid, 10, 32); err != nil {
			return "", fmt.Errorf("user %q: gid %q is not numeric", spec, g.Gid)
		}
	} else if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if n, err := strconv.ParseUint(s, 10, 32); err == nil {
				groups = append(groups, uint32(n))
			}
		}
	}
	if uid == 0 {
		return "", fmt.Errorf("user %q is root: name an unprivileged account", spec)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Groups is set even when empty, so that root's supplementary groups
	// are not inherited.
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}
	if groups == nil {
		cmd.SysProcAttr.Credential.Groups = []uint32{}
	}
	return u.HomeDir, nil
}

func lookupUser(s string) (*user.User, error) {
	if _, err := strconv.ParseUint(s, 10, 32); err == nil {
		return user.LookupId(s)
	}
	return user.Lookup(s)
}

func lookupGroup(s string) (*user.Group, error) {
	if _, err := strconv.ParseUint(s, 10, 32); err == nil {
		return user.LookupGroupId(s)
	}
	return user.LookupGroup(s)
}

// runsAsRoot reports whether a child started without user would be root.
func runsAsRoot() bool { return os.Geteuid() == 0 }

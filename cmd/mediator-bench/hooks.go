package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// hookTimeout bounds one --on-start or --on-end command.
const hookTimeout = 2 * time.Minute

// runHook runs the shell command of flag (none when cmd is ""), with the
// stdio servers' process ids in $MEDIATOR_BENCH_PIDS, space-separated (""
// over HTTP). scripts/instructions.sh uses it to count a server's
// instructions over the measured calls alone: callgrind_control zeroes
// the counters before the first and dumps them after the last, while the
// server still runs (callgrind cannot survive the end of a Go process that
// reaps children).
func runHook(ctx context.Context, flag, cmd string, sessions []*session) error {
	if cmd == "" {
		return nil
	}
	var pids []string
	for _, s := range sessions {
		if p := s.pid(); p != 0 {
			pids = append(pids, strconv.Itoa(p))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, hookTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.Env = append(os.Environ(), "MEDIATOR_BENCH_PIDS="+strings.Join(pids, " "))
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Run(); err != nil {
		return fmt.Errorf("%s command %q: %w; it wrote: %s", flag, cmd, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

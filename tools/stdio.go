package tools

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Bounds on what a stdio child can make the registry hold.
const (
	// maxStderrLine is the longest stderr line logged; the rest of a longer
	// line is dropped.
	maxStderrLine = 4096
	// stopGrace is how long a child gets after its stdin is closed, and
	// again after SIGTERM, before it is killed.
	stopGrace = 2 * time.Second
)

// process is a running stdio child. Its stdin, stdout and stderr are pipes
// the registry owns, so nothing is read after the child is reaped.
type process struct {
	cmd    *exec.Cmd
	stdin  *os.File // parent's write end
	stdout *os.File // parent's read end
	stderr *os.File // parent's read end

	// out is what the transport reads: stdout with each message bounded.
	out *lineLimitReader

	exited   chan struct{} // closed once the child is reaped
	drained  chan struct{} // closed once stdout is finished with, after exited
	waitErr  error         // valid after exited
	stopOnce sync.Once
	stderrWG sync.WaitGroup
}

// childEnv returns the child's environment: exactly cfg.Env, plus PATH and
// HOME from base unless cfg.Env sets them. It is sorted, for stable logs.
func childEnv(cfg *Config, base map[string]string) []string {
	env := maps.Clone(cfg.Env)
	if env == nil {
		env = map[string]string{}
	}
	for _, k := range []string{"PATH", "HOME"} {
		if _, set := env[k]; set {
			continue
		}
		if v, ok := base[k]; ok {
			env[k] = v
		}
	}
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// withEnv returns env with key set to v.
func withEnv(env []string, key, v string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+v)
}

// resolveCommand finds the program to run. A name without a slash is
// searched in the child's PATH (not the mediator's: the registry never reads
// its own environment); a path is used as is, relative to cfg.Dir as
// exec.Cmd does.
func resolveCommand(cfg *Config, env []string) (string, error) {
	if strings.ContainsRune(cfg.Command, filepath.Separator) || strings.ContainsRune(cfg.Command, '/') {
		return cfg.Command, nil
	}
	var pathList string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathList = v
		}
	}
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // a relative PATH entry would depend on the working directory
		}
		p := filepath.Join(dir, cfg.Command)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q not found in the child's PATH %q: use an absolute path, or pass PATH in the base environment",
		cfg.Command, pathList)
}

// startProcess starts cfg's command in its own process group with the
// given environment. The child's stderr is logged line by line.
func startProcess(cfg *Config, env []string, maxMessage int, log *slog.Logger) (*process, error) {
	path, err := resolveCommand(cfg, env)
	if err != nil {
		return nil, err
	}
	p := &process{exited: make(chan struct{}), drained: make(chan struct{})}
	childIn, childOut, childErr, err := p.pipes()
	if err != nil {
		return nil, err
	}
	p.cmd = &exec.Cmd{
		Path:   path,
		Args:   append([]string{cfg.Command}, cfg.Args...),
		Env:    env,
		Dir:    cfg.Dir,
		Stdin:  childIn,
		Stdout: childOut,
		Stderr: childErr,
	}
	setProcessGroup(p.cmd)
	if cfg.User != "" {
		home, err := runAs(p.cmd, cfg.User)
		if err != nil {
			_ = childIn.Close()
			_ = childOut.Close()
			_ = childErr.Close()
			p.closeParentEnds()
			return nil, err
		}
		if _, set := cfg.Env["HOME"]; !set && home != "" {
			p.cmd.Env = withEnv(p.cmd.Env, "HOME", home)
		}
	} else if runsAsRoot() {
		log.Warn("this stdio upstream runs as root: it can read the mediator's key and database; set user: for it to run it as an account of its own",
			"command", cfg.Command)
	}
	err = p.cmd.Start()
	// The child has its own copies now (or never started).
	_ = childIn.Close()
	_ = childOut.Close()
	_ = childErr.Close()
	if err != nil {
		p.closeParentEnds()
		return nil, fmt.Errorf("start %s: %w", cfg.Command, err)
	}
	p.out = newLineLimitReader(p.stdout, maxMessage, func(size int, id string) {
		if id != "" {
			log.Warn("upstream sent a response larger than the limit; the call it answers fails, the upstream runs on",
				"bytes", size, "limit_bytes", maxMessage, "id", id)
			return
		}
		log.Warn("upstream sent a message larger than the limit that answers no request; dropped it",
			"bytes", size, "limit_bytes", maxMessage)
	})
	p.stderrWG.Add(1)
	go p.logStderr(log)
	go p.wait()
	return p, nil
}

// pipes creates the three pipes and returns the child's ends.
func (p *process) pipes() (in, out, errw *os.File, err error) {
	var files []*os.File
	fail := func(e error) (*os.File, *os.File, *os.File, error) {
		for _, f := range files {
			_ = f.Close()
		}
		return nil, nil, nil, fmt.Errorf("create pipes: %w", e)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	files = append(files, inR, inW)
	outR, outW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	files = append(files, outR, outW)
	errR, errW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	p.stdin, p.stdout, p.stderr = inW, outR, errR
	return inR, outW, errW, nil
}

func (p *process) closeParentEnds() {
	for _, f := range []*os.File{p.stdin, p.stdout, p.stderr} {
		if f != nil {
			_ = f.Close()
		}
	}
}

// drainGrace is how long the transport may go on reading what a dead child
// wrote before its stdout is closed under it.
const drainGrace = time.Second

// wait reaps the child, kills whatever is left of its process group
// (grandchildren holding the pipes open) and closes the pipes once the
// transport has read what the child wrote before it died.
func (p *process) wait() {
	p.waitErr = p.cmd.Wait()
	signalGroup(p.cmd, sigKill)
	close(p.exited)
	t := time.NewTimer(drainGrace)
	select {
	case <-p.out.done:
	case <-t.C:
	}
	t.Stop()
	_ = p.stdout.Close()
	_ = p.stdin.Close()
	close(p.drained)
	p.stderrWG.Wait()
	_ = p.stderr.Close()
}

// status describes how the child ended; valid after exited is closed.
func (p *process) status() string {
	var ee *exec.ExitError
	switch {
	case p.waitErr == nil:
		return "exit status 0"
	case errors.As(p.waitErr, &ee):
		return ee.ProcessState.String()
	default:
		return p.waitErr.Error()
	}
}

// pid returns the child's process id.
func (p *process) pid() int {
	if p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// stop ends the child: stdin closed, then SIGTERM to its process group,
// then SIGKILL, each after a grace period. It returns once the child is
// reaped.
func (p *process) stop() {
	p.stopOnce.Do(func() {
		_ = p.stdin.Close()
		if p.waitExit(stopGrace) {
			return
		}
		signalGroup(p.cmd, sigTerm)
		if p.waitExit(stopGrace) {
			return
		}
		signalGroup(p.cmd, sigKill)
		<-p.exited
	})
}

// kill ends the child at once (used when it broke the protocol).
func (p *process) kill() { signalGroup(p.cmd, sigKill) }

func (p *process) waitExit(d time.Duration) bool {
	select {
	case <-p.exited:
		return true
	default:
	}
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.exited:
		return true
	case <-t.C:
		return false
	}
}

// logStderr logs the child's stderr line by line, each line cut to
// maxStderrLine bytes and the rate bounded, so that a chatty child cannot
// flood the mediator's log.
func (p *process) logStderr(log *slog.Logger) {
	defer p.stderrWG.Done()
	r := bufio.NewReaderSize(p.stderr, maxStderrLine)
	lim := &rateLimit{tokens: stderrBurst, last: time.Now()}
	for {
		line, truncated, err := readBoundedLine(r)
		if (len(line) > 0 || truncated) && lim.allow(time.Now()) {
			if n := lim.takeDropped(); n > 0 {
				log.Warn("upstream stderr lines dropped (rate limit)", "lines", n)
			}
			log.Info("upstream stderr", "line", string(line), "truncated", truncated)
		}
		if err != nil {
			if n := lim.takeDropped(); n > 0 {
				log.Warn("upstream stderr lines dropped (rate limit)", "lines", n)
			}
			return
		}
	}
}

// The stderr log rate: a burst, then lines per second.
const (
	stderrBurst = 200
	stderrRate  = 50
)

// rateLimit is a token bucket that counts what it refuses.
type rateLimit struct {
	tokens  float64
	last    time.Time
	dropped int
}

func (l *rateLimit) allow(now time.Time) bool {
	l.tokens = min(stderrBurst, l.tokens+now.Sub(l.last).Seconds()*stderrRate)
	l.last = now
	if l.tokens < 1 {
		l.dropped++
		return false
	}
	l.tokens--
	return true
}

func (l *rateLimit) takeDropped() int {
	n := l.dropped
	l.dropped = 0
	return n
}

// readBoundedLine reads one line from r (whose buffer bounds its length),
// dropping whatever exceeds the buffer. The line excludes its newline.
func readBoundedLine(r *bufio.Reader) (line []byte, truncated bool, err error) {
	b, err := r.ReadSlice('\n')
	line = bytes.TrimRight(bytes.Clone(b), "\r\n")
	for errors.Is(err, bufio.ErrBufferFull) {
		truncated = true
		_, err = r.ReadSlice('\n')
	}
	return line, truncated, err
}

// deadlineWriter writes to a child's stdin with a deadline per write, so
// that a child that stops reading cannot block the registry (mcp-go's stdio
// transport writes without a timeout, holding a lock that every request
// needs).
type deadlineWriter struct {
	f         *os.File
	timeout   time.Duration
	onTimeout func()
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	_ = w.f.SetWriteDeadline(time.Now().Add(w.timeout))
	n, err := w.f.Write(p)
	if errors.Is(err, os.ErrDeadlineExceeded) && w.onTimeout != nil {
		w.onTimeout()
	}
	return n, err
}

// Close closes the child's stdin.
func (w *deadlineWriter) Close() error { return w.f.Close() }

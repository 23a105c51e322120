package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/mediator/local"
)

// opensFile tells whether process pid holds path open.
func opensFile(t *testing.T, pid int, path string) bool {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("cannot list the process's open files: %v", err)
	}
	for _, fd := range fds {
		if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && strings.HasPrefix(target, path) {
			return true
		}
	}
	return false
}

// exitOf waits for a stdio peer's process to exit, closing its stdin only
// if closeIn; it returns the exit code.
func exitOf(t *testing.T, p *stdioPeer, closeIn bool, d time.Duration) int {
	t.Helper()
	if closeIn {
		_ = p.in.Close()
	}
	done := make(chan error, 1)
	go func() { _, _ = io.Copy(io.Discard, p.out); done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("mediator stdio still runs after %s\n%s", d, p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// Issue 20: `mediator stdio` with the config and database of a running
// serve attaches to it through the local socket. The serve mediates and
// records the agent's calls (transport "local", the config's agent); the
// stdio process never opens the database. When the serve stops, the stdio
// process answers what is in flight, says why and exits, so that its MCP
// client sees its server end.
func TestE2EStdioAttachesToServe(t *testing.T) {
	t.Parallel()
	// Allowed only from the loopback network: an attached agent is a
	// local process, as a stdio one is.
	p := startServe(t, policyFragment(t, "p, *, tool, fake__*, allow, fake-local, r.env.Network == 'loopback'\n")+`
agent: {id: e2e-agent}
auth: {anonymous: {id: e2e-agent}}
upstreams:
  - name: fake
    command: `+buildTool(t, "tools/testdata/fakeupstream")+"\n")
	sock := p.DB + ".sock"
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatalf("serve made no local socket: %v\n%s", err, p.stderr.String())
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("local socket mode %s; want a socket of mode 0600", fi.Mode())
	}
	cfg := filepath.Join(p.Dir, "mediator.yaml")
	agent := startStdioPeer(t, p.Dir, binary(t), "stdio", "--config", cfg, "--db", p.DB)
	agent.logged("attached to the running serve")
	for i := range 3 {
		r := agent.call("tools/call", fmt.Sprintf(`{"name":"fake__echo","arguments":{"text":"attached %d"}}`, i))
		if r.Error != nil || !strings.Contains(string(r.Result), fmt.Sprintf("attached %d", i)) {
			t.Fatalf("call %d through the attached stdio: %s %+v", i, r.Result, r.Error)
		}
	}
	if r := agent.call("tools/call", `{"name":"nowhere__tool","arguments":{}}`); r.Error == nil && !strings.Contains(string(r.Result), `"isError":true`) {
		t.Fatalf("an unknown tool through the attached stdio was not refused: %s", r.Result)
	}
	if opensFile(t, agent.cmd.Process.Pid, p.DB) {
		t.Fatal("the attached stdio process holds the database open")
	}
	// Recorded by the serve (a stdio process records "stdio").
	var calls int
	for _, r := range exportRecords(t, p.Dir, p.DB) {
		if r.Method != "tools/call" {
			continue
		}
		if r.Transport != mediator.TransportLocal || r.AgentID != "e2e-agent" || r.SessionID == "" {
			t.Errorf("record of an attached call: transport %q agent %q session %q", r.Transport, r.AgentID, r.SessionID)
		}
		calls++
	}
	if calls != 4 {
		t.Fatalf("%d tools/call records for 4 attached calls", calls)
	}

	// The serve stops: the stdio process ends too, and says why.
	p.stop(t)
	if code := exitOf(t, agent, false, 15*time.Second); code == 0 {
		t.Fatalf("the attached stdio exited 0 after its serve stopped\n%s", agent.stderr.String())
	}
	if log := agent.stderr.String(); !strings.Contains(log, "went away") || !strings.Contains(log, "restart this MCP server") {
		t.Fatalf("the attached stdio did not say why it ended:\n%s", log)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("the stopped serve left its socket: %v", err)
	}
}

// Without a serve to attach to, stdio opens the database itself and says
// so; --attach always refuses instead, naming the fix. A serve killed -9
// leaves its socket, which stdio treats as no serve and the next serve
// replaces; a serve running another config is not attached to.
func TestE2EStdioAttachFallsBack(t *testing.T) {
	t.Parallel()
	p := startServe(t, fakeConfig(t, ""))
	cfg := filepath.Join(p.Dir, "mediator.yaml")
	_ = p.cmd.Process.Kill()
	<-p.done
	p.done <- nil
	if _, err := os.Stat(p.DB + ".sock"); err != nil {
		t.Fatalf("a killed serve's socket should stay behind for this test: %v", err)
	}

	direct := startStdioPeer(t, p.Dir, binary(t), "stdio", "--config", cfg, "--db", p.DB)
	direct.logged("no serve to attach to: opening the database itself")
	if r := direct.call("tools/call", `{"name":"fake__echo","arguments":{"text":"direct"}}`); r.Error != nil || !strings.Contains(string(r.Result), "direct") {
		t.Fatalf("direct call: %s %+v", r.Result, r.Error)
	}
	if !opensFile(t, direct.cmd.Process.Pid, p.DB) {
		t.Fatal("the stdio process that fell back does not hold the database open")
	}
	exitOf(t, direct, true, 15*time.Second)

	out, errOut, code := runMediator(t, p.Dir, "stdio", "--attach", "always", "--config", cfg, "--db", p.DB)
	if code == 0 || !strings.Contains(errOut, "--attach always") || !strings.Contains(errOut, "start mediator serve") {
		t.Fatalf("--attach always without a serve: exit %d, %q %q", code, out, errOut)
	}

	// A new serve replaces the stale socket.
	q := startServeIn(t, p.Dir, fakeConfig(t, ""))
	if strings.Contains(q.stderr.String(), "cannot attach") {
		t.Fatalf("the new serve did not replace the stale socket:\n%s", q.stderr.String())
	}
	again := startStdioPeer(t, p.Dir, binary(t), "stdio", "--config", cfg, "--db", p.DB)
	again.logged("attached to the running serve")
	exitOf(t, again, true, 15*time.Second)

	// The config file changes under the running serve: not attached.
	if err := os.WriteFile(cfg, []byte(fakeConfig(t, "# edited\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	edited := startStdioPeer(t, p.Dir, binary(t), "stdio", "--config", cfg, "--db", p.DB)
	edited.logged("changed since the serve", "opening the database itself")
	exitOf(t, edited, true, 15*time.Second)
}

// The local socket serves only processes of the serve's own user, whatever
// the socket file's mode: a process of another user that reaches it (here
// the mode is opened up) is refused with 403, named, and recorded.
func TestE2ELocalSocketRefusesOtherUsers(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to connect as another user (nobody); CI runs the tests as root")
	}
	p := startServe(t, fakeConfig(t, ""))
	sock := p.DB + ".sock"
	for _, d := range []string{p.Dir, filepath.Dir(p.Dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir()
	for _, d := range []string{binDir, filepath.Dir(binDir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(binDir, "peer.test")
	copyFile(t, self, child, 0o755)
	cmd := exec.CommandContext(t.Context(), child, "-test.run", "^TestLocalPeerChild$", "-test.v")
	cmd.Env = append(os.Environ(), "MEDIATOR_TEST_LOCAL_PEER="+sock)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the child as nobody: %v\n%s", err, out)
	}
	for _, want := range []string{"hello: 403", "initialize: 403", "serves only processes of user 0", "runs as user 65534"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Fatalf("child output lacks %q:\n%s", want, out)
		}
	}
	recs := recordsOf(t, p, func(r mediator.ChainRecord) bool {
		return r.Transport == mediator.TransportLocal && r.Outcome == mediator.OutcomeDenied
	})
	if len(recs) == 0 || !strings.Contains(recs[0].Decision.Reason, "runs as user 65534") {
		t.Fatalf("the refused connection is not recorded with its cause: %+v", recs)
	}
}

// TestLocalPeerChild is the other user's side of
// TestE2ELocalSocketRefusesOtherUsers, run by it as nobody.
func TestLocalPeerChild(t *testing.T) {
	sock := os.Getenv("MEDIATOR_TEST_LOCAL_PEER")
	if sock == "" {
		t.Skip("run by TestE2ELocalSocketRefusesOtherUsers as another user")
	}
	c := local.Client(sock)
	resp, err := c.Get("http://localhost" + local.HelloPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("hello: %d %s\n", resp.StatusCode, body)
	req, _ := http.NewRequest("POST", "http://localhost"+local.MCPPath, strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"peer","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("initialize: %d %s\n", resp.StatusCode, body)
}

// A serve whose agent address is taken exits with the cause, as it did
// before it had a local socket: stopping the socket's server must not wait
// for a shutdown signal that never comes (the first version hung here).
func TestE2EServeExitsWhenItsAddressIsTaken(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), binary(t), "serve", "--listen", ln.Addr().String(), "--admin-listen", "off", "--db", filepath.Join(dir, "mediator.db"))
	cmd.Dir = dir
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(stderr.String(), "address already in use") {
			t.Fatalf("serve on a taken address: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("serve on a taken address did not exit within 20 s\n%s", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "mediator.db.sock")); !os.IsNotExist(err) {
		t.Fatalf("the exited serve left its socket: %v", err)
	}
}

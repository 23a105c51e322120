package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// session is one MCP session: an initialised client, and for stdio the
// child process it talks to.
type session struct {
	c    *client.Client
	cmd  *exec.Cmd   // stdio only
	tail *tailBuffer // stdio only: the end of the child's stderr
}

// openSessions opens o.sessions sessions, a few at a time.
func openSessions(ctx context.Context, o *options) ([]*session, error) {
	out := make([]*session, o.sessions)
	errs := make([]error, o.sessions)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i], errs[i] = openSession(ctx, o, i+1)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			closeSessions(out)
			return nil, fmt.Errorf("session %d: %w", i+1, err)
		}
	}
	return out, nil
}

func closeSessions(ss []*session) {
	for _, s := range ss {
		if s != nil {
			s.close()
		}
	}
}

// openSession connects and initialises session n (1-based).
func openSession(ctx context.Context, o *options, n int) (*session, error) {
	s := &session{}
	var tr transport.Interface
	if o.url != "" {
		t, err := transport.NewStreamableHTTP(o.url, httpOptions(o)...)
		if err != nil {
			return nil, err
		}
		tr = t
	} else {
		s.tail = &tailBuffer{max: 4096}
		tr = transport.NewStdioWithOptions(o.command[0], nil, sessionArgs(o.command[1:], n),
			transport.WithCommandFunc(func(_ context.Context, name string, _ []string, args []string) (*exec.Cmd, error) {
				// Not tied to a context: the session ends when it is closed.
				cmd := exec.Command(name, args...)
				cmd.Env = os.Environ()
				cmd.Stderr = s.tail
				s.cmd = cmd
				return cmd, nil
			}))
	}
	s.c = client.NewClient(tr, client.WithProtocolVersion(mcp.LATEST_LEGACY_PROTOCOL_VERSION))
	if err := s.c.Start(ctx); err != nil {
		return nil, s.explain(fmt.Errorf("start: %w", err))
	}
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "mediator-bench", Version: "1"}
	if _, err := s.c.Initialize(ictx, init); err != nil {
		s.close()
		return nil, s.explain(fmt.Errorf("initialize: %w", err))
	}
	return s, nil
}

// httpOptions gives each session its own connection pool, as separate
// agents would have, keeping enough idle connections for its workers.
func httpOptions(o *options) []transport.StreamableHTTPCOption {
	perSession := (o.workers + o.sessions - 1) / o.sessions
	ht := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        perSession + 2,
		MaxIdleConnsPerHost: perSession + 2,
		IdleConnTimeout:     90 * time.Second,
	}
	opts := []transport.StreamableHTTPCOption{transport.WithHTTPBasicClient(&http.Client{Transport: ht})}
	if o.bearer != "" {
		opts = append(opts, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + o.bearer}))
	}
	return opts
}

// explain adds the end of a stdio child's stderr to err.
func (s *session) explain(err error) error {
	if s.tail == nil {
		return err
	}
	if t := s.tail.String(); t != "" {
		return fmt.Errorf("%w\nthe server's stderr ends with:\n%s", err, t)
	}
	return err
}

func (s *session) close() {
	if s.c != nil {
		_ = s.c.Close()
	}
}

// pid is the stdio child's process id, or 0.
func (s *session) pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// sessionArgs is a stdio command's arguments for session n: "{session}"
// in an argument becomes n, so that each process may have a file of its
// own (e.g. --db run-{session}.db).
func sessionArgs(args []string, n int) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, "{session}", strconv.Itoa(n))
	}
	return out
}

package mediator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"regexp"

	"github.com/mark3labs/mcp-go/server"
)

// ServeStdio serves one agent over in/out (newline-delimited JSON-RPC), as
// launched by an MCP client's "command". It returns when in is closed or ctx
// is done. Nothing but protocol messages is written to out.
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	st := server.NewStdioServer(s.mcp)
	// mcp-go runs tools/call on a fixed pool of workers (5 by default).
	// Each mediated call holds its worker while the upstream answers and
	// its record commits, so an agent with many calls in flight would
	// wait for a worker, and the audit writer would see too few records
	// at a time to commit them together.
	server.WithWorkerPoolSize(stdioWorkers)(st)
	scope := &passScope{}
	pw := &passWriter{w: out, p: &s.passed, sc: scope, cancelled: &s.cancelled}
	scope.notify = pw.writeNotification
	st.SetContextFunc(func(ctx context.Context) context.Context {
		return withPassScope(WithCredentials(ctx, Credentials{Transport: "stdio"}), scope)
	})
	st.SetErrorLogger(log.New(slogWriter{s.log}, "", 0))
	lines := newLineCapReader(in, int(s.opts.maxBody))
	lines.onInvalid = func(head []byte) {
		// mcp-go answers -32700 parse error; the record says what came.
		sctx := WithCredentials(ctx, Credentials{Transport: "stdio"})
		c := s.newCall(sctx, "", "")
		s.identify(sctx, c)
		_ = s.reject(sctx, c, fmt.Errorf("%w: a line on stdin is not valid JSON (%d bytes, starting %q); send one JSON-RPC message per line",
			ErrInvalidRequest, len(head), trimForError(string(head), 64)))
	}
	// The agent's error answers to relayed sampling and elicitation
	// requests keep their codes (clienterr.go); mcp-go's stdio session
	// is always "stdio".
	lines.onLine = func(line []byte) {
		s.clientErrs.note("stdio", line)
		s.cancelled.note("stdio", line)
	}
	pw.batches = &stdioBatches{}
	lines.onBatch = func(line []byte) [][]byte { return s.splitStdioBatch(ctx, pw, line) }
	err := st.Listen(ctx, lines, pw)
	// Listen returns once every handler has: a batch still waiting will
	// get no more answers, and is answered with what it has.
	for _, joined := range pw.batches.abandon() {
		_ = pw.writeLine(joined)
	}
	return err
}

// stdioWorkers is how many tools/call one stdio agent may have running.
const stdioWorkers = 64

// slogWriter adapts mcp-go's *log.Logger output to slog.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn("stdio transport", "msg", string(p))
	return len(p), nil
}

// lineCapReader passes newline-delimited messages through, replacing any
// line longer than max with a small request that the gate refuses (method
// mediator/request_too_large, with the original id when it can be found),
// so an oversized request is answered and recorded instead of buffered.
type lineCapReader struct {
	r    *bufio.Reader
	max  int
	pend []byte
	// onInvalid, when set, is told of each non-blank line that is not
	// valid JSON (passed on unchanged, for mcp-go to answer).
	onInvalid func(line []byte)
	// onLine, when set, sees each line passed on.
	onLine func(line []byte)
	// onBatch, when set, is given each line that is a JSON array (a
	// batch) and returns the lines to pass on instead.
	onBatch func(line []byte) [][]byte
	queue   [][]byte // lines of a batch still to pass on
	err     error    // the input's end, returned once the queue is empty
}

func newLineCapReader(r io.Reader, max int) *lineCapReader {
	return &lineCapReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

var idPattern = regexp.MustCompile(`"id"\s*:\s*("(?:[^"\\]|\\.){0,64}"|-?[0-9]{1,19})`)

func (l *lineCapReader) Read(p []byte) (int, error) {
	for len(l.pend) == 0 {
		if len(l.queue) > 0 {
			l.pend, l.queue = l.queue[0], l.queue[1:]
			break
		}
		if l.err != nil {
			return 0, l.err
		}
		var line []byte
		line, l.err = l.readLine()
		l.pend = line
	}
	n := copy(p, l.pend)
	l.pend = l.pend[n:]
	return n, nil
}

// readLine returns the next line (with its newline), or its replacement.
func (l *lineCapReader) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, err := l.r.ReadSlice('\n')
		if len(line)+len(chunk) > l.max {
			head := append(line, chunk...)
			if len(head) > 4096 {
				head = head[:4096]
			}
			if err == bufio.ErrBufferFull {
				err = l.discardLine()
			}
			return tooLarge(head, l.max), err
		}
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		t := bytes.TrimSpace(line)
		valid := json.Valid(t)
		if l.onInvalid != nil && len(t) > 0 && !valid {
			l.onInvalid(t)
		}
		if valid && l.onBatch != nil && t[0] == '[' {
			l.queue = l.onBatch(t)
			if l.onLine != nil {
				for _, m := range l.queue {
					l.onLine(m)
				}
			}
			return nil, err
		}
		if l.onLine != nil {
			l.onLine(line)
		}
		return line, err
	}
}

func (l *lineCapReader) discardLine() error {
	for {
		_, err := l.r.ReadSlice('\n')
		if err != bufio.ErrBufferFull {
			return err
		}
	}
}

// tooLargeMethod is the method of the stand-in for an oversized line.
const tooLargeMethod = "mediator/request_too_large"

func tooLarge(head []byte, max int) []byte {
	id := "null"
	if m := idPattern.FindSubmatch(head); m != nil {
		id = string(m[1])
	}
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%s,"method":"`+tooLargeMethod+`","params":{"cap":%d}}`+"\n", id, max)
}

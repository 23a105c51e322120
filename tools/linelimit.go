package tools

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// lineLimitReader passes a stream of newline-delimited JSON-RPC messages
// through, bounding each message to max bytes (without its newline), so
// that the registry never buffers without bound whatever an upstream
// writes. A message over the limit is dropped, and only that message: a
// response is replaced by a JSON-RPC error response with the same id,
// which fails the one call it answers and names the limit; anything else
// (a notification, a request of the upstream's) is dropped. The upstream
// and every other call on it run on.
type lineLimitReader struct {
	r    *bufio.Reader
	max  int
	pend []byte // what Read hands out next
	line []byte // a message longer than r's buffer, being assembled
	err  error  // the error after pend, from the underlying reader
	// onLimit is told of each message dropped: its size, and the id of
	// the request it answered ("" when it answered none).
	onLimit func(size int, id string)
	// failWith, when set, makes a line over the limit end the stream with
	// this error instead (an SSE stream, whose lines are not messages).
	failWith error
	done     chan struct{} // closed when the stream ends
	once     sync.Once
}

// lineBuffer is the reader's buffer: a message up to this size is handed
// on without a copy.
const lineBuffer = 64 << 10

func newLineLimitReader(r io.Reader, max int, onLimit func(size int, id string)) *lineLimitReader {
	return &lineLimitReader{r: bufio.NewReaderSize(r, lineBuffer), max: max, onLimit: onLimit, done: make(chan struct{})}
}

func (l *lineLimitReader) finish() { l.once.Do(func() { close(l.done) }) }

// Read is called from one goroutine only (the transport's reader).
func (l *lineLimitReader) Read(p []byte) (int, error) {
	for len(l.pend) == 0 {
		if l.err != nil {
			l.finish()
			return 0, l.err
		}
		l.pend, l.err = l.next()
	}
	n := copy(p, l.pend)
	l.pend = l.pend[n:]
	return n, nil
}

// next returns the next message with its newline, its stand-in, or
// nothing (a dropped message), and the error that ended the stream.
func (l *lineLimitReader) next() ([]byte, error) {
	chunk, err := l.r.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		if contentLen(chunk) > l.max {
			return l.overflow(nil, chunk, err)
		}
		return chunk, err // valid until the next ReadSlice, after pend is used up
	}
	l.line = append(l.line[:0], chunk...)
	for {
		if len(l.line) > l.max {
			return l.overflow(l.line, nil, err)
		}
		chunk, err = l.r.ReadSlice('\n')
		if len(l.line)+contentLen(chunk) > l.max {
			return l.overflow(l.line, chunk, err)
		}
		l.line = append(l.line, chunk...)
		if err != bufio.ErrBufferFull {
			return l.line, err
		}
	}
}

// contentLen is the length of a line without its newline.
func contentLen(b []byte) int {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return n - 1
	}
	return len(b)
}

// overflow reads the rest of a message that is over the limit (head and
// chunk are what was read of it; err is the last read's), finds the id of
// the request it answers, and returns its stand-in.
func (l *lineLimitReader) overflow(head, chunk []byte, err error) ([]byte, error) {
	if l.failWith != nil {
		return nil, l.failWith
	}
	var sc topLevelScanner
	sc.feed(head)
	sc.feed(chunk)
	size := len(head) + len(chunk)
	for err == bufio.ErrBufferFull {
		chunk, err = l.r.ReadSlice('\n')
		sc.feed(chunk)
		size += len(chunk)
	}
	size = size - len(chunk) + contentLen(chunk)
	if cap(l.line) > 1<<20 {
		l.line = nil // do not keep a message-sized buffer
	}
	id := sc.responseID()
	if l.onLimit != nil {
		l.onLimit(size, id)
	}
	if id == "" {
		return nil, err
	}
	msg := fmt.Sprintf("the upstream's response of %d bytes exceeds the mediator's limit of %d bytes per message "+
		"(limits.max_message_bytes) and was dropped; ask the tool for less (a page, a range, a smaller file), "+
		"or have an administrator raise the limit", size, l.max)
	text, _ := json.Marshal(msg)
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32603,"message":%s}}`+"\n", id, text), err
}

// topLevelScanner follows a JSON object given in pieces, far enough to find
// the members of its top level: the value of "id" (a string or a number,
// as written) and whether it has a "method" (a request or notification,
// not a response). Nested values are skipped without being decoded.
type topLevelScanner struct {
	depth      int
	inString   bool
	escaped    bool
	expectKey  bool // at depth 1, the next string is a key
	readingKey bool
	key        []byte
	lastKey    string
	idNext     bool // the value of "id" comes next
	inID       bool // the value of "id" is being read
	idIsString bool
	id         []byte
	idDone     bool
	hasMethod  bool
	overlong   bool
}

// maxIDBytes bounds the id a stand-in carries.
const maxIDBytes = 256

func (s *topLevelScanner) feed(b []byte) {
	for _, c := range b {
		if s.inString {
			s.stringByte(c)
			continue
		}
		if s.inID && !s.idIsString {
			if c == ',' || c == '}' || c == ' ' || c == '\t' || c == '\r' || c == '\n' {
				s.inID, s.idDone = false, true
			} else {
				s.keepID(c)
				continue
			}
		}
		switch c {
		case '"':
			s.inString = true
			switch {
			case s.depth == 1 && s.expectKey:
				s.readingKey, s.expectKey, s.key = true, false, s.key[:0]
			case s.depth == 1 && s.idNext:
				s.idNext, s.inID, s.idIsString = false, true, true
				s.keepID(c)
			}
		case '{', '[':
			s.depth++
			s.idNext = false
			if s.depth == 1 && c == '{' {
				s.expectKey = true
			}
		case '}', ']':
			s.depth--
		case ':':
			if s.depth == 1 {
				switch s.lastKey {
				case "id":
					s.idNext = !s.idDone && !s.inID && len(s.id) == 0
				case "method":
					s.hasMethod = true
				}
			}
		case ',':
			if s.depth == 1 {
				s.expectKey = true
			}
		case ' ', '\t', '\r', '\n':
		default:
			if s.depth == 1 && s.idNext {
				s.idNext, s.inID, s.idIsString = false, true, false
				s.keepID(c)
			}
		}
	}
}

func (s *topLevelScanner) stringByte(c byte) {
	if s.escaped {
		s.escaped = false
	} else if c == '\\' {
		s.escaped = true
	} else if c == '"' {
		s.inString = false
		if s.readingKey {
			s.readingKey = false
			s.lastKey = string(s.key)
		}
		if s.inID {
			s.keepID(c)
			s.inID, s.idDone = false, true
		}
		return
	}
	if s.readingKey && len(s.key) < 16 {
		s.key = append(s.key, c)
	}
	if s.inID {
		s.keepID(c)
	}
}

func (s *topLevelScanner) keepID(c byte) {
	if len(s.id) >= maxIDBytes {
		s.overlong = true
		return
	}
	s.id = append(s.id, c)
}

// responseID returns the id of a response, as written, or "" when the
// message is not a response or its id cannot be used.
func (s *topLevelScanner) responseID() string {
	if s.inID && !s.idIsString {
		s.inID, s.idDone = false, true // a number at the very end
	}
	if s.hasMethod || !s.idDone || s.overlong || !json.Valid(s.id) || string(s.id) == "null" {
		return ""
	}
	return string(s.id)
}

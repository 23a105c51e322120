package mediator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// An upstream's sampling or elicitation request is relayed to the agent,
// and when the agent's client refuses it (a user rejecting a sampling
// request, say, with its own code and data), the upstream must get that
// error as the agent sent it. mcp-go keeps only the message of a client's
// error response (over stdio) or its code and message in a text (over
// HTTP), so the transports note each error response an agent sends, and
// the peer that relayed the request takes the one mcp-go's error names.

// ClientRPCError is an agent's JSON-RPC error response to a request the
// mediator relayed to it from an upstream (sampling/createMessage,
// elicitation/create). The upstream gets Code, Message and Data.
type ClientRPCError struct {
	Method  string
	Code    int
	Message string
	Data    json.RawMessage
}

func (e *ClientRPCError) Error() string {
	return fmt.Sprintf("the agent answered %s with error %d: %s", e.Method, e.Code, e.Message)
}

// clientErrTTL is how long a noted error response waits to be taken;
// clientErrMax bounds those kept per session.
const (
	clientErrTTL = time.Minute
	clientErrMax = 32
)

// clientErrors holds agents' recent error responses, per MCP session.
type clientErrors struct {
	mu sync.Mutex
	m  map[string][]clientErr
}

type clientErr struct {
	code    int
	message string
	data    json.RawMessage
	at      time.Time
}

// note records msg, a message an agent sent on session, when it is a
// JSON-RPC error response. The message and data are bounded as an
// upstream's error is.
func (c *clientErrors) note(session string, msg []byte) {
	// Cheap tests first: this sees every stdio line, and a request (its
	// "method") is never an answer; an error answer whose data holds a
	// "method" member passes as mcp-go's text, its code lost.
	if !bytes.Contains(msg, []byte(`"error"`)) || bytes.Contains(msg, []byte(`"method"`)) {
		return
	}
	var r struct {
		Method *string          `json:"method"`
		ID     json.RawMessage  `json:"id"`
		Error  *json.RawMessage `json:"error"`
	}
	if json.Unmarshal(msg, &r) != nil || r.Method != nil || r.Error == nil || len(r.ID) == 0 {
		return
	}
	var e struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if json.Unmarshal(*r.Error, &e) != nil || e.Message == "" {
		return
	}
	if len(e.Message) > MaxUpstreamErrorText {
		return // mcp-go's text of it would not match a cut copy: the code is lost, the message kept
	}
	if len(e.Data) > MaxUpstreamErrorData || string(e.Data) == "null" {
		e.Data = nil
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][]clientErr{}
	}
	list := fresh(c.m[session], now)
	if len(list) >= clientErrMax {
		list = list[1:]
	}
	c.m[session] = append(list, clientErr{code: e.Code, message: e.Message, data: e.Data, at: now})
}

// fresh drops the entries older than clientErrTTL.
func fresh(list []clientErr, now time.Time) []clientErr {
	i := 0
	for i < len(list) && now.Sub(list[i].at) > clientErrTTL {
		i++
	}
	return list[i:]
}

// take returns, and forgets, the latest error response noted on session
// that err (mcp-go's error for a relayed request) was made from, or nil.
func (c *clientErrors) take(session, method string, err error) *ClientRPCError {
	if err == nil {
		return nil
	}
	text := err.Error()
	c.mu.Lock()
	defer c.mu.Unlock()
	list := fresh(c.m[session], time.Now())
	for i := len(list) - 1; i >= 0; i-- {
		e := list[i]
		if !strings.HasSuffix(text, ": "+e.message) {
			continue
		}
		// Over HTTP mcp-go keeps the code in its text ("… error -1: msg"):
		// it must agree.
		prefix := strings.TrimSuffix(text, ": "+e.message)
		if i := strings.LastIndex(prefix, " error "); i >= 0 {
			if n, err := strconv.Atoi(prefix[i+len(" error "):]); err == nil && n != e.code {
				continue
			}
		}
		list = append(list[:i:i], list[i+1:]...)
		if len(list) == 0 {
			delete(c.m, session)
		} else {
			c.m[session] = list
		}
		return &ClientRPCError{Method: method, Code: e.code, Message: e.message, Data: e.data}
	}
	if len(list) == 0 {
		delete(c.m, session)
	} else {
		c.m[session] = list
	}
	return nil
}

// forget drops a closed session's entries.
func (c *clientErrors) forget(session string) {
	c.mu.Lock()
	delete(c.m, session)
	c.mu.Unlock()
}

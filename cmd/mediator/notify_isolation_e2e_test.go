package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sharedUpstreamServe starts a serve whose fake upstream, shared by every
// agent session, runs over upstream ("stdio" or "http").
func sharedUpstreamServe(t *testing.T, upstream string) *mediatorProc {
	t.Helper()
	config := fakeConfig(t, "")
	if upstream == "http" {
		addrFile := filepath.Join(t.TempDir(), "addr")
		addr := freeAddr(t)
		startProc(t, addr, nil, buildTool(t, "tools/testdata/fakeupstream"), "-mode", "http", "-listen", addr, "-addr-file", addrFile)
		config = policyFragment(t, "p, *, tool, fake__*, allow, fake-all\n") + `
agent: {id: e2e-agent}
auth: {anonymous: {id: e2e-agent}}
upstreams:
  - name: fake
    url: http://` + addr + `/mcp
`
	}
	return startServe(t, config)
}

// openSession initialises a streamable-HTTP session and returns its id.
func openSession(t *testing.T, url string) string {
	t.Helper()
	status, hdr, body := rawRequest(t, "POST", url, "", "",
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`, nil)
	sid := hdr.Get("Mcp-Session-Id")
	if status != 200 || sid == "" {
		t.Fatalf("initialize: %d %q", status, body)
	}
	rawRequest(t, "POST", url, "", sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil)
	return sid
}

// postCall sends a tools/call on a session that takes an event stream and
// returns the response with its body unread.
func postCall(t *testing.T, hc *http.Client, url, sid string, id int, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", url, strings.NewReader(fmt.Sprintf(
		`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":%s}`, id, body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// responseMessages reads a POST's answer: the events of its stream, or its
// JSON body as one message when no notification made it a stream.
func responseMessages(t *testing.T, resp *http.Response) []string {
	t.Helper()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		b, _ := io.ReadAll(resp.Body)
		return []string{string(b)}
	}
	return sseMessages(t, bufio.NewReader(resp.Body), nil)
}

// Issue 18: an agent that stops reading its stream holds up only itself.
// Agent A calls a tool that sends megabytes of progress and never reads
// the response; its stream stalls once the socket buffers fill. Agent B
// then calls through the same upstream connection and must get all its
// progress before its result, at once. (Before: one queue per upstream
// connection delivered to every agent in turn, so B's notifications waited
// behind A's stuck write, and were dropped; B got none, 2 s late, and A's
// handler was held for ever.) A's stalled stream is cut when its write's
// deadline passes: A never gets a result on it.
func TestE2EStalledAgentHoldsUpOnlyItself(t *testing.T) {
	t.Parallel()
	for _, up := range []string{"stdio", "http"} {
		t.Run(up+" upstream", func(t *testing.T) {
			t.Parallel()
			p := sharedUpstreamServe(t, up)

			// A: a client whose socket takes little and is never read.
			dialer := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			}}
			stalled := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
			sidA := openSession(t, p.URL)
			startA := time.Now()
			respA := postCall(t, stalled, p.URL, sidA, 7,
				`{"name":"fake__progress","arguments":{"steps":2000,"pad":16000,"gap_ms":1,"linger_ms":2000},"_meta":{"progressToken":"a"}}`)
			defer respA.Body.Close()
			time.Sleep(1500 * time.Millisecond) // the upstream is sending A's 32 MB over 2 s or more; A's stream is full

			sidB := openSession(t, p.URL)
			startB := time.Now()
			respB := postCall(t, http.DefaultClient, p.URL, sidB, 8,
				`{"name":"fake__progress","arguments":{"steps":3,"linger_ms":50},"_meta":{"progressToken":"b"}}`)
			msgs := responseMessages(t, respB)
			respB.Body.Close()
			tookB := time.Since(startB)
			n, answered := progressBeforeResult(msgs, "b", 8)
			t.Logf("B: %d of 3 progress notifications before its result, in %v, while A's stream is stalled", n, tookB.Round(time.Millisecond))
			if !answered || n != 3 {
				t.Fatalf("B got %d of 3 progress notifications before its result (answered %v): %q", n, answered, msgs)
			}
			if tookB > 1500*time.Millisecond {
				t.Errorf("B's call took %v while A's stream was stalled; want it unaffected", tookB)
			}

			// Read A's stream only after its call has ended and its stalled
			// write's deadline (5 s) has passed.
			time.Sleep(time.Until(startA.Add(11 * time.Second)))
			done := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(respA.Body)
				done <- b
			}()
			select {
			case b := <-done:
				if strings.Contains(string(b), `"id":7`) {
					t.Fatalf("%s upstream: A's stalled stream was held open until A read it (got its result after %v, %d bytes); want it cut at the write deadline", up, time.Since(startA), len(b))
				}
				t.Logf("A's stalled stream was cut after %d bytes", len(b))
			case <-time.After(20 * time.Second):
				t.Fatal("A's stalled stream neither ended nor delivered within 20 s of being read")
			}
		})
	}
}

// Issue 18, item 1: a log message of one agent's call does not reach another
// agent whose call is in flight on the same upstream session. The upstream's
// log names no request, so while calls of two agent sessions are in flight
// it reaches neither (before: every agent with a call in flight got it).
// With one session in flight it reaches that session
// (TestE2ESamplingElicitationLogging).
func TestE2ELogsDoNotCrossAgents(t *testing.T) {
	t.Parallel()
	for _, up := range []string{"stdio", "http"} {
		t.Run(up+" upstream", func(t *testing.T) {
			t.Parallel()
			p := sharedUpstreamServe(t, up)
			sidA := openSession(t, p.URL)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			got := make(chan []string, 1)
			go func() {
				respA := postCall(t, http.DefaultClient, p.URL, sidA, 5, `{"name":"fake__sleep","arguments":{"seconds":2}}`)
				defer respA.Body.Close()
				got <- responseMessages(t, respA)
			}()
			time.Sleep(300 * time.Millisecond) // A's call is in flight
			sidB := openSession(t, p.URL)
			respB := postCall(t, http.DefaultClient, p.URL, sidB, 6,
				`{"name":"fake__progress","arguments":{"steps":4,"linger_ms":300},"_meta":{"progressToken":"b"}}`)
			msgsB := responseMessages(t, respB)
			respB.Body.Close()
			if n, answered := progressBeforeResult(msgsB, "b", 6); !answered || n != 4 {
				t.Fatalf("B: %d of 4 progress notifications (answered %v): %q", n, answered, msgsB)
			}
			var msgsA []string
			select {
			case msgsA = <-got:
			case <-ctx.Done():
				t.Fatal("A's call did not end")
			}
			leaked := 0
			for _, m := range msgsA {
				if strings.Contains(m, `"notifications/message"`) {
					leaked++
				}
			}
			t.Logf("A's stream: %d messages, %d of them B's log messages", len(msgsA), leaked)
			if leaked != 0 || !strings.Contains(strings.Join(msgsA, "\n"), `"id":5`) {
				t.Fatalf("A's stream carried %d of B's log messages (or no result): %q", leaked, msgsA)
			}
		})
	}
}

package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// syslogCollector is a real TCP syslog collector (RFC 6587 octet
// counting): every message it receives goes to msgs.
type syslogCollector struct {
	ln    net.Listener
	msgs  chan string
	mu    sync.Mutex
	conns []net.Conn
}

// stop closes the listener and every connection: the collector is gone.
func (c *syslogCollector) stop() {
	_ = c.ln.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		_ = conn.Close()
	}
}

func listenSyslog(t *testing.T, addr string) *syslogCollector {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &syslogCollector{ln: ln, msgs: make(chan string, 1000)}
	t.Cleanup(c.stop)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.conns = append(c.conns, conn)
			c.mu.Unlock()
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				for {
					n, err := r.ReadString(' ')
					if err != nil {
						return
					}
					size, err := strconv.Atoi(strings.TrimSpace(n))
					if err != nil || size <= 0 || size > 1<<20 {
						return
					}
					buf := make([]byte, size)
					if _, err := io.ReadFull(r, buf); err != nil {
						return
					}
					c.msgs <- string(buf)
				}
			}()
		}
	}()
	return c
}

// next returns the next message whose record is a tools/call of tool
// with text in its arguments.
func (c *syslogCollector) next(t *testing.T, tool, text string) (string, mediator.ChainRecord) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-c.msgs:
			i := strings.Index(m, "] {")
			if i < 0 {
				t.Fatalf("not an RFC 5424 message with a record: %q", m)
			}
			var r mediator.ChainRecord
			if err := json.Unmarshal([]byte(m[i+2:]), &r); err != nil {
				t.Fatalf("message body is not a record: %v: %q", err, m)
			}
			if r.Method == "tools/call" && r.Name == tool && strings.Contains(string(r.Arguments), text) {
				return m, r
			}
		case <-deadline:
			t.Fatalf("no record of %s reached the collector", tool)
		}
	}
}

// Issue 12: every committed record goes to a syslog collector as an RFC
// 5424 message; while the collector is down nothing is lost (shipping
// resumes from the database) and the outage is itself recorded.
func TestE2EShipToSyslog(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	col := listenSyslog(t, addr)
	p := startServe(t, fakeConfig(t, "audit:\n  ship: {syslog: {address: tcp://"+addr+"}}\n"))
	c := httpClient(t, p.URL)
	callTool(t, c, "fake__echo", map[string]any{"text": "to the siem"})
	msg, rec := col.next(t, "fake__echo", "to the siem")
	if !strings.HasPrefix(msg, "<110>1 ") || !strings.Contains(msg, `[mcpm@32473 seq="`+strconv.FormatInt(rec.Seq, 10)+`"`) ||
		!strings.Contains(msg, " mcp-mediator ") || rec.Hash == "" || !strings.Contains(string(rec.Arguments), "to the siem") {
		t.Fatalf("message %q", msg)
	}
	// The collector goes away; calls go on and nothing waits for it.
	col.stop()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	callTool(t, c, "fake__echo", map[string]any{"text": "while the siem is down"})
	if time.Since(start) > 2*time.Second {
		t.Fatal("a call waited for the collector")
	}
	waitFor(t, 10*time.Second, func() bool {
		for _, r := range exportRecords(t, p.Dir, p.DB) {
			if r.Method == "mediator/ship" && r.Outcome == mediator.OutcomeFailed && strings.Contains(r.Error, "records are kept") {
				return true
			}
		}
		return false
	}, "the collector's outage was not recorded")
	col2 := listenSyslog(t, addr)
	_, late := col2.next(t, "fake__echo", "while the siem is down")
	if late.Seq <= rec.Seq {
		t.Fatalf("after the outage the collector got %+v first", late)
	}
}

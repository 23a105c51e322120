package mediator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPassthroughRewrite(t *testing.T) {
	t.Parallel()
	var p passthrough
	mine, other := &passScope{}, &passScope{}
	issue := func(sc *passScope, code int, data string) string {
		rpc := &UpstreamRPCError{Upstream: "u", Method: "tools/call", Code: code, Message: "upstream says no"}
		if data != "" {
			rpc.Data = json.RawMessage(data)
		}
		err := p.errorFor(withPassScope(context.Background(), sc), fmt.Errorf("wrapped: %w", rpc))
		if err == nil {
			t.Fatal("no passed error for an upstream error")
		}
		return err.Error()
	}
	response := func(msg string) string {
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "error": map[string]any{"code": -32603, "message": msg}})
		return string(b)
	}
	want := `{"jsonrpc":"2.0","id":7,"error":{"code":-32042,"message":"upstream says no","data":{"elicitations":[]}}}`
	cases := []struct {
		name, in, want string
		code           int
	}{
		{"a JSON line", response(issue(mine, -32042, `{"elicitations":[]}`)) + "\n", want + "\n", -32042},
		{"an SSE event", "event: message\ndata: " + response(issue(mine, -32042, `{"elicitations":[]}`)) + "\n\n", "event: message\ndata: " + want + "\n\n", -32042},
		{"no data", response(issue(mine, -32602, "")), `{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"upstream says no"}}`, -32602},
		{"another scope's token", response(issue(other, -32602, "")), "", 0},
		{"a token nobody issued", response("no: mcpm-upstream-error-" + strings.Repeat("ab", 16)), "", 0},
		{"a cut token", response("no: mcpm-upstream-error-abab"), "", 0},
		{"a result that quotes a token", `{"jsonrpc":"2.0","id":7,"result":{"text":"mcpm-upstream-error-` + strings.Repeat("ab", 16) + `"}}`, "", 0},
		{"not JSON", "mcpm-upstream-error- {", "", 0},
	}
	for _, tc := range cases {
		out, code := p.rewrite([]byte(tc.in), mine)
		if tc.want == "" {
			tc.want = tc.in // unchanged
		}
		if string(out) != tc.want || code != tc.code {
			t.Errorf("%s:\n got %q (%d)\nwant %q (%d)", tc.name, out, code, tc.want, tc.code)
		}
	}
	// A token is used once.
	line := response(issue(mine, -32602, ""))
	if _, code := p.rewrite([]byte(line), mine); code != -32602 {
		t.Fatal("first use not rewritten")
	}
	if _, code := p.rewrite([]byte(line), mine); code != 0 {
		t.Error("a token rewrote a second response")
	}
	// Without a scope (a transport that does not rewrite) or without an
	// upstream error, nothing is issued.
	if p.errorFor(context.Background(), &UpstreamRPCError{Code: 1}) != nil || p.errorFor(withPassScope(context.Background(), mine), errors.New("x")) != nil {
		t.Error("a passed error outside a scope, or for a non-upstream error")
	}
}

// The HTTP writer holds a JSON body's status until it has seen the body:
// protocol version 2026-07-28 gives -32602 HTTP 400.
func TestPassResponseWriterStatus(t *testing.T) {
	t.Parallel()
	for _, modern := range []bool{false, true} {
		var p passthrough
		sc := &passScope{}
		msg := p.errorFor(withPassScope(context.Background(), sc), &UpstreamRPCError{Code: -32602, Message: "bad cursor"}).Error()
		rec := httptest.NewRecorder()
		w := &passResponseWriter{ResponseWriter: rec, p: &p, sc: sc, modern: modern}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "error": map[string]any{"code": -32603, "message": msg}})
		if _, err := w.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
		w.finish()
		want := http.StatusOK
		if modern {
			want = http.StatusBadRequest
		}
		if rec.Code != want || !strings.Contains(rec.Body.String(), `"code":-32602,"message":"bad cursor"`) {
			t.Errorf("modern=%v: %d %s", modern, rec.Code, rec.Body)
		}
	}
}

// A plain-text error mcp-go writes goes out as a JSON-RPC error body with
// the same status; a held text error with no text still gets a body.
func TestPassResponseWriterTextError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, text, hint string
		status, code     int
		want             string
	}{
		{"bad request", "No pending sampling request found\n", "check the id", 400, -32600, "No pending sampling request found: check the id"},
		{"internal", "Failed to deliver response\n", "", 500, -32603, "Failed to deliver response"},
		{"no text", "", "", 404, -32600, "Not Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			w := &passResponseWriter{ResponseWriter: rec, p: &passthrough{}, sc: &passScope{}, hint: tc.hint}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(tc.status)
			if tc.text != "" {
				if _, err := w.Write([]byte(tc.text)); err != nil {
					t.Fatal(err)
				}
			}
			w.finish()
			var got struct {
				ID    any `json:"id"`
				Error struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if rec.Code != tc.status || got.Error.Code != tc.code || got.Error.Message != tc.want || got.ID != nil {
				t.Errorf("%d %+v, want %d %d %q", rec.Code, got, tc.status, tc.code, tc.want)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	// A success status with a text body is left alone.
	rec := httptest.NewRecorder()
	w := &passResponseWriter{ResponseWriter: rec, p: &passthrough{}, sc: &passScope{}}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok"))
	w.finish()
	if rec.Body.String() != "ok" {
		t.Errorf("a 200 text body was rewritten: %q", rec.Body)
	}
}

func FuzzPassthroughRewrite(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"x mcpm-upstream-error-00000000000000000000000000000000"}}`))
	f.Add([]byte("event: message\ndata: {\"error\":{\"message\":\"mcpm-upstream-error-\"}}\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p passthrough
		sc := &passScope{}
		_ = p.errorFor(withPassScope(context.Background(), sc), &UpstreamRPCError{Code: -1})
		out, code := p.rewrite(b, sc)
		if code == 0 && string(out) != string(b) {
			t.Fatalf("changed without a rewrite: %q → %q", b, out)
		}
	})
}

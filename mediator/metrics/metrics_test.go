package metrics

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mcp-mediator/mediator/mediator"
)

func call(method, tool string, kind mediator.Kind) (*mediator.Call, *mediator.ChainRecord) {
	c := &mediator.Call{Method: method}
	if tool != "" {
		c.Target = &mediator.Target{Kind: kind, Server: "up", Name: tool}
	}
	return c, &mediator.ChainRecord{Method: method, Server: "up", Decision: mediator.Decision{Effect: mediator.EffectAllow, Rule: "r"}, Outcome: mediator.OutcomeOK}
}

func TestLabels(t *testing.T) {
	tests := []struct {
		name, method, tool string
		kind               mediator.Kind
		wantMethod         string
		wantTool           string
	}{
		{"catalog tool", "tools/call", "up__echo", mediator.KindTool, "tools/call", "up__echo"},
		{"resource URI is not a label", "resources/read", "file:///etc/passwd", mediator.KindResource, "resources/read", ""},
		{"unknown method", "evil/method-123", "", "", "other", ""},
		{"agent tool", mediator.MethodToolUse, "claude__Bash", mediator.KindBuiltin, mediator.MethodToolUse, "claude__Bash"},
		{"unresolved tool", "tools/call", "", "", "tools/call", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(Sources{})
			c, rec := call(tt.method, tt.tool, tt.kind)
			m.Call(context.Background(), c, rec, time.Millisecond, nil, nil)
			got := testutil.ToFloat64(m.calls.WithLabelValues(tt.wantMethod, "up", tt.wantTool, "allow", "r", "ok"))
			if got != 1 {
				t.Fatalf("series {method=%q tool=%q} = %v, want 1", tt.wantMethod, tt.wantTool, got)
			}
			if n := testutil.CollectAndCount(m.calls); n != 1 {
				t.Fatalf("%d series, want 1", n)
			}
		})
	}
}

// Past MaxSeries label sets, new tools and rules fold into "_other".
func TestSeriesAreBounded(t *testing.T) {
	m := New(Sources{})
	for i := range MaxSeries + 100 {
		c, rec := call("tools/call", fmt.Sprintf("up__t%d", i), mediator.KindTool)
		m.Call(context.Background(), c, rec, time.Millisecond, nil, nil)
	}
	if n := testutil.CollectAndCount(m.calls); n != MaxSeries+1 {
		t.Fatalf("%d series, want %d", n, MaxSeries+1)
	}
	if v := testutil.ToFloat64(m.calls.WithLabelValues("tools/call", "up", "_other", "allow", "_other", "ok")); v != 100 {
		t.Fatalf("_other = %v, want 100", v)
	}
}

// A denial without a rule is labelled by the code of what refused it, a
// denial by a rule by the rule.
func TestDenialRule(t *testing.T) {
	tests := []struct {
		name, rule string
		err        error
		want       string
	}{
		{"policy rule", "no-wipe", fmt.Errorf("%w: by rule no-wipe", mediator.ErrDenied), "no-wipe"},
		{"refused credential", "", fmt.Errorf("%w: token expired", mediator.ErrUnauthenticated), "mediator:unauthenticated"},
		{"quarantined tool", "", mediator.ErrToolQuarantined, "mediator:tool_quarantined"},
		{"no error at hand", "", nil, "mediator:denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(Sources{})
			c, rec := call("tools/call", "up__wipe", mediator.KindTool)
			rec.Decision, rec.Outcome = mediator.Decision{Effect: mediator.EffectDeny, Rule: tt.rule}, mediator.OutcomeDenied
			m.Call(context.Background(), c, rec, time.Millisecond, tt.err, nil)
			if v := testutil.ToFloat64(m.calls.WithLabelValues("tools/call", "up", "up__wipe", "deny", tt.want, "denied")); v != 1 {
				t.Fatalf("rule=%q: %v, want 1", tt.want, v)
			}
		})
	}
}

func TestAuthReasonIsBounded(t *testing.T) {
	m := New(Sources{})
	m.AuthFailed("expired")
	m.AuthFailed("Bearer eyJhbGciOi...")
	if v := testutil.ToFloat64(m.authFail.WithLabelValues("other")); v != 1 {
		t.Fatalf("other = %v", v)
	}
	if v := testutil.ToFloat64(m.authFail.WithLabelValues("expired")); v != 1 {
		t.Fatalf("expired = %v", v)
	}
}

func TestHandlerToken(t *testing.T) {
	h := New(Sources{}).Handler("tok", nil)
	for _, tt := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer nope", 401}, {"Bearer tok", 200}} {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if tt.auth != "" {
			r.Header.Set("Authorization", tt.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("Authorization %q: %d, want %d", tt.auth, w.Code, tt.want)
		}
	}
}

package behaviour

import (
	"slices"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

func TestCallPlaces(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args map[string]any
		want []string
	}{
		{map[string]any{"path": "/repo/svc-1/internal/api/f001.go"}, []string{"path:/repo/svc-1"}},
		{map[string]any{"path": "notes/todo.md"}, []string{"path:notes"}},
		{map[string]any{"path": "README.txt"}, []string{"path:."}},
		{map[string]any{"path": "/etc/passwd"}, []string{"path:/etc"}},
		{map[string]any{"path": "/"}, []string{"path:/"}},
		{map[string]any{"path": "notes/../../../etc/shadow"}, []string{"path:../.."}},
		{map[string]any{"filePath": `C:\Users\x\a.txt`}, []string{"path:C:/Users"}},
		{map[string]any{"url": "https://API.example.com:8443/v1?q=1"}, []string{"host:api.example.com"}},
		{map[string]any{"source": "https://evil.test/x"}, []string{"host:evil.test"}},
		{map[string]any{"paths": []any{"/a/b/c", "/a/b/d", "/x/y/z"}}, []string{"path:/a/b", "path:/x/y"}},
		{map[string]any{"query": "/not/a/path", "count": 3.0}, nil},
		{map[string]any{"path": 42.0}, nil},
	}
	for _, tc := range cases {
		c := &mediator.Call{Arguments: tc.args}
		got := callPlaces(c, nil)
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("callPlaces(%v) = %q, want %q", tc.args, got, tc.want)
		}
	}
	many := map[string]any{}
	for _, k := range []string{"a_path", "b_path", "c_path", "d_path", "e_path", "f_path"} {
		many[k] = "/" + k + "/x/y"
	}
	if got := callPlaces(&mediator.Call{Arguments: many}, nil); len(got) != maxPlacesPerCall {
		t.Errorf("a call naming six places keeps %d, want %d", len(got), maxPlacesPerCall)
	}
}

// A directory the agent's tool never reached is a reason, and two such
// calls lower trust; the usual directories are named.
func TestNovelPlace(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{LearnCalls: 100, LearnFor: 24 * time.Hour, Zone: time.UTC}, nil)
	ag := &mediator.Agent{ID: "coder"}
	read := target("fs", "read_file", mediator.RiskLow, mediator.DataInternal, false)
	at := start.Add(9 * time.Hour)
	for i := range 300 { // 25 hours: learned after a day
		at = at.Add(5 * time.Minute)
		h.ok(ag, read, at, map[string]any{"path": "/repo/svc/internal/f" + string(rune('a'+i%20)) + ".go"})
	}
	at = at.Add(4 * time.Minute)
	b := h.ok(ag, read, at, map[string]any{"path": "/repo/svc/cmd/main.go"})
	if b.Score != 0 || b.Trust != mediator.TrustHigh {
		t.Fatalf("a usual directory scored %.2f (%v)", b.Score, b.Reasons)
	}
	b = h.ok(ag, read, at.Add(time.Minute), map[string]any{"path": "/home/dev/.ssh/id_ed25519"})
	if !hasReason(b, "directory /home/dev never used by fs__read_file for this agent (usual: /repo/svc)") || !b.Novel {
		t.Fatalf("reasons %v", b.Reasons)
	}
	b = h.ok(ag, read, at.Add(2*time.Minute), map[string]any{"path": "/home/dev/.aws/credentials"})
	if b.Trust != mediator.TrustMedium {
		t.Fatalf("two reads outside the agent's directories: trust %s, reasons %v", b.Trust, b.Reasons)
	}
}

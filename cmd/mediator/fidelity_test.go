package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fidelityStep is one request of testdata/node/fidelity.mjs.
type fidelityStep struct {
	Name   string         `json:"name"`
	Method string         `json:"method"`
	Params map[string]any `json:"params,omitempty"`
	Pages  bool           `json:"pages,omitempty"`
	// list is the result member holding a listing's items ("" for none).
	list string
}

// fidelitySteps are the requests compared: every listing, tools with text,
// images, annotations, structured content and invalid arguments, prompts,
// a static resource, completions for a prompt and a template, and ping.
// prefix is how the agent names the upstream's tools and prompts.
func fidelitySteps(prefix string) []fidelityStep {
	call := func(name string, args map[string]any) map[string]any {
		return map[string]any{"name": prefix + name, "arguments": args}
	}
	return []fidelityStep{
		{Name: "tools/list", Method: "tools/list", Pages: true, list: "tools"},
		{Name: "prompts/list", Method: "prompts/list", Pages: true, list: "prompts"},
		{Name: "resources/list", Method: "resources/list", Pages: true, list: "resources"},
		{Name: "resources/templates/list", Method: "resources/templates/list", Pages: true, list: "resourceTemplates"},
		{Name: "echo", Method: "tools/call", Params: call("echo", map[string]any{"message": "byte for byte"})},
		{Name: "get-sum", Method: "tools/call", Params: call("get-sum", map[string]any{"a": 2, "b": 3})},
		{Name: "get-sum, bad arguments", Method: "tools/call", Params: call("get-sum", map[string]any{"a": "two"})},
		{Name: "get-structured-content", Method: "tools/call", Params: call("get-structured-content", map[string]any{"location": "Chicago"})},
		{Name: "get-annotated-message", Method: "tools/call", Params: call("get-annotated-message", map[string]any{"messageType": "error", "includeImage": true})},
		{Name: "get-tiny-image", Method: "tools/call", Params: call("get-tiny-image", map[string]any{})},
		{Name: "simple-prompt", Method: "prompts/get", Params: map[string]any{"name": prefix + "simple-prompt"}},
		{Name: "args-prompt", Method: "prompts/get", Params: map[string]any{"name": prefix + "args-prompt", "arguments": map[string]any{"city": "Paris"}}},
		{Name: "static resource", Method: "resources/read", Params: map[string]any{"uri": "demo://resource/static/document/features.md"}},
		{Name: "prompt completion", Method: "completion/complete", Params: map[string]any{
			"ref": map[string]any{"type": "ref/prompt", "name": prefix + "completable-prompt"}, "argument": map[string]any{"name": "department", "value": "S"}}},
		{Name: "template completion", Method: "completion/complete", Params: map[string]any{
			"ref": map[string]any{"type": "ref/resource", "uri": "demo://resource/dynamic/text/{resourceId}"}, "argument": map[string]any{"name": "resourceId", "value": "1"}}},
		{Name: "ping", Method: "ping"},
	}
}

// runFidelity runs fidelity.mjs with steps against a server (transport:
// "--", a stdio command and its arguments, or "--url", a streamable HTTP
// endpoint) and returns, per step, its responses as written.
func (k *nodeKit) runFidelity(t *testing.T, steps []fidelityStep, transport ...string) map[string][]string {
	t.Helper()
	b, err := json.Marshal(steps)
	if err != nil {
		t.Fatal(err)
	}
	stepsFile := filepath.Join(t.TempDir(), "steps.json")
	if err := os.WriteFile(stepsFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.node, append([]string{filepath.Join(k.dir, "fidelity.mjs"), stepsFile}, transport...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var res struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
		Steps []struct {
			Name  string   `json:"name"`
			Lines []string `json:"lines"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || !res.OK {
		t.Fatalf("fidelity.mjs %v: %v %s\nstdout %s\nstderr %s", transport, runErr, res.Error, stdout.String(), stderr.String())
	}
	out := map[string][]string{}
	for _, s := range res.Steps {
		out[s.Name] = s.Lines
	}
	return out
}

// responseOf returns a response line's result or error member, as sent.
func responseOf(t *testing.T, line string) (member string, raw json.RawMessage) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("response line %q: %v", line, err)
	}
	if r, ok := m["result"]; ok {
		return "result", r
	}
	return "error", m["error"]
}

// Issue 18, item 7: the official TypeScript SDK's client sees
// server-everything through the mediator as it sees it directly, byte for
// byte after namespacing: every listing (all pages), tool results of every
// content kind, an invalid call's error, prompts, a resource and
// completions. Over stdio (`mediator stdio`, the upstream a stdio child),
// over streamable HTTP (`mediator serve`, the upstream over streamable
// HTTP), and with the upstream over legacy SSE. The only differences allowed are the documented ones: the
// mediator's own tools are listed, tools and prompts are renamed,
// and listings come in one page. "execution" is kept: tasks are proxied.
func TestFidelityEverythingDirectVsMediated(t *testing.T) {
	t.Parallel()
	k := requireNode(t)
	everything := k.bin(t, "mcp-server-everything")
	policy := writePolicy(t,
		"p, *, *, everything__*, allow, everything-all",
		"p, *, resource, demo://**, allow, demo-resources",
	)
	const prefix = "everything__"

	t.Run("stdio", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		cfg := fmt.Sprintf("agent:\n  id: fidelity-agent\n%supstreams:\n  - name: everything\n    command: %s\n    args: [%s, stdio]\n",
			policy, yq(k.node), yq(everything))
		cfgPath := filepath.Join(dir, "mediator.yaml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		direct := k.runFidelity(t, fidelitySteps(""), "--", k.node, everything, "stdio")
		mediated := k.runFidelity(t, fidelitySteps(prefix), "--", binary(t), "stdio", "--config", cfgPath, "--db", filepath.Join(dir, "mediator.db"))
		compareFidelity(t, prefix, direct, mediated)
	})
	t.Run("http", func(t *testing.T) {
		t.Parallel()
		url := "http://" + k.startEverything(t, "streamableHttp") + "/mcp"
		p := startServe(t, fmt.Sprintf("auth: {anonymous: {id: fidelity-agent}}\n%supstreams:\n  - name: everything\n    url: %s\n", policy, yq(url)))
		direct := k.runFidelity(t, fidelitySteps(""), "--url", url)
		mediated := k.runFidelity(t, fidelitySteps(prefix), "--url", p.URL)
		compareFidelity(t, prefix, direct, mediated)
	})
	t.Run("sse upstream", func(t *testing.T) {
		t.Parallel()
		// The agent over streamable HTTP in both cases; the mediator
		// reaches the upstream over legacy SSE, to which it offers no
		// sampling, elicitation or roots (README): the direct client
		// declares none either.
		url := "http://" + k.startEverything(t, "streamableHttp") + "/mcp"
		sse := "http://" + k.startEverything(t, "sse") + "/sse"
		p := startServe(t, fmt.Sprintf("auth: {anonymous: {id: fidelity-agent}}\n%supstreams:\n  - name: everything\n    url: %s\n    transport: sse\n", policy, yq(sse)))
		direct := k.runFidelity(t, fidelitySteps(""), "--bare", "--url", url)
		mediated := k.runFidelity(t, fidelitySteps(prefix), "--bare", "--url", p.URL)
		compareFidelity(t, prefix, direct, mediated)
	})
}

// compareFidelity compares each step's responses, direct and mediated
// (see TestFidelityEverythingDirectVsMediated).
func compareFidelity(t *testing.T, prefix string, direct, mediated map[string][]string) {
	t.Helper()
	for _, s := range fidelitySteps(prefix) {
		want, got := direct[s.Name], mediated[s.Name]
		if len(want) == 0 || len(got) == 0 {
			t.Errorf("%s: no response (direct %d lines, mediated %d)", s.Name, len(want), len(got))
			continue
		}
		if s.list == "" {
			wm, w := responseOf(t, want[0])
			gm, g := responseOf(t, got[0])
			if wm != gm || !bytes.Equal(w, g) {
				t.Errorf("%s: through the mediator the %s differs from the direct %s %s", s.Name, gm, wm, firstDifference(string(g), string(w)))
			}
			continue
		}
		items := func(lines []string, mediated bool) []string {
			var out []string
			for _, l := range lines {
				member, raw := responseOf(t, l)
				var res map[string]json.RawMessage
				var list []json.RawMessage
				if member != "result" || json.Unmarshal(raw, &res) != nil || json.Unmarshal(res[s.list], &list) != nil {
					t.Fatalf("%s: %s", s.Name, l)
				}
				for _, it := range list {
					item := string(it)
					if s.list == "tools" || s.list == "prompts" {
						if mediated && !strings.Contains(item, `"name":"`+prefix) {
							continue // the mediator's own tools
						}
						item = strings.Replace(item, `"name":"`+prefix, `"name":"`, 1)
					}
					out = append(out, item)
				}
			}
			return out
		}
		w, g := items(want, false), items(got, true)
		if gs, ws := strings.Join(g, "\n"), strings.Join(w, "\n"); gs != ws {
			t.Errorf("%s through the mediator: %d items, direct %d (over %d pages); %s", s.Name, len(g), len(w), len(want), firstDifference(gs, ws))
		}
	}
}

// firstDifference describes where got first differs from want.
func firstDifference(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	around := func(s string) string {
		return strings.ReplaceAll(s[max(0, i-80):min(len(s), i+80)], "\n", "\\n")
	}
	return fmt.Sprintf("first at byte %d of %d/%d:\n  mediated …%s…\n  direct   …%s…", i, len(got), len(want), around(got), around(want))
}

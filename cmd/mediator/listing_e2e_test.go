package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// listedTools returns the tools of a tools/list result, each as its JSON.
func listedTools(t *testing.T, r rpcResponse) []json.RawMessage {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("tools/list: %+v", *r.Error)
	}
	var res struct {
		Tools []json.RawMessage `json:"tools"`
		Meta  json.RawMessage   `json:"_meta"`
	}
	if err := json.Unmarshal(r.Result, &res); err != nil {
		t.Fatalf("tools/list result %s: %v", r.Result, err)
	}
	if len(res.Meta) > 0 {
		t.Errorf("the listing has a _meta the upstream did not send: %s", res.Meta)
	}
	return res.Tools
}

// Issue 18, item 4: an agent's tools/list shows each upstream tool exactly
// as the upstream listed it, namespaced, in the upstream's order: no
// "annotations": {} or other member added, icons, output schema, _meta and
// an empty description kept, byte for byte, over stdio and HTTP (before:
// sorted by name and re-encoded by mcp-go, which added "annotations": {}).
// "execution" is dropped on purpose: tasks are not proxied. The mediator
// claims no sampling or elicitation capability of its own.
func TestE2EToolListingAsUpstreamSent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	raw := buildTool(t, "tools/testdata/rawupstream")
	direct := listedTools(t, startStdioPeer(t, dir, raw).call("tools/list", `{}`))

	config := policyFragment(t, "p, *, tool, raw__*, allow, raw-all\n") + `
agent: {id: e2e-agent}
auth: {anonymous: {id: e2e-agent}}
upstreams:
  - name: raw
    command: ` + raw + "\n"
	cfg := filepath.Join(dir, "mediator.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	viaStdio := listedTools(t, startStdioPeer(t, dir, binary(t), "stdio", "--config", cfg, "--db", filepath.Join(dir, "stdio.db")).call("tools/list", `{}`))

	p := startServe(t, config)
	sid, body := rawSession(t, p.URL, `{}`)
	// Sampling and elicitation are client capabilities: the mediator
	// relays them and does not claim them as its own.
	var init struct {
		Result struct {
			Capabilities map[string]json.RawMessage `json:"capabilities"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(body), &init); err != nil || init.Result.Capabilities["tools"] == nil {
		t.Fatalf("initialize answer %q: %v", body, err)
	}
	for _, c := range []string{"sampling", "elicitation"} {
		if _, ok := init.Result.Capabilities[c]; ok {
			t.Errorf("the mediator advertises %q as a server capability: %s", c, body)
		}
	}
	r, _ := httpCall(t, p.URL, sid, 2, "tools/list", `{}`)
	viaHTTP := listedTools(t, r)

	// What the agent should see: the upstream's tools, renamed, without
	// "execution".
	var want []string
	for _, d := range direct {
		s := strings.Replace(string(d), `"name":"`, `"name":"raw__`, 1)
		s = strings.Replace(s, `,"execution":{"taskSupport":"optional"}`, "", 1)
		want = append(want, s)
	}
	for via, got := range map[string][]json.RawMessage{"stdio": viaStdio, "http": viaHTTP} {
		var upstream []string
		for _, g := range got {
			if bytes.Contains(g, []byte(`"name":"raw__`)) {
				upstream = append(upstream, string(g))
			}
		}
		if strings.Join(upstream, "\n") != strings.Join(want, "\n") {
			t.Errorf("via %s the agent is shown\n  %s\nwant, as the upstream lists them\n  %s", via,
				strings.Join(upstream, "\n  "), strings.Join(want, "\n  "))
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// listedTools returns the tools of a tools/list result, each as its JSON.
func listedTools(t *testing.T, r rpcResponse) []json.RawMessage {
	t.Helper()
	return listedAs(t, r, "tools")
}

// rawConfig is the configuration of a mediator in front of the raw
// upstream at raw, with the policy rules; it is also written to dir, whose
// file is cfg.
func rawConfig(t *testing.T, dir, raw, rules string) (config, cfg string) {
	t.Helper()
	config = policyFragment(t, rules) + `
agent: {id: e2e-agent}
auth: {anonymous: {id: e2e-agent}}
upstreams:
  - name: raw
    command: ` + raw + "\n"
	cfg = filepath.Join(dir, "mediator.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return config, cfg
}

// listedAs returns the members of a list result's key, each as its JSON.
func listedAs(t *testing.T, r rpcResponse, key string) []json.RawMessage {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("listing %s: %+v", key, *r.Error)
	}
	var res map[string]json.RawMessage
	var items []json.RawMessage
	if err := json.Unmarshal(r.Result, &res); err != nil || json.Unmarshal(res[key], &items) != nil {
		t.Fatalf("list result %s: %v", r.Result, err)
	}
	if len(res["_meta"]) > 0 {
		t.Errorf("the listing has a _meta the upstream did not send: %s", res["_meta"])
	}
	return items
}

// Issue 18, item 4: an agent's tools/list shows each upstream tool exactly
// as the upstream listed it, namespaced, in the upstream's order: no
// "annotations": {} or other member added, icons, output schema, _meta and
// an empty description kept, byte for byte, over stdio and HTTP (before:
// sorted by name and re-encoded by mcp-go, which added "annotations": {}).
// "execution" is kept: tasks are proxied (tasks.go). The mediator claims
// no sampling or elicitation capability of its own.
func TestE2EToolListingAsUpstreamSent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	raw := buildTool(t, "tools/testdata/rawupstream")
	direct := listedTools(t, startStdioPeer(t, dir, raw).call("tools/list", `{}`))

	config, cfg := rawConfig(t, dir, raw, "p, *, tool, raw__*, allow, raw-all\n")
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

	// What the agent should see: the upstream's tools, renamed.
	var want []string
	for _, d := range direct {
		s := strings.Replace(string(d), `"name":"`, `"name":"raw__`, 1)
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

// Issue 18, items 4 and 6: prompts/list, resources/list and
// resources/templates/list show each upstream object as the upstream listed
// it (prompts namespaced), in its order, byte for byte, over stdio and HTTP
// (before: sorted by name and re-encoded by mcp-go, which dropped icons,
// "size", "required": false and an empty description); resources/read
// forwards the agent's params and nothing mcp-go's routing added; and one
// upstream change to resources and templates together reaches the agent as
// one notifications/resources/list_changed (before: two).
func TestE2EListingsAsUpstreamSent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	raw := buildTool(t, "tools/testdata/rawupstream")
	lists := []struct{ method, key string }{
		{"prompts/list", "prompts"},
		{"resources/list", "resources"},
		{"resources/templates/list", "resourceTemplates"},
	}
	peer := startStdioPeer(t, dir, raw)
	direct := map[string][]string{}
	for _, l := range lists {
		for _, d := range listedAs(t, peer.call(l.method, `{}`), l.key) {
			s := string(d)
			if l.key == "prompts" {
				s = strings.Replace(s, `"name":"`, `"name":"raw__`, 1)
			}
			direct[l.key] = append(direct[l.key], s)
		}
	}
	const complete = `{"ref":{"type":"ref/prompt","name":"%s"},"argument":{"name":"a","value":"%s"}}`
	directCompletion := peer.call("completion/complete", fmt.Sprintf(complete, "zprompt", "x"))
	if !strings.Contains(string(directCompletion.Result), `"hasMore":false`) {
		t.Fatalf("the raw upstream's completion: %s", directCompletion.Result)
	}
	config, cfg := rawConfig(t, dir, raw, "p, *, *, raw__*, allow, raw-all\np, *, resource, raw://**, allow, raw-resources\n")
	stdio := startStdioPeer(t, dir, binary(t), "stdio", "--config", cfg, "--db", filepath.Join(dir, "stdio.db"))
	p := startServe(t, config)
	sid, _ := rawSession(t, p.URL, `{}`)
	id := 10
	// send writes one message without waiting for an answer.
	send := map[string]func(msg string){
		"stdio": func(msg string) {
			if _, err := io.WriteString(stdio.in, msg+"\n"); err != nil {
				t.Error(err)
			}
		},
		"http": func(msg string) {
			req, err := http.NewRequestWithContext(t.Context(), "POST", p.URL, strings.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
			go func() { // answered only once cancelled
				if resp, err := http.DefaultClient.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
			}()
		},
	}
	via := map[string]func(method, params string) rpcResponse{
		"stdio": func(method, params string) rpcResponse { return stdio.call(method, params) },
		"http": func(method, params string) rpcResponse {
			id++
			r, _ := httpCall(t, p.URL, sid, id, method, params)
			return r
		},
	}
	for name, call := range via {
		for _, l := range lists {
			var got []string
			for _, g := range listedAs(t, call(l.method, `{}`), l.key) {
				got = append(got, string(g))
			}
			if strings.Join(got, "\n") != strings.Join(direct[l.key], "\n") {
				t.Errorf("%s via %s shows\n  %s\nwant, as the upstream lists them\n  %s", l.method, name,
					strings.Join(got, "\n  "), strings.Join(direct[l.key], "\n  "))
			}
		}
		r := call("resources/read", `{"uri":"raw://t/42"}`)
		if r.Error != nil || !strings.Contains(string(r.Result), `"text":"{\"uri\":\"raw://t/42\"}"`) {
			t.Errorf("resources/read via %s: the upstream got %s %+v, want only the agent's params", name, r.Result, r.Error)
		}
		// completion/complete: the upstream's completion byte for byte
		// ("hasMore": false and "total": 0 kept), and a cancel's reason
		// reaches it.
		if r := call("completion/complete", fmt.Sprintf(complete, "raw__zprompt", "x")); string(r.Result) != string(directCompletion.Result) {
			t.Errorf("completion/complete via %s: %s %+v, want as the upstream sent it: %s", name, r.Result, r.Error, directCompletion.Result)
		}
		send[name](`{"jsonrpc":"2.0","id":"hang-` + name + `","method":"completion/complete","params":` + fmt.Sprintf(complete, "raw__zprompt", "hang") + `}`)
		time.Sleep(300 * time.Millisecond) // the request reaches the upstream first
		send[name](`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"hang-` + name + `","reason":"given up via ` + name + `"}}`)
		waitFor(t, 20*time.Second, func() bool {
			r := call("tools/call", `{"name":"raw__last_cancel","arguments":{}}`)
			return strings.Contains(string(r.Result), `given up via `+name)
		}, "the upstream never got the agent's cancel reason for completion/complete via "+name)
		// A secret where mcp-go's types do not look (a member they do not
		// know, the first of a key given twice) is not passed on as
		// sent: the scanners never read it.
		if r := call("tools/call", `{"name":"raw__leaky","arguments":{}}`); r.Error != nil || strings.Contains(string(r.Result), "ghp_") || !strings.Contains(string(r.Result), `"text":"ok"`) {
			t.Errorf("a result hiding a secret via %s: %s %+v; want the result without it", name, r.Result, r.Error)
		}
		// A URI its template cannot produce ({id} expands to unreserved
		// characters only) does not reach the upstream.
		if r := call("resources/read", `{"uri":"raw://t/x';DROP"}`); r.Error == nil || r.Error.Code != -32002 {
			t.Errorf("resources/read of a URI outside its template via %s: %s %+v, want -32002", name, r.Result, r.Error)
		}
		if r := call("resources/read", `{"uri":"raw://nobody/1"}`); r.Error == nil || r.Error.Code != -32002 || !strings.Contains(r.Error.Message, `unknown resource "raw://nobody/1"`) || !strings.Contains(string(r.Error.Data), `"uri":"raw://nobody/1"`) {
			t.Errorf("resources/read of a URI no upstream offers via %s: %s %+v, want -32002 (resource not found) with the URI and the mediator's reason", name, r.Result, r.Error)
		}
	}

	// From 2026-07-28 on, MCP says -32602 for a resource not found.
	modern := mcp.ReadResourceRequest{}
	modern.Params.URI = "raw://nobody/1"
	_, err := httpClient(t, p.URL).ReadResource(t.Context(), modern)
	if !errors.Is(err, mcp.ErrInvalidParams) || !strings.Contains(fmt.Sprint(err), "unknown resource") {
		t.Errorf("a 2026-07-28 agent's read of an unknown URI: %v, want -32602 (invalid params) with the mediator's reason", err)
	}

	// One change to resources and templates: one notification.
	c, changed := listChangedClient(t, p.URL)
	if res := callTool(t, c, "raw__grow", nil); res.IsError {
		t.Fatalf("grow: %s", resultText(res))
	}
	waitFor(t, 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		res, err := c.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
		return err == nil && len(res.ResourceTemplates) == 3 && changed()["notifications/resources/list_changed"] > 0
	}, "the grown template, or its list_changed, never reached the agent")
	time.Sleep(time.Second)
	if got := changed(); len(got) != 1 || got["notifications/resources/list_changed"] != 1 {
		t.Errorf("one change to resources and templates sent the agent %v; want one notifications/resources/list_changed", got)
	}
}

package mediator

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// An agent's tools/list (and prompts/list, resources/list,
// resources/templates/list) must show each upstream object as the upstream
// listed it, in the upstream's order. mcp-go lists what is registered with it
// sorted by name and encodes each through its own type, which adds what the
// upstream did not send (an empty "annotations" object) and drops what it
// does not know (a prompt's icons, a resource's size). So the list's after
// hook, once it has chosen what the agent may see, puts the catalog order
// back and hands the upstreams' own definitions to the agent's transport
// under a one-use token in the result's _meta; the transport's writer
// (passthrough.go) puts them in place of mcp-go's encodings and removes the
// token.

// listingTokenPrefix starts a listing token; listingMetaKey carries it.
const (
	listingTokenPrefix = "mcpm-listing-"
	listingMetaKey     = "io.mcp-mediator/listing"
)

// listedTool is how an agent is shown a catalog object.
type listedTool struct {
	def  json.RawMessage // the upstream's definition, name rewritten
	rank [2]int          // its upstream's place in the catalog, its place in that upstream's list
}

// shownLists indexes the catalog's objects as agents are shown them: tools
// and prompts by name, resources by URI, templates by URI template.
type shownLists struct {
	tools, prompts, resources, templates map[string]listedTool
	// templateList are the catalog's templates mcp-go can read, parsed,
	// in catalog order (Server.usableTemplates).
	templateList []shownTemplate
}

// shownTemplate is a catalog template and its parsed definition.
type shownTemplate struct {
	cat ResourceTemplate
	mt  mcp.ResourceTemplate
}

// showLists indexes cat's objects as agents are shown them.
func showLists(cat *Catalog) *shownLists {
	servers := make(map[string]int, len(cat.Servers))
	for i, s := range cat.Servers {
		servers[s.Name] = i
	}
	out := &shownLists{
		tools:     make(map[string]listedTool, len(cat.Tools)),
		prompts:   make(map[string]listedTool, len(cat.Prompts)),
		resources: make(map[string]listedTool, len(cat.Resources)),
		templates: make(map[string]listedTool, len(cat.Templates)),
	}
	for _, t := range cat.Tools {
		out.tools[t.Name] = listedTool{def: t.Definition, rank: [2]int{servers[t.Server], t.Order}}
	}
	for _, p := range cat.Prompts {
		out.prompts[p.Name] = listedTool{def: p.Definition, rank: [2]int{servers[p.Server], p.Order}}
	}
	// The catalog keeps resources and templates in upstream order, each
	// upstream's in its own.
	for i, r := range cat.Resources {
		out.resources[r.URI] = listedTool{def: r.Definition, rank: [2]int{servers[r.Server], i}}
	}
	for i, t := range cat.Templates {
		out.templates[t.URITemplate] = listedTool{def: t.Definition, rank: [2]int{servers[t.Server], i}}
	}
	return out
}

// showTools orders res's tools as agents are shown them (the mediator's
// own first, then each upstream's in its order) and, when the request's
// transport rewrites responses, hands it the upstreams' definitions.
func (s *Server) showTools(ctx context.Context, res *mcp.ListToolsResult) {
	if shown := s.shown.Load(); shown != nil {
		if m := showListed(s, ctx, "tools", shown.tools, res.Tools, func(t mcp.Tool) string { return t.Name }); m != nil {
			res.Meta = m
		}
	}
}

// showListed orders items as agents are shown them (what listed does not
// hold first, then by rank) and, when the request's transport rewrites
// responses, issues a token for the upstreams' definitions of the result's
// member key; it returns the result's _meta (nil: none).
func showListed[T any](s *Server, ctx context.Context, key string, listed map[string]listedTool, items []T, name func(T) string) *mcp.Meta {
	rank := func(x T) [2]int {
		if l, ok := listed[name(x)]; ok {
			return l.rank
		}
		return [2]int{-1, -1}
	}
	slices.SortStableFunc(items, func(a, b T) int {
		ra, rb := rank(a), rank(b)
		if ra[0] != rb[0] {
			return ra[0] - rb[0]
		}
		return ra[1] - rb[1]
	})
	sc := scopeOf(ctx)
	if sc == nil {
		return nil
	}
	defs := make([]json.RawMessage, len(items))
	n := 0
	for i, x := range items {
		if l, ok := listed[name(x)]; ok {
			defs[i] = l.def
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return s.passed.listingMeta(sc, passEntry{listKey: key, defs: defs})
}

// listingMeta issues e in sc (issueListing) and returns the result _meta
// that names it, or nil when none can be issued (mcp-go's encoding goes
// out then).
func (p *passthrough) listingMeta(sc *passScope, e passEntry) *mcp.Meta {
	if token := p.issueListing(sc, e); token != "" {
		return mcp.NewMetaFromMap(map[string]any{listingMetaKey: token})
	}
	return nil
}

// takeIssued finds in b a listing token issued in sc and returns (and
// forgets) what it names. b may hold the prefix elsewhere (an upstream's
// text): each occurrence is tried; only an issued token names anything.
func (p *passthrough) takeIssued(b []byte, sc *passScope) (passEntry, bool) {
	prefix := []byte(listingTokenPrefix)
	for i := 0; ; {
		j := bytes.Index(b[i:], prefix)
		if j < 0 {
			return passEntry{}, false
		}
		start := i + j
		end := start + len(prefix) + passTokenHex
		if end <= len(b) && isHex(b[start+len(prefix):end]) {
			if e, ok := p.takeEntry(string(b[start:end]), sc); ok {
				return e, true
			}
		}
		i = start + len(prefix)
	}
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// issueListing keeps e (the definitions for one list response's member
// e.listKey, or that member's whole value: complete.go) for a response in
// sc and returns the token that names it ("" when none can be issued:
// mcp-go's encodings go out then).
func (p *passthrough) issueListing(sc *passScope, e passEntry) string {
	var b [passTokenHex / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return ""
	}
	token := listingTokenPrefix + hex.EncodeToString(b[:])
	e.scope, e.at = sc, time.Now()
	if !p.put(token, e) {
		return ""
	}
	return token
}

// rewriteListing puts the definitions issued under the token in a list
// response's _meta in place of the list's members (or the member's whole
// value, or with no member named the whole result), and removes the token.
func (p *passthrough) rewriteListing(b []byte, sc *passScope) ([]byte, bool) {
	e, ok := p.takeIssued(b, sc)
	if !ok || (e.defs == nil && e.whole == nil) {
		return b, false
	}
	if e.listKey == "" {
		// the whole result, as the upstream sent it (rawresult.go): only
		// the envelope of mcp-go's encoding is read; encoding compacts the
		// result, so that it stays one line or one event
		var env struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
		}
		if json.Unmarshal(b, &env) != nil {
			return b, false
		}
		out, err := marshalAsSent(struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Result  json.RawMessage `json:"result"`
		}{env.JSONRPC, env.ID, e.whole})
		if err != nil {
			return b, false
		}
		return out, true
	}
	var resp struct {
		JSONRPC string                     `json:"jsonrpc"`
		ID      json.RawMessage            `json:"id"`
		Result  map[string]json.RawMessage `json:"result"`
	}
	var meta map[string]json.RawMessage
	if json.Unmarshal(b, &resp) != nil || resp.Result == nil || json.Unmarshal(resp.Result["_meta"], &meta) != nil {
		return b, false
	}
	t := e.whole
	if t == nil {
		var items []json.RawMessage
		if json.Unmarshal(resp.Result[e.listKey], &items) != nil || len(items) != len(e.defs) {
			return b, false
		}
		for i, def := range e.defs {
			if def != nil {
				items[i] = def
			}
		}
		var err error
		if t, err = marshalAsSent(items); err != nil {
			return b, false
		}
	}
	delete(meta, listingMetaKey)
	if len(meta) == 0 {
		delete(resp.Result, "_meta")
	} else if m, err := marshalAsSent(meta); err == nil {
		resp.Result["_meta"] = m
	}
	resp.Result[e.listKey] = t
	out, err := marshalAsSent(resp)
	if err != nil {
		return b, false
	}
	return out, true
}

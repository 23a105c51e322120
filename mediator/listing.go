package mediator

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// An agent's tools/list must show each upstream tool as the upstream listed
// it, in the upstream's order. mcp-go lists its registered tools sorted by
// name and encodes each through its own type, which adds what the upstream
// did not send (an empty "annotations" object) and drops what it does not
// know. So filterTools, after choosing what the agent may see, puts the
// catalog order back and hands the upstreams' own definitions to the
// agent's transport under a one-use token in the result's _meta; the
// transport's writer (passthrough.go) puts them in place of mcp-go's
// encodings and removes the token.

// listingTokenPrefix starts a listing token; listingMetaKey carries it.
const (
	listingTokenPrefix = "mcpm-listing-"
	listingMetaKey     = "io.mcp-mediator/listing"
)

// listedTool is how an agent is shown a catalog tool.
type listedTool struct {
	def  json.RawMessage // the upstream's definition, "execution" removed
	rank [2]int          // its upstream's place in the catalog, its place in that upstream's list
}

// listedTools indexes the catalog's tools as agents are shown them.
func listedTools(cat *Catalog) map[string]listedTool {
	servers := make(map[string]int, len(cat.Servers))
	for i, s := range cat.Servers {
		servers[s.Name] = i
	}
	out := make(map[string]listedTool, len(cat.Tools))
	for _, t := range cat.Tools {
		def, err := withoutMember(t.Definition, "execution")
		if err != nil {
			continue // mcp-go's encoding then
		}
		out[t.Name] = listedTool{def: def, rank: [2]int{servers[t.Server], t.Order}}
	}
	return out
}

// withoutMember returns the JSON object def without its member key (tasks
// are not proxied, so a tool's "execution" is not offered), keeping the
// other members' bytes and order; def unchanged when it has none.
func withoutMember(def json.RawMessage, key string) (json.RawMessage, error) {
	if !bytes.Contains(def, []byte(`"`+key+`"`)) {
		return def, nil
	}
	dec := json.NewDecoder(bytes.NewReader(def))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("definition is not a JSON object")
	}
	var out bytes.Buffer
	out.WriteByte('{')
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, err
		}
		name, _ := k.(string)
		if name == key {
			continue
		}
		if out.Len() > 1 {
			out.WriteByte(',')
		}
		kb, _ := json.Marshal(name)
		out.Write(kb)
		out.WriteByte(':')
		out.Write(val)
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// showTools orders res's tools as agents are shown them (the mediator's
// own first, then each upstream's in its order) and, when the request's
// transport rewrites responses, hands it the upstreams' definitions.
func (s *Server) showTools(ctx context.Context, res *mcp.ListToolsResult) {
	listed := s.listed.Load()
	if listed == nil {
		return
	}
	rank := func(t mcp.Tool) [2]int {
		if l, ok := (*listed)[t.Name]; ok {
			return l.rank
		}
		return [2]int{-1, -1}
	}
	slices.SortStableFunc(res.Tools, func(a, b mcp.Tool) int {
		ra, rb := rank(a), rank(b)
		if ra[0] != rb[0] {
			return ra[0] - rb[0]
		}
		return ra[1] - rb[1]
	})
	sc, _ := ctx.Value(passScopeKey{}).(*passScope)
	if sc == nil {
		return
	}
	defs := make([]json.RawMessage, len(res.Tools))
	n := 0
	for i, t := range res.Tools {
		if l, ok := (*listed)[t.Name]; ok {
			defs[i] = l.def
			n++
		}
	}
	if n == 0 {
		return
	}
	if token := s.passed.issueListing(sc, defs); token != "" {
		res.Meta = mcp.NewMetaFromMap(map[string]any{listingMetaKey: token})
	}
}

// issueListing keeps defs for the response of one tools/list in sc and
// returns the token that names them ("" when none can be issued: mcp-go's
// encodings go out then).
func (p *passthrough) issueListing(sc *passScope, defs []json.RawMessage) string {
	var b [passTokenHex / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return ""
	}
	token := listingTokenPrefix + hex.EncodeToString(b[:])
	if !p.put(token, passEntry{tools: defs, scope: sc, at: time.Now()}) {
		return ""
	}
	return token
}

// rewriteListing puts the definitions issued under the token in a tools/list
// response's _meta in place of its tools, and removes the token.
func (p *passthrough) rewriteListing(b []byte, sc *passScope) ([]byte, bool) {
	var resp struct {
		JSONRPC string                     `json:"jsonrpc"`
		ID      json.RawMessage            `json:"id"`
		Result  map[string]json.RawMessage `json:"result"`
	}
	if json.Unmarshal(b, &resp) != nil || resp.Result == nil {
		return b, false
	}
	var meta map[string]json.RawMessage
	var token string
	if json.Unmarshal(resp.Result["_meta"], &meta) != nil || json.Unmarshal(meta[listingMetaKey], &token) != nil {
		return b, false
	}
	e, ok := p.takeEntry(token, sc)
	if !ok || e.tools == nil {
		return b, false
	}
	var tools []json.RawMessage
	if json.Unmarshal(resp.Result["tools"], &tools) != nil || len(tools) != len(e.tools) {
		return b, false
	}
	for i, def := range e.tools {
		if def != nil {
			tools[i] = def
		}
	}
	delete(meta, listingMetaKey)
	if len(meta) == 0 {
		delete(resp.Result, "_meta")
	} else if m, err := json.Marshal(meta); err == nil {
		resp.Result["_meta"] = m
	}
	t, err := json.Marshal(tools)
	if err != nil {
		return b, false
	}
	resp.Result["tools"] = t
	out, err := json.Marshal(resp)
	if err != nil {
		return b, false
	}
	return out, true
}

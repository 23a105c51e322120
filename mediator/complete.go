package mediator

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
)

// mcp-go hands its completion provider (completer, handlers.go) neither
// the request nor a way to shape the result, and its resource handler
// returns contents only: the provider cannot learn the request's JSON-RPC
// id, which an agent's cancel names (cancelled.go), and what either
// returns is re-encoded, which drops an upstream's "hasMore": false and
// "total": 0 and reorders a resource's members. mcp-go gives the same
// context to the before hook, the handler and the after hook of one
// request, so inflight keeps, per request context, the request's Header
// (tagged with its id) on the way in and the upstream's own bytes on the
// way out; the after hook hands those to the transport's writer under a
// listing token (listing.go), as list results are.

// inflight are the completion/complete and resources/read requests in
// flight.
type inflight struct{ m sync.Map } // request context → *request

type request struct {
	header http.Header     // the request's, with its JSON-RPC id
	raw    json.RawMessage // the upstream's completion, set by the provider
	read   *rawResult      // a resources/read's upstream result
}

// keyable reports whether ctx can key the map (a context of a type that
// cannot gets no id for a cancel, and mcp-go's encoding).
func keyable(ctx context.Context) bool {
	t := reflect.TypeOf(ctx)
	return t != nil && t.Comparable()
}

// beginComplete is completion/complete's before hook: it remembers the
// request's Header.
func (f *inflight) beginComplete(ctx context.Context, _ any, req *mcp.CompleteRequest) {
	if keyable(ctx) {
		f.m.Store(ctx, &request{header: req.Header})
	}
}

// beginRead is resources/read's before hook: it makes room for the
// upstream's result.
func (f *inflight) beginRead(ctx context.Context, _ any, _ *mcp.ReadResourceRequest) {
	if keyable(ctx) {
		f.m.Store(ctx, &request{read: &rawResult{}})
	}
}

// get returns what a before hook remembered for the request of ctx, or nil.
func (f *inflight) get(ctx context.Context) *request {
	return f.lookup(ctx, f.m.Load)
}

// end forgets the request of ctx and returns what was kept for it.
func (f *inflight) end(ctx context.Context) *request {
	return f.lookup(ctx, f.m.LoadAndDelete)
}

func (f *inflight) lookup(ctx context.Context, load func(any) (any, bool)) *request {
	if !keyable(ctx) {
		return nil
	}
	if v, ok := load(ctx); ok {
		return v.(*request)
	}
	return nil
}

// exactCompletion returns res's completion as the upstream sent it, when
// it holds only the members mcp-go's type knows, each once (nothing the
// record lacks: see rawresult.go), and still says what res says (nothing on
// the way changed the values); nil otherwise, and mcp-go's encoding of res
// goes out.
func exactCompletion(res *CompleteResult) json.RawMessage {
	if len(res.RawCompletion) == 0 || len(res.RawCompletion) > maxRawResult || !utf8.Valid(res.RawCompletion) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(res.RawCompletion))
	v, err := decodeStrict(dec, 0)
	m, _ := v.(map[string]any)
	if err != nil || dec.More() || m == nil {
		return nil
	}
	for k := range m {
		if k != "values" && k != "total" && k != "hasMore" {
			return nil
		}
	}
	var sent mcp.Completion
	if json.Unmarshal(res.RawCompletion, &sent) != nil || sent.Total != res.Completion.Total ||
		sent.HasMore != res.Completion.HasMore || !slices.Equal(sent.Values, res.Completion.Values) || sent.Values == nil {
		return nil
	}
	var compact bytes.Buffer
	if json.Compact(&compact, res.RawCompletion) != nil {
		return nil
	}
	return compact.Bytes()
}

// showCompletion is the after hook: it hands the upstream's completion to
// the request's transport, which puts it in place of mcp-go's encoding.
func (s *Server) showCompletion(ctx context.Context, _ any, _ *mcp.CompleteRequest, res *mcp.CompleteResult) {
	cg := s.inflight.end(ctx)
	sc := scopeOf(ctx)
	if cg == nil || cg.raw == nil || sc == nil || res == nil {
		return
	}
	if m := s.passed.listingMeta(sc, passEntry{listKey: "completion", whole: cg.raw}); m != nil {
		res.Meta = m
	}
}

// showRead is resources/read's after hook: it hands the upstream's result
// to the request's transport (handleResource decided it may go as sent).
func (s *Server) showRead(ctx context.Context, _ any, _ *mcp.ReadResourceRequest, res *mcp.ReadResourceResult) {
	r := s.inflight.end(ctx)
	sc := scopeOf(ctx)
	if r == nil || r.read == nil || len(r.read.b) == 0 || sc == nil || res == nil {
		return
	}
	if m := s.passed.listingMeta(sc, passEntry{whole: r.read.b}); m != nil {
		res.Meta = m
	}
}

package mediator

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
)

// mcp-go hands its completion provider (completer, handlers.go) neither
// the request nor a way to shape the result: the provider cannot learn the
// request's JSON-RPC id, which an agent's cancel names (cancelled.go), and
// what it returns is re-encoded, which drops an upstream's "hasMore": false
// and "total": 0. mcp-go gives the same context to the before hook, the
// provider and the after hook of one request, so completions keeps, per
// request context, the request's Header (tagged with its id) on the way
// in and the upstream's own completion object on the way out; the after
// hook hands that to the transport's writer under a listing token
// (listing.go), as list results are.

// completions are the completion/complete requests in flight.
type completions struct{ m sync.Map } // request context → *completing

type completing struct {
	header http.Header     // the request's, with its JSON-RPC id
	raw    json.RawMessage // the upstream's completion, set by the provider
}

// keyable reports whether ctx can key the map (a context of a type that
// cannot gets no id for a cancel, and mcp-go's encoding).
func keyable(ctx context.Context) bool {
	t := reflect.TypeOf(ctx)
	return t != nil && t.Comparable()
}

// begin is the before hook: it remembers the request's Header.
func (cs *completions) begin(ctx context.Context, _ any, req *mcp.CompleteRequest) {
	if keyable(ctx) {
		cs.m.Store(ctx, &completing{header: req.Header})
	}
}

// get returns what begin remembered for the request of ctx, or nil.
func (cs *completions) get(ctx context.Context) *completing {
	return cs.lookup(ctx, cs.m.Load)
}

// end forgets the request of ctx and returns what was kept for it.
func (cs *completions) end(ctx context.Context) *completing {
	return cs.lookup(ctx, cs.m.LoadAndDelete)
}

func (cs *completions) lookup(ctx context.Context, load func(any) (any, bool)) *completing {
	if !keyable(ctx) {
		return nil
	}
	if v, ok := load(ctx); ok {
		return v.(*completing)
	}
	return nil
}

// exactCompletion returns res's completion as the upstream sent it, when
// it still says what res says (nothing on the way changed the values); nil
// otherwise, and mcp-go's encoding of res goes out.
func exactCompletion(res *CompleteResult) json.RawMessage {
	if len(res.RawCompletion) == 0 {
		return nil
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
	cg := s.completions.end(ctx)
	sc, _ := ctx.Value(passScopeKey{}).(*passScope)
	if cg == nil || cg.raw == nil || sc == nil || res == nil {
		return
	}
	if token := s.passed.issueListing(sc, passEntry{listKey: "completion", whole: cg.raw}); token != "" {
		res.Meta = mcp.NewMetaFromMap(map[string]any{listingMetaKey: token})
	}
}

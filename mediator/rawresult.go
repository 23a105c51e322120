package mediator

import (
	"context"
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"
)

// An agent must get an upstream's result as the upstream wrote it: mcp-go
// decodes it into its types and encodes it again, which reorders members
// ("annotations" before "type") and drops what its types do not know. So
// the Upstreams implementation keeps the result's bytes in the call's
// context (KeepRawResult), and when nothing on the way changed the result,
// the handler hands them to the agent's transport under a listing token
// (listing.go), whose writer puts them in place of mcp-go's encoding.

type rawResultKey struct{}

// rawResult holds the bytes of the one upstream result of a call.
type rawResult struct{ b json.RawMessage }

// withRawResult returns ctx with room for the upstream's result bytes.
func withRawResult(ctx context.Context) (context.Context, *rawResult) {
	h := &rawResult{}
	return context.WithValue(ctx, rawResultKey{}, h), h
}

// KeepRawResult keeps b, the result of the request forwarded for ctx's
// call as the upstream wrote it, for the agent (nothing when ctx has no
// room for it). Upstreams implementations call it.
func KeepRawResult(ctx context.Context, b json.RawMessage) {
	if h, ok := ctx.Value(rawResultKey{}).(*rawResult); ok {
		h.b = b
	}
}

// showRawResult hands the upstream's result bytes for c to the request's
// transport, unless nothing was kept, the transport does not rewrite, or
// the mediator changed the result (a redaction); meta is the result's
// _meta, set to the token.
func (s *Server) showRawResult(ctx context.Context, c *Call, h *rawResult, meta **mcp.Meta) {
	sc, _ := ctx.Value(passScopeKey{}).(*passScope)
	if h == nil || len(h.b) == 0 || sc == nil || !rawUnchanged(c) {
		return
	}
	if token := s.passed.issueListing(sc, passEntry{whole: h.b}); token != "" {
		*meta = mcp.NewMetaFromMap(map[string]any{listingMetaKey: token})
	}
}

// rawUnchanged reports whether c's result is still the upstream's: no
// secret was found in it (a redaction changes it; under "flag" it goes
// out as is, but mcp-go's encoding of it is as good).
func rawUnchanged(c *Call) bool {
	return c.Scan == nil || len(c.Scan.ResultSecrets) == 0
}

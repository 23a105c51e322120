package mediator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// An agent must get an upstream's result as the upstream wrote it: mcp-go
// decodes it into its types and encodes it again, which reorders members
// ("annotations" before "type") and drops what its types do not know. So
// the Upstreams implementation keeps the result's bytes in the call's
// context (KeepRawResult), and when they say exactly what the result the
// mediator inspected, recorded and would send says (sameResult), the
// handler hands them to the agent's transport under a listing token
// (listing.go), whose writer puts them in place of mcp-go's encoding.
// "Exactly" is strict on purpose: a member mcp-go's types drop, or a key
// given twice, is text the secret and injection scanners never read and
// the audit record does not hold, so such a result goes out as mcp-go
// encodes it. So do results for agents of 2026-07-28 and later, whose
// answers mcp-go decorates (resultType, serverInfo).

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
	sc := scopeOf(ctx)
	if h == nil || sc == nil || !rawAllowed(ctx, c, h.b) {
		return
	}
	if m := s.passed.listingMeta(sc, passEntry{whole: h.b}); m != nil {
		*meta = m
	}
}

// rawAllowed reports whether raw, the upstream's result for c, may go to
// the agent in place of mcp-go's encoding of c.Result: no secret was found
// (a redaction changes the result; under "flag" it goes out as is, but
// mcp-go's encoding of it is as good), the agent speaks a revision whose
// results mcp-go does not decorate, and raw says exactly what c.Result
// says.
func rawAllowed(ctx context.Context, c *Call, raw json.RawMessage) bool {
	if len(raw) == 0 || len(raw) > maxRawResult || c.Scan != nil && len(c.Scan.ResultSecrets) > 0 ||
		mcp.IsModernProtocol(server.RequestProtocolVersion(ctx)) {
		return false
	}
	encoded := c.recorded
	if encoded == nil {
		encoded = c.ResultJSON()
	}
	if bytes.Equal(raw, encoded) {
		return false // mcp-go's encoding is the upstream's bytes already
	}
	return sameResult(raw, encoded)
}

// maxRawResult bounds a result passed on as sent (the comparison decodes
// it twice); a larger one goes out as mcp-go encodes it.
const maxRawResult = 1 << 20

// sameResult reports whether raw, valid UTF-8, is a JSON object with no key
// given twice at any depth that decodes to the same values as encoded: it
// may differ in member order, spacing and escapes only.
func sameResult(raw, encoded json.RawMessage) bool {
	if !utf8.Valid(raw) || len(encoded) == 0 {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	got, err := decodeStrict(dec, 0)
	if err != nil || dec.More() {
		return false
	}
	if _, ok := got.(map[string]any); !ok {
		return false
	}
	var want any
	if json.Unmarshal(encoded, &want) != nil {
		return false
	}
	return reflect.DeepEqual(got, want)
}

// errDuplicateKey: an object gives a key twice.
var errDuplicateKey = errors.New("a JSON object gives a key twice")

// decodeStrict decodes one JSON value as json.Unmarshal into an any would,
// refusing an object that gives a key twice, and nesting deeper than 10000
// (as encoding/json does).
func decodeStrict(dec *json.Decoder, depth int) (any, error) {
	if depth > 10000 {
		return nil, errors.New("JSON nested too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // a string, a float64, a bool or nil
	}
	switch d {
	case '{':
		m := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string)
			if _, dup := m[k]; dup {
				return nil, errDuplicateKey
			}
			if m[k], err = decodeStrict(dec, depth+1); err != nil {
				return nil, err
			}
		}
		_, err = dec.Token()
		return m, err
	case '[':
		a := []any{}
		for dec.More() {
			v, err := decodeStrict(dec, depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err = dec.Token()
		return a, err
	}
	return nil, errors.New("unexpected JSON delimiter")
}

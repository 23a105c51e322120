package store

import (
	"encoding/json"

	"github.com/mcp-mediator/mediator/mediator"
)

// CanonicalJSON returns the canonical form of the JSON value v (see
// mediator.CanonicalJSON), or v unchanged if v is empty or not a single
// valid JSON value.
func CanonicalJSON(v json.RawMessage) json.RawMessage {
	out, err := mediator.CanonicalJSON(v)
	if err != nil {
		return v
	}
	return out
}

// appendJSONString writes s as canonical JSON does.
func appendJSONString(buf []byte, s string) []byte { return mediator.AppendJSONString(buf, s) }

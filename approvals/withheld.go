package approvals

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/mcp-mediator/mediator/mediator"
)

// redactedMarker is what the store puts in place of a detected secret.
const redactedMarker = "[REDACTED]"

// WithheldValue is an argument the approval page does not show in full.
type WithheldValue struct {
	// Path locates it, e.g. "token" or "files[2].password".
	Path string
	// Text is what the page shows instead: the withheld marker (length
	// and hash), or free text with a detected secret redacted.
	Text string
	// FreeText is true when the value is text shown with a part
	// redacted, false when the whole value is withheld.
	FreeText bool
}

// Withheld lists the values of stored approval arguments that the page
// withholds in whole or in part, in path order.
func Withheld(args json.RawMessage) []WithheldValue {
	var v any
	if len(args) == 0 || json.Unmarshal(args, &v) != nil {
		return nil
	}
	var out []WithheldValue
	walkWithheld(v, "", &out, 0)
	slices.SortFunc(out, func(a, b WithheldValue) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// maxWithheldDepth bounds the walk, as decoding bounds the nesting.
const maxWithheldDepth = 64

func walkWithheld(v any, path string, out *[]WithheldValue, depth int) {
	if depth > maxWithheldDepth || len(*out) >= 100 {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			walkWithheld(e, p, out, depth+1)
		}
	case []any:
		for i, e := range x {
			walkWithheld(e, path+"["+strconv.Itoa(i)+"]", out, depth+1)
		}
	case string:
		switch {
		case strings.HasPrefix(x, mediator.WithheldPrefix):
			*out = append(*out, WithheldValue{Path: path, Text: x})
		case strings.Contains(x, redactedMarker):
			*out = append(*out, WithheldValue{Path: path, Text: x, FreeText: x != redactedMarker})
		}
	}
}

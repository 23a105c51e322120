package mediator

import (
	"fmt"
	"strings"
)

// methodRule is how the mediator treats one MCP method.
type methodRule int

const (
	// methodLocal: a protocol method the mediator answers itself.
	methodLocal methodRule = iota + 1
	// methodMediated: acts on an upstream object; goes through policy.
	methodMediated
	// methodGated: acts on an upstream object, goes through policy, and is
	// answered by mcp-go once the gate has run the chain (subscriptions).
	methodGated
)

// methodTable is the explicit list of MCP methods the mediator serves.
// Anything not listed is denied (deny by default).
var methodTable = map[string]methodRule{
	"initialize":               methodLocal,
	"ping":                     methodLocal,
	"server/discover":          methodLocal,
	"tools/list":               methodLocal,
	"resources/list":           methodLocal,
	"resources/templates/list": methodLocal,
	"prompts/list":             methodLocal,
	"logging/setLevel":         methodLocal,
	"subscriptions/listen":     methodLocal,
	"tools/call":               methodMediated,
	"resources/read":           methodMediated,
	"prompts/get":              methodMediated,
	"completion/complete":      methodMediated,
	"resources/subscribe":      methodGated,
	"resources/unsubscribe":    methodGated,
	// Tasks: the mediator is the receiver of every task (tasks.go).
	"tasks/get":    methodLocal,
	"tasks/list":   methodLocal,
	"tasks/result": methodLocal,
	"tasks/cancel": methodLocal,
}

// IsMediated reports whether method acts on an upstream object and is
// decided by policy (tools/call, resources/read, resources/subscribe, ...).
func IsMediated(method string) bool {
	r := methodTable[method]
	return r == methodMediated || r == methodGated
}

// isGated reports whether the gate itself runs the chain for method.
func isGated(method string) bool { return methodTable[method] == methodGated }

// IsKnownMethod reports whether the method is in the mediator's table.
func IsKnownMethod(method string) bool { return methodTable[method] != 0 }

// decideMethod applies the method table to a protocol method.
func decideMethod(method string) (Decision, error) {
	switch methodTable[method] {
	case methodLocal:
		return Decision{Effect: EffectAllow, Rule: "method-table", Reason: "protocol method served by the mediator"}, nil
	default:
		d := Decision{Effect: EffectDeny, Rule: "method-table", Reason: "unknown method"}
		return d, fmt.Errorf("%w: unknown method %q", ErrMethodNotAllowed, trimForError(method, 64))
	}
}

// trimForError bounds untrusted text quoted in an error.
func trimForError(s string, n int) string {
	s, cut := CutUTF8(strings.ToValidUTF8(s, "?"), n)
	if cut {
		s += "…"
	}
	return s
}

package approvals

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/mcp-mediator/mediator/mediator"
)

// CallKey returns the identity of a call for "the identical call": the
// hex SHA-256 of the canonical JSON of the agent id, the task id, the
// catalog tool name and the arguments (before redaction, so calls that
// differ only in a secret differ). The MCP session is not part of it: it
// does not survive a restart of the mediator or of the client, and an
// approval must (DESIGN.md: the task is the durable unit).
func CallKey(c *mediator.Call) (string, error) {
	agent, task := "", ""
	if c.Agent != nil {
		agent, task = c.Agent.ID, c.Agent.TaskID
	}
	tool := c.Name
	if c.Target != nil {
		tool = c.Target.Name
	}
	args := c.Arguments
	if args == nil {
		args = map[string]any{}
	}
	b, err := mediator.CanonicalValue(map[string]any{"agent": agent, "task": task, "tool": tool, "arguments": args})
	if err != nil {
		return "", fmt.Errorf("approval key: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// canonicalArgs returns the call's arguments as canonical JSON.
func canonicalArgs(c *mediator.Call) ([]byte, error) {
	if c.Arguments == nil {
		return []byte("{}"), nil
	}
	return mediator.CanonicalValue(c.Arguments)
}

package approvals

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/mcp-mediator/mediator/mediator"
)

// CallKey returns the identity of a call for "the identical call": the
// hex SHA-256 of the canonical JSON of the agent id, the task id, the
// catalog tool name, the hash of the tool's definition (so that an
// approval given before an upstream changed the tool does not run after
// the change) and the arguments (before redaction, so calls that differ
// only in a secret differ). The MCP session is not part of it: it
// does not survive a restart of the mediator or of the client, and an
// approval must (DESIGN.md: the task is the durable unit).
func CallKey(c *mediator.Call) (string, error) {
	agent, task := "", ""
	if c.Agent != nil {
		agent, task = c.Agent.ID, c.Agent.TaskID
	}
	tool, hash := c.Name, ""
	if c.Target != nil {
		tool, hash = c.Target.Name, c.Target.Hash
	}
	args := c.Arguments
	if args == nil {
		args = map[string]any{}
	}
	id := map[string]any{"agent": agent, "task": task, "tool": tool, "arguments": args}
	if hash != "" {
		id["tool_hash"] = hash
	}
	b, err := mediator.CanonicalValue(id)
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

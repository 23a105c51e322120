// Package tools is the upstream registry of MCP Mediator: it starts and
// supervises the upstream MCP servers (stdio children, streamable HTTP and
// SSE endpoints), merges what they offer into one namespaced catalog, and
// forwards the agents' calls to them. *Registry implements
// mediator.Upstreams.
//
// # Configuration
//
// Each upstream is a Config, the element type of the "upstreams" list in
// mediator.yaml. Config.Validate and ValidateAll check a configuration and
// name the offending key and its fix; Config.Expand substitutes ${VAR}
// references in the two places that may hold secrets, env values and header
// values, and nowhere else.
//
// # Isolation of the upstreams
//
// A stdio child gets exactly the environment its Config.Env names, plus PATH
// and HOME from the base environment the caller passes with WithBaseEnv: the
// mediator's own environment (its tokens, its keys) never reaches a child.
// Every child runs in its own process group; it is stopped by closing its
// stdin, then SIGTERM, then SIGKILL, and always reaped. A child that dies is
// restarted with exponential backoff, and the calls in flight on it fail at
// once with an error wrapping mediator.ErrUpstreamUnavailable. Remote
// upstreams receive only their configured headers: an agent's credentials
// are never forwarded.
//
// # Catalog
//
// Tools, resources, resource templates and prompts are listed at the JSON-RPC
// level so that each definition is kept exactly as the upstream sent it
// (mcp-go's typed mcp.Tool would drop schema keywords such as oneOf and
// $defs). Only the "name" member is rewritten, to the namespaced catalog
// name "<prefix><name>" (by default the prefix is "<upstream>__"). Each
// definition is hashed (SHA-256 of its canonical JSON) so that a changed
// description or schema is visible. A name that two upstreams both claim is
// served by the first upstream only; the later one's object is refused and
// the collision is logged and returned by Start and Add.
//
// # Forwarding
//
// Calls are forwarded with the upstream's original name. The agent's
// progress token is replaced by a registry-unique token, and the upstream's
// progress notifications are routed back to the calling mediator.Peer with
// the agent's token restored. Each call's notifications have a queue of
// their own, so an agent that stops reading delays only itself. A logging
// notification names no request: it goes to the agent session that alone
// has calls in flight on the connection, and to nobody when several do.
// Sampling and elicitation requests are relayed to the peer of the call
// that caused them.
//
// An upstream with isolation "session" gives each agent session an
// upstream session of its own (a stdio child, or an HTTP session), dialled
// on its first call, bounded by SessionLimits and closed when the agent
// session ends (Registry.EndSession) or idles; its catalog still comes
// from the shared connection. A cancelled call is
// cancelled upstream with notifications/cancelled, and every call is bounded
// by its upstream's timeout.
//
// The registry speaks the 2025-11-25 revision of MCP (the last one with the
// initialize handshake) to its upstreams, because the mediator needs the
// session features of that revision: unsolicited list_changed
// notifications, notifications/cancelled, and server-initiated sampling and
// elicitation requests.
package tools

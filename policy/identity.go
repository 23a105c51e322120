package policy

import (
	"context"
	"fmt"

	"github.com/mcp-mediator/mediator/mediator"
)

// StaticIdentity authenticates every request as one configured agent. It is
// the identity of a stdio mediator (launched by one user's MCP client), and
// of an HTTP mediator only while token authentication is not configured —
// the CLI refuses to serve it on a non-loopback address.
type StaticIdentity struct {
	Agent mediator.Agent
}

var _ mediator.Authenticator = StaticIdentity{}

// Authenticate returns the configured agent. A bearer token is refused
// rather than ignored: a client that sends one expects it to be checked.
func (s StaticIdentity) Authenticate(_ context.Context, cred mediator.Credentials) (*mediator.Agent, error) {
	if cred.Bearer != "" {
		return nil, fmt.Errorf("%w: this mediator does not verify bearer tokens yet; remove the Authorization header", mediator.ErrUnauthenticated)
	}
	if s.Agent.ID == "" {
		return nil, fmt.Errorf("%w: no agent identity configured (set agent.id in the config)", mediator.ErrUnauthenticated)
	}
	a := s.Agent
	return &a, nil
}

package policy

import (
	"context"
	"fmt"

	"github.com/mcp-mediator/mediator/mediator"
)

// StaticIdentity authenticates every request as one configured agent: the
// identity of a stdio mediator, launched by one user's MCP client, which
// speaks for that user alone. HTTP agents authenticate with tokens
// (package policy/token).
type StaticIdentity struct {
	Agent mediator.Agent
}

var _ mediator.Authenticator = StaticIdentity{}

// Authenticate returns the configured agent. A bearer token is refused
// rather than ignored: a client that sends one expects it to be checked.
func (s StaticIdentity) Authenticate(_ context.Context, cred mediator.Credentials) (*mediator.Agent, error) {
	if cred.Bearer != "" {
		return nil, fmt.Errorf("%w: a stdio mediator takes its identity from the config's agent: block, not from a bearer token", mediator.ErrUnauthenticated)
	}
	if s.Agent.ID == "" {
		return nil, fmt.Errorf("%w: no agent identity configured (set agent.id in the config)", mediator.ErrUnauthenticated)
	}
	a := s.Agent
	return &a, nil
}

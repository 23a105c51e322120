package mediator

import "context"

type peerKey struct{}

// WithPeer returns a context carrying the agent-side Peer for a call, so an
// Upstreams implementation can route the upstream's notifications and
// requests back to the agent that caused them.
func WithPeer(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// PeerFromContext returns the Peer set by WithPeer, or nil.
func PeerFromContext(ctx context.Context) Peer {
	p, _ := ctx.Value(peerKey{}).(Peer)
	return p
}

type callKey struct{}

// WithCall returns a context carrying the Call being mediated.
func WithCall(ctx context.Context, c *Call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// CallFromContext returns the Call set by WithCall, or nil.
func CallFromContext(ctx context.Context) *Call {
	c, _ := ctx.Value(callKey{}).(*Call)
	return c
}

type credKey struct{}

// WithCredentials returns a context carrying what the transport saw.
func WithCredentials(ctx context.Context, c Credentials) context.Context {
	return context.WithValue(ctx, credKey{}, c)
}

// CredentialsFromContext returns the credentials set by WithCredentials.
func CredentialsFromContext(ctx context.Context) Credentials {
	c, _ := ctx.Value(credKey{}).(Credentials)
	return c
}

package tools

import (
	"context"
	"slices"

	"github.com/mark3labs/mcp-go/mcp"
)

// Subscribe forwards resources/subscribe for uri to server. A subscription
// does not survive the upstream's restart; the agent is told of the restart
// through the catalog's list_changed.
func (r *Registry) Subscribe(ctx context.Context, server, uri string) error {
	return r.subscription(ctx, server, string(mcp.MethodResourcesSubscribe), uri)
}

// Unsubscribe forwards resources/unsubscribe for uri to server.
func (r *Registry) Unsubscribe(ctx context.Context, server, uri string) error {
	return r.subscription(ctx, server, string(mcp.MethodResourcesUnsubscribe), uri)
}

func (r *Registry) subscription(ctx context.Context, server, method, uri string) error {
	_, err := r.forward(ctx, server, method, nil, func(map[string]any) any {
		return struct {
			URI string `json:"uri"`
		}{uri}
	})
	return err
}

// OnResourceUpdated registers fn to be called when an upstream sends
// notifications/resources/updated: session is the agent session whose own
// upstream session sent it (isolation "session"), "" for the shared one.
func (r *Registry) OnResourceUpdated(fn func(server, uri, session string)) {
	if fn == nil {
		return
	}
	r.subsMu.Lock()
	r.updated = append(r.updated, fn)
	r.subsMu.Unlock()
}

func (r *Registry) resourceUpdated(server, uri, session string) {
	r.subsMu.Lock()
	fns := slices.Clone(r.updated)
	r.subsMu.Unlock()
	for _, fn := range fns {
		fn(server, uri, session)
	}
}

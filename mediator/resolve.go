package mediator

import (
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
)

// Resolve maps the call's method and name to the upstream object it acts on,
// using the catalog snapshot c.
func Resolve(cat *Catalog, c *Call) (Target, error) {
	switch c.Method {
	case "tools/call":
		t, ok := cat.Tool(c.Name)
		if q, held := cat.Quarantine(c.Name); !ok && held {
			return Target{}, fmt.Errorf("%w: %s", ErrToolQuarantined, q.Reason)
		}
		if !ok {
			return Target{}, fmt.Errorf("%w %q: call tools/list to see the tools you may use", ErrUnknownTool, trimForError(c.Name, 128))
		}
		return ToolTarget(t), nil
	case "prompts/get":
		pr, ok := cat.Prompt(c.Name)
		if w, held := cat.WithheldPrompt(c.Name); !ok && held {
			return Target{}, fmt.Errorf("%w: %s", ErrWithheld, w.Reason)
		}
		if !ok {
			return Target{}, fmt.Errorf("%w %q: call prompts/list to see the prompts you may use", ErrUnknownPrompt, trimForError(c.Name, 128))
		}
		return Target{Kind: KindPrompt, Server: pr.Server, Name: pr.Name, Original: pr.Original, Hash: pr.Hash}, nil
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		server, class, ok := cat.ResourceServer(c.Name)
		if !ok {
			return Target{}, fmt.Errorf("%w %q: no upstream lists it or has a template that can produce it; call resources/list and resources/templates/list to see what you may read", ErrUnknownResource, trimForError(c.Name, 128))
		}
		return Target{Kind: KindResource, Server: server, Name: c.Name, Original: c.Name, DataClass: class}, nil
	case "completion/complete":
		return resolveCompletion(cat, c)
	}
	return Target{Kind: KindProtocol, Name: c.Method}, nil
}

// ToolTarget is the policy object for a catalog tool.
func ToolTarget(t Tool) Target {
	return Target{
		Kind: KindTool, Server: t.Server, Name: t.Name, Original: t.Original,
		Risk: t.Risk, DataClass: t.DataClass, Hints: t.Hints, Hash: t.Hash,
	}
}

// resolveCompletion resolves completion/complete by its ref: a prompt is
// authorised as the prompt it completes, a resource template as a resource.
func resolveCompletion(cat *Catalog, c *Call) (Target, error) {
	req, ok := c.Request.(*mcp.CompleteRequest)
	if !ok {
		return Target{}, fmt.Errorf("%w: completion without a request", ErrInvalidRequest)
	}
	switch ref := req.Params.Ref.(type) {
	case mcp.PromptReference:
		pr, ok := cat.Prompt(ref.Name)
		if !ok {
			return Target{}, fmt.Errorf("%w %q: call prompts/list", ErrUnknownPrompt, trimForError(ref.Name, 128))
		}
		req.Params.Ref = mcp.PromptReference{Type: ref.Type, Name: pr.Original}
		return Target{Kind: KindPrompt, Server: pr.Server, Name: pr.Name, Original: pr.Original, Hash: pr.Hash}, nil
	case mcp.ResourceReference:
		for _, t := range cat.Templates {
			if t.URITemplate == ref.URI {
				return Target{Kind: KindResource, Server: t.Server, Name: ref.URI, Original: ref.URI, DataClass: t.DataClass}, nil
			}
		}
		server, class, ok := cat.ResourceServer(ref.URI)
		if !ok {
			return Target{}, fmt.Errorf("%w %q: call resources/templates/list", ErrUnknownResource, trimForError(ref.URI, 128))
		}
		return Target{Kind: KindResource, Server: server, Name: ref.URI, Original: ref.URI, DataClass: class}, nil
	}
	return Target{}, fmt.Errorf("%w: completion ref must be ref/prompt or ref/resource", ErrInvalidRequest)
}

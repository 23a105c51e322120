package tools

import (
	"errors"
	"fmt"
	"slices"

	"github.com/mcp-mediator/mediator/mediator"
)

// ErrNameCollision is wrapped by the errors Start and Add return when two
// upstreams offer an object under the same catalog name (or resource URI).
// The first upstream (in configuration order) keeps the name; the later
// one's object is refused. The registry keeps running.
var ErrNameCollision = errors.New("catalog name collision")

// snapshot is one upstream's state and offer at the time of a merge.
type snapshot struct {
	state   mediator.ServerState
	listing *listing
}

// collision is an object refused because an earlier upstream serves the
// same name.
type collision struct {
	kind   string // "tool", "prompt", "resource", "resource template"
	name   string
	first  string // the upstream that keeps it
	second string // the upstream refused
}

func (c collision) key() string { return c.kind + "\x00" + c.name + "\x00" + c.second }

func (c collision) err() error {
	fix := "give one of them a prefix"
	if c.kind == "resource" || c.kind == "resource template" {
		fix = "resource URIs are not namespaced; the first upstream keeps it"
	}
	return fmt.Errorf("%w: %s %q of upstream %q is refused because upstream %q already serves that name: %s",
		ErrNameCollision, c.kind, c.name, c.second, c.first, fix)
}

// claims assigns names to the first upstream that claims them.
type claims struct {
	kind  string
	owner map[string]string
	found *[]collision
}

func newClaims(kind string, found *[]collision) *claims {
	return &claims{kind: kind, owner: map[string]string{}, found: found}
}

// take reports whether server may have name.
func (c *claims) take(name, server string) bool {
	if first, taken := c.owner[name]; taken {
		*c.found = append(*c.found, collision{kind: c.kind, name: name, first: first, second: server})
		return false
	}
	c.owner[name] = server
	return true
}

// merge builds a catalog from the upstreams' snapshots, in order: an
// earlier upstream wins a contested name.
func merge(snaps []snapshot) (*mediator.Catalog, []collision) {
	var (
		found       []collision
		tools       []mediator.Tool
		prompts     []mediator.Prompt
		resources   []mediator.Resource
		templates   []mediator.ResourceTemplate
		quarantined []mediator.QuarantinedTool
		withheld    []mediator.WithheldPrompt
		servers     = make([]mediator.ServerState, 0, len(snaps))
	)
	toolNames, promptNames := newClaims("tool", &found), newClaims("prompt", &found)
	uris, tmpls := newClaims("resource", &found), newClaims("resource template", &found)
	for _, s := range snaps {
		servers = append(servers, s.state)
		if s.listing == nil {
			continue
		}
		server := s.state.Name
		for _, t := range s.listing.tools {
			if toolNames.take(t.Name, server) {
				tools = append(tools, t)
			}
		}
		for _, q := range s.listing.quarantined {
			if toolNames.take(q.Tool.Name, server) {
				quarantined = append(quarantined, q)
			}
		}
		for _, p := range s.listing.prompts {
			if promptNames.take(p.Name, server) {
				prompts = append(prompts, p)
			}
		}
		for _, w := range s.listing.withheldPrompts {
			if promptNames.take(w.Name, server) {
				withheld = append(withheld, w)
			}
		}
		for _, r := range s.listing.resources {
			if uris.take(r.URI, server) {
				resources = append(resources, r)
			}
		}
		for _, t := range s.listing.templates {
			if tmpls.take(t.URITemplate, server) {
				templates = append(templates, t)
			}
		}
	}
	cat := mediator.NewCatalog(tools, resources, templates, prompts, servers)
	cat.SetQuarantined(quarantined)
	cat.SetWithheldPrompts(withheld)
	return cat, found
}

// collisionsError joins the collisions as errors, or returns nil.
func collisionsError(cs []collision) error {
	errs := make([]error, 0, len(cs))
	for _, c := range cs {
		errs = append(errs, c.err())
	}
	return errors.Join(errs...)
}

// newCollisions returns the collisions in cur that are not in prev.
func newCollisions(prev, cur []collision) []collision {
	return slices.DeleteFunc(slices.Clone(cur), func(c collision) bool {
		return slices.ContainsFunc(prev, func(p collision) bool { return p.key() == c.key() })
	})
}

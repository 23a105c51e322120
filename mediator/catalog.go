package mediator

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// Catalog is an immutable snapshot of every upstream's tools, resources,
// resource templates and prompts, merged under catalog names.
type Catalog struct {
	Tools     []Tool
	Resources []Resource
	Templates []ResourceTemplate
	Prompts   []Prompt
	// Servers lists the upstream names, with their state.
	Servers []ServerState

	// Quarantined are the tools withheld from agents until reviewed.
	Quarantined []QuarantinedTool
	// WithheldPrompts are the prompts the supply guard withholds.
	WithheldPrompts []WithheldPrompt

	tools           map[string]int
	quarantined     map[string]int
	withheldPrompts map[string]int
	prompts         map[string]int
	resources       map[string]int
	templates       []compiledTemplate
}

// ServerState describes one upstream in a catalog snapshot.
type ServerState struct {
	Name      string `json:"name"`
	Transport string `json:"transport"`
	Connected bool   `json:"connected"`
	Required  bool   `json:"required"`
	Error     string `json:"error,omitempty"`
	// Protocol and Server are what the upstream said at initialize.
	Protocol string `json:"protocol,omitempty"`
	Server   string `json:"server,omitempty"`
	// Completions is true when the upstream supports completion/complete.
	Completions bool `json:"completions,omitempty"`
}

type compiledTemplate struct {
	re *regexp.Regexp
	// rfc is RFC 6570's own matcher (the characters each expression may
	// expand to): a URI must match both, as when mcp-go routed each
	// template, so an agent cannot hand an upstream a URI with characters
	// its template cannot produce (a quote, a parenthesis).
	rfc *regexp.Regexp
	idx int
}

// NewCatalog indexes the given objects. Entries are sorted by name so that
// listings are stable. Later duplicates of a name are dropped (the
// implementation of Upstreams is responsible for refusing collisions).
func NewCatalog(tools []Tool, resources []Resource, templates []ResourceTemplate, prompts []Prompt, servers []ServerState) *Catalog {
	c := &Catalog{
		tools:     make(map[string]int, len(tools)),
		prompts:   make(map[string]int, len(prompts)),
		resources: make(map[string]int, len(resources)),
		Servers:   servers,
	}
	sort.SliceStable(tools, func(i, j int) bool { return tools[i].Name < tools[j].Name })
	for _, t := range tools {
		if _, dup := c.tools[t.Name]; !dup {
			c.tools[t.Name] = len(c.Tools)
			c.Tools = append(c.Tools, t)
		}
	}
	sort.SliceStable(prompts, func(i, j int) bool { return prompts[i].Name < prompts[j].Name })
	for _, p := range prompts {
		if _, dup := c.prompts[p.Name]; !dup {
			c.prompts[p.Name] = len(c.Prompts)
			c.Prompts = append(c.Prompts, p)
		}
	}
	for _, r := range resources {
		if _, dup := c.resources[r.URI]; !dup {
			c.resources[r.URI] = len(c.Resources)
			c.Resources = append(c.Resources, r)
		}
	}
	c.Templates = templates
	for i, t := range templates {
		re, err := templateRegexp(t.URITemplate)
		var rfc mcp.URITemplate
		if err == nil {
			err = json.Unmarshal(quoteJSON(t.URITemplate), &rfc)
		}
		if err == nil {
			c.templates = append(c.templates, compiledTemplate{re: re, rfc: rfc.Regexp(), idx: i})
		}
	}
	return c
}

// Tool returns the tool with the given catalog name.
func (c *Catalog) Tool(name string) (Tool, bool) {
	if c == nil {
		return Tool{}, false
	}
	i, ok := c.tools[name]
	if !ok {
		return Tool{}, false
	}
	return c.Tools[i], true
}

// SetQuarantined sets the catalog's withheld tools; call it once, before
// the catalog is published.
func (c *Catalog) SetQuarantined(qs []QuarantinedTool) {
	c.Quarantined = qs
	c.quarantined = make(map[string]int, len(qs))
	for i, q := range qs {
		c.quarantined[q.Tool.Name] = i
	}
}

// SetWithheldPrompts sets the catalog's withheld prompts; call it once,
// before the catalog is published.
func (c *Catalog) SetWithheldPrompts(ws []WithheldPrompt) {
	c.WithheldPrompts = ws
	c.withheldPrompts = make(map[string]int, len(ws))
	for i, w := range ws {
		c.withheldPrompts[w.Name] = i
	}
}

// WithheldPrompt returns the withheld prompt with the given catalog name.
func (c *Catalog) WithheldPrompt(name string) (WithheldPrompt, bool) {
	if c == nil {
		return WithheldPrompt{}, false
	}
	i, ok := c.withheldPrompts[name]
	if !ok {
		return WithheldPrompt{}, false
	}
	return c.WithheldPrompts[i], true
}

// Quarantine returns the withheld tool with the given catalog name.
func (c *Catalog) Quarantine(name string) (QuarantinedTool, bool) {
	if c == nil {
		return QuarantinedTool{}, false
	}
	i, ok := c.quarantined[name]
	if !ok {
		return QuarantinedTool{}, false
	}
	return c.Quarantined[i], true
}

// Prompt returns the prompt with the given catalog name.
func (c *Catalog) Prompt(name string) (Prompt, bool) {
	if c == nil {
		return Prompt{}, false
	}
	i, ok := c.prompts[name]
	if !ok {
		return Prompt{}, false
	}
	return c.Prompts[i], true
}

// ResourceServer returns the upstream serving uri: a listed resource first,
// then the first template that matches, and the resource's data class.
func (c *Catalog) ResourceServer(uri string) (server string, class DataClass, ok bool) {
	if c == nil {
		return "", "", false
	}
	if i, found := c.resources[uri]; found {
		return c.Resources[i].Server, c.Resources[i].DataClass, true
	}
	for _, t := range c.templates {
		if t.re.MatchString(uri) && t.rfc.MatchString(uri) {
			tt := c.Templates[t.idx]
			return tt.Server, tt.DataClass, true
		}
	}
	return "", "", false
}

// Server returns the state of the named upstream.
func (c *Catalog) Server(name string) (ServerState, bool) {
	if c == nil {
		return ServerState{}, false
	}
	for _, s := range c.Servers {
		if s.Name == name {
			return s, true
		}
	}
	return ServerState{}, false
}

// templateRegexp compiles an RFC 6570 URI template into a matcher: literal
// text must match exactly, each {expression} matches one or more characters
// ({+x} and {#x} may span '/', the others may not).
func templateRegexp(tmpl string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for {
		open := strings.IndexByte(tmpl, '{')
		if open < 0 {
			b.WriteString(regexp.QuoteMeta(tmpl))
			break
		}
		end := strings.IndexByte(tmpl[open:], '}')
		if end < 0 {
			b.WriteString(regexp.QuoteMeta(tmpl))
			break
		}
		b.WriteString(regexp.QuoteMeta(tmpl[:open]))
		expr := tmpl[open+1 : open+end]
		switch {
		case strings.HasPrefix(expr, "+"), strings.HasPrefix(expr, "#"):
			b.WriteString(".+")
		case strings.HasPrefix(expr, "?"), strings.HasPrefix(expr, "&"):
			b.WriteString(`(?:[?&].*)?`)
		default:
			b.WriteString("[^/?#]+")
		}
		tmpl = tmpl[open+end+1:]
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// quoteJSON is s as a JSON string.
func quoteJSON(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

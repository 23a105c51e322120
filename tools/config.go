package tools

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/mcp-mediator/mediator/mediator"
)

// The transports an upstream can use.
const (
	TransportStdio = "stdio"
	TransportHTTP  = "http"
	TransportSSE   = "sse"
)

// DefaultTimeout is the per-call timeout of an upstream whose Config leaves
// Timeout unset.
const DefaultTimeout = 60 * time.Second

// ErrInvalidConfig is wrapped by every error Validate, ValidateAll and
// Expand return.
var ErrInvalidConfig = errors.New("invalid upstream configuration")

// Config describes one upstream MCP server. It is the element type of the
// "upstreams" list in mediator.yaml; the yaml tags cover every key, so a
// decoder with KnownFields(true) refuses misspelt keys.
type Config struct {
	// Name identifies the upstream ([a-z0-9_-]+, unique). Its tools appear
	// as "<name>__<tool>" unless Prefix says otherwise.
	Name string `yaml:"name" json:"name"`

	// Command starts a stdio upstream: the program to run. Exactly one of
	// Command and URL is set.
	Command string `yaml:"command,omitempty" json:"command,omitempty"`
	// Args are the command's arguments.
	Args []string `yaml:"args,omitempty" json:"args,omitempty"`
	// Env is the child's entire environment, apart from PATH and HOME, which
	// come from the registry's base environment unless Env sets them.
	// Values may reference ${VAR} (see Expand).
	Env map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	// Dir is the child's working directory ("" means the mediator's).
	Dir string `yaml:"dir,omitempty" json:"dir,omitempty"`
	// User runs a stdio child as another account: a user name or uid,
	// optionally ":group" (name or gid; default the user's primary group).
	// It needs the mediator to run as root, and keeps the child from
	// reading the mediator's key and database (readable by their owner
	// only). HOME defaults to that user's home directory.
	User string `yaml:"user,omitempty" json:"user,omitempty"`

	// Prefix namespaces the upstream's tools and prompts. Absent (nil)
	// means Name+"__"; an explicit "" means no namespace, in which case a
	// name that another upstream already serves is refused.
	Prefix *string `yaml:"prefix,omitempty" json:"prefix,omitempty"`

	// URL is the endpoint of a remote upstream: streamable HTTP, or the SSE
	// endpoint when Transport is "sse".
	URL string `yaml:"url,omitempty" json:"url,omitempty"`
	// Transport is "stdio", "http" or "sse". When empty it is inferred:
	// stdio for Command, http for URL.
	Transport string `yaml:"transport,omitempty" json:"transport,omitempty"`
	// Headers are sent with every request to a remote upstream. They are
	// the only credentials it sees: agents' credentials are never
	// forwarded. Values may reference ${VAR} (see Expand).
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`

	// Timeout bounds each forwarded call (default DefaultTimeout).
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Required makes readiness depend on this upstream being connected
	// (nil means true).
	Required *bool `yaml:"required,omitempty" json:"required,omitempty"`

	// Tools overrides the risk and data class of tools, by their name at
	// the upstream.
	Tools map[string]ToolOverride `yaml:"tools,omitempty" json:"tools,omitempty"`
	// Resources sets the data class of all the upstream's resources.
	Resources ResourceOverride `yaml:"resources,omitempty" json:"resources,omitempty"`

	// Mode is how policy decisions about this upstream are enforced:
	// "enforce" (the default when empty) or "shadow" (calls are forwarded
	// and the would-be decision is only recorded).
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty"`

	// Pinning is how changes to the upstream's tool definitions are
	// treated: "strict" (the default when empty: a changed or new tool, and
	// one whose definition the scanner finds poisoned, is withheld until an
	// administrator reviews it), "warn" (served, but recorded and logged)
	// or "off" (neither pinned nor scanned).
	Pinning string `yaml:"pinning,omitempty" json:"pinning,omitempty"`
	// Secrets is what is done with a secret found in a tool result:
	// "redact" (the default when empty: replaced before the agent or the
	// store sees it), "block" (the result is withheld), "flag" (passed to
	// the agent, redacted in the store) or "off" (neither results nor
	// arguments are scanned: no r.obj.ArgSecrets, no session taint).
	Secrets string `yaml:"secrets,omitempty" json:"secrets,omitempty"`

	// Isolation is how agents share the upstream: "shared" (the default
	// when empty: one upstream session for all agents) or "session" (one
	// upstream session, a stdio child or an HTTP session, per agent
	// session, for servers that keep state such as memory or shells).
	Isolation string `yaml:"isolation,omitempty" json:"isolation,omitempty"`
	// Sessions bounds the upstream sessions of isolation "session".
	Sessions SessionLimits `yaml:"sessions,omitempty" json:"sessions,omitempty"`
}

// The isolation modes of Config.Isolation.
const (
	IsolationShared  = "shared"
	IsolationSession = "session"
)

// SessionLimits bounds an upstream's per-agent-session connections.
// Zero values take the defaults.
type SessionLimits struct {
	// Max is the most upstream sessions at once (default 16). A new agent
	// session beyond it is refused until one ends or goes idle.
	Max int `yaml:"max,omitempty" json:"max,omitempty"`
	// PerAgent is the most upstream sessions one agent id holds at once
	// (default 4).
	PerAgent int `yaml:"per_agent,omitempty" json:"per_agent,omitempty"`
	// Idle closes an upstream session with no call for this long (default
	// 10m); the agent's next call starts a fresh one.
	Idle time.Duration `yaml:"idle,omitempty" json:"idle,omitempty"`
}

// Defaults of SessionLimits.
const (
	DefaultMaxSessions      = 16
	DefaultSessionsPerAgent = 4
	DefaultSessionIdle      = 10 * time.Minute
)

// Effective returns the limits with defaults filled in.
func (l SessionLimits) Effective() SessionLimits {
	if l.Max == 0 {
		l.Max = DefaultMaxSessions
	}
	if l.PerAgent == 0 {
		l.PerAgent = DefaultSessionsPerAgent
	}
	if l.Idle == 0 {
		l.Idle = DefaultSessionIdle
	}
	return l
}

// Isolated reports whether each agent session gets its own upstream
// session.
func (c *Config) Isolated() bool { return c.Isolation == IsolationSession }

// The pinning modes of Config.Pinning.
const (
	PinningStrict = "strict"
	PinningWarn   = "warn"
	PinningOff    = "off"
)

// EffectivePinning is the pinning mode, strict when unset.
func (c *Config) EffectivePinning() string {
	if c.Pinning == "" {
		return PinningStrict
	}
	return c.Pinning
}

// EffectiveSecrets is the secret action for results, redact when unset.
func (c *Config) EffectiveSecrets() string {
	if c.Secrets == "" {
		return "redact"
	}
	return c.Secrets
}

// ToolOverride sets what the registry would otherwise take from the tool's
// _meta or derive from its annotations.
type ToolOverride struct {
	// Risk is the tool's risk level (low, medium, high, critical).
	Risk mediator.Risk `yaml:"risk,omitempty" json:"risk,omitempty"`
	// DataClass is the class of data the tool touches (public, internal,
	// confidential, pii, financial).
	DataClass mediator.DataClass `yaml:"data_class,omitempty" json:"data_class,omitempty"`
	// Paths names the tool's arguments that hold file system paths, at any
	// depth of the arguments ("source", "destination"): an intent's prefix
	// and glob constraints test each of them. Names that look like paths
	// (path, paths, *_file, *Dir, source, destination, ...) are found
	// without it.
	Paths []string `yaml:"paths,omitempty" json:"paths,omitempty"`
	// URLs names the arguments that hold URLs or host names: an intent's
	// host constraints test each of them.
	URLs []string `yaml:"urls,omitempty" json:"urls,omitempty"`
	// Plain names arguments that hold neither, although their names
	// suggest it (a "source" language): constraints leave them alone.
	Plain []string `yaml:"plain,omitempty" json:"plain,omitempty"`
}

// ArgKinds returns the argument classification of o, nil when it has none.
func (o ToolOverride) ArgKinds() map[string]mediator.ArgKind {
	if len(o.Paths)+len(o.URLs)+len(o.Plain) == 0 {
		return nil
	}
	m := make(map[string]mediator.ArgKind, len(o.Paths)+len(o.URLs)+len(o.Plain))
	for _, l := range []struct {
		names []string
		kind  mediator.ArgKind
	}{{o.Paths, mediator.ArgPath}, {o.URLs, mediator.ArgURL}, {o.Plain, mediator.ArgPlain}} {
		for _, n := range l.names {
			m[n] = l.kind
		}
	}
	return m
}

// ResourceOverride sets the data class of an upstream's resources and
// resource templates.
type ResourceOverride struct {
	// DataClass is the class of data of every resource of the upstream.
	DataClass mediator.DataClass `yaml:"data_class,omitempty" json:"data_class,omitempty"`
}

// EffectiveTransport returns Transport, or the transport inferred from
// Command and URL when it is empty.
func (c *Config) EffectiveTransport() string {
	switch {
	case c.Transport != "":
		return c.Transport
	case c.Command != "":
		return TransportStdio
	case c.URL != "":
		return TransportHTTP
	}
	return ""
}

// EffectivePrefix returns the namespace prefix of the upstream's tools and
// prompts: Prefix when set (even to ""), else Name+"__".
func (c *Config) EffectivePrefix() string {
	if c.Prefix != nil {
		return *c.Prefix
	}
	return c.Name + "__"
}

// EffectiveTimeout returns Timeout, or DefaultTimeout when it is zero.
func (c *Config) EffectiveTimeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// IsRequired reports whether readiness waits for this upstream.
func (c *Config) IsRequired() bool {
	return c.Required == nil || *c.Required
}

// LogValue implements slog.LogValuer. It names the upstream and where it
// runs, and never logs env or header values, which may hold secrets.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("name", c.Name),
		slog.String("transport", c.EffectiveTransport()),
	}
	if c.Command != "" {
		attrs = append(attrs, slog.String("command", c.Command))
	}
	if c.URL != "" {
		attrs = append(attrs, slog.String("url", redactURL(c.URL)))
	}
	if len(c.Env) > 0 {
		attrs = append(attrs, slog.Any("env_keys", slices.Sorted(maps.Keys(c.Env))))
	}
	if len(c.Headers) > 0 {
		attrs = append(attrs, slog.Any("header_keys", slices.Sorted(maps.Keys(c.Headers))))
	}
	return slog.GroupValue(attrs...)
}

// redactURL drops a URL's user information, which may hold a password.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = url.User("REDACTED")
	return u.String()
}

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9_-]+$`)
	prefixRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]*$`)
	envKeyRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	headerRE  = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	varNameRE = envKeyRE
)

// maxNameLen bounds upstream names, which appear in every catalog name.
const maxNameLen = 64

// reservedHeaders are set by the MCP transports themselves; a configured
// value would break the protocol or impersonate the session.
var reservedHeaders = []string{
	"Accept", "Content-Type", "Content-Length", "Host", "Connection",
	"Transfer-Encoding", "Mcp-Session-Id", "Mcp-Protocol-Version", "Last-Event-Id",
}

// configError is one problem in an upstream's configuration.
type configError struct {
	where string // "upstreams[1] (remote)"
	msg   string // "url ... is not ...: use ..."
}

func (e *configError) Error() string { return e.where + ": " + e.msg }

// Unwrap makes errors.Is(err, ErrInvalidConfig) true.
func (e *configError) Unwrap() error { return ErrInvalidConfig }

// problems collects the configErrors of one upstream.
type problems struct {
	where string
	errs  []error
}

func (p *problems) addf(format string, args ...any) {
	p.errs = append(p.errs, &configError{where: p.where, msg: fmt.Sprintf(format, args...)})
}

func (p *problems) err() error { return errors.Join(p.errs...) }

// where names an upstream in error messages: "upstreams[1] (remote)" when
// its index is known, else "upstream (remote)".
func where(index int, name string) string {
	label := name
	if label == "" {
		label = "unnamed"
	}
	if index < 0 {
		return "upstream (" + label + ")"
	}
	return fmt.Sprintf("upstreams[%d] (%s)", index, label)
}

// Validate checks c on its own. Each problem names the key and how to fix
// it; all problems are reported at once, joined, each wrapping
// ErrInvalidConfig.
func (c *Config) Validate() error {
	return c.validate(where(-1, c.Name))
}

// ValidateAll validates every config and also refuses duplicate names and
// duplicate non-empty prefixes. Upstreams with prefix "" may coexist; a
// tool name they both serve is refused when the catalog is built.
func ValidateAll(cfgs []Config) error {
	var errs []error
	names := map[string]int{}
	prefixes := map[string]int{}
	for i := range cfgs {
		c := &cfgs[i]
		w := where(i, c.Name)
		if err := c.validate(w); err != nil {
			errs = append(errs, err)
		}
		if j, dup := names[c.Name]; dup && c.Name != "" {
			errs = append(errs, &configError{w, fmt.Sprintf(
				"name %q is already used by upstreams[%d]: give each upstream a unique name", c.Name, j)})
		} else {
			names[c.Name] = i
		}
		p := c.EffectivePrefix()
		if j, dup := prefixes[p]; dup && p != "" {
			errs = append(errs, &configError{w, fmt.Sprintf(
				"prefix %q is already used by upstreams[%d] (%s): set a different prefix so their names cannot collide",
				p, j, cfgs[j].Name)})
		} else if p != "" {
			prefixes[p] = i
		}
	}
	return errors.Join(errs...)
}

func (c *Config) validate(w string) error {
	p := &problems{where: w}
	c.validateName(p)
	c.validateEndpoint(p)
	c.validateEnv(p)
	c.validateHeaders(p)
	c.validateTuning(p)
	c.validateOverrides(p)
	if c.User != "" && c.Command == "" {
		p.addf("user %q is set for a remote upstream: user applies to stdio children (command) only", c.User)
	}
	if c.User != "" && (strings.TrimSpace(c.User) != c.User || strings.Count(c.User, ":") > 1 || strings.HasPrefix(c.User, ":") || strings.HasSuffix(c.User, ":")) {
		p.addf("user %q: use a user name or uid, optionally with :group (e.g. mcp-files or 1001:1001)", c.User)
	}
	switch c.Pinning {
	case "", PinningStrict, PinningWarn, PinningOff:
	default:
		p.addf("pinning %q is not known: use strict, warn or off (or leave it out for strict)", c.Pinning)
	}
	switch c.Secrets {
	case "", "redact", "block", "flag", "off":
	default:
		p.addf("secrets %q is not known: use redact, block, flag or off (or leave it out to redact)", c.Secrets)
	}
	switch c.Isolation {
	case "", IsolationShared, IsolationSession:
	default:
		p.addf("isolation %q is not known: use shared or session (or leave it out to share)", c.Isolation)
	}
	if l := c.Sessions; l != (SessionLimits{}) {
		if c.Isolation != IsolationSession {
			p.addf("sessions is set but isolation is not session: set isolation: session, or remove sessions")
		}
		if l.Max < 0 || l.Max > 10000 || l.PerAgent < 0 || l.PerAgent > 10000 {
			p.addf("sessions.max %d and sessions.per_agent %d must be between 1 and 10000 (or left out for %d and %d)",
				l.Max, l.PerAgent, DefaultMaxSessions, DefaultSessionsPerAgent)
		}
		if e := l.Effective(); e.PerAgent > e.Max {
			p.addf("sessions.per_agent %d is more than sessions.max %d: lower per_agent or raise max", e.PerAgent, e.Max)
		}
		if l.Idle < 0 || (l.Idle > 0 && l.Idle < time.Second) || l.Idle > 7*24*time.Hour {
			p.addf("sessions.idle %v must be between 1s and 168h (or left out for %v)", l.Idle, DefaultSessionIdle)
		}
	}
	if c.Mode != "" && c.Mode != "enforce" && c.Mode != "shadow" {
		p.addf("mode %q is not known: use enforce or shadow (or leave it out to enforce)", c.Mode)
	}
	return p.err()
}

func (c *Config) validateName(p *problems) {
	switch {
	case c.Name == "":
		p.addf("name is missing: set name to a short identifier such as \"files\"")
	case len(c.Name) > maxNameLen:
		p.addf("name %q is longer than %d characters: use a shorter name", c.Name, maxNameLen)
	case !nameRE.MatchString(c.Name):
		p.addf("name %q may only contain a-z, 0-9, '_' and '-': use e.g. %q", c.Name, suggestName(c.Name))
	}
	if c.Prefix != nil && !prefixRE.MatchString(*c.Prefix) {
		p.addf("prefix %q may only contain letters, digits, '_', '.' and '-': use e.g. \"%s__\"", *c.Prefix, c.Name)
	}
}

// suggestName turns s into a valid upstream name.
func suggestName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "upstream"
	}
	return b.String()
}

func (c *Config) validateEndpoint(p *problems) {
	switch {
	case c.Command == "" && c.URL == "":
		p.addf("neither command nor url is set: set command (a stdio server, e.g. ./bin/server) or url (e.g. http://127.0.0.1:3001/mcp)")
		return
	case c.Command != "" && c.URL != "":
		p.addf("both command and url are set: keep command for a local stdio server or url for a remote one, not both")
		return
	}
	switch c.Transport {
	case "", TransportStdio, TransportHTTP, TransportSSE:
	default:
		p.addf("transport %q is not known: use stdio, http or sse (or leave it out to infer it)", c.Transport)
		return
	}
	if c.Command != "" {
		c.validateCommand(p)
	} else {
		c.validateURL(p)
	}
}

func (c *Config) validateCommand(p *problems) {
	if t := c.EffectiveTransport(); t != TransportStdio {
		p.addf("transport %q needs url, but command is set: use transport: stdio or replace command with url", t)
	}
	if strings.ContainsRune(c.Command, 0) {
		p.addf("command contains a NUL byte: remove it")
	}
	for i, a := range c.Args {
		if strings.ContainsRune(a, 0) {
			p.addf("args[%d] contains a NUL byte: remove it", i)
		}
	}
}

func (c *Config) validateURL(p *problems) {
	if c.EffectiveTransport() == TransportStdio {
		p.addf("transport stdio needs command, but url is set: use transport: http or sse, or replace url with command")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		p.addf("url %q is not an absolute http(s) URL: use e.g. http://127.0.0.1:3001/mcp", c.URL)
		return
	}
	if len(c.Args) > 0 || len(c.Env) > 0 || c.Dir != "" {
		p.addf("args, env and dir only apply to a stdio command, but url is set: remove them (use headers for remote credentials)")
	}
}

func (c *Config) validateEnv(p *problems) {
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		if !envKeyRE.MatchString(k) {
			p.addf("env key %q is not a valid variable name: use letters, digits and '_', not starting with a digit", k)
		}
		if strings.ContainsRune(c.Env[k], 0) {
			p.addf("env.%s contains a NUL byte: remove it", k)
		}
	}
}

func (c *Config) validateHeaders(p *problems) {
	if len(c.Headers) > 0 && c.EffectiveTransport() == TransportStdio {
		p.addf("headers only apply to a remote (url) upstream: remove them, or pass credentials to a stdio child with env")
	}
	for _, k := range slices.Sorted(maps.Keys(c.Headers)) {
		if !headerRE.MatchString(k) {
			p.addf("headers key %q is not a valid HTTP header name: use e.g. Authorization or X-Api-Key", k)
			continue
		}
		for _, r := range reservedHeaders {
			if strings.EqualFold(k, r) {
				p.addf("headers.%s is set by the MCP transport itself: remove it", k)
			}
		}
		if strings.ContainsAny(c.Headers[k], "\r\n\x00") {
			p.addf("headers.%s contains a line break or NUL byte: remove it", k)
		}
	}
}

func (c *Config) validateTuning(p *problems) {
	if c.Timeout < 0 {
		p.addf("timeout %s is negative: use a positive duration such as 60s, or leave it out for the default %s",
			c.Timeout, DefaultTimeout)
	} else if c.Timeout > 0 && c.Timeout < time.Millisecond {
		p.addf("timeout %s is too short to be meant: use a duration with a unit, such as 60s", c.Timeout)
	}
}

func (c *Config) validateOverrides(p *problems) {
	for _, name := range slices.Sorted(maps.Keys(c.Tools)) {
		o := c.Tools[name]
		if o.Risk != "" && !mediator.ValidRisk(o.Risk) {
			p.addf("tools.%s.risk %q is not a risk level: use low, medium, high or critical", name, o.Risk)
		}
		if o.DataClass != "" && !mediator.ValidDataClass(o.DataClass) {
			p.addf("tools.%s.data_class %q is not a data class: use %s", name, o.DataClass, dataClassList)
		}
		seen := map[string]string{}
		for _, l := range []struct {
			key   string
			names []string
		}{{"paths", o.Paths}, {"urls", o.URLs}, {"plain", o.Plain}} {
			for _, n := range l.names {
				switch {
				case n == "" || len(n) > 128 || strings.ContainsFunc(n, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }):
					p.addf("tools.%s.%s: %q is not an argument name: use the name as the tool's input schema spells it", name, l.key, n)
				case seen[n] == l.key:
					p.addf("tools.%s.%s names %q twice", name, l.key, n)
				case seen[n] != "":
					p.addf("tools.%s: argument %q is in both %s and %s: give it one kind", name, n, seen[n], l.key)
				default:
					seen[n] = l.key
				}
			}
		}
	}
	if d := c.Resources.DataClass; d != "" && !mediator.ValidDataClass(d) {
		p.addf("resources.data_class %q is not a data class: use %s", d, dataClassList)
	}
}

const dataClassList = "public, internal, confidential, pii or financial"

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/tools"
)

// Config is mediator.yaml. Relative paths in it are relative to the file's
// own directory. Environment variables are expanded only in upstream env
// and header values, written ${VAR}.
type Config struct {
	// Listen is the agent-facing HTTP address of `mediator serve`.
	Listen string `yaml:"listen"`
	// Database is the SQLite file holding the audit chain.
	Database string `yaml:"database"`
	// Agent is the identity of stdio agents.
	Agent AgentConfig `yaml:"agent"`
	// Auth is how HTTP agents authenticate (bearer tokens; see config_auth.go).
	Auth AuthConfig `yaml:"auth"`
	// Policy names the Casbin model and policy files; empty means the
	// embedded example policy.
	Policy    PolicyConfig   `yaml:"policy"`
	Upstreams []tools.Config `yaml:"upstreams"`
	Limits    Limits         `yaml:"limits"`
	Audit     AuditConfig    `yaml:"audit"`
	Log       LogConfig      `yaml:"log"`
	// Debug is the pprof/expvar endpoint, off by default (see debug.go).
	Debug DebugConfig `yaml:"debug"`
	// Metrics is serve's Prometheus endpoint, off by default (config_metrics.go).
	Metrics MetricsConfig `yaml:"metrics"`
	// Tracing exports OpenTelemetry traces, off by default (config_tracing.go).
	Tracing TracingConfig `yaml:"tracing"`
	// Approvals configures the human approval queue and page (approvers.go).
	Approvals ApprovalsConfig `yaml:"approvals"`
	// Admin is the management API of `mediator serve` (config_admin.go).
	Admin AdminConfig `yaml:"admin"`
	// Intent configures intent checking, drift suspension and the optional
	// LLM judge (config_intent.go).
	Intent IntentConfig `yaml:"intent"`
	// Behaviour configures per-agent baselines and trust levels
	// (config_behaviour.go).
	Behaviour BehaviourConfig `yaml:"behaviour"`
	// Builtins are the agent tools (Claude Code's Bash, Edit, ...).
	Builtins BuiltinsConfig `yaml:"builtins"`
	// Local is serve's local socket, to which `mediator stdio` attaches.
	Local LocalConfig `yaml:"local"`

	dir  string // directory of the config file
	file string // the config file, absolute; "" for the embedded default
	// digest is the SHA-256 of the config file as read (of "" for the
	// embedded default): a stdio mediator attaches only to a serve that
	// loaded the same.
	digest string
	// notices are said at start (warn): what the config leaves to a
	// default the operator may not expect.
	notices []string
	// dbGiven: --db named the database on the command line, so commands
	// act on it rather than on a server's (viaAdmin).
	dbGiven bool
}

// AgentConfig is a configured agent identity.
type AgentConfig struct {
	ID    string            `yaml:"id"`
	Roles []string          `yaml:"roles"`
	Owner string            `yaml:"owner"`
	Attrs map[string]string `yaml:"attrs"`
}

// PolicyConfig locates the policy and says how it is enforced.
type PolicyConfig struct {
	Model string `yaml:"model"`
	File  string `yaml:"file"`
	// Cases, Mode, Watch and Environment: see config_policy.go.
	Cases       string            `yaml:"cases"`
	Mode        string            `yaml:"mode"`
	Watch       *bool             `yaml:"watch"`
	Environment PolicyEnvironment `yaml:"environment"`
}

// Limits bound what the mediator accepts.
type Limits struct {
	// MaxRequestBytes caps one agent request (default 16 MiB: room for a long prompt in _meta, which is then capped at limits.prompt_bytes).
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// PromptBytes caps the prompt text recorded from _meta (default 16 KiB).
	PromptBytes int `yaml:"prompt_bytes"`
	// ShutdownGrace bounds how long in-flight calls may finish on shutdown.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// MaxMessageBytes caps one JSON-RPC message from an upstream (default 16 MiB); a response over it fails only its call.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// MaxHeaderBytes caps an HTTP request's line and headers (default 64 KiB).
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// ReadTimeout bounds how long an HTTP request's body may take to arrive (default 30s).
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// SessionIdleTimeout closes an MCP session over HTTP that sees no request for this long (default 30m).
	SessionIdleTimeout time.Duration `yaml:"session_idle_timeout"`
	// SessionsPerAgent caps the MCP sessions over HTTP one agent holds open at a time (default 64).
	SessionsPerAgent int `yaml:"sessions_per_agent"`
}

// AuditConfig tunes what is recorded.
type AuditConfig struct {
	// Redact adds regular expressions whose matches are replaced by
	// [REDACTED] in recorded arguments, results and prompts.
	Redact []string `yaml:"redact"`
	// MaxArgumentBytes and MaxResultBytes cap recorded JSON (default 64 KiB).
	MaxArgumentBytes int `yaml:"max_argument_bytes"`
	MaxResultBytes   int `yaml:"max_result_bytes"`
	// Sync is "normal" (survives a process crash; default) or "full"
	// (also survives power loss, slower).
	Sync string `yaml:"sync"`
	// Checkpoints are signed chain heads written outside the database
	// (config_checkpoint.go).
	Checkpoints CheckpointConfig `yaml:"checkpoints"`
	// Ship sends committed records to a collector as well (ship.go).
	Ship ShipConfig `yaml:"ship"`
}

// LogConfig says where logs go. Never stdout: that is the stdio protocol.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug|info|warn|error (default info)
	File   string `yaml:"file"`   // default stderr
	Format string `yaml:"format"` // text|json (default text)
}

// SelfCommand as an upstream command means "this mediator executable", so
// the quickstart's demo upstream needs nothing installed.
const SelfCommand = "@mediator"

// Default is the embedded default: the demo upstream in ./sandbox, the
// example policy, mediator.db in the working directory, loopback only.
func Default() *Config {
	empty := ""
	return &Config{
		Listen:   "127.0.0.1:8080",
		Database: "mediator.db",
		Agent:    AgentConfig{ID: "local-agent", Roles: []string{"writer", "support"}, Owner: "local-user"},
		Upstreams: []tools.Config{{
			Name:    "demo",
			Command: SelfCommand,
			Args:    []string{"demo-upstream", "--root", "sandbox"},
			Tools: map[string]tools.ToolOverride{
				"transfer_funds":  {Risk: mediator.RiskHigh, DataClass: mediator.DataFinancial},
				"lookup_customer": {Risk: mediator.RiskMedium, DataClass: mediator.DataPII},
				"fetch_url":       {Risk: mediator.RiskMedium, DataClass: mediator.DataPublic},
				"write_file":      {Risk: mediator.RiskMedium, DataClass: mediator.DataInternal},
				"read_file":       {Risk: mediator.RiskLow, DataClass: mediator.DataInternal},
				"list_files":      {Risk: mediator.RiskLow, DataClass: mediator.DataInternal},
				"echo":            {Risk: mediator.RiskLow, DataClass: mediator.DataPublic},
			},
		}},
		Limits: Limits{MaxRequestBytes: 16 << 20, PromptBytes: 16 << 10, ShutdownGrace: 10 * time.Second,
			MaxMessageBytes: 16 << 20, MaxHeaderBytes: mediator.DefaultMaxHeaderBytes, ReadTimeout: 30 * time.Second,
			SessionIdleTimeout: mediator.DefaultSessionIdleTTL, SessionsPerAgent: mediator.DefaultSessionsPerAgent},
		Audit:     AuditConfig{MaxArgumentBytes: 64 << 10, MaxResultBytes: 64 << 10, Sync: "normal"},
		Log:       LogConfig{Level: "info", Format: "text"},
		Approvals: defaultApprovals(),
		Auth:      defaultAuth(),
		Admin:     defaultAdmin(),
		Intent:    defaultIntent(),
		dir:       empty,
		digest:    digestOf(nil),
	}
}

// LoadConfig reads and validates path; "" gives Default().
func LoadConfig(path string, lookup func(string) (string, bool)) (*Config, error) {
	if path == "" {
		c := Default()
		return c, c.Validate()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c.digest = digestOf(data)
	if c.file, err = filepath.Abs(path); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.dir = filepath.Dir(c.file)
	if err := c.expand(lookup); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if len(c.Upstreams) == 0 {
		c.notices = append(c.notices, fmt.Sprintf("config %s names no upstreams: no upstream tools are served "+
			"(the demo upstream is the embedded default's, used only without --config; add upstreams: or register one with mediator upstream add)", path))
	}
	if c.Policy.File == "" {
		c.notices = append(c.notices, fmt.Sprintf("config %s names no policy: the embedded example policy (examples/policy) is in force; "+
			"set policy.model and policy.file to your own", path))
	}
	return c, nil
}

// Parse decodes YAML over Default(), refusing unknown keys.
func Parse(r io.Reader) (*Config, error) {
	c := Default()
	c.Upstreams = nil
	c.Auth.Anonymous = nil // a config file has an anonymous identity only if it names one
	dec := yaml.NewDecoder(io.LimitReader(r, 1<<20))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return c, nil
		}
		return nil, fmt.Errorf("%w (check the key names against the configuration reference in README.md)", err)
	}
	return c, nil
}

func (c *Config) expand(lookup func(string) (string, bool)) error {
	for i := range c.Upstreams {
		if err := c.Upstreams[i].Expand(lookup); err != nil {
			return err
		}
	}
	return nil
}

var logLevels = map[string]bool{"debug": true, "info": true, "warn": true, "error": true}

// Validate checks every field and names the key and the fix.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %q is not host:port (e.g. 127.0.0.1:8080)", c.Listen))
	}
	if c.Database == "" {
		errs = append(errs, errors.New("database: empty; name the SQLite file, e.g. mediator.db"))
	}
	if c.Agent.ID == "" {
		errs = append(errs, errors.New("agent.id: empty; name the identity of local agents, e.g. local-agent"))
	}
	if (c.Policy.Model == "") != (c.Policy.File == "") {
		errs = append(errs, errors.New("policy: set both model and file, or neither for the embedded example policy"))
	}
	errs = append(errs, c.Policy.validate()...)
	if err := tools.ValidateAll(c.Upstreams); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validateLimits()...)
	errs = append(errs, c.Auth.validate()...)
	errs = append(errs, c.Debug.validate(c.Listen)...)
	errs = append(errs, c.Metrics.validate(c.Listen, c.Debug.Listen, c.Admin.Listen)...)
	errs = append(errs, c.Tracing.validate()...)
	errs = append(errs, c.Approvals.validate()...)
	errs = append(errs, c.Admin.validate()...)
	errs = append(errs, c.Intent.validate()...)
	errs = append(errs, c.Behaviour.validate()...)
	errs = append(errs, c.Builtins.validate()...)
	errs = append(errs, c.Local.validate()...)
	errs = append(errs, c.Audit.Checkpoints.validate()...)
	errs = append(errs, c.Audit.Ship.Syslog.validate()...)
	errs = append(errs, c.Audit.Ship.OTLP.validate()...)
	for i, p := range c.Audit.Redact {
		if _, err := regexp.Compile(p); err != nil {
			errs = append(errs, fmt.Errorf("audit.redact[%d]: %w", i, err))
		}
	}
	if c.Audit.Sync != "normal" && c.Audit.Sync != "full" {
		errs = append(errs, fmt.Errorf("audit.sync: %q; use normal or full", c.Audit.Sync))
	}
	if !logLevels[c.Log.Level] {
		errs = append(errs, fmt.Errorf("log.level: %q; use debug, info, warn or error", c.Log.Level))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format: %q; use text or json", c.Log.Format))
	}
	return errors.Join(errs...)
}

func (c *Config) validateLimits() []error {
	var errs []error
	if c.Limits.MaxRequestBytes < 1024 || c.Limits.MaxRequestBytes > 256<<20 {
		errs = append(errs, fmt.Errorf("limits.max_request_bytes: %d; use 1024..268435456", c.Limits.MaxRequestBytes))
	}
	if c.Limits.PromptBytes < 0 || c.Limits.PromptBytes > 1<<20 {
		errs = append(errs, fmt.Errorf("limits.prompt_bytes: %d; use 0..1048576", c.Limits.PromptBytes))
	}
	if c.Limits.ShutdownGrace < 0 {
		errs = append(errs, errors.New("limits.shutdown_grace: negative; use e.g. 10s"))
	}
	if c.Limits.MaxMessageBytes < 4096 || c.Limits.MaxMessageBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("limits.max_message_bytes: %d; use 4096..1073741824", c.Limits.MaxMessageBytes))
	}
	if c.Limits.MaxHeaderBytes < 1024 || c.Limits.MaxHeaderBytes > maxHTTPHeaderBytes/2 {
		errs = append(errs, fmt.Errorf("limits.max_header_bytes: %d; use 1024..%d", c.Limits.MaxHeaderBytes, maxHTTPHeaderBytes/2))
	}
	if c.Limits.ReadTimeout < time.Second || c.Limits.ReadTimeout > time.Hour {
		errs = append(errs, fmt.Errorf("limits.read_timeout: %s; use 1s..1h", c.Limits.ReadTimeout))
	}
	if c.Limits.SessionIdleTimeout < time.Second || c.Limits.SessionIdleTimeout > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("limits.session_idle_timeout: %s; use 1s..168h", c.Limits.SessionIdleTimeout))
	}
	if c.Limits.SessionsPerAgent < 1 || c.Limits.SessionsPerAgent > 100000 {
		errs = append(errs, fmt.Errorf("limits.sessions_per_agent: %d; use 1..100000", c.Limits.SessionsPerAgent))
	}
	if c.Audit.MaxArgumentBytes < 0 || c.Audit.MaxResultBytes < 0 {
		errs = append(errs, errors.New("audit.max_argument_bytes / max_result_bytes: negative"))
	}
	return errs
}

// source names where the config came from, for messages.
func (c *Config) source() string {
	if c.file == "" {
		return "the embedded default (no --config)"
	}
	return c.file
}

// absPath is path(p), made absolute against the working directory, for
// telling an operator where state lives.
func (c *Config) absPath(p string) string {
	p = c.path(p)
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// path resolves p relative to the config file's directory.
func (c *Config) path(p string) string {
	if p == "" || filepath.IsAbs(p) || c.dir == "" {
		return p
	}
	return filepath.Join(c.dir, p)
}

// resolveUpstreams makes upstream commands and working directories
// absolute: SelfCommand becomes self, a command with a slash is relative to
// the config file, a bare name is looked up in PATH by the OS.
func (c *Config) resolveUpstreams(self string) []tools.Config {
	out := make([]tools.Config, len(c.Upstreams))
	for i, u := range c.Upstreams {
		switch {
		case u.Command == SelfCommand:
			u.Command = self
		case strings.Contains(u.Command, "/"):
			u.Command = c.path(u.Command)
		}
		if u.Dir == "" && u.Command != "" {
			u.Dir = c.dir
		} else {
			u.Dir = c.path(u.Dir)
		}
		out[i] = u
	}
	return out
}

// timeNow is the clock of commands (a variable for tests).
var timeNow = time.Now

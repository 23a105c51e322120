package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/mcp-mediator/mediator/mediator"
)

// BuiltinsConfig is builtins:, the agent tools: the tools Claude Code runs
// itself (Bash, Edit, Write, WebFetch, ...), decided through its hook or
// permission prompt as object kind builtin, named claude__<Tool>.
type BuiltinsConfig struct {
	// Off turns agent tools off: the hook endpoint and the
	// permission_prompt tool refuse every use.
	Off bool `yaml:"off"`
	// Tools are overrides and additions, by Claude Code's tool name,
	// over the defaults (defaultBuiltins).
	Tools map[string]BuiltinTool `yaml:"tools"`
	// Workspace fixes the project directory policy sees (r.obj.Workspace)
	// instead of the one Claude Code reports (its cwd, its MCP root),
	// which the agent's own client chooses.
	Workspace string `yaml:"workspace"`
}

// BuiltinTool describes one agent tool to policy.
type BuiltinTool struct {
	Risk        mediator.Risk      `yaml:"risk"`
	DataClass   mediator.DataClass `yaml:"data_class"`
	ReadOnly    *bool              `yaml:"read_only"`
	Destructive *bool              `yaml:"destructive"`
	OpenWorld   *bool              `yaml:"open_world"`
	// Paths and URLs name the arguments holding file paths and URLs, for
	// intent constraints (the defaults know Claude Code's own).
	Paths []string `yaml:"paths"`
	URLs  []string `yaml:"urls"`
}

// builtinClient is the catalog prefix of Claude Code's tools.
const builtinClient = "claude"

func bp(b bool) *bool { return &b }

// defaultBuiltins are Claude Code's tools: what they read and change.
func defaultBuiltins() map[string]BuiltinTool {
	readOnly := func(class mediator.DataClass, paths ...string) BuiltinTool {
		return BuiltinTool{Risk: mediator.RiskLow, DataClass: class, ReadOnly: bp(true), Destructive: bp(false), OpenWorld: bp(false), Paths: paths}
	}
	edit := BuiltinTool{Risk: mediator.RiskHigh, DataClass: mediator.DataInternal, ReadOnly: bp(false), Destructive: bp(true),
		OpenWorld: bp(false), Paths: []string{"file_path", "notebook_path"}}
	return map[string]BuiltinTool{
		"Read":         readOnly(mediator.DataInternal, "file_path"),
		"Grep":         readOnly(mediator.DataInternal, "path"),
		"Glob":         readOnly(mediator.DataInternal, "path"),
		"LS":           readOnly(mediator.DataInternal, "path"),
		"NotebookRead": readOnly(mediator.DataInternal, "notebook_path"),
		"TodoWrite":    readOnly(mediator.DataPublic),
		"Task":         {Risk: mediator.RiskMedium, DataClass: mediator.DataInternal, ReadOnly: bp(false), Destructive: bp(false), OpenWorld: bp(false)},
		"Bash": {Risk: mediator.RiskHigh, DataClass: mediator.DataInternal, ReadOnly: bp(false), Destructive: bp(true),
			OpenWorld: bp(true)},
		"Write":        edit,
		"Edit":         edit,
		"MultiEdit":    edit,
		"NotebookEdit": edit,
		"WebFetch": {Risk: mediator.RiskMedium, DataClass: mediator.DataPublic, ReadOnly: bp(true), Destructive: bp(false),
			OpenWorld: bp(true), URLs: []string{"url"}},
		"WebSearch": {Risk: mediator.RiskLow, DataClass: mediator.DataPublic, ReadOnly: bp(true), Destructive: bp(false), OpenWorld: bp(true)},
	}
}

// builtinName is the form of a Claude Code tool name.
var builtinName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)

// validate reports a bad entry of builtins.tools.
func (b *BuiltinsConfig) validate() []error {
	var errs []error
	if b.Workspace != "" && (!filepath.IsAbs(b.Workspace) || filepath.Clean(b.Workspace) == "/") {
		errs = append(errs, fmt.Errorf("builtins.workspace %q: name the project directory as an absolute path (not /)", b.Workspace))
	}
	for name, t := range b.Tools {
		if !builtinName.MatchString(name) || strings.Contains(name, "__") {
			errs = append(errs, fmt.Errorf("builtins.tools: %q is not a tool name (letters, digits, _; Claude Code's own name, e.g. Bash)", name))
		}
		if t.Risk != "" && !mediator.ValidRisk(t.Risk) {
			errs = append(errs, fmt.Errorf("builtins.tools.%s.risk %q: use low, medium, high or critical", name, t.Risk))
		}
		if t.DataClass != "" && !mediator.ValidDataClass(t.DataClass) {
			errs = append(errs, fmt.Errorf("builtins.tools.%s.data_class %q: use public, internal, confidential, pii or financial", name, t.DataClass))
		}
	}
	return errs
}

// agentTools is the mediator.AgentTools of builtins:.
type agentTools struct {
	tools     map[string]mediator.Tool
	workspace string
}

// newAgentTools builds the agent tools of the config (nil when off).
func newAgentTools(b BuiltinsConfig) *agentTools {
	if b.Off {
		return nil
	}
	all := defaultBuiltins()
	for name, over := range b.Tools {
		t, ok := all[name]
		if !ok {
			t = BuiltinTool{}
		}
		if over.Risk != "" {
			t.Risk = over.Risk
		}
		if over.DataClass != "" {
			t.DataClass = over.DataClass
		}
		t.ReadOnly, t.Destructive, t.OpenWorld = pick(over.ReadOnly, t.ReadOnly), pick(over.Destructive, t.Destructive), pick(over.OpenWorld, t.OpenWorld)
		if over.Paths != nil {
			t.Paths = over.Paths
		}
		if over.URLs != nil {
			t.URLs = over.URLs
		}
		all[name] = t
	}
	out := &agentTools{tools: make(map[string]mediator.Tool, len(all)), workspace: b.Workspace}
	if out.workspace != "" {
		out.workspace = filepath.Clean(out.workspace)
	}
	for name, t := range all {
		out.tools[builtinClient+"__"+name] = builtinTool(name, t)
	}
	return out
}

func pick(a, b *bool) *bool {
	if a != nil {
		return a
	}
	return b
}

// builtinTool is the catalog entry of one agent tool: its definition
// (with an input schema naming the path and URL arguments) and hash.
func builtinTool(name string, t BuiltinTool) mediator.Tool {
	args := map[string]mediator.ArgKind{}
	props := map[string]any{}
	for _, p := range t.Paths {
		args[p], props[p] = mediator.ArgPath, map[string]any{"type": "string"}
	}
	for _, u := range t.URLs {
		args[u], props[u] = mediator.ArgURL, map[string]any{"type": "string"}
	}
	if name == "Bash" {
		args["command"], props["command"] = mediator.ArgPlain, map[string]any{"type": "string"}
	}
	def := map[string]any{"name": builtinClient + "__" + name, "description": "Claude Code's " + name + " tool (run by the client)",
		"inputSchema": map[string]any{"type": "object", "properties": props},
		"annotations": map[string]any{"readOnlyHint": t.ReadOnly, "destructiveHint": t.Destructive, "openWorldHint": t.OpenWorld}}
	raw, _ := json.Marshal(def)
	sum := sha256.Sum256(raw)
	return mediator.Tool{Name: builtinClient + "__" + name, Server: builtinClient, Original: name, Definition: raw,
		Risk: t.Risk, DataClass: t.DataClass, Hints: mediator.Hints{ReadOnly: t.ReadOnly, Destructive: t.Destructive, OpenWorld: t.OpenWorld},
		Hash: hex.EncodeToString(sum[:]), Args: args}
}

// AgentTool implements mediator.AgentTools.
func (a *agentTools) AgentTool(name string) (mediator.Tool, bool) {
	t, ok := a.tools[name]
	return t, ok
}

// Workspace implements mediator.AgentTools.
func (a *agentTools) Workspace(claimed string) string {
	if a.workspace != "" {
		return a.workspace
	}
	return claimed
}

// AgentToolName implements mediator.AgentTools: Claude Code's "Bash" is
// "claude__Bash".
func (a *agentTools) AgentToolName(_, name string) string { return builtinClient + "__" + name }

// names are the Claude Code names of the agent tools, sorted.
func (a *agentTools) names() []string {
	if a == nil {
		return nil
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(a.tools)) {
		out = append(out, a.tools[k].Original)
	}
	return out
}

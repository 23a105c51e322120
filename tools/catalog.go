package tools

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"unicode"
	"unicode/utf8"

	"github.com/mcp-mediator/mediator/mediator"
)

// The _meta keys an upstream may set on a tool to declare its risk and data
// class. Configuration overrides them.
const (
	MetaRisk      = "io.mcp-mediator/risk"
	MetaDataClass = "io.mcp-mediator/data_class"
)

// Bounds on what one upstream can put in the catalog.
const (
	maxListItems = 10_000 // tools, resources, templates or prompts each
	maxListPages = 1_000
	maxNameBytes = 256
)

// listing is what one upstream offers, already in catalog form.
type listing struct {
	// offered are the tools the upstream lists; tools are those its
	// supply guard lets through, quarantined the rest.
	offered     []mediator.Tool
	quarantined []mediator.QuarantinedTool
	tools       []mediator.Tool
	resources   []mediator.Resource
	templates   []mediator.ResourceTemplate
	prompts     []mediator.Prompt
	// offeredPrompts, offeredResources and offeredTemplates are what the
	// upstream lists, before the supply guard withholds any (vet).
	offeredPrompts   []mediator.Prompt
	offeredResources []mediator.Resource
	offeredTemplates []mediator.ResourceTemplate
	// withheldPrompts are the offered prompts the guard withholds.
	withheldPrompts []mediator.WithheldPrompt
}

// rewriteName returns def, a JSON object, with the value of every "name"
// member replaced by name. All other bytes (keys, order, white space and
// every other value) are kept exactly as they were. def must hold a "name"
// member.
func rewriteName(def []byte, name string) ([]byte, error) {
	if !json.Valid(def) {
		return nil, errors.New("definition is not valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(def))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("definition is not a JSON object")
	}
	type span struct{ start, end int64 }
	var spans []span
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("read member name: %w", err)
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, fmt.Errorf("read member value: %w", err)
		}
		if key == "name" {
			end := dec.InputOffset()
			spans = append(spans, span{end - int64(len(val)), end})
		}
	}
	if len(spans) == 0 {
		return nil, errors.New(`definition has no "name"`)
	}
	encoded, err := json.Marshal(name)
	if err != nil {
		return nil, fmt.Errorf("encode name: %w", err)
	}
	out := make([]byte, 0, len(def)+len(encoded))
	var last int64
	for _, s := range spans {
		out = append(out, def[last:s.start]...)
		out = append(out, encoded...)
		last = s.end
	}
	return append(out, def[last:]...), nil
}

// definitionHash is the hex SHA-256 of def's canonical JSON.
func definitionHash(def []byte) (string, error) {
	canon, err := mediator.CanonicalJSON(def)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

// objectFields decodes the top-level members of a JSON object.
func objectFields(def []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(def, &m); err != nil || m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// stringField returns the string member key of m.
func stringField(m map[string]json.RawMessage, key string) (string, error) {
	raw, ok := m[key]
	if !ok {
		return "", fmt.Errorf("no %q", key)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%q is not a string", key)
	}
	return s, nil
}

// checkName refuses names no agent could reasonably call: empty, over
// maxNameBytes, invalid UTF-8 or holding control characters.
func checkName(s string) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case len(s) > maxNameBytes:
		return fmt.Errorf("name longer than %d bytes", maxNameBytes)
	case !utf8.ValidString(s):
		return errors.New("name is not valid UTF-8")
	}
	for _, r := range s {
		switch {
		case unicode.IsControl(r):
			return errors.New("name holds a control character")
		case unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Variation_Selector, r) ||
			unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) || (unicode.IsSpace(r) && r != ' '):
			return fmt.Errorf("name holds the invisible character %U (a look-alike of another name)", r)
		}
	}
	return nil
}

// metaString returns the string value of key in a _meta object, or "".
func metaString(m map[string]json.RawMessage, key string) string {
	raw, ok := m["_meta"]
	if !ok {
		return ""
	}
	var meta map[string]json.RawMessage
	if json.Unmarshal(raw, &meta) != nil {
		return ""
	}
	var s string
	if json.Unmarshal(meta[key], &s) != nil {
		return ""
	}
	return s
}

// hintsOf reads a tool's annotations. Malformed annotations give no hints.
func hintsOf(m map[string]json.RawMessage) mediator.Hints {
	var a struct {
		ReadOnly    *bool `json:"readOnlyHint"`
		Destructive *bool `json:"destructiveHint"`
		Idempotent  *bool `json:"idempotentHint"`
		OpenWorld   *bool `json:"openWorldHint"`
	}
	if raw, ok := m["annotations"]; ok && json.Unmarshal(raw, &a) != nil {
		return mediator.Hints{}
	}
	return mediator.Hints{ReadOnly: a.ReadOnly, Destructive: a.Destructive, Idempotent: a.Idempotent, OpenWorld: a.OpenWorld}
}

// classify returns a tool's risk and data class: configuration first, then
// the tool's _meta, then (risk only) its hints.
func classify(o ToolOverride, m map[string]json.RawMessage, h mediator.Hints) (mediator.Risk, mediator.DataClass) {
	risk := o.Risk
	if risk == "" {
		if r := mediator.Risk(metaString(m, MetaRisk)); mediator.ValidRisk(r) {
			risk = r
		}
	}
	if risk == "" {
		switch {
		case h.ReadOnly != nil && *h.ReadOnly:
			risk = mediator.RiskLow
		case h.Destructive != nil && *h.Destructive:
			risk = mediator.RiskHigh
		default:
			risk = mediator.RiskMedium
		}
	}
	class := o.DataClass
	if class == "" {
		if d := mediator.DataClass(metaString(m, MetaDataClass)); mediator.ValidDataClass(d) {
			class = d
		}
	}
	return risk, class
}

// buildListing turns an upstream's raw list results into catalog objects,
// dropping (and logging) the ones that are malformed or duplicated.
func buildListing(cfg *Config, prefix string, raw rawListing, log *slog.Logger) *listing {
	l := &listing{}
	seen := map[string]bool{}
	for _, def := range raw.tools {
		t, err := buildTool(cfg, prefix, def)
		if err == nil && seen[t.Name] {
			err = fmt.Errorf("tool %q listed twice", t.Original)
		}
		if err != nil {
			log.Warn("upstream tool refused", "err", err)
			continue
		}
		seen[t.Name] = true
		t.Order = len(l.tools)
		l.tools = append(l.tools, t)
	}
	warnUnknownOverrides(cfg, l.tools, log)
	l.offered = l.tools
	seen = map[string]bool{}
	for _, def := range raw.prompts {
		p, err := buildPrompt(prefix, cfg.Name, def)
		if err == nil && seen[p.Name] {
			err = fmt.Errorf("prompt %q listed twice", p.Original)
		}
		if err != nil {
			log.Warn("upstream prompt refused", "err", err)
			continue
		}
		seen[p.Name] = true
		p.Order = len(l.prompts)
		l.prompts = append(l.prompts, p)
	}
	l.resources, l.templates = buildResources(cfg, raw, log)
	l.offeredPrompts, l.offeredResources, l.offeredTemplates = l.prompts, l.resources, l.templates
	return l
}

func buildTool(cfg *Config, prefix string, def json.RawMessage) (mediator.Tool, error) {
	m, err := objectFields(def)
	if err != nil {
		return mediator.Tool{}, fmt.Errorf("tool definition: %w", err)
	}
	original, err := stringField(m, "name")
	if err != nil {
		return mediator.Tool{}, fmt.Errorf("tool definition: %w", err)
	}
	if err := checkName(original); err != nil {
		// The name is quoted with escapes: it is the upstream's, untrusted.
		return mediator.Tool{}, fmt.Errorf("tool %s: %w", mediator.QuoteIdentity(original), err)
	}
	name := prefix + original
	rewritten, err := rewriteName(def, name)
	if err != nil {
		return mediator.Tool{}, fmt.Errorf("tool %q: %w", original, err)
	}
	hash, err := definitionHash(def)
	if err != nil {
		return mediator.Tool{}, fmt.Errorf("tool %q: %w", original, err)
	}
	hints := hintsOf(m)
	risk, class := classify(cfg.Tools[original], m, hints)
	return mediator.Tool{
		Name: name, Server: cfg.Name, Original: original, Definition: rewritten,
		Risk: risk, DataClass: class, Hints: hints, Hash: hash,
		Args: cfg.Tools[original].ArgKinds(), TaskSupport: taskSupportOf(m),
	}, nil
}

// taskSupportOf reads a tool's execution.taskSupport; a value MCP does not
// define, or an execution member that is not an object, is "forbidden".
func taskSupportOf(m map[string]json.RawMessage) mediator.TaskSupport {
	var e struct {
		TaskSupport string `json:"taskSupport"`
	}
	if raw, ok := m["execution"]; !ok || json.Unmarshal(raw, &e) != nil {
		return ""
	}
	switch ts := mediator.TaskSupport(e.TaskSupport); ts {
	case mediator.TaskOptional, mediator.TaskRequired:
		return ts
	}
	return ""
}

func buildPrompt(prefix, server string, def json.RawMessage) (mediator.Prompt, error) {
	m, err := objectFields(def)
	if err != nil {
		return mediator.Prompt{}, fmt.Errorf("prompt definition: %w", err)
	}
	original, err := stringField(m, "name")
	if err == nil {
		err = checkName(original)
	}
	if err != nil {
		return mediator.Prompt{}, fmt.Errorf("prompt definition: %w", err)
	}
	rewritten, err := rewriteName(def, prefix+original)
	if err != nil {
		return mediator.Prompt{}, fmt.Errorf("prompt %q: %w", original, err)
	}
	hash, err := definitionHash(def)
	if err != nil {
		return mediator.Prompt{}, fmt.Errorf("prompt %q: %w", original, err)
	}
	return mediator.Prompt{Name: prefix + original, Server: server, Original: original, Definition: rewritten, Hash: hash}, nil
}

// buildResources keeps resources and templates as received (URIs are not
// namespaced), with their data class from configuration or _meta.
func buildResources(cfg *Config, raw rawListing, log *slog.Logger) ([]mediator.Resource, []mediator.ResourceTemplate) {
	var resources []mediator.Resource
	seen := map[string]bool{}
	for _, def := range raw.resources {
		uri, m, err := keyedObject(def, "uri")
		if err == nil && seen[uri] {
			err = fmt.Errorf("resource %q listed twice", uri)
		}
		if err != nil {
			log.Warn("upstream resource refused", "err", err)
			continue
		}
		seen[uri] = true
		resources = append(resources, mediator.Resource{
			URI: uri, Server: cfg.Name, Definition: def, DataClass: resourceClass(cfg, m),
		})
	}
	var templates []mediator.ResourceTemplate
	seenTmpl := map[string]bool{}
	for _, def := range raw.templates {
		tmpl, m, err := keyedObject(def, "uriTemplate")
		if err == nil && seenTmpl[tmpl] {
			err = fmt.Errorf("resource template %q listed twice", tmpl)
		}
		if err != nil {
			log.Warn("upstream resource template refused", "err", err)
			continue
		}
		seenTmpl[tmpl] = true
		templates = append(templates, mediator.ResourceTemplate{
			URITemplate: tmpl, Server: cfg.Name, Definition: def, DataClass: resourceClass(cfg, m),
		})
	}
	return resources, templates
}

// keyedObject decodes def and returns its non-empty string member key.
func keyedObject(def json.RawMessage, key string) (string, map[string]json.RawMessage, error) {
	m, err := objectFields(def)
	if err != nil {
		return "", nil, err
	}
	v, err := stringField(m, key)
	if err == nil && v == "" {
		err = fmt.Errorf("empty %q", key)
	}
	return v, m, err
}

func resourceClass(cfg *Config, m map[string]json.RawMessage) mediator.DataClass {
	if cfg.Resources.DataClass != "" {
		return cfg.Resources.DataClass
	}
	if d := mediator.DataClass(metaString(m, MetaDataClass)); mediator.ValidDataClass(d) {
		return d
	}
	return mediator.DataUnknown
}

// warnUnknownOverrides logs configured tool overrides that match no tool:
// usually a misspelt tool name, which would leave the tool unclassified.
func warnUnknownOverrides(cfg *Config, tools []mediator.Tool, log *slog.Logger) {
	if len(cfg.Tools) == 0 {
		return
	}
	have := make(map[string]bool, len(tools))
	for _, t := range tools {
		have[t.Original] = true
	}
	for name := range cfg.Tools {
		if !have[name] {
			log.Warn("tools override names no tool of this upstream; check the spelling", "tool", name)
		}
	}
}

// logChangedDefinitions warns when a tool's definition changed between two
// listings of the same upstream: a changed description or schema is how a
// "rug pull" shows.
func logChangedDefinitions(old, cur *listing, log *slog.Logger) {
	if old == nil || cur == nil {
		return
	}
	before := make(map[string]string, len(old.tools))
	for _, t := range old.tools {
		before[t.Original] = t.Hash
	}
	for _, t := range cur.tools {
		if h, ok := before[t.Original]; ok && h != t.Hash {
			log.Warn("upstream changed a tool's definition", "tool", t.Original, "old_hash", h, "new_hash", t.Hash)
		}
	}
}

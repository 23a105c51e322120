package main

// Drafting policy for an upstream's tools (`mediator policy suggest`, and
// the lines `upstream add` prints): a pure function from catalog tools to
// policy lines and the `policy test` cases that check them. The hints it
// reads are the upstream's own claims, so a draft is a starting point for a
// person to review, never policy put in force by itself.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy"
	"github.com/mcp-mediator/mediator/tools"
)

// suggestAgent is the agent id of the drafted cases when the subject does
// not name one.
const suggestAgent = "suggest-check"

// draftOptions steer the drafting.
type draftOptions struct {
	// Subject is the subject column of every drafted rule: "*", role:R or
	// agent:ID.
	Subject string
	// AllowEgress holds the catalog names of the open-world tools to draft
	// by their other hints; every other open-world tool is denied.
	AllowEgress map[string]bool
	// Taken holds the rule names the policy already uses.
	Taken map[string]bool
}

// draftRule is one drafted policy line.
type draftRule struct {
	Tool     toolView
	Decision mediator.Effect
	// Name is the rule's name, unique in the policy it was drafted for.
	Name string
	// Why says in a sentence why the tool gets Decision.
	Why string
	// Line is the policy line, CSV as the policy file holds it.
	Line string
}

// policyDraft is what drafting gives for one upstream.
type policyDraft struct {
	Subject string
	Rules   []draftRule
	// Skipped names the tools no line can name safely, with why.
	Skipped []string
}

// draftPolicy drafts one rule per tool: open-world tools are denied unless
// AllowEgress lists them; read-only ones are allowed (unless their risk is
// high or worse, or their hints contradict each other: approve); destructive
// ones and the rest need a human's approval. A read-only tool's
// destructive and idempotent hints are ignored, as MCP says.
func draftPolicy(tools []toolView, o draftOptions) policyDraft {
	if o.Subject == "" {
		o.Subject = "*"
	}
	d := policyDraft{Subject: o.Subject}
	taken := map[string]bool{}
	for n := range o.Taken {
		taken[n] = true
	}
	for _, t := range tools {
		if hasControl(t.Name) {
			d.Skipped = append(d.Skipped, fmt.Sprintf("%q: its name holds control characters; write its rule by hand, if at all", t.Name))
			continue
		}
		effect, suffix, why := classifyTool(t, o.AllowEgress[t.Name])
		name := uniqueRuleName(ruleName(t.Name, suffix), taken)
		taken[name] = true
		line := policyLine(o.Subject, "tool", globLiteral(t.Name), string(effect), name)
		d.Rules = append(d.Rules, draftRule{Tool: t, Decision: effect, Name: name, Why: why, Line: line})
	}
	return d
}

// classifyTool decides what a tool gets from its hints, and says why.
func classifyTool(t toolView, egressListed bool) (effect mediator.Effect, suffix, why string) {
	h := t.Hints
	readOnly, destructive, openWorld := isSet(h.ReadOnly), isSet(h.Destructive), isSet(h.OpenWorld)
	egress := ""
	if openWorld {
		if !egressListed {
			return mediator.EffectDeny, "egress", "open-world: it reaches systems outside the mediator's view, so it is denied unless listed " +
				"(policy suggest --allow-egress " + t.Name + " drafts it by its other hints; then narrow it with a condition " +
				"such as hostOf(r.obj.Args.url) in ('api.example.com'))"
		}
		egress = "; open-world, listed with --allow-egress"
	}
	// MCP reads destructiveHint only when readOnlyHint is false (mcp-go
	// sends its default, true, beside a read-only hint).
	switch {
	case readOnly && riskAtLeastHigh(t.Risk):
		return mediator.EffectApprove, "review", fmt.Sprintf("read-only, but its risk is %s: a human approves each call", orUnknown(string(t.Risk))) + egress
	case readOnly:
		return mediator.EffectAllow, "read-only", "read-only: allowed" + egress
	case destructive:
		return mediator.EffectApprove, "destructive", "destructive: a human approves each call" + egress
	}
	return mediator.EffectApprove, "review", "the upstream does not mark it read-only, and MCP reads a tool without hints as possibly " +
		"destructive: a human approves each call until you know better (allow it once you do)" + egress
}

func isSet(b *bool) bool { return b != nil && *b }

// riskAtLeastHigh: high, critical, or unknown (which policy counts as
// critical).
func riskAtLeastHigh(r mediator.Risk) bool {
	return r != mediator.RiskLow && r != mediator.RiskMedium
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// hintWords lists the hints that are true, or says there are none.
func hintWords(h mediator.Hints) string {
	var out []string
	for _, x := range []struct {
		b    *bool
		name string
	}{{h.ReadOnly, "read-only"}, {h.Destructive, "destructive"}, {h.Idempotent, "idempotent"}, {h.OpenWorld, "open-world"}} {
		if isSet(x.b) && !(isSet(h.ReadOnly) && (x.b == h.Destructive || x.b == h.Idempotent)) {
			out = append(out, x.name)
		}
	}
	if len(out) == 0 {
		return "no hints"
	}
	return strings.Join(out, ", ")
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}

var (
	ruleNameBad = regexp.MustCompile(`[^A-Za-z0-9_.:-]+`)
	// ruleNameLen is the longest rule name the policy parser takes.
	ruleNameLen = 64
)

// ruleName is tool-suffix, in the characters a rule name may hold, cut to
// the length it may have (with a hash of the whole, so that two long names
// stay apart).
func ruleName(tool, suffix string) string {
	n := ruleNameBad.ReplaceAllString(tool, "-") + "-" + suffix
	if c := n[0]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
		n = "t" + n
	}
	if len(n) > ruleNameLen {
		sum := sha256.Sum256([]byte(tool + "-" + suffix))
		n = n[:ruleNameLen-9] + "-" + hex.EncodeToString(sum[:4])
	}
	return n
}

// uniqueRuleName returns name, or name-2, name-3, ... when it is taken.
func uniqueRuleName(name string, taken map[string]bool) string {
	if !taken[name] {
		return name
	}
	for i := 2; ; i++ {
		s := fmt.Sprintf("-%d", i)
		n := name
		if len(n)+len(s) > ruleNameLen {
			n = n[:ruleNameLen-len(s)]
		}
		if !taken[n+s] {
			return n + s
		}
	}
}

// globLiteral is a glob matching exactly name: its glob characters escaped.
func globLiteral(name string) string {
	var b strings.Builder
	for _, r := range name {
		if strings.ContainsRune(`*?[]{}\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// policyLine joins fields as a policy line, quoting those CSV would read
// otherwise.
func policyLine(fields ...string) string {
	out := make([]string, 0, len(fields)+1)
	out = append(out, "p")
	for _, f := range fields {
		if strings.ContainsAny(f, ",\"") || strings.TrimSpace(f) != f {
			f = `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
		}
		out = append(out, f)
	}
	return strings.Join(out, ", ")
}

// rulesText is the drafted policy lines with a comment above each one
// naming the tool's hints, risk and data class and why it gets its
// decision; header is said first, as comments.
func (d *policyDraft) rulesText(header []string) string {
	var b strings.Builder
	for _, h := range header {
		fmt.Fprintf(&b, "# %s\n", h)
	}
	for _, s := range d.Skipped {
		fmt.Fprintf(&b, "# skipped %s\n", s)
	}
	for _, r := range d.Rules {
		t := r.Tool
		fmt.Fprintf(&b, "# %s: %s; risk %s, data class %s. %s.\n", commentSafe(t.Name), hintWords(t.Hints),
			orUnknown(string(t.Risk)), orUnknown(string(t.DataClass)), r.Why)
		if t.State != "" && t.State != mediator.PinPinned {
			fmt.Fprintf(&b, "# Withheld by the mediator until reviewed (%s): see mediator upstream review %s.\n", t.State, commentSafe(t.Server))
		}
		fmt.Fprintln(&b, r.Line)
	}
	return b.String()
}

// casesText is a `policy test` file with one case per drafted rule (and a
// listing case for each denial: the tool is hidden), with the tools'
// catalog attributes in its objects table.
func (d *policyDraft) casesText(header []string) string {
	var b strings.Builder
	for _, h := range header {
		fmt.Fprintf(&b, "# %s\n", h)
	}
	if len(d.Rules) == 0 {
		b.WriteString("cases: []\n")
		return b.String()
	}
	b.WriteString("\n# Catalog attributes, as the catalog gave them.\nobjects:\n")
	for _, r := range d.Rules {
		fmt.Fprintf(&b, "  %s: {%s}\n", yamlString(r.Tool.Name), objectAttrs(r.Tool))
	}
	b.WriteString("\n# Defaults for every case: Tuesday 10:00 (business hours) on loopback, alert normal.\n")
	b.WriteString("env: {time: \"2026-03-03T10:00\", ip: 127.0.0.1, alert: normal}\n\ncases:\n")
	agent := caseAgent(d.Subject)
	for _, r := range d.Rules {
		name := fmt.Sprintf("%s: %s", r.Tool.Name, r.Decision)
		writeCase(&b, name, agent, r, false)
		if r.Decision == mediator.EffectDeny {
			writeCase(&b, r.Tool.Name+": hidden from listings", agent, r, true)
		}
	}
	return b.String()
}

func writeCase(b *strings.Builder, name, agent string, r draftRule, listing bool) {
	fmt.Fprintf(b, "  - name: %s\n    agent: %s\n", yamlString(name), agent)
	if listing {
		fmt.Fprintf(b, "    call: {tool: %s}\n    listing: true\n", yamlString(r.Tool.Name))
	} else {
		fmt.Fprintf(b, "    call: {tool: %s, arguments: {}}\n", yamlString(r.Tool.Name))
	}
	fmt.Fprintf(b, "    want: %s\n    rule: %s\n", r.Decision, yamlString(r.Name))
}

// caseAgent is the agent of the cases: one the subject names.
func caseAgent(subject string) string {
	if id, ok := strings.CutPrefix(subject, "agent:"); ok {
		return "{id: " + yamlString(id) + "}"
	}
	if role, ok := strings.CutPrefix(subject, "role:"); ok {
		return "{id: " + suggestAgent + ", roles: [" + yamlString(role) + "]}"
	}
	return "{id: " + suggestAgent + "}"
}

// objectAttrs is a tool's catalog attributes as a cases file's objects
// table gives them; a hint the upstream did not give is left out (unknown,
// which policy reads as false).
func objectAttrs(t toolView) string {
	var out []string
	if t.Server != "" {
		out = append(out, "server: "+yamlString(t.Server))
	}
	if mediator.ValidRisk(t.Risk) {
		out = append(out, "risk: "+string(t.Risk))
	}
	if mediator.ValidDataClass(t.DataClass) {
		out = append(out, "data_class: "+string(t.DataClass))
	}
	for _, x := range []struct {
		b    *bool
		name string
	}{{t.Hints.ReadOnly, "read_only"}, {t.Hints.Destructive, "destructive"}, {t.Hints.Idempotent, "idempotent"},
		{t.Hints.OpenWorld, "open_world"}} {
		if x.b != nil {
			out = append(out, fmt.Sprintf("%s: %t", x.name, *x.b))
		}
	}
	return strings.Join(out, ", ")
}

// yamlString quotes s as YAML reads it back unchanged: a JSON string is a
// YAML double-quoted scalar.
func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// commentSafe keeps text from the catalog on one comment line.
func commentSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

const suggestSynopsis = "policy suggest --upstream NAME [--subject S] [--allow-egress TOOL]... [--cases FILE] [--server URL] [--config FILE]"

// policySuggest drafts policy lines for an upstream's tools, from the live
// catalog of the running mediator (or, when none answers, from the
// configured upstream started here), checks the draft against the
// configured policy, and writes its `policy test` cases with --cases.
func policySuggest(ctx context.Context, args []string, e env) error {
	fs := newFlags("policy suggest", suggestSynopsis, e.stderr)
	cfgPath := fs.String("config", "", "config file naming the policy (default: the embedded default)")
	upstream := fs.String("upstream", "", "the upstream whose tools to draft rules for (required)")
	subject := fs.String("subject", "*", "subject of the drafted rules: *, role:R or agent:ID")
	casesPath := fs.String("cases", "", "write the drafted `policy test` cases to this new file")
	var egress listFlag
	fs.Var(&egress, "allow-egress", "an open-world tool (catalog name) to draft by its other hints instead of denying it (repeatable)")
	var af adminFlags
	af.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *upstream == "" {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("policy suggest: want --upstream NAME (mediator upstream list shows the names)")}
	}
	if err := validSubject(*subject); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("policy suggest: --subject: %w", err)}
	}
	if *casesPath != "" {
		if _, err := os.Stat(*casesPath); err == nil {
			return &exitError{code: 2, err: fmt.Errorf("policy suggest: --cases: %s exists; pass another path (nothing was overwritten)", *casesPath)}
		}
	}
	_, cfg, f, err := cliEngine(*cfgPath, e)
	if err != nil {
		return err
	}
	list, source, err := catalogOf(ctx, cfg, af.server, *upstream, e)
	if err != nil {
		return fmt.Errorf("policy suggest: %w", err)
	}
	allow := map[string]bool{}
	for _, n := range egress {
		if !slices.ContainsFunc(list, func(t toolView) bool { return t.Name == n }) {
			return &exitError{code: 2, err: fmt.Errorf("policy suggest: --allow-egress %s: upstream %s has no such tool (name it as the catalog does, e.g. %s__TOOL)", n, *upstream, *upstream)}
		}
		allow[n] = true
	}
	taken := map[string]bool{}
	if rules, err := policy.ParseRules(bytes.NewReader(f.Policy), f.PolicyPath); err == nil {
		for _, r := range rules {
			taken[r.Name] = true
		}
	}
	d := draftPolicy(list, draftOptions{Subject: *subject, AllowEgress: allow, Taken: taken})
	header := []string{
		fmt.Sprintf("Drafted by mediator policy suggest for upstream %s, from %s.", *upstream, source),
		"The hints are the upstream's own claims: review each line before you append it to " + f.PolicyPath + ".",
	}
	fmt.Fprint(e.stdout, d.rulesText(header))
	cases := d.casesText([]string{
		fmt.Sprintf("Cases for the rules mediator policy suggest drafted for upstream %s.", *upstream),
		"Run them once the lines are in the policy: mediator policy test THIS-FILE --config FILE",
	})
	if err := checkDraft(cfg, f, d, cases, e); err != nil {
		return fmt.Errorf("policy suggest: %w", err)
	}
	if *casesPath != "" {
		if err := writeNew(*casesPath, cases); err != nil {
			return fmt.Errorf("policy suggest: --cases: %w", err)
		}
		fmt.Fprintf(e.stderr, "mediator: wrote %d cases to %s; after appending the lines: mediator policy test %s\n",
			strings.Count(cases, "\n  - name:"), *casesPath, *casesPath)
	}
	return nil
}

// validSubject checks the subject column of drafted rules.
func validSubject(s string) error {
	if s == "*" {
		return nil
	}
	kind, id, ok := strings.Cut(s, ":")
	if !ok || (kind != "role" && kind != "agent") || id == "" || strings.ContainsAny(id, ",\"\n\r*") {
		return fmt.Errorf("%q: want *, role:NAME or agent:ID", s)
	}
	return nil
}

// catalogOf is the tools of one upstream: from the running mediator's live
// catalog, or, when no admin API answers, from the configured upstream
// started in this process. It says where the tools came from.
func catalogOf(ctx context.Context, cfg *Config, server, name string, e env) ([]toolView, string, error) {
	var list upstreamList
	var base string
	done, err := viaAdmin(ctx, cfg, server, e, "starting upstream "+name+" from the config here to read its tools",
		func(c *adminClient) error {
			base = c.base
			return c.do(ctx, http.MethodGet, "/upstreams", nil, &list)
		})
	if err != nil {
		return nil, "", err
	}
	if done {
		var out []toolView
		known := map[string]bool{}
		for _, s := range list.Servers {
			known[s.Name] = true
		}
		for _, t := range list.Tools {
			if t.Server == name {
				out = append(out, t)
			}
		}
		if !known[name] {
			return nil, "", fmt.Errorf("the mediator at %s has no upstream %s (it has %s); register it first: mediator upstream add %s --command CMD | --url URL",
				base, name, namesOrNone(known), name)
		}
		return out, "the live catalog of the mediator at " + base, nil
	}
	var up []tools.Config
	known := map[string]bool{}
	for _, u := range cfg.resolveUpstreams(e.self) {
		known[u.Name] = true
		if u.Name == name {
			up = append(up, u)
		}
	}
	if len(up) == 0 {
		return nil, "", fmt.Errorf("no mediator answered and the config has no upstream %s (it has %s); start mediator serve, or pass --server or --config",
			name, namesOrNone(known))
	}
	reg := tools.New(up, tools.WithLogger(slog.New(slog.DiscardHandler)), tools.WithMaxMessageBytes(cfg.Limits.MaxMessageBytes),
		tools.WithBaseEnv(baseEnv(e.lookup)), tools.WithClientInfo("mcp-mediator", version))
	if err := reg.Start(ctx); err != nil {
		return nil, "", fmt.Errorf("starting upstream %s: %w", name, err)
	}
	defer reg.Close()
	cat := reg.Catalog()
	for _, s := range cat.Servers {
		if !s.Connected {
			return nil, "", fmt.Errorf("upstream %s did not answer: %s", name, s.Error)
		}
	}
	var out []toolView
	for _, t := range cat.Tools {
		out = append(out, toolView{Name: t.Name, Server: t.Server, Original: t.Original, Risk: t.Risk, DataClass: t.DataClass,
			Hints: t.Hints, Hash: t.Hash})
	}
	return out, "upstream " + name + " of the config, started here", nil
}

func namesOrNone(set map[string]bool) string {
	if len(set) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(set)), ", ")
}

// checkDraft loads the configured policy with the draft appended and runs
// the drafted cases on it, saying on stderr which ones an earlier rule
// decides otherwise. A draft that does not load is a bug here: an error.
func checkDraft(cfg *Config, f policy.Files, d policyDraft, cases string, e env) error {
	if len(d.Rules) == 0 {
		fmt.Fprintln(e.stderr, "mediator: the upstream offers no tools: nothing to draft")
		return nil
	}
	var lines strings.Builder
	for _, r := range d.Rules {
		lines.WriteString(r.Line + "\n")
	}
	opts, err := cfg.engineOptions(slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return err
	}
	g := policy.Files{ModelPath: f.ModelPath, Model: f.Model, PolicyPath: f.PolicyPath + " with the draft appended",
		Policy: slices.Concat(f.Policy, []byte("\n"), []byte(lines.String()))}
	eng, err := policy.NewFromFiles(g, opts...)
	if err != nil {
		return fmt.Errorf("the drafted lines do not load with %s: %w", f.PolicyPath, err)
	}
	cf, err := policy.ParseCases([]byte(cases), "the drafted cases")
	if err != nil {
		return fmt.Errorf("the drafted cases do not parse: %w", err)
	}
	results := eng.Test(cf)
	var same, other []policy.CaseResult
	for _, r := range policy.Failed(results) {
		if r.Err == nil && r.Decision.Effect == r.Case.Want {
			same = append(same, r)
		} else {
			other = append(other, r)
		}
	}
	fmt.Fprintf(e.stderr, "mediator: checked against %s with these lines appended: %d of %d drafted cases are decided by the drafted rules\n",
		f.PolicyPath, len(results)-len(same)-len(other), len(results))
	if len(same) > 0 {
		fmt.Fprintln(e.stderr, "  decided the same way by a rule already in the policy (the drafted line changes nothing there):")
		for _, r := range same {
			fmt.Fprintf(e.stderr, "    %s: %s by rule %s\n", r.Case.Name, r.Decision.Effect, r.Decision.Rule)
		}
	}
	if len(other) > 0 {
		fmt.Fprintln(e.stderr, "  decided otherwise by a rule already in the policy (deny wins, then approve, then allow; "+
			"mediator policy explain --agent ID --tool NAME shows why):")
		for _, r := range other {
			fmt.Fprintf(e.stderr, "    %s\n", r.Summary())
		}
	}
	return nil
}

// writeNew writes a file that must not exist yet.
func writeNew(path, text string) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists; pass another path (nothing was overwritten)", path)
		}
		return err
	}
	if _, err := fh.WriteString(text); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

// printDraft follows `upstream add`: the tools' hints and the policy lines
// that would let agents call them, as policy suggest drafts them.
func printDraft(w io.Writer, name string, list []toolView) {
	if len(list) == 0 {
		return
	}
	d := draftPolicy(list, draftOptions{})
	fmt.Fprintf(w, "\nNo rule names these tools yet unless the policy's globs match them, and a tool no rule allows is hidden and refused.\nDrafted from the upstream's hints (its own claims):\n"+
		"review, append to the policy file, then run mediator policy reload. "+
		"mediator policy suggest --upstream %s --cases FILE drafts them with cases for policy test.\n", name)
	fmt.Fprint(w, d.rulesText(nil))
}

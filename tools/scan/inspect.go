package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-mediator/mediator/mediator"
)

// The result actions of tools.Config.Secrets.
const (
	ActionRedact = "redact"
	ActionBlock  = "block"
	ActionFlag   = "flag"
	ActionOff    = "off"
)

// MaxScanBytes bounds the text of one result the inspector reads. A larger
// result is withheld unless its upstream's action is flag: unread text
// could hold a secret.
const MaxScanBytes = 8 << 20

// maxFindings bounds the findings kept per call.
const maxFindings = 32

// Inspector scans what flows through calls (mediator.Inspector): secrets in
// arguments (for policy's r.obj.ArgSecrets; redacted in the record),
// secrets in results (redacted, blocked or flagged by the upstream's
// configuration; always redacted in the record) and injection markers in
// results (recorded; they taint the session).
type Inspector struct {
	Secrets *Secrets
	// Action returns the secret action of an upstream (redact when it
	// returns "").
	Action func(server string) string
}

var _ mediator.Inspector = (*Inspector)(nil)

// NewInspector compiles the default secret rules.
func NewInspector(action func(server string) string) (*Inspector, error) {
	s, err := DefaultSecrets()
	if err != nil {
		return nil, err
	}
	return &Inspector{Secrets: s, Action: action}, nil
}

// Arguments reports the secrets in the call's arguments and sets the
// record's copy of the arguments with them redacted.
func (in *Inspector) Arguments(c *mediator.Call) []mediator.Finding {
	if in.action(c) == ActionOff {
		return nil
	}
	var found []mediator.Finding
	redacted, changed := in.redactValue("arguments", c.Arguments, &found)
	if changed {
		if b, err := mediator.CanonicalValue(redacted); err == nil {
			c.RecordArguments = b
		}
	}
	return found
}

// action is the secret action of the call's upstream.
func (in *Inspector) action(c *mediator.Call) string {
	if in.Action != nil && c.Target != nil {
		if a := in.Action(c.Target.Server); a != "" {
			return a
		}
	}
	return ActionRedact
}

// redactValue returns v with secrets in its strings redacted, appending a
// finding per secret.
func (in *Inspector) redactValue(path string, v any, found *[]mediator.Finding) (any, bool) {
	switch x := v.(type) {
	case string:
		m := in.Secrets.Find(x, 8)
		if len(m) == 0 {
			return x, false
		}
		if len(*found) < maxFindings {
			*found = append(*found, secretFindings(path, x, m)...)
		}
		return Redact(x, m), true
	case map[string]any:
		// A copy only once something in it is redacted: most arguments
		// hold no secret, and the call's own map must stay as sent.
		var out map[string]any
		for k, e := range x {
			r, ch := in.redactValue(join(path, k), e, found)
			if ch && out == nil {
				out = maps.Clone(x)
			}
			if ch {
				out[k] = r
			}
		}
		return out, out != nil
	case []any:
		var out []any
		for i, e := range x {
			r, ch := in.redactValue(path+"."+strconv.Itoa(i), e, found)
			if ch && out == nil {
				out = slices.Clone(x)
			}
			if ch {
				out[i] = r
			}
		}
		return out, out != nil
	}
	return v, false
}

// textRef is one text of a result, which redaction may replace.
type textRef struct {
	path string
	get  func() string
	set  func(string)
}

// Result scans the call's result. Secrets are found in each text and in
// the texts joined (a secret split across two content blocks), and
// redacted in every block they touch.
func (in *Inspector) Result(_ context.Context, c *mediator.Call) error {
	action := in.action(c)
	if action == ActionOff {
		return nil
	}
	refs := resultTexts(c.Result)
	if len(refs) == 0 {
		return nil
	}
	var joined strings.Builder
	starts := make([]int, len(refs))
	for i, r := range refs {
		starts[i] = joined.Len()
		joined.WriteString(r.get())
	}
	if joined.Len() > MaxScanBytes && action != ActionFlag {
		return fmt.Errorf("%w: the result holds %d bytes of text, more than the %d the secret scanner reads, so it is withheld; "+
			"ask for less, or an administrator may set secrets: flag for this upstream", mediator.ErrResultBlocked, joined.Len(), MaxScanBytes)
	}
	text := joined.String()
	if len(text) > MaxScanBytes {
		text = text[:MaxScanBytes]
	}
	matches := in.Secrets.Find(text, maxFindings)
	report := &mediator.ScanReport{}
	for _, m := range matches {
		i := blockOf(starts, m.Start)
		report.ResultSecrets = append(report.ResultSecrets, secretFindings(refs[i].path, text, []SecretMatch{m})...)
	}
	for i, r := range refs {
		if len(report.Injections) >= maxFindings || starts[i] >= len(text) {
			break // the rest lies beyond what is read (flag only)
		}
		report.Injections = append(report.Injections, injectionFindings(r.path, text[starts[i]:min(len(text), starts[i]+len(r.get()))])...)
	}
	if len(matches) > 0 {
		report.Action = action
		switch action {
		case ActionBlock:
			c.Scan = mergeReport(c.Scan, report)
			return fmt.Errorf("%w: the result held %d secret(s) (%s); upstream %s is configured to withhold such results. "+
				"The secret was not shown to you; ask the user to provide what you need another way", mediator.ErrResultBlocked,
				len(matches), ruleList(report.ResultSecrets), c.Target.Server)
		case ActionFlag:
			c.RecordResult = redactedJSON(c, refs, starts, matches)
		default:
			redactRefs(refs, starts, matches)
		}
	}
	c.Scan = mergeReport(c.Scan, report)
	return nil
}

// redactedJSON is the result as the store keeps it under flag: redacted.
func redactedJSON(c *mediator.Call, refs []textRef, starts []int, matches []SecretMatch) json.RawMessage {
	saved := make([]string, len(refs))
	for i, r := range refs {
		saved[i] = r.get()
	}
	redactRefs(refs, starts, matches)
	b := c.ResultJSON()
	for i, r := range refs {
		r.set(saved[i])
	}
	if b == nil {
		b = json.RawMessage(`{"redacted":"the result held a secret"}`)
	}
	return b
}

// redactRefs replaces each match, in every block it spans.
func redactRefs(refs []textRef, starts []int, matches []SecretMatch) {
	for i := len(refs) - 1; i >= 0; i-- {
		s := refs[i].get()
		lo, hi := starts[i], starts[i]+len(s)
		var local []SecretMatch
		for _, m := range matches {
			if m.Start < hi && lo < m.End {
				local = append(local, SecretMatch{Rule: m.Rule, Start: max(m.Start, lo) - lo, End: min(m.End, hi) - lo})
			}
		}
		if len(local) > 0 {
			refs[i].set(Redact(s, local))
		}
	}
}

func blockOf(starts []int, off int) int {
	i, found := slices.BinarySearch(starts, off)
	if !found {
		i--
	}
	return max(0, i)
}

func ruleList(fs []mediator.Finding) string {
	var rules []string
	for _, f := range fs {
		if r := strings.TrimPrefix(f.Rule, "secret."); !slices.Contains(rules, r) {
			rules = append(rules, r)
		}
	}
	return strings.Join(rules, ", ")
}

func mergeReport(a, b *mediator.ScanReport) *mediator.ScanReport {
	if b.Empty() {
		return a
	}
	if a == nil {
		return b
	}
	a.ResultSecrets = append(a.ResultSecrets, b.ResultSecrets...)
	a.Injections = append(a.Injections, b.Injections...)
	if b.Action != "" {
		a.Action = b.Action
	}
	return a
}

// injectionFindings reports text in a result aimed at the model:
// instructions and hidden characters.
func injectionFindings(path, s string) []mediator.Finding {
	out := scanInvisible(path, s, nil)
	if len(s) >= 12 {
		out = scanPatterns(instructionPatterns, path, s, out)
	}
	for i := range out {
		out[i].Family = "injection"
	}
	return out
}

// resultTexts returns the texts of a result the agent will read.
func resultTexts(res any) []textRef {
	var refs []textRef
	addContent := func(prefix string, cs []mcp.Content) {
		for i := range cs {
			path := fmt.Sprintf("%s.%d", prefix, i)
			switch v := cs[i].(type) {
			case mcp.TextContent:
				refs = append(refs, textRef{path: path + ".text", get: func() string { return cs[i].(mcp.TextContent).Text },
					set: func(s string) { t := cs[i].(mcp.TextContent); t.Text = s; cs[i] = t }})
			case *mcp.TextContent:
				refs = append(refs, textRef{path: path + ".text", get: func() string { return v.Text }, set: func(s string) { v.Text = s }})
			case mcp.EmbeddedResource:
				if tr, ok := v.Resource.(mcp.TextResourceContents); ok {
					refs = append(refs, textRef{path: path + ".resource.text", get: func() string { return tr.Text },
						set: func(s string) { tr.Text = s; e := cs[i].(mcp.EmbeddedResource); e.Resource = tr; cs[i] = e }})
				}
			}
		}
	}
	switch r := res.(type) {
	case *mcp.CallToolResult:
		if r == nil {
			return nil
		}
		addContent("content", r.Content)
		if r.StructuredContent != nil {
			b, err := json.Marshal(r.StructuredContent)
			if err == nil {
				refs = append(refs, textRef{path: "structuredContent", get: func() string { return string(b) },
					set: func(s string) {
						var v any
						if json.Unmarshal([]byte(s), &v) == nil {
							r.StructuredContent = v
						} else {
							r.StructuredContent = map[string]any{"redacted": "the structured result held a secret"}
						}
						// mcp-go encodes the upstream's own bytes when it
						// has them, ahead of StructuredContent: they
						// hold the secret
						r.RawStructuredContent = nil
						b = []byte(s)
					}})
			}
		}
	case *mcp.ReadResourceResult:
		if r == nil {
			return nil
		}
		for i := range r.Contents {
			if tr, ok := r.Contents[i].(mcp.TextResourceContents); ok {
				refs = append(refs, textRef{path: fmt.Sprintf("contents.%d.text", i), get: func() string { return tr.Text },
					set: func(s string) { tr.Text = s; r.Contents[i] = tr }})
			}
		}
	case *mcp.GetPromptResult:
		if r == nil {
			return nil
		}
		for i := range r.Messages {
			if tc, ok := r.Messages[i].Content.(mcp.TextContent); ok {
				refs = append(refs, textRef{path: fmt.Sprintf("messages.%d.content.text", i), get: func() string { return tc.Text },
					set: func(s string) { tc.Text = s; r.Messages[i].Content = tc }})
			}
		}
	}
	return refs
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/mcp-mediator/mediator/approvals/web"
	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/tools/scan"
)

const reviewUsage = `Usage:
  mediator upstream review NAME [--tool T] [--approve | --reject] [--note TEXT] [--json] [--server URL] [--config FILE]
      show the tools of upstream NAME that wait for review (new, changed, rejected), with what
      changed (description text, schema paths, annotations) and what the scanner found;
      --approve or --reject decides on the definitions shown (all of them, or only --tool T).
      Agents see an approved tool at once (tools/list_changed).
`

// pinStore is what the admin API reads and reviews pins with
// (store.Store).
type pinStore interface {
	ToolPins(ctx context.Context, server string) ([]mediator.ToolPin, error)
	ReviewToolPin(ctx context.Context, server, tool, seenHash string, approve bool, reviewer, note string) (mediator.ToolPin, error)
	PinnedServers(ctx context.Context) ([]string, error)
}

// pinView is one tool's review state as the admin API shows it.
type pinView struct {
	mediator.ToolPin
	// Changes is what differs from the pinned definition (a changed tool).
	Changes []scan.Change `json:"changes,omitempty"`
}

// pinList is GET /upstreams/{name}/pins.
type pinList struct {
	Server string    `json:"server"`
	Pins   []pinView `json:"pins"`
}

// reviewRequest is POST /upstreams/{name}/pins/{tool}/review.
type reviewRequest struct {
	// SeenHash is the definition the reviewer saw; a different one on
	// the server refuses the review.
	SeenHash string `json:"seen_hash"`
	Approve  bool   `json:"approve"`
	Note     string `json:"note,omitempty"`
}

func (s *adminServer) listPins(r *http.Request, _ *slog.Logger) (int, any, error) {
	if s.pins == nil {
		return 0, nil, apiErr(http.StatusNotFound, nil, "tool pinning is not available on this server")
	}
	name := r.PathValue("name")
	pins, err := s.pins.ToolPins(r.Context(), name)
	if err != nil {
		return 0, nil, apiErr(http.StatusInternalServerError, err, "tool pins of %q", oneLine(name, 64))
	}
	out := pinList{Server: name, Pins: []pinView{}}
	for _, p := range pins {
		v := pinView{ToolPin: p}
		if p.SeenDefinition != nil && p.Definition != nil {
			v.Changes, _ = scan.Diff(p.Definition, p.SeenDefinition)
		}
		out.Pins = append(out.Pins, v)
	}
	return http.StatusOK, out, nil
}

func (s *adminServer) reviewPin(r *http.Request, log *slog.Logger) (int, any, error) {
	if s.pins == nil {
		return 0, nil, apiErr(http.StatusNotFound, nil, "tool pinning is not available on this server")
	}
	var req reviewRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	server, tool := r.PathValue("name"), r.PathValue("tool")
	rv := &toolReviewer{pins: s.pins, audit: s.audit, revet: s.revet, log: log}
	p, err := rv.review(r.Context(), server, tool, req.SeenHash, req.Approve, adminName(r), req.Note)
	switch {
	case errors.Is(err, mediator.ErrPinNotFound):
		return 0, nil, apiErr(http.StatusNotFound, err, "review")
	case errors.Is(err, mediator.ErrReviewStale):
		return 0, nil, apiErr(http.StatusConflict, err, "review")
	case err != nil:
		return 0, nil, apiErr(http.StatusInternalServerError, err, "review")
	}
	return http.StatusOK, p, nil
}

// toolReviewer decides on a tool change for the admin API and the approval
// page alike: the store's review, a supply record, and a re-vet of the
// running upstream so that agents see the result at once.
type toolReviewer struct {
	pins  pinStore
	audit interface {
		Record(ctx context.Context, r mediator.ChainRecord) error
	}
	revet func(ctx context.Context, upstream string) error
	log   *slog.Logger
}

func (t *toolReviewer) review(ctx context.Context, server, tool, hash string, approve bool, reviewer, note string) (mediator.ToolPin, error) {
	p, err := t.pins.ReviewToolPin(ctx, server, tool, hash, approve, reviewer, note)
	if err != nil {
		return p, err
	}
	verdict, effect := "rejected", mediator.EffectDeny
	if approve {
		verdict, effect = "approved", mediator.EffectAllow
	}
	if t.audit != nil {
		rec := mediator.ChainRecord{Time: time.Now(), Method: mediator.SupplyMethod, Kind: mediator.KindTool, Server: server,
			Name: tool, ToolHash: hash, AgentID: reviewer, Outcome: mediator.OutcomeOK,
			Decision: mediator.Decision{Effect: effect, Rule: "supply.review",
				Reason: fmt.Sprintf("%s %s tool %q of upstream %s (definition %s): %s", reviewer, verdict, tool, server, short(hash), oneLine(note, 200))}}
		if err := t.audit.Record(ctx, rec); err != nil {
			t.log.Error("tool review not recorded", "err", err)
		}
	}
	if t.revet != nil {
		if err := t.revet(ctx, server); err != nil {
			t.log.Warn("tool review stored, but the upstream is not running here", "upstream", server, "err", err)
		}
	}
	t.log.Info("tool "+verdict, "upstream", server, "tool", tool, "hash", hash, "by", reviewer)
	return p, nil
}

// Pending lists every upstream's tools that wait for review (the approval
// page's "Tool changes").
func (t *toolReviewer) Pending(ctx context.Context) ([]web.ToolChange, error) {
	servers, err := t.servers(ctx)
	if err != nil {
		return nil, err
	}
	var out []web.ToolChange
	for _, server := range servers {
		pins, err := t.pins.ToolPins(ctx, server)
		if err != nil {
			return nil, err
		}
		for _, p := range pins {
			if !p.Pending() && p.State != mediator.PinRejected {
				continue
			}
			c := web.ToolChange{Server: p.Server, Tool: p.Tool, State: p.State, OfferedHash: offeredHash(p), PinnedHash: p.Hash, Findings: p.Findings}
			if p.Definition != nil && p.SeenDefinition != nil {
				ch, _ := scan.Diff(p.Definition, p.SeenDefinition)
				for _, d := range ch {
					c.Changes = append(c.Changes, web.DefinitionChange{Path: d.Path, Kind: d.Kind(), Before: jsonText(d.Before), After: jsonText(d.After)})
				}
			} else if p.SeenDefinition != nil {
				c.Definition = oneLine(string(p.SeenDefinition), 4000)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// Review implements web.ToolReviews.
func (t *toolReviewer) Review(ctx context.Context, server, tool, hash string, approve bool, reviewer, note string) error {
	_, err := t.review(ctx, server, tool, hash, approve, "approver "+reviewer, note)
	return err
}

// servers lists the upstreams that have pins.
func (t *toolReviewer) servers(ctx context.Context) ([]string, error) {
	return t.pins.PinnedServers(ctx)
}

// jsonText shows a diff value: a string as its text, anything else as JSON.
func jsonText(v string) string {
	var s string
	if json.Unmarshal([]byte(v), &s) == nil {
		return s
	}
	return v
}

func upstreamReview(ctx context.Context, args []string, e env) error {
	fs := newFlags("upstream review", "upstream review NAME [--tool T] [--approve | --reject] [--note TEXT] [--json]", e.stderr)
	cfgPath := fs.String("config", "", "config file (default: the embedded default)")
	tool := fs.String("tool", "", "only this tool (its name at the upstream)")
	approve := fs.Bool("approve", false, "approve the definitions shown")
	reject := fs.Bool("reject", false, "reject the definitions shown")
	note := fs.String("note", "", "why, recorded with the review")
	asJSON := fs.Bool("json", false, "print JSON")
	var af adminFlags
	af.register(fs)
	fs.Usage = func() { fmt.Fprint(e.stderr, reviewUsage) }
	name, err := oneName(fs, "upstream review", args)
	if err != nil {
		return err
	}
	if *approve && *reject {
		return &exitError{code: 2, err: errors.New("upstream review: --approve and --reject exclude each other")}
	}
	cfg, err := LoadConfig(*cfgPath, e.lookup)
	if err != nil {
		return err
	}
	return mustAdmin(ctx, cfg, af.server, e, func(c *adminClient) error {
		var list pinList
		if err := c.do(ctx, http.MethodGet, "/upstreams/"+url.PathEscape(name)+"/pins", nil, &list); err != nil {
			return err
		}
		pending := pendingPins(list.Pins, *tool)
		if !*approve && !*reject {
			if *asJSON {
				return printJSON(e.stdout, pinList{Server: list.Server, Pins: pending})
			}
			printReview(e, list, pending, *tool)
			return nil
		}
		if len(pending) == 0 {
			return fmt.Errorf("upstream review: no tool of %s waits for review%s", name, forTool(*tool))
		}
		for _, p := range pending {
			req := reviewRequest{SeenHash: offeredHash(p.ToolPin), Approve: *approve, Note: *note}
			var out mediator.ToolPin
			path := "/upstreams/" + url.PathEscape(name) + "/pins/" + url.PathEscape(p.Tool) + "/review"
			if err := c.do(ctx, http.MethodPost, path, req, &out); err != nil {
				return fmt.Errorf("review %s: %w", p.Tool, err)
			}
			fmt.Fprintf(e.stdout, "%s %s: %s\n", name, p.Tool, out.State)
		}
		return nil
	})
}

func forTool(t string) string {
	if t == "" {
		return ""
	}
	return " named " + t
}

// offeredHash is the definition a review decides on.
func offeredHash(p mediator.ToolPin) string {
	if p.SeenHash != "" {
		return p.SeenHash
	}
	return p.Hash
}

func pendingPins(pins []pinView, tool string) []pinView {
	var out []pinView
	for _, p := range pins {
		if (tool == "" || p.Tool == tool) && (p.Pending() || p.State == mediator.PinRejected) {
			out = append(out, p)
		}
	}
	return out
}

// printReview shows each pending tool: its state, what changed and what the
// scanner found. Upstream text is quoted, never printed raw.
func printReview(e env, list pinList, pending []pinView, tool string) {
	if len(pending) == 0 {
		fmt.Fprintf(e.stdout, "No tool of %s waits for review%s (%d pinned).\n", list.Server, forTool(tool), len(list.Pins))
		return
	}
	for _, p := range pending {
		fmt.Fprintf(e.stdout, "%s  %s  (offered %s", displayText(p.Tool), strings.ToUpper(string(p.State)), short(p.SeenHash))
		if p.Hash != "" {
			fmt.Fprintf(e.stdout, ", pinned %s", short(p.Hash))
		}
		fmt.Fprintln(e.stdout, ")")
		for _, c := range p.Changes {
			fmt.Fprintf(e.stdout, "  %s %s\n", c.Kind(), c.Path)
			if c.Before != "" {
				fmt.Fprintf(e.stdout, "    - %s\n", displayValue(c.Before))
			}
			if c.After != "" {
				fmt.Fprintf(e.stdout, "    + %s\n", displayValue(c.After))
			}
		}
		if p.State == mediator.PinNew && p.SeenDefinition != nil {
			fmt.Fprintf(e.stdout, "  definition: %s\n", displayText(oneLine(string(p.SeenDefinition), 600)))
		}
		if len(p.Findings) > 0 {
			tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  SEVERITY\tRULE\tWHERE\tMATCH")
			for _, f := range p.Findings {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", f.Severity, f.Rule, orDash(oneLine(f.Path, 60)), oneLine(f.Match, 100))
			}
			_ = tw.Flush()
		}
		fmt.Fprintln(e.stdout)
	}
	fmt.Fprintf(e.stdout, "Decide with: mediator upstream review %s [--tool T] --approve | --reject [--note TEXT]\n", list.Server)
}

// displayText returns s as it may be printed on a terminal: unchanged when
// every character is visible, otherwise quoted with escapes, so that hidden
// or direction-changing characters from an upstream show as what they are.
func displayText(s string) string {
	for _, r := range s {
		if !unicode.IsGraphic(r) {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}

// displayValue shows a JSON value of a diff: a string as its text (quoted
// when it holds hidden characters), anything else as compact JSON.
func displayValue(v string) string {
	return displayText(oneLine(jsonText(v), 400))
}

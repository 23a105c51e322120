package scan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// The pinning modes (the values of tools.Config.Pinning).
const (
	ModeStrict = "strict"
	ModeWarn   = "warn"
	ModeOff    = "off"
)

// maxEventsPerMinute bounds the supply records one upstream can cause: an
// upstream that changes its tools on every listing must not flood the
// chain.
const maxEventsPerMinute = 60

// Guard pins upstream tool definitions and decides which tools are served
// (tools.SupplyGuard). The first time it sees an upstream's tool set it
// pins every definition the scanner finds clean; after that a tool whose
// definition changed, and a tool that appeared, is withheld (mode strict)
// until an administrator approves it (see Store.ReviewToolPin). A high
// finding withholds a tool even on first sight. Each event is recorded in
// the audit chain.
type Guard struct {
	Pins     mediator.PinStore
	Recorder mediator.Recorder // may be nil
	Log      *slog.Logger
	Now      func() time.Time

	mu       sync.Mutex
	events   map[string]*eventWindow
	reported map[string]struct{} // withheld definitions recorded (definitions.go)
}

type eventWindow struct {
	start      time.Time
	n          int
	suppressed int
}

func (g *Guard) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

func (g *Guard) log() *slog.Logger {
	if g.Log != nil {
		return g.Log
	}
	return slog.New(slog.DiscardHandler)
}

// SetHash is the hash of an upstream's whole tool set: its tools' names
// and definition hashes, sorted. A renamed tool changes it.
func SetHash(ts []mediator.Tool) string {
	lines := make([]string, 0, len(ts))
	for _, t := range ts {
		lines = append(lines, t.Original+" "+t.Hash+"\n")
	}
	slices.Sort(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Vet decides which of server's offered tools are served. others are the
// tool names other upstreams serve (a description naming them is
// shadowing). A pin store that cannot be read or written withholds every
// tool of the upstream: fail closed.
func (g *Guard) Vet(ctx context.Context, server, mode string, offered []mediator.Tool, others []string) mediator.Vetted {
	if mode == ModeOff {
		return mediator.Vetted{Serve: offered}
	}
	pins, err := g.Pins.ToolPins(ctx, server)
	if err != nil {
		return g.failClosed(ctx, server, offered, fmt.Errorf("the tool pins could not be read: %w", err))
	}
	byName := make(map[string]mediator.ToolPin, len(pins))
	for _, p := range pins {
		byName[p.Tool] = p
	}
	// First sight is of the upstream, not of a non-empty tool set: one
	// that listed no tools at first does not get its later tools pinned
	// unreviewed.
	setHash, err := g.Pins.ToolSetHash(ctx, server)
	if err != nil {
		return g.failClosed(ctx, server, offered, fmt.Errorf("the tool set could not be read: %w", err))
	}
	firstSight := len(pins) == 0 && setHash == ""
	own := make([]string, 0, len(offered))
	for _, t := range offered {
		own = append(own, t.Original, t.Name)
	}
	sctx := Context{Own: own, Others: others}
	var out mediator.Vetted
	var changed []mediator.ToolPin
	var events []mediator.ChainRecord
	now := g.now()
	for _, t := range offered {
		pin, known := byName[t.Original]
		d := g.decide(t, pin, known, firstSight, sctx, now)
		if d.update != nil {
			changed = append(changed, *d.update)
		}
		if d.event != nil {
			events = append(events, *d.event)
		}
		if d.reason == "" || mode == ModeWarn {
			if d.reason != "" {
				g.log().Warn("tool served although not reviewed (pinning: warn)", "upstream", server, "tool", t.Original, "why", d.reason)
			}
			out.Serve = append(out.Serve, t)
			continue
		}
		out.Quarantined = append(out.Quarantined, mediator.QuarantinedTool{Tool: t, State: d.state, Reason: d.reason})
	}
	if newSet := SetHash(offered); len(changed) > 0 || newSet != setHash {
		if err := g.Pins.PutToolPins(ctx, server, newSet, changed); err != nil {
			return g.failClosed(ctx, server, offered, fmt.Errorf("the tool pins could not be written: %w", err))
		}
	}
	if firstSight && len(offered) > 0 {
		events = append([]mediator.ChainRecord{{Method: mediator.SupplyMethod, Server: server, Kind: mediator.KindTool,
			Decision: mediator.Decision{Effect: mediator.EffectAllow, Rule: "supply.first_sight",
				Reason: fmt.Sprintf("first sight of upstream %s: %d tools pinned, %d withheld; tool set %s",
					server, len(offered)-len(out.Quarantined), len(out.Quarantined), SetHash(offered)[:16])}}}, events...)
	}
	g.record(ctx, server, events)
	return out
}

// decision is what Vet does with one tool.
type decision struct {
	reason string // "" serves the tool
	state  mediator.PinState
	update *mediator.ToolPin
	event  *mediator.ChainRecord
}

func (g *Guard) decide(t mediator.Tool, pin mediator.ToolPin, known, firstSight bool, sctx Context, now time.Time) decision {
	switch {
	case known && pin.Hash == t.Hash && pin.State == mediator.PinPinned:
		return decision{} // the reviewed definition: served, nothing to do
	case known && pin.Hash == t.Hash:
		// The upstream offers the pinned definition again.
		p := pin
		p.State, p.SeenHash, p.SeenDefinition, p.Findings, p.Updated = mediator.PinPinned, "", nil, nil, now
		return decision{update: &p, event: supplyEvent(t, mediator.EffectAllow, "supply.restored",
			"the upstream offers the pinned definition again", nil)}
	case known && pin.SeenHash == t.Hash:
		return decision{state: pin.State, reason: withheldReason(t, pin)} // already waiting
	}
	findings := Definition(t.Definition, sctx)
	high := Highest(findings) == mediator.SeverityHigh
	p := mediator.ToolPin{Server: t.Server, Tool: t.Original, FirstSeen: now, Updated: now, Findings: findings}
	if known {
		p = pin
		p.Findings, p.Updated = findings, now
	}
	if !known && firstSight && !high {
		p.State, p.Hash, p.Definition = mediator.PinPinned, t.Hash, storable(t.Definition)
		return decision{update: &p}
	}
	p.SeenHash, p.SeenDefinition = t.Hash, storable(t.Definition)
	switch {
	case known && pin.Hash != "":
		p.State = mediator.PinChanged
	default:
		p.State = mediator.PinNew
	}
	reason := withheldReason(t, p)
	return decision{state: p.State, reason: reason, update: &p,
		event: supplyEvent(t, mediator.EffectDeny, "supply.quarantined", reason, findings)}
}

// storable is a definition as a pin keeps it: one over the scanner's limit
// (itself a high finding) is replaced by a note of its size, so that one
// huge tool cannot make the pins of its whole upstream unwritable.
func storable(def []byte) []byte {
	if len(def) <= MaxDefinitionBytes {
		return def
	}
	return fmt.Appendf(nil, `{"withheld":"a definition of %d bytes, over the %d-byte limit"}`, len(def), MaxDefinitionBytes)
}

// withheldReason says why a tool is withheld and who must act.
func withheldReason(t mediator.Tool, p mediator.ToolPin) string {
	review := fmt.Sprintf("it is withheld until an administrator reviews it: mediator upstream review %s", t.Server)
	var what string
	switch p.State {
	case mediator.PinChanged:
		what = fmt.Sprintf("tool %q of upstream %s changed since it was reviewed", t.Original, t.Server)
		if ch, err := Diff(p.Definition, p.SeenDefinition); err == nil && len(ch) > 0 {
			what += " (" + Summary(ch) + ")"
		}
	case mediator.PinRejected:
		what = fmt.Sprintf("tool %q of upstream %s was rejected by %s", t.Original, t.Server, orSomeone(p.Reviewer))
		review = "it is withheld until the upstream offers the reviewed definition again or an administrator approves this one: mediator upstream review " + t.Server
	default:
		what = fmt.Sprintf("tool %q of upstream %s is new since the upstream's tools were pinned", t.Original, t.Server)
	}
	if high := highFindings(p.Findings); high != "" {
		what += "; the scanner found " + high
	}
	return what + "; " + review
}

func orSomeone(s string) string {
	if s == "" {
		return "an administrator"
	}
	return s
}

func highFindings(fs []mediator.Finding) string {
	var rules []string
	for _, f := range fs {
		if f.Severity == mediator.SeverityHigh && !slices.Contains(rules, f.Rule) {
			rules = append(rules, f.Rule)
		}
	}
	if len(rules) > 4 {
		rules = append(rules[:4], "…")
	}
	if len(rules) == 0 {
		return ""
	}
	return fmt.Sprintf("%v", rules)
}

func supplyEvent(t mediator.Tool, effect mediator.Effect, rule, reason string, fs []mediator.Finding) *mediator.ChainRecord {
	r := &mediator.ChainRecord{Method: mediator.SupplyMethod, Kind: mediator.KindTool, Server: t.Server, Name: t.Name,
		ToolHash: t.Hash, Decision: mediator.Decision{Effect: effect, Rule: rule, Reason: reason}}
	if len(fs) > 0 {
		r.Scan = &mediator.ScanReport{Definition: fs}
	}
	return r
}

// failClosed withholds every offered tool and records why.
func (g *Guard) failClosed(ctx context.Context, server string, offered []mediator.Tool, cause error) mediator.Vetted {
	reason := fmt.Sprintf("the tools of upstream %s are withheld: %v; an operator must check the mediator's database", server, cause)
	g.log().Error("tool pins unavailable; withholding the upstream's tools", "upstream", server, "err", cause)
	out := mediator.Vetted{}
	for _, t := range offered {
		out.Quarantined = append(out.Quarantined, mediator.QuarantinedTool{Tool: t, State: mediator.PinNew, Reason: reason})
	}
	g.record(ctx, server, []mediator.ChainRecord{{Method: mediator.SupplyMethod, Server: server, Kind: mediator.KindTool,
		Decision: mediator.Decision{Effect: mediator.EffectDeny, Rule: "supply.pins_unavailable", Reason: reason}}})
	return out
}

// record writes supply events, at most maxEventsPerMinute per upstream;
// the rest are counted and summed up in the next record let through.
func (g *Guard) record(ctx context.Context, server string, events []mediator.ChainRecord) {
	if g.Recorder == nil || len(events) == 0 {
		return
	}
	now := g.now()
	g.mu.Lock()
	if g.events == nil {
		g.events = map[string]*eventWindow{}
	}
	w := g.events[server]
	if w == nil || now.Sub(w.start) >= time.Minute {
		if w != nil && w.suppressed > 0 {
			events = append(events, mediator.ChainRecord{Method: mediator.SupplyMethod, Server: server, Kind: mediator.KindTool,
				Decision: mediator.Decision{Effect: mediator.EffectDeny, Rule: "supply.suppressed",
					Reason: fmt.Sprintf("%d supply events of upstream %s were not recorded one by one: it changed its tools more than %d times a minute", w.suppressed, server, maxEventsPerMinute)}})
		}
		w = &eventWindow{start: now}
		g.events[server] = w
	}
	keep := min(len(events), max(0, maxEventsPerMinute-w.n))
	w.n += keep
	w.suppressed += len(events) - keep
	g.mu.Unlock()
	for _, e := range events[:keep] {
		e.Time, e.Outcome = now, mediator.OutcomeOK
		if err := g.Recorder.Record(ctx, e); err != nil {
			g.log().Error("supply event not recorded", "upstream", server, "rule", e.Decision.Rule, "err", err)
		}
	}
}

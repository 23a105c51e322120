package scan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"

	"github.com/mcp-mediator/mediator/mediator"
)

// maxReported bounds the withheld definitions whose first sight the guard
// remembers (so that it records each once, not at every listing).
const maxReported = 4096

// VetDefinitions scans the definitions of an upstream's prompts, resources
// or resource templates (kind; by the name agents see: a prompt's
// namespaced name, a URI, a URI template) as tool definitions are scanned,
// and returns, by name, why those with a high finding are withheld. The
// model reads their names, descriptions and argument descriptions as it
// reads a tool's. They are not pinned (a benign change passes): what is
// withheld is what the scanner finds poisoned, until the upstream changes
// it. With pinning warn they are served and logged; off, not scanned.
// Each withheld definition is recorded once per process.
func (g *Guard) VetDefinitions(ctx context.Context, server, mode string, kind mediator.Kind, defs map[string][]byte, others []string) map[string]string {
	if mode == ModeOff || len(defs) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(defs))
	sctx := Context{Own: names, Others: others}
	var withheld map[string]string
	var events []mediator.ChainRecord
	for _, name := range names {
		def := defs[name]
		findings := Definition(def, sctx)
		if Highest(findings) != mediator.SeverityHigh {
			continue
		}
		reason := fmt.Sprintf("%s %q of upstream %s is withheld: the scanner found %s in its definition; "+
			"it is served again once the upstream changes it (prompts and resources are scanned, not pinned)",
			kind, name, server, highFindings(findings))
		if mode == ModeWarn {
			g.log().Warn("definition served although the scanner found it poisoned (pinning: warn)", "upstream", server, "kind", kind, "name", name, "why", reason)
			continue
		}
		if withheld == nil {
			withheld = map[string]string{}
		}
		withheld[name] = reason
		sum := sha256.Sum256(def)
		if g.firstReport(server + "\x00" + string(kind) + "\x00" + name + "\x00" + hex.EncodeToString(sum[:])) {
			g.log().Warn("definition withheld", "upstream", server, "kind", kind, "name", name, "why", reason)
			events = append(events, mediator.ChainRecord{Method: mediator.SupplyMethod, Kind: kind, Server: server, Name: name,
				Decision: mediator.Decision{Effect: mediator.EffectDeny, Rule: "supply.quarantined", Reason: reason},
				Scan:     &mediator.ScanReport{Definition: findings}})
		}
	}
	g.record(ctx, server, events)
	return withheld
}

// firstReport reports whether key is seen for the first time (bounded: past
// maxReported keys, the oldest are forgotten and may be reported again).
func (g *Guard) firstReport(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.reported[key]; ok {
		return false
	}
	if g.reported == nil {
		g.reported = map[string]struct{}{}
	}
	if len(g.reported) >= maxReported {
		clear(g.reported)
	}
	g.reported[key] = struct{}{}
	return true
}

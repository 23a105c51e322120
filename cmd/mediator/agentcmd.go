package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy/behaviour"
	"github.com/mcp-mediator/mediator/policy/token"
	"github.com/mcp-mediator/mediator/store"
)

const agentUsage = `Usage:
  mediator agent list [--json] [--config FILE] [--db FILE]
      every agent the mediator has seen: trust level, ceiling, baseline state
  mediator agent show ID [--json] [--config FILE] [--db FILE]
      one agent: trust and why, its baselines in plain words, recent deviations and trust history
  mediator agent trust set ID high|medium|low|none --reason TEXT [--ceiling LEVEL] [--config FILE] [--db FILE]
      set an agent's trust level (and ceiling); recorded in the audit chain
  mediator agent baseline reset|freeze|unfreeze ID --reason TEXT [--config FILE] [--db FILE]
      reset: forget what was learned, learn again from scratch; freeze: stop learning; unfreeze: resume

They act on the database: every mediator using it applies a change within about a second.
`

func cmdAgent(ctx context.Context, args []string, e env) error {
	if len(args) == 0 || slices.Contains([]string{"-h", "--help", "help"}, args[0]) {
		if len(args) > 0 {
			fmt.Fprint(e.stdout, agentUsage)
			return errHelp
		}
		fmt.Fprint(e.stderr, agentUsage)
		return &exitError{code: 2, err: errors.New("agent: want list, show, trust set or baseline")}
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "trust":
		if len(rest) == 0 || rest[0] != "set" {
			fmt.Fprint(e.stderr, agentUsage)
			return &exitError{code: 2, err: errors.New("agent trust: want set")}
		}
		sub, rest = "trust set", rest[1:]
	case "baseline":
		if len(rest) == 0 || !slices.Contains([]string{"reset", "freeze", "unfreeze"}, rest[0]) {
			fmt.Fprint(e.stderr, agentUsage)
			return &exitError{code: 2, err: errors.New("agent baseline: want reset, freeze or unfreeze")}
		}
		sub, rest = "baseline "+rest[0], rest[1:]
	case "list", "show":
	default:
		fmt.Fprint(e.stderr, agentUsage)
		return &exitError{code: 2, err: fmt.Errorf("agent: unknown subcommand %q", sub)}
	}
	fs := newFlags("agent "+sub, "agent "+sub+" [flags]", e.stderr)
	var cf commonFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	reason := fs.String("reason", "", "why (required for changes; recorded)")
	ceiling := fs.String("ceiling", "", "the highest level the agent may reach (trust set)")
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		return err
	}
	cfg, err := cf.load(e)
	if err != nil {
		return err
	}
	st, err := openExisting(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	bcfg, err := cfg.Behaviour.engineConfig(cfg.behaviourZone())
	if err != nil {
		return err
	}
	eng, err := behaviour.New(bcfg, st, st, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	want := func(n int, what string) error {
		if len(pos) != n {
			fs.Usage()
			return &exitError{code: 2, err: fmt.Errorf("agent %s: want %s", sub, what)}
		}
		return nil
	}
	by := "operator"
	if u, ok := e.lookup("USER"); ok && u != "" {
		by = "operator " + u
	}
	switch sub {
	case "list":
		if err := want(0, "no arguments"); err != nil {
			return err
		}
		list, err := behaviour.Summaries(ctx, st, "", eng.Config().StartTrust)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSONTo(e.stdout, list)
		}
		printAgents(e.stdout, list)
		return nil
	case "show":
		if err := want(1, "an agent id"); err != nil {
			return err
		}
		v, err := agentDetail(ctx, st, eng, pos[0])
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSONTo(e.stdout, v)
		}
		printAgentDetail(e.stdout, v)
		return nil
	case "trust set":
		if err := want(2, "an agent id and a level"); err != nil {
			return err
		}
		if err := eng.Load(ctx); err != nil {
			return err
		}
		t, err := eng.SetTrust(ctx, pos[0], mediator.TrustLevel(pos[1]), mediator.TrustLevel(*ceiling), by, *reason)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "agent %s: trust %s (ceiling %s), by %s: %s\n", t.AgentID, t.Level, orDash(string(t.Ceiling)), t.By, t.Reason)
		return nil
	default: // baseline reset|freeze|unfreeze
		if err := want(1, "an agent id"); err != nil {
			return err
		}
		action := behaviour.BaselineAction(strings.TrimPrefix(sub, "baseline "))
		keys, err := eng.ActOnBaseline(ctx, pos[0], action, by, *reason)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "agent %s: baseline %s (%s)\n", pos[0], action, strings.Join(keys, ", "))
		return nil
	}
}

func writeJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printAgents(w io.Writer, list []behaviour.AgentSummary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tTRUST\tCEILING\tBASELINE\tCALLS\tCHANGED\tWHY")
	for _, a := range list {
		state, calls := "none yet", int64(0)
		if len(a.Profiles) > 0 {
			p := a.Profiles[0]
			calls = p.Seen
			switch {
			case p.Corrupt != "":
				state = "unreadable"
			case p.Frozen:
				state = "frozen"
			case p.Learning:
				state = "learning"
			default:
				state = "watching"
			}
		}
		changed := "-"
		if !a.Changed.IsZero() {
			changed = a.Changed.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", oneLine(a.ID, 300), a.Trust, orDash(string(a.Ceiling)), state, calls, changed,
			oneLine(a.Reason, 80))
	}
	_ = tw.Flush()
}

// agentView is `agent show`: the summary, recent deviations and the trust
// history from the audit chain.
type agentView struct {
	behaviour.AgentSummary
	Deviations []deviation  `json:"recent_deviations"`
	History    []trustEvent `json:"trust_history"`
}

type deviation struct {
	Time    time.Time `json:"time"`
	Tool    string    `json:"tool"`
	Score   float64   `json:"score"`
	Trust   string    `json:"trust"`
	Reasons []string  `json:"reasons"`
	Outcome string    `json:"outcome"`
}

type trustEvent struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Reason string    `json:"reason"`
}

// agentHistoryRecords bounds how far back `agent show` reads the chain.
const agentHistoryRecords = 5000

func agentDetail(ctx context.Context, st *store.Store, eng *behaviour.Engine, id string) (agentView, error) {
	list, err := behaviour.Summaries(ctx, st, id, eng.Config().StartTrust)
	if err != nil {
		return agentView{}, err
	}
	recs, err := st.Records(ctx, store.Filter{AgentID: id, Limit: agentHistoryRecords})
	if err != nil {
		return agentView{}, err
	}
	if len(list) == 0 && len(recs) == 0 {
		return agentView{}, fmt.Errorf("agent %q: the mediator has no baseline, trust state or record of it (see mediator agent list)", id)
	}
	v := agentView{AgentSummary: behaviour.AgentSummary{ID: id, Trust: eng.Config().StartTrust}}
	if len(list) > 0 {
		v.AgentSummary = list[0]
	}
	flag := eng.Config().FlagScore
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		switch {
		case r.Method == behaviour.TrustChangeMethod || r.Method == behaviour.BaselineMethod:
			if len(v.History) < 20 {
				v.History = append(v.History, trustEvent{Time: r.Time, Method: r.Method, Reason: r.Decision.Reason})
			}
		case r.Behaviour != nil && r.Behaviour.Score >= flag && len(v.Deviations) < 10:
			v.Deviations = append(v.Deviations, deviation{Time: r.Time, Tool: r.Name, Score: r.Behaviour.Score,
				Trust: string(r.Behaviour.Trust), Reasons: r.Behaviour.Reasons, Outcome: string(r.Outcome)})
		}
	}
	return v, nil
}

func printAgentDetail(w io.Writer, v agentView) {
	fmt.Fprintf(w, "agent %s\n  trust     %s (ceiling %s)\n", oneLine(v.ID, 300), v.Trust, orDash(string(v.Ceiling)))
	if v.Reason != "" {
		fmt.Fprintf(w, "  why       %s (by %s, %s)\n", oneLine(v.Reason, 300), oneLine(v.By, 300), v.Changed.UTC().Format(time.RFC3339))
	}
	for _, p := range v.Profiles {
		state := "watching"
		switch {
		case p.Corrupt != "":
			state = "UNREADABLE: " + p.Corrupt + " (mediator agent baseline reset " + v.ID + ")"
		case p.Frozen:
			state = "frozen"
		case p.Learning:
			state = "learning"
		}
		fmt.Fprintf(w, "  baseline  %s: %s, %d calls learned", oneLine(p.Key, 300), state, p.Seen)
		if !p.First.IsZero() {
			fmt.Fprintf(w, " (%s to %s)", p.First.UTC().Format("2006-01-02"), p.Last.UTC().Format("2006-01-02"))
		}
		fmt.Fprintln(w)
		if len(p.Tools) > 0 {
			var parts []string
			for _, t := range p.Tools {
				parts = append(parts, fmt.Sprintf("%s %.0f%%", oneLine(t.Tool, 300), t.Share*100))
			}
			fmt.Fprintf(w, "    tools    %s\n", strings.Join(parts, ", "))
			fmt.Fprintf(w, "    servers  %s\n", oneLine(strings.Join(p.Servers, ", "), 400))
			fmt.Fprintf(w, "    hours    %s on %s; rate %s\n", p.Hours, p.Days, p.Rate)
			fmt.Fprintf(w, "    touches  data up to %s, risk up to %s; denied %.1f%%, failed %.1f%%, out of scope %.1f%%\n",
				orDash(p.MaxClass), orDash(p.MaxRisk), p.DeniedPct, p.ErrorPct, p.OutOfScopePct)
		}
	}
	if len(v.Deviations) > 0 {
		fmt.Fprintln(w, "  recent deviations")
		for _, d := range v.Deviations {
			fmt.Fprintf(w, "    %s  %s  score %.2f  trust %s  %s\n", d.Time.UTC().Format(time.RFC3339), oneLine(d.Tool, 300), d.Score, d.Trust, d.Outcome)
			for _, r := range d.Reasons {
				fmt.Fprintf(w, "      - %s\n", oneLine(r, 300))
			}
		}
	}
	if len(v.History) > 0 {
		fmt.Fprintln(w, "  trust history")
		for _, h := range v.History {
			fmt.Fprintf(w, "    %s  %s\n", h.Time.UTC().Format(time.RFC3339), oneLine(h.Reason, 300))
		}
	}
}

// Admin API: the same views and actions on a running mediator.

type agentTrustRequest struct {
	Level   string `json:"level"`
	Ceiling string `json:"ceiling,omitempty"`
	Reason  string `json:"reason"`
}

type agentBaselineRequest struct {
	Action string `json:"action"`
	Reason string `json:"reason"`
}

func (s *adminServer) behaviourOff() error {
	return apiErr(http.StatusNotFound, nil, "behavioural monitoring is off (behaviour.enabled: false)")
}

func (s *adminServer) listAgents(r *http.Request, _ *slog.Logger) (int, any, error) {
	if s.behave == nil {
		return 0, nil, s.behaviourOff()
	}
	list, err := behaviour.Summaries(r.Context(), s.behaveStore, "", s.behave.Config().StartTrust)
	if err != nil {
		return 0, nil, apiErr(http.StatusInternalServerError, err, "list agents")
	}
	return http.StatusOK, list, nil
}

func (s *adminServer) showAgent(r *http.Request, _ *slog.Logger) (int, any, error) {
	if s.behave == nil {
		return 0, nil, s.behaviourOff()
	}
	v, err := agentDetail(r.Context(), s.behaveStore, s.behave, r.PathValue("id"))
	if err != nil {
		return 0, nil, apiErr(http.StatusNotFound, err, "agent")
	}
	return http.StatusOK, v, nil
}

func adminName(r *http.Request) string {
	if c, ok := r.Context().Value(adminClaimsKey{}).(*token.Claims); ok {
		return "admin " + c.Subject
	}
	return "admin"
}

func (s *adminServer) setAgentTrust(r *http.Request, log *slog.Logger) (int, any, error) {
	if s.behave == nil {
		return 0, nil, s.behaviourOff()
	}
	var req agentTrustRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	t, err := s.behave.SetTrust(r.Context(), r.PathValue("id"), mediator.TrustLevel(req.Level), mediator.TrustLevel(req.Ceiling), adminName(r), req.Reason)
	if errors.Is(err, mediator.ErrInvalidRequest) {
		return 0, nil, apiErr(http.StatusBadRequest, err, "agent trust")
	}
	if err != nil {
		return 0, nil, apiErr(http.StatusInternalServerError, err, "agent trust")
	}
	log.Info("admin: agent trust set", "agent", t.AgentID, "level", t.Level, "reason", t.Reason)
	return http.StatusOK, t, nil
}

func (s *adminServer) actOnBaseline(r *http.Request, log *slog.Logger) (int, any, error) {
	if s.behave == nil {
		return 0, nil, s.behaviourOff()
	}
	var req agentBaselineRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	action := behaviour.BaselineAction(req.Action)
	if action != behaviour.Reset && action != behaviour.Freeze && action != behaviour.Unfreeze {
		return 0, nil, apiErr(http.StatusBadRequest, nil, "baseline action %q: use reset, freeze or unfreeze", oneLine(req.Action, 40))
	}
	keys, err := s.behave.ActOnBaseline(r.Context(), r.PathValue("id"), action, adminName(r), req.Reason)
	if errors.Is(err, mediator.ErrInvalidRequest) {
		return 0, nil, apiErr(http.StatusBadRequest, err, "agent baseline")
	}
	if err != nil {
		return 0, nil, apiErr(http.StatusInternalServerError, err, "agent baseline")
	}
	log.Info("admin: agent baseline "+string(action), "agent", r.PathValue("id"), "profiles", keys)
	return http.StatusOK, map[string]any{"agent": r.PathValue("id"), "action": action, "profiles": keys}, nil
}

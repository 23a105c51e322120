package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mcp-mediator/mediator/policy/behaviour/sim"
)

const behaviourUsage = `Usage:
  mediator behaviour eval [--seed N] [--agents N] [--normal N] [--days N] [--config FILE]
      replay a seeded corpus of simulated agent sessions (a support agent, an analyst, a
      coding agent; normal and drifting) through the real behaviour engine, with the
      behaviour: settings of the config, and print per drift kind the sessions caught, the
      calls from drift start to the first trust drop, the false alarms on normal sessions,
      and the ROC of the main threshold (behaviour.drop_at). No network, no database.
`

func cmdBehaviour(ctx context.Context, args []string, e env) error {
	if len(args) == 0 || args[0] != "eval" {
		if len(args) > 0 && slices.Contains([]string{"-h", "--help", "help"}, args[0]) {
			fmt.Fprint(e.stdout, behaviourUsage)
			return errHelp
		}
		fmt.Fprint(e.stderr, behaviourUsage)
		return &exitError{code: 2, err: errors.New("behaviour: want eval")}
	}
	fs := newFlags("behaviour eval", "behaviour eval [flags]", e.stderr)
	config := fs.String("config", "", "config file whose behaviour: block the engine uses (default: the engine's defaults)")
	seed := fs.Int64("seed", 1, "seed of the simulated corpus")
	agents := fs.Int("agents", 100, "drifting agents per kind of drift")
	normal := fs.Int("normal", 1000, "agents whose evaluated session is normal")
	days := fs.Int("days", 0, "simulated days of history before the evaluated session (0: the simulator's default)")
	if _, err := parseInterspersed(fs, args[1:]); err != nil {
		return err
	}
	if *agents < 1 || *normal < 1 || *agents > 100000 || *normal > 1000000 || *days < 0 || *days > 365 {
		return &exitError{code: 2, err: errors.New("behaviour eval: --agents 1..100000, --normal 1..1000000, --days 0..365")}
	}
	cfg, err := LoadConfig(*config, e.lookup)
	if err != nil {
		return err
	}
	bcfg, err := cfg.Behaviour.engineConfig(time.UTC)
	if err != nil {
		return err
	}
	bcfg.Zone = nil // the simulator's clock and zone
	start := time.Now()
	rep, err := sim.Eval(sim.Options{Seed: *seed, AgentsPerKind: *agents, Normal: *normal, HistoryDays: *days, Config: bcfg})
	if err != nil {
		return fmt.Errorf("behaviour eval: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rep.Write(e.stdout)
	fmt.Fprintf(e.stdout, "\n(seed %d, %d drifting agents per kind, %d normal; %s)\n", *seed, *agents, *normal, time.Since(start).Round(time.Millisecond))
	return nil
}

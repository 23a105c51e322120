package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy"
	"github.com/mcp-mediator/mediator/store"
)

const alertUsage = `Usage:
  mediator alert set normal|elevated|incident [--server URL] [--config FILE] [--db FILE]
      set the alert level through the running mediator's admin API (in force at once, and stored);
      when none answers, store it: every mediator using the database applies it within about a second
  mediator alert show [--server URL] [--config FILE] [--db FILE]
      print the alert level in force (or, when no mediator answers, the stored one)
`

func cmdAlert(ctx context.Context, args []string, e env) error {
	if len(args) == 0 || (args[0] != "set" && args[0] != "show") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(e.stdout, alertUsage)
			return errHelp
		}
		fmt.Fprint(e.stderr, alertUsage)
		return &exitError{code: 2, err: errors.New("alert: want set or show")}
	}
	sub := args[0]
	fs := newFlags("alert "+sub, "alert "+sub+" [LEVEL] [--server URL] [--config FILE] [--db FILE]", e.stderr)
	var cf commonFlags
	cf.register(fs)
	var af adminFlags
	af.register(fs)
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	level, err := alertArgs(sub, pos)
	if err != nil {
		fs.Usage()
		return &exitError{code: 2, err: err}
	}
	cfg, err := cf.load(e)
	if err != nil {
		return err
	}
	if done, err := alertViaAdmin(ctx, cfg, af.server, level, e); done || err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.path(cfg.Database))
	if err != nil {
		return fmt.Errorf("database %s: %w", cfg.path(cfg.Database), err)
	}
	defer st.Close()
	if sub == "show" {
		return showAlert(ctx, st, e.stdout)
	}
	return setAlert(ctx, st, level, e.stdout)
}

// alertArgs checks the positional arguments of alert set/show.
func alertArgs(sub string, pos []string) (policy.AlertLevel, error) {
	if sub == "show" {
		if len(pos) != 0 {
			return "", fmt.Errorf("alert show: unexpected argument %q", pos[0])
		}
		return "", nil
	}
	if len(pos) != 1 {
		return "", errors.New("alert set: want one level: normal, elevated or incident")
	}
	return policy.ParseAlertLevel(pos[0])
}

// setAlert stores level and says when it takes effect.
func setAlert(ctx context.Context, st mediator.SettingStore, level policy.AlertLevel, out io.Writer) error {
	if err := policy.WriteAlert(ctx, st, level); err != nil {
		return err
	}
	fmt.Fprintf(out, "alert level %s; running mediators using this database apply it within about a second\n", level)
	return nil
}

// showAlert prints the stored level.
func showAlert(ctx context.Context, st mediator.SettingStore, out io.Writer) error {
	l, err := policy.ReadAlert(ctx, st)
	if l == "" {
		return err
	}
	fmt.Fprintf(out, "alert level %s\n", l)
	return err
}

// alertViaAdmin sets (level != "") or shows the alert level through the
// admin API of the running mediator. It reports false when none answers.
func alertViaAdmin(ctx context.Context, cfg *Config, server string, level policy.AlertLevel, e env) (bool, error) {
	fallback := "reading the database directly"
	if level != "" {
		fallback = "storing it in the database directly"
	}
	done, err := viaAdmin(ctx, cfg, server, e, fallback, func(c *adminClient) error {
		var resp alertBody
		if level == "" {
			if err := c.do(ctx, http.MethodGet, "/alert", nil, &resp); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "alert level %s\n", resp.Level)
			return nil
		}
		if err := c.do(ctx, http.MethodPut, "/alert", alertBody{Level: string(level)}, &resp); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "alert level %s; in force now at the running mediator, and stored\n", resp.Level)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("alert: %w", err)
	}
	return done, nil
}

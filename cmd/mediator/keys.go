package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/mcp-mediator/mediator/policy/token"
)

// cmdKeys is `mediator keys jwks`: print the public JWK Set of the
// mediator's signing key, so other services can verify its tokens. The
// key is created if it does not exist yet (as `serve` would).
func cmdKeys(_ context.Context, args []string, e env) error {
	if len(args) > 0 && args[0] == "rotate" {
		return keysRotate(args[1:], e)
	}
	if len(args) == 0 || args[0] != "jwks" {
		fmt.Fprintln(e.stderr, "Usage: mediator keys jwks|rotate [--config FILE]")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return errHelp
		}
		return &exitError{code: 2, err: errors.New("keys: want jwks or rotate")}
	}
	fs := newFlags("keys jwks", "keys jwks [--config FILE]", e.stderr)
	cfgPath := fs.String("config", "", "config file (default: the embedded default)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := LoadConfig(*cfgPath, e.lookup)
	if err != nil {
		return err
	}
	log, closeLog, err := newLogger(LogConfig{Level: "info", Format: "text"}, e.stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	key, err := cfg.loadKey(log)
	if err != nil {
		return err
	}
	jwks, err := key.JWKS()
	if err != nil {
		return fmt.Errorf("keys jwks: %w", err)
	}
	fmt.Fprintln(e.stdout, string(jwks))
	return nil
}

// keysRotate is `mediator keys rotate`: a new signing key replaces the
// old one, whose public half is kept so that the audit checkpoints it
// signed stay verifiable.
func keysRotate(args []string, e env) error {
	fs := newFlags("keys rotate", "keys rotate [--config FILE]", e.stderr)
	cfgPath := fs.String("config", "", "config file (default: the embedded default)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := LoadConfig(*cfgPath, e.lookup)
	if err != nil {
		return err
	}
	path := cfg.path(cfg.Auth.KeyFile)
	old, fresh, err := token.RotateKey(path, timeNow())
	if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	fmt.Fprintf(e.stdout, "rotated %s: key %s is now %s\n", path, old.KID(), fresh.KID())
	fmt.Fprintf(e.stdout, "the old public key is kept in %s: audit verify checks the checkpoints it signed\n", token.PastKeysFile(path))
	fmt.Fprintln(e.stdout, "restart the mediator: it signs with the new key from then on, and refuses agent tokens signed with the old one (mint new ones)")
	return nil
}

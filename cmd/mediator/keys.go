package main

import (
	"context"
	"errors"
	"fmt"
)

// cmdKeys is `mediator keys jwks`: print the public JWK Set of the
// mediator's signing key, so other services can verify its tokens. The
// key is created if it does not exist yet (as `serve` would).
func cmdKeys(_ context.Context, args []string, e env) error {
	if len(args) == 0 || args[0] != "jwks" {
		fmt.Fprintln(e.stderr, "Usage: mediator keys jwks [--config FILE]")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return errHelp
		}
		return &exitError{code: 2, err: errors.New("keys: want jwks")}
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

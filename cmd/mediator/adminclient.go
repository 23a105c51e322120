package main

// The CLI side of the admin API: the management commands act on a running
// `mediator serve` through it. They authenticate with MEDIATOR_ADMIN_TOKEN
// when it is set, or else with a short-lived admin token they mint with the
// local signing key — whoever can read that key has that authority anyway.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy/token"
)

const (
	// adminTokenEnv names the environment variable holding an admin token.
	adminTokenEnv = "MEDIATOR_ADMIN_TOKEN"
	// cliAdminAgent is the agent id of the tokens the CLI mints for itself.
	cliAdminAgent = "mediator-cli"
	// cliAdminTTL is the lifetime of those tokens.
	cliAdminTTL = 2 * time.Minute
	// adminClientTimeout bounds one API call; removing an upstream waits
	// for its calls in flight.
	adminClientTimeout = 3 * time.Minute
)

var (
	// errNoAdminServer: nothing answers at the admin API's address.
	errNoAdminServer = errors.New("no mediator admin API answers")
	// errAdminOff: the config turns the admin API off and no --server was
	// given.
	errAdminOff = errors.New("the admin API is off in this config (admin.listen is empty): set admin.listen, or pass --server URL")
)

// adminFlags is the --server flag of the management commands.
type adminFlags struct{ server string }

func (f *adminFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", "", "URL of a running mediator's admin API (default: http://ADDR of admin.listen in the config)")
}

// adminClient calls the admin API of one server.
type adminClient struct {
	base    string // http://host:port
	bearer  string
	credErr error // why there is no bearer, told when the server asks for one
	// signer is the key file (and kid) the CLI minted bearer with; empty
	// when the bearer came from MEDIATOR_ADMIN_TOKEN.
	signer string
	hc     *http.Client
}

// newAdminClient prepares a client for the server named by --server, or
// else by the config's admin.listen. It returns errAdminOff when there is
// neither.
func newAdminClient(ctx context.Context, cfg *Config, server string, e env) (*adminClient, error) {
	base := server
	if base == "" {
		if cfg.Admin.Listen == "" {
			return nil, errAdminOff
		}
		base = adminURL(cfg.Admin.Listen)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &exitError{code: 2, err: fmt.Errorf("--server %q: use a URL such as http://127.0.0.1:8081", base)}
	}
	c := &adminClient{base: strings.TrimRight(base, "/"), hc: &http.Client{Timeout: adminClientTimeout}}
	c.bearer, c.signer, c.credErr = adminBearer(ctx, cfg, e)
	return c, nil
}

// adminBearer returns MEDIATOR_ADMIN_TOKEN, or a token with the admin role
// minted with the local signing key (never created here), and then which
// key file and kid signed it.
func adminBearer(ctx context.Context, cfg *Config, e env) (bearer, signer string, err error) {
	if t, ok := e.lookup(adminTokenEnv); ok && strings.TrimSpace(t) != "" {
		return strings.TrimSpace(t), "", nil
	}
	path := cfg.path(cfg.Auth.KeyFile)
	key, err := token.LoadKey(path)
	if err != nil {
		return "", "", fmt.Errorf("no admin credentials: cannot read the signing key (%w); set %s to an admin token (mediator token mint --admin)",
			err, adminTokenEnv)
	}
	v, err := token.New(ctx, key, cfg.tokenOptions(slog.New(slog.DiscardHandler))...)
	if err != nil {
		return "", "", fmt.Errorf("no admin credentials: %w", err)
	}
	defer v.Close()
	owner, _ := e.lookup("USER")
	c := token.ClaimsFor(mediator.Agent{ID: cliAdminAgent, Roles: []string{adminRole}, Owner: owner})
	bearer, err = v.MintAdmin(c, min(cliAdminTTL, cfg.Auth.MaxLifetime))
	if abs, aerr := filepath.Abs(path); aerr == nil {
		path = abs
	}
	return bearer, fmt.Sprintf("%s (kid %s)", path, key.KID()), err
}

// adminStatusError is a refusal by the admin API.
type adminStatusError struct {
	Status int
	Msg    string
}

func (e *adminStatusError) Error() string {
	return fmt.Sprintf("admin API: %s (HTTP %d)", e.Msg, e.Status)
}

// do calls the API: in (if not nil) is sent as JSON and the answer decoded
// into out (if not nil). An error wrapping errNoAdminServer means nothing
// answered, so nothing was done.
func (c *adminClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("admin API: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+adminPrefix+path, body)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if op := (*net.OpError)(nil); errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("%w at %s (%w)", errNoAdminServer, c.base, op.Err)
		}
		return fmt.Errorf("admin API at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("admin API at %s: %w", c.base, err)
	}
	if resp.StatusCode >= 300 {
		return c.refusal(resp.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("admin API at %s: answer: %w", c.base, err)
	}
	return nil
}

// refusal turns an error answer into an error, adding why the CLI had no
// credentials when that is the cause.
func (c *adminClient) refusal(status int, b []byte) error {
	var eb errorBody
	if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
		eb.Error = strings.TrimSpace(string(b))
		if len(eb.Error) > 200 {
			eb.Error = eb.Error[:200] + "..."
		}
	}
	if status == http.StatusUnauthorized && c.credErr != nil {
		eb.Error += "; " + c.credErr.Error() + fmt.Sprintf("; or pass --config with the file the mediator at %s was started with", c.base)
	}
	if status == http.StatusUnauthorized && eb.Reason == "unknown_key" && c.signer != "" {
		// The usual cause: this command read another config (or none) than
		// the one the server was started with, so another key.
		eb.Error += fmt.Sprintf("; this command signed its admin token with %s, which the mediator at %s does not trust: "+
			"pass --config with the file that mediator was started with (its auth.key_file), or set %s to an admin token it minted",
			c.signer, c.base, adminTokenEnv)
	}
	return &adminStatusError{Status: status, Msg: eb.Error}
}

// noServerHint completes errNoAdminServer for the commands that need a
// running server.
func noServerHint(err error) error {
	if errors.Is(err, errNoAdminServer) {
		return fmt.Errorf("%w: start the server with `mediator serve --config FILE` (its admin.listen is where "+
			"this command connects), or pass --server URL", err)
	}
	return err
}

// viaAdmin runs call against the admin API of the server that flags and
// cfg name. It reports false, with nil error, when no server answers (or
// the config turns the API off), so that the caller can act directly;
// what it will do is said on stderr with fallback. A --db without
// --server means that database: no server is asked, whichever answers at
// the config's admin address (it may serve another database).
func viaAdmin(ctx context.Context, cfg *Config, server string, e env, fallback string,
	call func(*adminClient) error) (bool, error) {
	if server == "" && cfg.dbGiven {
		return false, nil
	}
	c, err := newAdminClient(ctx, cfg, server, e)
	if errors.Is(err, errAdminOff) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	err = call(c)
	if errors.Is(err, errNoAdminServer) {
		fmt.Fprintf(e.stderr, "mediator: %v; %s\n", err, fallback)
		return false, nil
	}
	return err == nil, err
}

// mustAdmin is viaAdmin for commands that need a running server.
func mustAdmin(ctx context.Context, cfg *Config, server string, e env, call func(*adminClient) error) error {
	c, err := newAdminClient(ctx, cfg, server, e)
	if err != nil {
		return err
	}
	return noServerHint(call(c))
}

// policyReload asks the running mediator to reload its policy files now.
// A policy that fails to parse or fails its cases is refused, with the
// reason, and the old one stays in force; the exit code is then 1.
func policyReload(ctx context.Context, args []string, e env) error {
	fs := newFlags("policy reload", "policy reload [--server URL] [--config FILE]", e.stderr)
	cfgPath := fs.String("config", "", "config file (default: the embedded default)")
	var af adminFlags
	af.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := LoadConfig(*cfgPath, e.lookup)
	if err != nil {
		return err
	}
	var resp reloadResponse
	err = mustAdmin(ctx, cfg, af.server, e, func(c *adminClient) error {
		return c.do(ctx, http.MethodPost, "/policy/reload", nil, &resp)
	})
	if err != nil {
		return fmt.Errorf("policy reload: %w", err)
	}
	what := "unchanged"
	if resp.Changed {
		what = "new version in force"
	}
	fmt.Fprintf(e.stdout, "policy reloaded: %s (version %s)\n", what, resp.Version)
	return nil
}

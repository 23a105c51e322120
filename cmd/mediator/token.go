package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy/token"
	"github.com/mcp-mediator/mediator/store"
)

const tokenUsage = `Usage:
  mediator token mint --agent ID [--role R]... [--task ID] [--ttl 15m] [--owner O]
                      [--confidence 0.9] [--attr k=v]... [--server URL] [--config FILE]
  mediator token revoke (JTI | --task ID | --agent ID) [--reason R] [--server URL] [--config FILE] [--db FILE]

Both act through the admin API of a running mediator (--server, default
admin.listen of the config); when none answers they use the key file or
the database directly.
`

// defaultTTL is the lifetime of a minted token unless --ttl says otherwise
// (capped by auth.max_lifetime).
const defaultTTL = 15 * time.Minute

func cmdToken(ctx context.Context, args []string, e env) error {
	if len(args) > 0 {
		switch args[0] {
		case "mint":
			return tokenMint(ctx, args[1:], e)
		case "revoke":
			return tokenRevoke(ctx, args[1:], e)
		}
	}
	fmt.Fprint(e.stderr, tokenUsage)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		return errHelp
	}
	return &exitError{code: 2, err: errors.New("token: want mint or revoke")}
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// mintFlags are the flags of `token mint`.
type mintFlags struct {
	adminFlags
	config, agent, task, owner, version, function, confidence string
	trustCeiling                                              string
	ttl                                                       time.Duration
	roles, attrs                                              listFlag
	admin                                                     bool
	// headerJSON prints {"Authorization": "Bearer …"} instead of the
	// bare token: a Claude Code headersHelper.
	headerJSON bool
}

func (m *mintFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.config, "config", "", "config file (default: the embedded default)")
	fs.StringVar(&m.agent, "agent", "", "agent id (the token's sub); required")
	fs.Var(&m.roles, "role", "a role of the agent (repeatable)")
	fs.StringVar(&m.task, "task", "", "task id the token is bound to")
	fs.DurationVar(&m.ttl, "ttl", defaultTTL, "lifetime, at most auth.max_lifetime")
	fs.StringVar(&m.owner, "owner", "", "person or team responsible for the agent")
	fs.StringVar(&m.confidence, "confidence", "", "issuer's confidence in the agent, 0..1")
	fs.Var(&m.attrs, "attr", "a passport attribute key=value (repeatable)")
	fs.StringVar(&m.version, "agent-version", "", "the agent's software version")
	fs.StringVar(&m.function, "business-function", "", "what the agent is for, e.g. support")
	fs.StringVar(&m.trustCeiling, "trust-ceiling", "", "the highest behavioural trust level the agent may reach: high, medium, low or none")
	fs.BoolVar(&m.admin, "admin", false, "mint an admin token (role admin, the admin API's own audience) with the key file; it is refused where agents connect")
	fs.BoolVar(&m.headerJSON, "header-json", false, `print {"Authorization": "Bearer TOKEN"} instead of the token: a fresh token each time Claude Code connects, as its headersHelper`)
	m.adminFlags.register(fs)
}

// request turns the flags into what the admin API takes; ttlSet says
// whether --ttl was given (else the default, capped by the maximum).
func (m *mintFlags) request(ttlSet bool) (mintRequest, error) {
	r := mintRequest{Agent: m.agent, Roles: m.roles, Task: m.task, Owner: m.owner,
		AgentVersion: m.version, BusinessFunction: m.function, TrustCeiling: m.trustCeiling}
	if m.agent == "" {
		return r, errors.New("--agent: required; name the agent the token is for")
	}
	if m.confidence != "" {
		c, err := strconv.ParseFloat(m.confidence, 64)
		if err != nil || !(c >= 0 && c <= 1) {
			return r, fmt.Errorf("--confidence %q: use a number between 0 and 1", m.confidence)
		}
		r.Confidence = &c
	}
	for _, kv := range m.attrs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return r, fmt.Errorf("--attr %q: use key=value", kv)
		}
		if r.Attrs == nil {
			r.Attrs = map[string]string{}
		}
		r.Attrs[k] = v
	}
	if ttlSet {
		r.TTL = m.ttl.String()
	}
	return r, nil
}

// tokenMint prints a token signed with the mediator's key, and nothing
// else on stdout, so that $(mediator token mint ...) is the token: minted
// by the running server's admin API, or with the key file when none
// answers.
func tokenMint(ctx context.Context, args []string, e env) error {
	fs := newFlags("token mint", "token mint --agent ID [flags]", e.stderr)
	var m mintFlags
	m.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if m.headerJSON {
		out := e.stdout
		var tok bytes.Buffer
		e.stdout = &tok
		defer func() {
			if tok.Len() > 0 {
				b, _ := json.Marshal(map[string]string{"Authorization": "Bearer " + strings.TrimSpace(tok.String())})
				fmt.Fprintln(out, string(b))
			}
		}()
	}
	if m.admin {
		if m.agent == "" {
			m.agent = cliAdminAgent
		}
		if !slices.Contains(m.roles, adminRole) {
			m.roles = append(m.roles, adminRole)
		}
	}
	req, err := m.request(flagSet(fs, "ttl"))
	if err == nil {
		_, err = req.claims()
	}
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	cfg, err := LoadConfig(m.config, e.lookup)
	if err != nil {
		return err
	}
	if m.admin {
		// Only the key file makes admin tokens: the admin API mints agent
		// tokens, never its own credentials.
		return mintLocalAs(ctx, cfg, req, e, true)
	}
	var resp mintResponse
	done, err := viaAdmin(ctx, cfg, m.server, e, "minting with the key file directly", func(c *adminClient) error {
		return c.do(ctx, http.MethodPost, "/tokens", req, &resp)
	})
	if err != nil {
		return fmt.Errorf("token mint: %w", err)
	}
	if done {
		fmt.Fprintln(e.stdout, resp.Token)
		return nil
	}
	return mintLocalAs(ctx, cfg, req, e, false)
}

// mintLocalAs mints with the key file (created on first use): an admin
// token when admin is set, else an agent token.
func mintLocalAs(ctx context.Context, cfg *Config, req mintRequest, e env, admin bool) error {
	claims, err := req.claims()
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	ttl, err := req.ttl(cfg.Auth.MaxLifetime)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	v, done, err := localVerifier(ctx, cfg, e)
	if err != nil {
		return err
	}
	defer done()
	mint := v.Mint
	if admin {
		mint = v.MintAdmin
	}
	s, err := mint(claims, ttl)
	if err != nil {
		return fmt.Errorf("token mint: %w", err)
	}
	fmt.Fprintln(e.stdout, s)
	return nil
}

// localMinter mints with the local key file (created on first use); done
// releases it.
func localMinter(ctx context.Context, cfg *Config, e env) (mint func(token.Claims, time.Duration) (string, error), done func(), err error) {
	v, done, err := localVerifier(ctx, cfg, e)
	if err != nil {
		return nil, nil, err
	}
	return v.Mint, done, nil
}

// localVerifier is a Verifier over the local key file (created on first
// use); done releases it.
func localVerifier(ctx context.Context, cfg *Config, e env) (*token.Verifier, func(), error) {
	log, closeLog, err := newLogger(LogConfig{Level: "warn", Format: "text"}, e.stderr)
	if err != nil {
		return nil, nil, err
	}
	key, err := cfg.loadKey(log)
	if err != nil {
		_ = closeLog()
		return nil, nil, err
	}
	v, err := token.New(ctx, key, cfg.tokenOptions(log)...)
	if err != nil {
		_ = closeLog()
		return nil, nil, err
	}
	return v, func() { _ = v.Close(); _ = closeLog() }, nil
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// tokenRevoke revokes through the admin API of the running server, which
// refuses the tokens from the next request on; when none answers it
// records the revocation in the database, and every mediator using that
// database refuses the tokens at its next poll (about a second).
func tokenRevoke(ctx context.Context, args []string, e env) error {
	fs := newFlags("token revoke", "token revoke (JTI | --task ID | --agent ID) [--reason R] [--server URL] [--config FILE] [--db FILE]", e.stderr)
	var cf commonFlags
	cf.register(fs)
	var af adminFlags
	af.register(fs)
	task := fs.String("task", "", "revoke every token bound to this task, issued until now")
	agent := fs.String("agent", "", "revoke every token of this agent, issued until now")
	reason := fs.String("reason", "", "why (recorded, and shown to the agent)")
	jti, err := parseRevokeArgs(fs, args)
	if err != nil {
		return err
	}
	r := mediator.Revocation{JTI: jti, TaskID: *task, AgentID: *agent, Reason: *reason, At: timeNow()}
	if n := countSet(r.JTI, r.TaskID, r.AgentID); n != 1 {
		return &exitError{code: 2, err: errors.New("token revoke: name exactly one of a token id (JTI), --task ID or --agent ID")}
	}
	cfg, err := cf.load(e)
	if err != nil {
		return err
	}
	var resp revokeResponse
	done, err := viaAdmin(ctx, cfg, af.server, e, "revoking in the database directly", func(c *adminClient) error {
		return c.do(ctx, http.MethodPost, "/revocations",
			revokeRequest{JTI: r.JTI, Task: r.TaskID, Agent: r.AgentID, Reason: r.Reason}, &resp)
	})
	if err != nil {
		return fmt.Errorf("token revoke: %w", err)
	}
	if done {
		fmt.Fprintf(e.stdout, "revoked %s (at %s); the running mediator refuses it from the next request\n",
			resp.Revoked, resp.At.UTC().Format(time.RFC3339))
		return nil
	}
	path := cfg.path(cfg.Database)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("database %s does not exist: pass the --db or --config of the mediator whose tokens to revoke", path)
	}
	st, err := store.Open(ctx, path)
	if err != nil {
		return fmt.Errorf("database %s: %w", path, err)
	}
	defer st.Close()
	if err := st.Revoke(ctx, r); err != nil {
		return fmt.Errorf("token revoke: %w", err)
	}
	fmt.Fprintf(e.stdout, "revoked %s (at %s); mediators using %s refuse it within about a second\n",
		revokedWhat(r), r.At.UTC().Format(time.RFC3339), path)
	return nil
}

// parseRevokeArgs parses the flags of `token revoke` and returns the JTI
// given as the one positional argument, before or after the flags.
func parseRevokeArgs(fs *flag.FlagSet, args []string) (string, error) {
	jti, rest := "", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		jti, rest = args[0], args[1:]
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", errHelp
		}
		return "", &exitError{code: 2, err: err}
	}
	switch {
	case fs.NArg() == 1 && jti == "":
		jti = fs.Arg(0)
	case fs.NArg() > 0:
		return "", &exitError{code: 2, err: fmt.Errorf("unexpected argument %q", fs.Arg(fs.NArg()-1))}
	}
	return jti, nil
}

func countSet(vs ...string) int {
	n := 0
	for _, v := range vs {
		if v != "" {
			n++
		}
	}
	return n
}

// revokedWhat describes a revocation for the operator.
func revokedWhat(r mediator.Revocation) string {
	switch {
	case r.JTI != "":
		return fmt.Sprintf("token %q", r.JTI)
	case r.TaskID != "":
		return fmt.Sprintf("every token of task %q issued until now", r.TaskID)
	}
	return fmt.Sprintf("every token of agent %q issued until now", r.AgentID)
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mcp-mediator/mediator/approvals"
	"github.com/mcp-mediator/mediator/approvals/web"
	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy"
	"github.com/mcp-mediator/mediator/store"
	"golang.org/x/term"
)

// ApprovalsConfig is the approvals: block of mediator.yaml.
type ApprovalsConfig struct {
	// URL is the approval page's address as agents and approvers reach it
	// (default http://LISTEN/approvals); stdio mediators name it in their
	// "approval pending" errors.
	URL string `yaml:"url"`
	// Hold is how long a call waits for a decision before the agent is told
	// to repeat it later (default 45s; keep it under the client's timeout).
	Hold time.Duration `yaml:"hold"`
	// Expiry is how long an approval stays pending (default 15m).
	Expiry time.Duration `yaml:"expiry"`
	// TwoPersonRules names policy rules whose calls need two approvers.
	TwoPersonRules []string `yaml:"two_person_rules"`
	// SecureCookies marks the page's cookies Secure on plain HTTP too (set
	// it behind a TLS-terminating proxy).
	SecureCookies bool `yaml:"secure_cookies"`
	// Elicit also asks the agent's own user, through MCP URL elicitation
	// pointing at the page, when the client supports it (local single-user
	// setups). The decision is still made on the page.
	Elicit bool `yaml:"elicit"`
	// RefuseWithheld refuses to approve a call whose arguments the page
	// withholds in whole or in part (a secret-like value under a secret
	// key, a detected secret in free text): the approver must deny it.
	RefuseWithheld bool          `yaml:"refuse_withheld"`
	Webhook        WebhookConfig `yaml:"webhook"`
	SSO            SSOConfig     `yaml:"sso"`
}

// WebhookConfig posts each new pending approval.
type WebhookConfig struct {
	URL string `yaml:"url"`
	// URLEnv names the environment variable holding the URL instead, for
	// URLs that are secrets themselves (Slack's and Teams' incoming
	// webhooks).
	URLEnv string `yaml:"url_env"`
	// Format is the body: mediator (default; the signed JSON event),
	// slack or teams (a chat message with a Review link).
	Format string `yaml:"format"`
	// SecretEnv names the environment variable holding the HMAC secret
	// (required for the mediator format; the chat formats are signed too
	// when it is set).
	SecretEnv string `yaml:"secret_env"`
	// Attempts bounds the deliveries of one notification (default 5).
	Attempts int `yaml:"attempts"`
}

// validate names each bad webhook field and the fix.
func (c WebhookConfig) validate() []error {
	var errs []error
	f := approvals.WebhookFormat(c.Format)
	if c.Format != "" && !approvals.ValidWebhookFormat(f) {
		errs = append(errs, fmt.Errorf("approvals.webhook.format: %q; use mediator, slack or teams", c.Format))
	}
	switch {
	case c.URL != "" && c.URLEnv != "":
		errs = append(errs, errors.New("approvals.webhook: give url or url_env, not both"))
	case c.URL != "" && !isHTTPURL(c.URL):
		errs = append(errs, fmt.Errorf("approvals.webhook.url: not an http(s) URL (for a URL that is a secret, put it in a variable and name it in url_env)"))
	}
	if (c.URL != "" || c.URLEnv != "") && c.SecretEnv == "" && (f == "" || f == approvals.FormatMediator) {
		errs = append(errs, errors.New("approvals.webhook: secret_env must name the variable holding the signing secret "+
			"(the mediator format is verified by its signature; format: slack or teams needs none)"))
	}
	return errs
}

// SSOConfig trusts an identity header from an authenticating proxy.
type SSOConfig struct {
	Header string `yaml:"header"`
	// Proxies are the proxy's addresses or CIDR prefixes; the header is
	// ignored on requests from anywhere else.
	Proxies []string `yaml:"proxies"`
	// Role is given to users without an approver account (default auditor).
	Role string `yaml:"role"`
}

func defaultApprovals() ApprovalsConfig {
	return ApprovalsConfig{Hold: approvals.DefaultHold, Expiry: approvals.DefaultExpiry, Webhook: WebhookConfig{Attempts: 5}}
}

// validate names each bad field and the fix.
func (c ApprovalsConfig) validate() []error {
	var errs []error
	if c.Hold < 0 || c.Hold > 10*time.Minute {
		errs = append(errs, fmt.Errorf("approvals.hold: %s; use 0s..10m (clients give up after about 60s)", c.Hold))
	}
	if c.Expiry < time.Minute || c.Expiry > 7*24*time.Hour || c.Expiry <= c.Hold {
		errs = append(errs, fmt.Errorf("approvals.expiry: %s; use 1m..168h, longer than approvals.hold", c.Expiry))
	}
	if c.URL != "" && !isHTTPURL(c.URL) {
		errs = append(errs, fmt.Errorf("approvals.url: %q is not an http(s) URL", c.URL))
	}
	errs = append(errs, c.Webhook.validate()...)
	if c.Webhook.Attempts < 1 || c.Webhook.Attempts > 20 {
		errs = append(errs, fmt.Errorf("approvals.webhook.attempts: %d; use 1..20", c.Webhook.Attempts))
	}
	if _, err := c.SSO.parse(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// parse returns the page's SSO settings, nil when SSO is off.
func (c SSOConfig) parse() (*web.SSO, error) {
	if c.Header == "" && len(c.Proxies) == 0 {
		return nil, nil
	}
	if c.Header == "" || len(c.Proxies) == 0 {
		return nil, errors.New("approvals.sso: set both header and proxies (the addresses of the proxy that sets the header)")
	}
	sso := &web.SSO{Header: c.Header, Role: mediator.ApproverRole(c.Role)}
	if c.Role != "" && !mediator.ValidApproverRole(sso.Role) {
		return nil, fmt.Errorf("approvals.sso.role: %q; use approver, admin or auditor", c.Role)
	}
	for _, p := range c.Proxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			ip, ierr := netip.ParseAddr(p)
			if ierr != nil {
				return nil, fmt.Errorf("approvals.sso.proxies: %q is neither an address nor a CIDR prefix", p)
			}
			pfx = netip.PrefixFrom(ip, ip.BitLen())
		}
		sso.Proxies = append(sso.Proxies, pfx)
	}
	return sso, nil
}

// pageURL is the approval page's public address.
func (c *Config) pageURL() string {
	if c.Approvals.URL != "" {
		return strings.TrimRight(c.Approvals.URL, "/")
	}
	return "http://" + c.Listen + web.Prefix
}

// history adapts the store's records query for the approvals package.
func history(st *store.Store) approvals.HistoryFunc {
	return func(ctx context.Context, agentID, sessionID string, limit int) ([]mediator.ChainRecord, error) {
		return st.Records(ctx, store.Filter{AgentID: agentID, SessionID: sessionID, Limit: limit})
	}
}

// newQueue builds the approval queue and starts its background work
// (expiry, webhook deliveries) until ctx ends.
func newQueue(ctx context.Context, cfg *Config, st *store.Store, pol *policy.Engine, log *slog.Logger, lookup func(string) (string, bool)) *approvals.Queue {
	ac := cfg.Approvals
	opts := []approvals.Option{approvals.WithRuleText(ruleText(pol)), approvals.WithHold(ac.Hold), approvals.WithExpiry(ac.Expiry),
		approvals.WithBaseURL(cfg.pageURL()), approvals.WithTwoPersonRules(ac.TwoPersonRules),
		approvals.WithHistory(history(st)), approvals.WithRecorder(st), approvals.WithLogger(log),
		approvals.WithElicitation(ac.Elicit), approvals.WithTasks(st), approvals.WithRefuseWithheld(ac.RefuseWithheld)}
	if w := newWebhook(ac.Webhook, log, lookup); w != nil {
		go w.Run(ctx)
		opts = append(opts, approvals.WithWebhook(w))
	}
	q := approvals.New(st, opts...)
	go q.RunExpiry(ctx, 5*time.Second)
	return q
}

// newWebhook is the configured webhook, nil when there is none. A URL
// variable that is empty or not an http(s) URL is logged as an error
// (without the URL, which may be a secret) and no webhook runs.
func newWebhook(c WebhookConfig, log *slog.Logger, lookup func(string) (string, bool)) *approvals.Webhook {
	u := c.URL
	if c.URLEnv != "" {
		u, _ = lookup(c.URLEnv)
		if !isHTTPURL(u) {
			log.Error("approvals.webhook: the url_env variable is empty or not an http(s) URL; no notifications are sent "+
				"(set it before mediator serve starts)", "url_env", c.URLEnv)
			return nil
		}
	}
	if u == "" {
		return nil
	}
	secret, _ := lookup(c.SecretEnv)
	if secret == "" && c.SecretEnv != "" {
		log.Warn("approvals.webhook: the secret variable is empty; deliveries are signed with an empty key",
			"secret_env", c.SecretEnv)
	}
	return approvals.NewWebhook(u, secret, approvals.WithWebhookLogger(log), approvals.WithWebhookFormat(approvals.WebhookFormat(c.Format)),
		approvals.WithWebhookRetries(c.Attempts, time.Second))
}

// ruleText says pol's rules in words for approvers.
func ruleText(pol *policy.Engine) approvals.RuleTextFunc {
	return func(rule string) *mediator.PolicyText {
		rt, ok := pol.RuleText(rule)
		if !ok {
			return nil
		}
		return &mediator.PolicyText{Sentence: rt.Sentence, Note: rt.Note, Where: rt.Where, Condition: rt.Condition}
	}
}

// mountApprovals serves the approver page under /approvals on mux.
func (a *app) mountApprovals(ctx context.Context, mux *http.ServeMux) error {
	sso, err := a.cfg.Approvals.SSO.parse()
	if err != nil {
		return err
	}
	tr := &toolReviewer{pins: a.store, audit: a.store, revet: a.reg.Revet, log: a.log}
	h, err := web.New(web.Config{Queue: a.queue, Accounts: a.store, History: history(a.store), Tools: tr, SSO: sso, PublicURL: a.cfg.Approvals.URL,
		SecureCookies: a.cfg.Approvals.SecureCookies, Logger: a.log, Done: ctx.Done()})
	if err != nil {
		return fmt.Errorf("approval page: %w", err)
	}
	mux.Handle(web.Prefix+"/", h)
	mux.Handle(web.Prefix, h)
	a.log.Info("approval page", "url", a.cfg.pageURL()+"/")
	return nil
}

const approverUsage = `Usage:
  mediator approver add NAME --role approver|admin|auditor [--db FILE] [--config FILE]
  mediator approver passwd NAME [--db FILE] [--config FILE]
  mediator approver remove NAME [--db FILE] [--config FILE]
  mediator approver list [--json] [--db FILE] [--config FILE]

add and passwd ask for the password (10 to 72 bytes) twice on a terminal, without
showing it; in a script they read the first line of standard input, e.g. from a
file or a secret store (not an echo your shell's history keeps):
  mediator approver add alice --role approver < /run/secrets/alice-password
`

// cmdApprover manages approver accounts in the database.
func cmdApprover(ctx context.Context, args []string, e env) error {
	if len(args) == 0 || !slices.Contains([]string{"add", "passwd", "remove", "list"}, args[0]) {
		fmt.Fprint(e.stderr, approverUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return errHelp
		}
		return &exitError{code: 2, err: errors.New("approver: want add, passwd, remove or list")}
	}
	sub, rest := args[0], args[1:]
	var name string
	if sub != "list" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return &exitError{code: 2, err: fmt.Errorf("approver %s: name the approver, e.g. mediator approver %s alice", sub, sub)}
		}
		name, rest = rest[0], rest[1:]
	}
	fs := newFlags("approver "+sub, "approver "+sub, e.stderr)
	var cf commonFlags
	cf.register(fs)
	role := fs.String("role", "approver", "add: approver, admin or auditor")
	asJSON := fs.Bool("json", false, "list: print JSON")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	cfg, err := cf.load(e)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.path(cfg.Database), store.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return fmt.Errorf("database %s: %w", cfg.path(cfg.Database), err)
	}
	defer st.Close()
	return runApprover(ctx, st, sub, name, mediator.ApproverRole(*role), *asJSON, e)
}

func runApprover(ctx context.Context, st *store.Store, sub, name string, role mediator.ApproverRole, asJSON bool, e env) error {
	switch sub {
	case "add":
		return approverAdd(ctx, st, name, role, e)
	case "passwd":
		return approverPasswd(ctx, st, name, e)
	case "remove":
		if err := st.DeleteApprover(ctx, name); err != nil {
			return fmt.Errorf("approver remove: %w", err)
		}
		fmt.Fprintf(e.stdout, "removed approver %s\n", name)
		return nil
	}
	return approverList(ctx, st, asJSON, e)
}

func approverAdd(ctx context.Context, st *store.Store, name string, role mediator.ApproverRole, e env) error {
	if !mediator.ValidApproverRole(role) {
		return &exitError{code: 2, err: fmt.Errorf("approver add: --role %q; use approver, admin or auditor", role)}
	}
	if !validApproverName(name) {
		return &exitError{code: 2, err: fmt.Errorf("approver add: name %q; use 1..64 letters, digits, . _ @ -", name)}
	}
	if _, err := st.Approver(ctx, name); err == nil {
		return fmt.Errorf("approver add: %s exists; use mediator approver passwd to change the password", name)
	}
	hash, err := readPassword(e, name)
	if err != nil {
		return err
	}
	if err := st.PutApprover(ctx, mediator.ApproverAccount{Name: name, Role: role, PasswordHash: hash}); err != nil {
		return fmt.Errorf("approver add: %w", err)
	}
	fmt.Fprintf(e.stdout, "added approver %s (%s)\n", name, role)
	return nil
}

func approverPasswd(ctx context.Context, st *store.Store, name string, e env) error {
	acct, err := st.Approver(ctx, name)
	if err != nil {
		return fmt.Errorf("approver passwd: %w", err)
	}
	if acct.PasswordHash, err = readPassword(e, name); err != nil {
		return err
	}
	if err := st.PutApprover(ctx, acct); err != nil {
		return fmt.Errorf("approver passwd: %w", err)
	}
	fmt.Fprintf(e.stdout, "changed the password of %s\n", name)
	return nil
}

func approverList(ctx context.Context, st *store.Store, asJSON bool, e env) error {
	list, err := st.Approvers(ctx)
	if err != nil {
		return fmt.Errorf("approver list: %w", err)
	}
	if asJSON {
		return printJSON(e.stdout, list)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tUPDATED")
	for _, a := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Name, a.Role, a.Updated.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// readPassword reads the password of name and hashes it: on a terminal it
// asks twice without echoing; otherwise it takes the first line of stdin
// (mediator approver add … < /run/secrets/password).
func readPassword(e env, name string) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		pw, err := askPassword(f, e.stderr, name)
		if err != nil {
			return "", err
		}
		hash, err := approvals.HashPassword(pw)
		if err != nil {
			return "", &exitError{code: 2, err: fmt.Errorf("approver: %w", err)}
		}
		return hash, nil
	}
	sc := bufio.NewScanner(e.stdin)
	sc.Buffer(make([]byte, 0, 256), 4096)
	if !sc.Scan() {
		return "", &exitError{code: 2, err: errors.New("approver: give the password on standard input (one line)")}
	}
	hash, err := approvals.HashPassword(strings.TrimRight(sc.Text(), "\r"))
	if err != nil {
		return "", &exitError{code: 2, err: fmt.Errorf("approver: %w", err)}
	}
	return hash, nil
}

// askPassword reads a password twice from the terminal f with echo off;
// the echo is off before the first prompt is written.
func askPassword(f *os.File, w io.Writer, name string) (string, error) {
	readLine, restore, err := quietTerminal(f)
	if err != nil {
		return "", fmt.Errorf("approver: %w", err)
	}
	defer restore()
	read := func(prompt string) (string, error) {
		fmt.Fprint(w, prompt)
		b, err := readLine()
		fmt.Fprintln(w)
		if err != nil {
			return "", fmt.Errorf("approver: reading the password from the terminal: %w", err)
		}
		return strings.TrimRight(string(b), "\r"), nil
	}
	first, err := read(fmt.Sprintf("Password for %s (10 to 72 bytes; not shown): ", name))
	if err != nil {
		return "", err
	}
	again, err := read("The same password again: ")
	if err != nil {
		return "", err
	}
	if first != again {
		return "", &exitError{code: 2, err: errors.New("approver: the two passwords differ; nothing was changed")}
	}
	return first, nil
}

func validApproverName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@-", r)
		if !ok {
			return false
		}
	}
	return true
}

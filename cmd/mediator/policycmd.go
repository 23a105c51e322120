package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy"
	"github.com/mcp-mediator/mediator/tools"
)

const policyUsage = `Usage:
  mediator policy test CASES.yaml [--config FILE]
      run the cases against the configured policy; exit 1 if any fails
  mediator policy explain --agent ID [--role R]... (--tool NAME | --resource URI | --prompt NAME)
                          [--args JSON] [--at TIME] [--ip IP] [--alert LEVEL] [--intent VERDICT]
                          [--server S] [--risk R] [--data-class D] [--read-only] [--destructive]
                          [--confidence F] [--owner O] [--business-function F] [--attr K=V]... [--listing]
                          [--admin-url URL | --offline] [--config FILE]
      print every attribute of the request and the rule that decides it; a tool's risk, data
      class and hints come from the running mediator's live catalog when its admin API answers
  mediator policy suggest --upstream NAME [--subject S] [--allow-egress TOOL]... [--cases FILE]
                          [--server URL] [--config FILE]
      draft one rule per tool of an upstream from its hints (read-only: allow; destructive or
      no hints: approve; open-world: deny unless --allow-egress names it), check the draft against
      the configured policy, and write cases for policy test; the lines go to stdout for review
  mediator policy reload [--server URL] [--config FILE]
      make the running mediator reload its policy files now (through its admin API);
      a policy that fails to load is refused with the reason, and the old one stays in force
`

func cmdPolicy(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, policyUsage)
		return &exitError{code: 2, err: errors.New("policy: want test, explain, suggest or reload")}
	}
	switch args[0] {
	case "test":
		return policyTest(ctx, args[1:], e)
	case "explain":
		return policyExplain(ctx, args[1:], e)
	case "suggest": // suggest.go
		return policySuggest(ctx, args[1:], e)
	case "reload": // admin API (adminclient.go)
		return policyReload(ctx, args[1:], e)
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, policyUsage)
		return errHelp
	}
	fmt.Fprint(e.stderr, policyUsage)
	return &exitError{code: 2, err: fmt.Errorf("policy: unknown subcommand %q; want test, explain, suggest or reload", args[0])}
}

// parseInterspersed parses flags that may come before or after the
// positional arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, &exitError{code: 2, err: err}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// cliEngine loads the configured policy for a command, without the
// config's own cases (the command may be testing exactly those).
func cliEngine(configPath string, e env) (*policy.Engine, *Config, policy.Files, error) {
	cfg, err := LoadConfig(configPath, e.lookup)
	if err != nil {
		return nil, nil, policy.Files{}, err
	}
	f, err := cfg.policyFiles()
	if err != nil {
		return nil, nil, f, err
	}
	f.Cases, f.CasesPath = nil, ""
	opts, err := cfg.engineOptions(slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return nil, nil, f, err
	}
	eng, err := policy.NewFromFiles(f, opts...)
	if err != nil {
		return nil, nil, f, fmt.Errorf("policy: %w", err)
	}
	return eng, cfg, f, nil
}

func policyTest(_ context.Context, args []string, e env) error {
	fs := newFlags("policy test", "policy test CASES.yaml [--config FILE]", e.stderr)
	configPath := fs.String("config", "", "config file naming the policy and its environment (default: the embedded default)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("policy test: want exactly one cases file")}
	}
	eng, _, f, err := cliEngine(*configPath, e)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(pos[0])
	if err != nil {
		return fmt.Errorf("policy test: %w", err)
	}
	cf, err := policy.ParseCases(data, pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "policy %s (version %s)\n", f.PolicyPath, eng.Version())
	return reportCases(eng.Test(cf), e.stdout)
}

// reportCases prints one line per case and a total; any failure is exit 1.
func reportCases(results []policy.CaseResult, out io.Writer) error {
	for _, r := range results {
		fmt.Fprintln(out, r.Summary())
	}
	failed := len(policy.Failed(results))
	fmt.Fprintf(out, "%d passed, %d failed\n", len(results)-failed, failed)
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d policy cases failed", failed, len(results))}
	}
	return nil
}

// explainFlags are the flags of `policy explain`.
type explainFlags struct {
	config, agent, owner, function, trust, task string
	roles, attrs                                multiFlag
	confidence                                  float64
	tool, resource, prompt, server, risk, class string
	readOnly, destructive, listing, offline     bool
	args, at, ip, alert, intent, adminURL       string
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func (x *explainFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&x.config, "config", "", "config file naming the policy and its environment (default: the embedded default)")
	fs.StringVar(&x.agent, "agent", "", "agent id (required)")
	fs.Var(&x.roles, "role", "agent role (repeatable)")
	fs.Var(&x.attrs, "attr", "passport attribute KEY=VALUE (repeatable)")
	fs.StringVar(&x.owner, "owner", "", "agent owner")
	fs.StringVar(&x.function, "business-function", "", "agent business function")
	fs.Float64Var(&x.confidence, "confidence", 0, "issuer's confidence in the agent, 0..1 (default: no claim, which counts as 0)")
	fs.StringVar(&x.trust, "trust", "", "behavioural trust level: high (default), medium, low or none")
	fs.StringVar(&x.task, "task", "", "task id of the credential")
	fs.StringVar(&x.tool, "tool", "", "catalog tool name, e.g. demo__transfer_funds")
	fs.StringVar(&x.resource, "resource", "", "resource URI")
	fs.StringVar(&x.prompt, "prompt", "", "catalog prompt name")
	fs.StringVar(&x.server, "server", "", "upstream name (default: from the config's upstream prefixes)")
	fs.StringVar(&x.risk, "risk", "", "risk: low, medium, high, critical (default: the config's override)")
	fs.StringVar(&x.class, "data-class", "", "data class: public, internal, confidential, pii, financial (default: the config's override)")
	fs.BoolVar(&x.readOnly, "read-only", false, "the upstream marks the tool read-only")
	fs.BoolVar(&x.destructive, "destructive", false, "the upstream marks the tool destructive")
	fs.BoolVar(&x.listing, "listing", false, "ask as a listing does: could this ever be allowed?")
	fs.StringVar(&x.args, "args", "{}", "the call's arguments as a JSON object")
	fs.StringVar(&x.at, "at", "", "time of the call: RFC 3339, or 2026-03-03T10:00 in the policy's zone (default: now)")
	fs.StringVar(&x.ip, "ip", "", "client address (default: none, as over stdio)")
	fs.StringVar(&x.alert, "alert", "normal", "alert level: normal, elevated, incident")
	fs.StringVar(&x.intent, "intent", "no_intent", "intent verdict: no_intent, in_scope, out_of_scope")
	fs.StringVar(&x.adminURL, "admin-url", "", "a running mediator's admin API, whose live catalog gives the tool's risk, data class and hints (default: admin.listen of the config)")
	fs.BoolVar(&x.offline, "offline", false, "ask no running mediator: take the tool from the config and the flags alone")
}

func policyExplain(ctx context.Context, args []string, e env) error {
	fs := newFlags("policy explain", "policy explain --agent ID --tool NAME [flags]", e.stderr)
	var x explainFlags
	x.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	eng, cfg, f, err := cliEngine(x.config, e)
	if err != nil {
		return err
	}
	req, s, err := x.request(cfg)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("policy explain: %w", err)}
	}
	catalog, err := x.liveTarget(ctx, cfg, e, &req.Target)
	if err != nil {
		return fmt.Errorf("policy explain: %w", err)
	}
	printExplanation(e.stdout, eng.Explain(ctx, req, s), f.PolicyPath, catalog)
	return nil
}

// liveTarget takes a tool's server, risk, data class and hints from the
// live catalog of the mediator whose admin API answers (--admin-url, or
// the config's admin.listen), as the running chain sees the tool; a flag
// given still wins. It says where the tool's attributes came from.
func (x *explainFlags) liveTarget(ctx context.Context, cfg *Config, e env, t *mediator.Target) (string, error) {
	const fromConfig = "the config and the flags"
	if x.offline || t.Kind != mediator.KindTool {
		return fromConfig, nil
	}
	var list upstreamList
	var base string
	done, err := viaAdmin(ctx, cfg, x.adminURL, e,
		"explaining with the config's risk and data class and no hints from the upstream (pass --read-only or --destructive as the upstream says, or start mediator serve)",
		func(c *adminClient) error {
			base = c.base
			return c.do(ctx, http.MethodGet, "/upstreams", nil, &list)
		})
	if err != nil {
		return "", fmt.Errorf("reading the live catalog: %w (pass --offline to explain from the config alone)", err)
	}
	if !done {
		return fromConfig, nil
	}
	for _, tv := range list.Tools {
		if tv.Name != t.Name {
			continue
		}
		if tv.State != "" && tv.State != mediator.PinPinned {
			fmt.Fprintf(e.stderr, "mediator: %s is withheld by the mediator at %s (%s): a call to it is refused before policy decides; %s\n",
				t.Name, base, tv.State, tv.Reason)
		}
		t.Server, t.Original = tv.Server, tv.Original
		if x.server != "" {
			t.Server = x.server
		}
		if x.risk == "" {
			t.Risk = tv.Risk
		}
		if x.class == "" {
			t.DataClass = tv.DataClass
		}
		t.Hints = tv.Hints
		if x.readOnly {
			t.Hints.ReadOnly = &x.readOnly
		}
		if x.destructive {
			t.Hints.Destructive = &x.destructive
		}
		return "the live catalog of the mediator at " + base, nil
	}
	fmt.Fprintf(e.stderr, "mediator: the mediator at %s has no tool %s in its catalog, so a call to it is refused as unknown_tool; explaining with the config alone\n",
		base, t.Name)
	return fromConfig + " (the live catalog has no such tool)", nil
}

// request builds the authorization request the flags describe.
func (x *explainFlags) request(cfg *Config) (mediator.AuthzRequest, policy.Situation, error) {
	var req mediator.AuthzRequest
	if x.agent == "" {
		return req, policy.Situation{}, errors.New("--agent is required")
	}
	t, err := x.target(cfg)
	if err != nil {
		return req, policy.Situation{}, err
	}
	agent, err := x.agentOf()
	if err != nil {
		return req, policy.Situation{}, err
	}
	req = mediator.AuthzRequest{Agent: agent, Target: t, Listing: x.listing, RemoteIP: x.ip,
		Intent: mediator.Intent{Verdict: mediator.IntentVerdict(x.intent), Score: -1}} // -1: no judge scored it, as in the chain
	switch req.Intent.Verdict {
	case mediator.IntentNone, mediator.IntentInScope, mediator.IntentOutOfScope:
	default:
		return req, policy.Situation{}, fmt.Errorf("--intent %q: use no_intent, in_scope or out_of_scope", x.intent)
	}
	if !x.listing {
		if err := json.Unmarshal([]byte(x.args), &req.Arguments); err != nil || req.Arguments == nil {
			return req, policy.Situation{}, fmt.Errorf("--args: want a JSON object such as '{\"amount\": 5000}'")
		}
	}
	s, err := x.situation(cfg)
	return req, s, err
}

func (x *explainFlags) agentOf() (mediator.Agent, error) {
	if x.trust != "" {
		if _, err := mediator.ParseTrustLevel(x.trust); err != nil {
			return mediator.Agent{}, fmt.Errorf("--trust: %w", err)
		}
	}
	a := mediator.Agent{ID: x.agent, Roles: x.roles, Owner: x.owner, BusinessFunction: x.function,
		Confidence: x.confidence, TrustLevel: x.trust, TaskID: x.task}
	for _, kv := range x.attrs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return a, fmt.Errorf("--attr %q: want KEY=VALUE", kv)
		}
		if a.Attrs == nil {
			a.Attrs = map[string]string{}
		}
		a.Attrs[k] = v
	}
	return a, nil
}

func (x *explainFlags) situation(cfg *Config) (policy.Situation, error) {
	var s policy.Situation
	var err error
	if s.Alert, err = policy.ParseAlertLevel(x.alert); err != nil {
		return s, fmt.Errorf("--alert: %w", err)
	}
	if x.at != "" {
		env, err := cfg.Policy.Environment.envConfig()
		if err != nil {
			return s, err
		}
		if s.Time, err = policy.ParseTime(x.at, env.Zone); err != nil {
			return s, fmt.Errorf("--at: %w", err)
		}
	}
	return s, nil
}

// target resolves the object, taking server, risk and data class from the
// config's upstreams unless the flags give them.
func (x *explainFlags) target(cfg *Config) (mediator.Target, error) {
	t, err := x.kindName()
	if err != nil {
		return t, err
	}
	up, original := upstreamOf(cfg, t)
	t.Original, t.Server = original, x.server
	if up != nil {
		t.Server = up.Name
		t.Risk, t.DataClass = up.Tools[original].Risk, up.Tools[original].DataClass
		if t.Kind == mediator.KindResource {
			t.DataClass = up.Resources.DataClass
		}
	}
	if x.server != "" {
		t.Server = x.server
	}
	if x.risk != "" {
		t.Risk = mediator.Risk(x.risk)
		if !mediator.ValidRisk(t.Risk) {
			return t, fmt.Errorf("--risk %q: use low, medium, high or critical", x.risk)
		}
	}
	if x.class != "" {
		t.DataClass = mediator.DataClass(x.class)
		if !mediator.ValidDataClass(t.DataClass) {
			return t, fmt.Errorf("--data-class %q: use public, internal, confidential, pii or financial", x.class)
		}
	}
	if x.readOnly {
		t.Hints.ReadOnly = &x.readOnly
	}
	if x.destructive {
		t.Hints.Destructive = &x.destructive
	}
	return t, nil
}

func (x *explainFlags) kindName() (mediator.Target, error) {
	var t mediator.Target
	n := 0
	for _, c := range []struct {
		k mediator.Kind
		v string
	}{{mediator.KindTool, x.tool}, {mediator.KindResource, x.resource}, {mediator.KindPrompt, x.prompt}} {
		if c.v != "" {
			n++
			t.Kind, t.Name = c.k, c.v
		}
	}
	if n != 1 {
		return t, errors.New("give exactly one of --tool, --resource or --prompt")
	}
	return t, nil
}

// upstreamOf finds the configured upstream serving t: by name prefix for
// tools and prompts, by URI scheme = upstream name for resources.
func upstreamOf(cfg *Config, t mediator.Target) (*tools.Config, string) {
	for i := range cfg.Upstreams {
		u := &cfg.Upstreams[i]
		if t.Kind == mediator.KindResource {
			if strings.HasPrefix(t.Name, u.Name+"://") {
				return u, t.Name
			}
			continue
		}
		if p := u.EffectivePrefix(); p != "" && strings.HasPrefix(t.Name, p) {
			return u, strings.TrimPrefix(t.Name, p)
		}
	}
	return nil, t.Name
}

// printExplanation prints the decision, every attribute, and every rule in
// the order Casbin tries them.
func printExplanation(out io.Writer, x policy.Explanation, source, catalog string) {
	d := x.Decision
	decided := string(d.Effect) + " by rule " + d.Rule
	switch {
	case errors.As(x.Err, new(*mediator.ArgumentError)):
		decided = "deny: " + x.Err.Error() + " (the call's mistake)"
	case x.Err != nil:
		decided = "deny: policy error: " + x.Err.Error()
	case d.Rule == "":
		decided = string(d.Effect) + " (no rule matched: denied by default)"
	}
	fmt.Fprintf(out, "decision  %s\nreason    %s\npolicy    %s (version %s)\ncatalog   %s\n", decided, d.Reason, source, d.PolicyVersion, catalog)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nattributes")
	for _, f := range x.Attributes {
		fmt.Fprintf(tw, "  %s\t%s\n", f.Name, f.Value)
	}
	fmt.Fprintln(tw, "\nrules, in the order Casbin tries them (the first match decides; → marks it)")
	fmt.Fprintln(tw, "  \tDECISION\tRULE\tLINE\tSUBJECT\tOBJECT\tCONDITION\tWHEN")
	for _, r := range x.Rules {
		mark := ""
		if r.Decisive {
			mark = "→"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", mark, r.Rule.Decision, r.Rule.Name, r.Rule.Line,
			yesNo(r.Subject), yesNo(r.Object), dash(r.Condition), dash(r.Rule.Cond))
	}
	_ = tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

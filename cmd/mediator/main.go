// Command mediator is MCP Mediator: an MCP server that stands between LLM
// agents and the tools they call, checks every call against policy, and
// records the whole chain in a tamper-evident audit log.
//
// Usage:
//
//	mediator serve   [--config FILE] [--listen ADDR] [--admin-listen ADDR] [--db FILE]
//	mediator stdio   [--config FILE] [--db FILE]
//	mediator audit   verify|export [--db FILE] [--since T]
//	mediator audit   show (--session ID | --task ID) [--json] [--db FILE]
//	mediator task    start --agent ID --purpose TEXT [--tools GLOB]... [--constraint ARG:KIND=V]... [--ttl 30m]
//	mediator task    list|show|end|resume [ID] [--server URL] [--db FILE]
//	mediator approver add|passwd|remove|list [--db FILE]
//	mediator upstream list [--config FILE] [--json] [--server URL]
//	mediator upstream add NAME (--command CMD [--arg A]... | --url URL) [--risk TOOL=LEVEL]... [--server URL]
//	mediator upstream remove NAME [--server URL]
//	mediator token   mint --agent ID [--role R]... [--task ID] [--ttl 15m] [--config FILE]
//	mediator token   revoke (JTI | --task ID | --agent ID) [--reason R] [--db FILE]
//	mediator keys    jwks [--config FILE]
//	mediator policy  test CASES.yaml [--config FILE]
//	mediator policy  explain --agent ID --tool NAME [--args JSON] [--at TIME] [--config FILE]
//	mediator policy  reload [--server URL] [--config FILE]
//	mediator alert   set normal|elevated|incident [--config FILE] [--db FILE]
//	mediator claude-code setup [--project DIR] [--config FILE] [--url URL] [--http] [--print]
//	mediator hook claude-code [--url URL] [--config FILE] [--timeout 60s]
//	mediator version
//
// Run "mediator help" or "mediator COMMAND --help" for details.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// versionLine is the version with the build's VCS revision and time and
// its Go version, as the build recorded them.
func versionLine() string {
	line := "mediator " + version
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return line
	}
	vcs := map[string]string{}
	for _, s := range bi.Settings {
		vcs[s.Key] = s.Value
	}
	if rev := vcs["vcs.revision"]; rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if vcs["vcs.modified"] == "true" {
			rev += "+modified"
		}
		line += " (" + rev
		if t := vcs["vcs.time"]; t != "" {
			line += ", " + t
		}
		line += ")"
	}
	return line + " " + bi.GoVersion
}

// exitError carries an exit code other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// env is everything a command may take from the process: main is the only
// place that reads the environment or exits.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookup         func(string) (string, bool)
	self           string // this executable
}

func main() {
	ctx, stop := signalContext()
	defer stop()
	self, _ := os.Executable()
	e := env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, lookup: os.LookupEnv, self: self}
	err := Run(ctx, os.Args[1:], e)
	var ee *exitError
	switch {
	case err == nil:
	case errors.Is(err, errHelp):
		os.Exit(0)
	case errors.As(err, &ee):
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(os.Stderr, "mediator:", ee.err)
		}
		os.Exit(ee.code)
	default:
		fmt.Fprintln(os.Stderr, "mediator:", err)
		os.Exit(1)
	}
}

// signalContext is cancelled by the first SIGINT/SIGTERM; a second one
// exits at once.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ch
		cancel()
		<-ch
		fmt.Fprintln(os.Stderr, "mediator: second signal, exiting now")
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

var errHelp = errors.New("help requested")

const usage = `mediator — the MCP tool-call control plane

Usage:
  mediator serve    [--config FILE] [--listen ADDR] [--db FILE]   serve agents over streamable HTTP at /mcp
                    [--admin-listen ADDR|off]                     and the admin API (loopback) at /admin/v1
  mediator stdio    [--config FILE] [--db FILE]                   serve one agent over stdin/stdout
  mediator audit verify [--db FILE]                               prove the audit chain is intact (exit 1 if not)
  mediator audit export [--db FILE] [--since TIME]                print the audit chain as JSON Lines
  mediator audit show (--session ID | --task ID) [--json] [--db FILE]
                                                                  the chain of a session or task as a tree:
                                                                  task, prompt, call, decision, approval, output
  mediator task start --agent ID --purpose TEXT [--tools GLOB]... [--constraint ARG:KIND=V]... [--ttl 30m]
                                                                  store a task (intent) and print a token bound to it
  mediator task list|show ID|end ID|resume ID                      manage tasks (resume lifts a drift suspension)
  mediator approver add|passwd|remove|list NAME [--role R]         manage the people who decide approvals
  mediator upstream list [--config FILE] [--json] [--server URL]  show the merged tool catalog
  mediator upstream add NAME (--command CMD [--arg A]... | --url URL) [--header K=V]... [--env K=V]...
                    [--risk TOOL=LEVEL]... [--data-class TOOL=CLASS]... [--server URL]
                                                                  register an upstream with the running mediator (stored)
  mediator upstream remove NAME [--server URL]                    drain and remove a registered upstream
  mediator token mint --agent ID [--role R]... [--task ID] [--ttl 15m] [--config FILE]
                                                                  print a signed agent token (only the token, on stdout)
  mediator token revoke (JTI | --task ID | --agent ID) [--reason R] [--config FILE] [--db FILE]
                                                                  revoke tokens: at once through the admin API, else
                                                                  stored, and running mediators refuse them within ~1s
  mediator keys jwks [--config FILE]                              print the public JWKS of the mediator's signing key
  mediator policy test CASES.yaml [--config FILE]                 run policy test cases (exit 1 on any mismatch)
  mediator policy explain --agent ID [--role R]... --tool NAME [--args JSON] [--at TIME] [--ip IP] [--alert LEVEL]
                                                                  print every attribute of a request and the rule that decides it
  mediator policy reload [--server URL] [--config FILE]           reload the running mediator's policy now (exit 1 if refused)
  mediator alert set normal|elevated|incident [--config FILE] [--db FILE]
                                                                  set the alert level: at once through the admin API,
                                                                  else stored, and running mediators apply it within ~1s
  mediator alert show [--config FILE] [--db FILE]                 print the alert level
  mediator agent list|show ID [--json] [--config FILE] [--db FILE]
                                                                  agents' trust levels and behaviour baselines
  mediator agent trust set ID LEVEL --reason TEXT [--ceiling LEVEL]
                                                                  set an agent's trust (high, medium, low, none)
  mediator agent baseline reset|freeze|unfreeze ID --reason TEXT  re-learn, freeze or resume an agent's baseline
  mediator behaviour eval [--seed N] [--agents N]                 replay the seeded drift simulator through the engine
  mediator claude-code setup [--project DIR] [--config FILE] [--url URL] [--http] [--print]
                                                                  write the project's Claude Code hooks: Bash, Edit,
                                                                  Write, WebFetch, ... decided by the mediator
  mediator hook claude-code [--url URL] [--config FILE] [--timeout 60s]
                                                                  Claude Code's PreToolUse/PostToolUse hook (stdin → stdout)
  mediator call TOOL [--args JSON] [--url URL] [--config FILE]     call one tool through a running mediator as an agent
                                                                  (bearer token from $MEDIATOR_TOKEN); exit 1 when refused
  mediator version                                                print the version
  mediator completion bash|zsh                                    print a shell completion script (source <(mediator completion bash))

Without --config the embedded default runs: the demo upstream over ./sandbox,
the example policy, ./mediator.db, and http://127.0.0.1:8080/mcp, where a
request without a token is the agent local-agent. A config file requires
tokens unless it sets auth.anonymous.

token, alert, policy reload and upstream act on a running mediator through
its admin API (http://127.0.0.1:8081/admin/v1 unless admin.listen says
otherwise; --server URL to name another). They authenticate with
MEDIATOR_ADMIN_TOKEN, or with a 2-minute admin token minted with the local
key file. When no server answers, token and alert act on the key file and
database directly, and upstream list starts the upstreams itself.
Run "mediator COMMAND --help" for a command's flags.
`

// Run executes one command line.
func Run(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return &exitError{code: 2, err: errors.New("")}
	}
	switch args[0] {
	case "serve":
		return cmdServe(ctx, args[1:], e)
	case "stdio":
		return cmdStdio(ctx, args[1:], e)
	case "audit":
		return cmdAudit(ctx, args[1:], e)
	case "approver":
		return cmdApprover(ctx, args[1:], e)
	case "upstream":
		return cmdUpstream(ctx, args[1:], e)
	case "token":
		return cmdToken(ctx, args[1:], e)
	case "task":
		return cmdTask(ctx, args[1:], e)
	case "keys":
		return cmdKeys(ctx, args[1:], e)
	case "policy":
		return cmdPolicy(ctx, args[1:], e)
	case "alert":
		return cmdAlert(ctx, args[1:], e)
	case "agent":
		return cmdAgent(ctx, args[1:], e)
	case "behaviour", "behavior":
		return cmdBehaviour(ctx, args[1:], e)
	case "hook":
		return cmdHook(ctx, args[1:], e)
	case "call":
		return cmdCall(ctx, args[1:], e)
	case "claude-code":
		return cmdClaudeCode(ctx, args[1:], e)
	case "completion":
		return cmdCompletion(ctx, args[1:], e)
	case "version", "--version":
		fmt.Fprintln(e.stdout, versionLine())
		return nil
	case "demo-upstream":
		return cmdDemoUpstream(ctx, args[1:], e)
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage)
		return nil
	}
	fmt.Fprint(e.stderr, usage)
	return &exitError{code: 2, err: fmt.Errorf("unknown command %q", args[0])}
}

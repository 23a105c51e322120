// Command agent is a minimal LLM agent that works through MCP Mediator. It
// declares the user's purpose with the mediator's declare_intent tool,
// offers the mediator's tools to an OpenAI-compatible chat model (OpenAI,
// Ollama, vLLM, ...), makes the calls the model asks for with the user's
// prompt in each call's _meta, and ends with complete_task, so that the
// mediator records the whole chain prompt → call → decision → output.
//
// Usage:
//
//	agent [flags] PROMPT...
//
// The final answer goes to stdout; a short trace of the calls to stderr.
// See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sashabaranov/go-openai"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}

// options are the command line after flags and environment.
type options struct {
	mediator, token        string
	baseURL, model, apiKey string
	purpose                string
	maxSteps               int
	verbose                bool
	prompt                 string
}

const usageHead = `Usage: agent [flags] PROMPT...

A minimal LLM agent that calls tools only through MCP Mediator: it declares
the prompt's purpose (declare_intent), lets the model call the mediator's
tools with the prompt attached to every call, and completes the task
(complete_task). The answer goes to stdout, a trace of the calls to stderr.

Flags:
`

// parseArgs reads flags (before or after the prompt words) and fills the
// unset ones from the environment. Secrets (token, API key) are never
// flag defaults, so that -h cannot print them.
func parseArgs(args []string, stderr io.Writer, lookup func(string) (string, bool)) (options, error) {
	var o options
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.mediator, "mediator", "http://127.0.0.1:8080/mcp", "the mediator's streamable-HTTP MCP endpoint")
	fs.StringVar(&o.token, "token", "", "bearer token for the mediator (default $MEDIATOR_TOKEN; none: the mediator's anonymous identity, if configured)")
	fs.StringVar(&o.baseURL, "base-url", "https://api.openai.com/v1", "OpenAI-compatible API base URL (env OPENAI_BASE_URL), e.g. http://127.0.0.1:11434/v1 for Ollama")
	fs.StringVar(&o.model, "model", "", "chat model (env OPENAI_MODEL), e.g. gpt-4o-mini or llama3.1; required")
	fs.StringVar(&o.apiKey, "api-key", "", "API key of the model server (default $OPENAI_API_KEY; never printed)")
	fs.StringVar(&o.purpose, "purpose", "", "the purpose to declare (default: the prompt)")
	fs.IntVar(&o.maxSteps, "max-steps", 8, "model turns that may call tools before the model must answer")
	fs.BoolVar(&o.verbose, "v", false, "log diagnostics to stderr")

	var words []string
	for {
		if err := fs.Parse(args); err != nil {
			return o, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			words = append(words, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		words, args = append(words, rest[0]), rest[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, env := range map[string]struct {
		dst *string
		key string
	}{
		"token":    {&o.token, "MEDIATOR_TOKEN"},
		"base-url": {&o.baseURL, "OPENAI_BASE_URL"},
		"model":    {&o.model, "OPENAI_MODEL"},
		"api-key":  {&o.apiKey, "OPENAI_API_KEY"},
	} {
		if v, ok := lookup(env.key); ok && v != "" && !set[name] {
			*env.dst = v
		}
	}
	o.prompt = strings.TrimSpace(strings.Join(words, " "))
	switch {
	case o.prompt == "":
		fs.Usage()
		return o, errors.New("no prompt: pass what the agent should do as the argument(s)")
	case o.model == "":
		return o, errors.New("no model: pass --model or set OPENAI_MODEL (e.g. gpt-4o-mini, or llama3.1 for Ollama)")
	case o.maxSteps < 1 || o.maxSteps > 100:
		return o, fmt.Errorf("--max-steps %d: use 1..100", o.maxSteps)
	case o.mediator == "":
		return o, errors.New("--mediator: the mediator's URL is required")
	}
	return o, nil
}

// run is the command; it returns the exit code: 0 done, 1 failed, 2 usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	o, err := parseArgs(args, stderr, lookup)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "agent: %v\n", err)
		return 2
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg := openai.DefaultConfig(o.apiKey)
	cfg.BaseURL = strings.TrimRight(o.baseURL, "/")
	model := openai.NewClientWithConfig(cfg)

	mc, err := Connect(ctx, o.mediator, o.token)
	if err != nil {
		fmt.Fprintf(stderr, "agent: %v\n", err)
		return 1
	}
	defer mc.Close()

	a := &Agent{MCP: mc, Model: model, ModelName: o.model, Purpose: o.purpose, MaxSteps: o.maxSteps, Log: log}
	tr, err := a.Run(ctx, o.prompt)
	printTrace(stderr, tr)
	if tr.Answer != "" {
		fmt.Fprintln(stdout, tr.Answer)
	} else if err == nil {
		fmt.Fprintln(stderr, "agent: the model finished without an answer")
	}
	if err != nil {
		fmt.Fprintf(stderr, "agent: %v\n", err)
		return 1
	}
	return 0
}

// printTrace writes the short trace of a run.
func printTrace(w io.Writer, tr Transcript) {
	task := tr.TaskID
	if task == "" {
		task = "(no task id returned)"
	}
	fmt.Fprintf(w, "agent: task %s\n", task)
	for i, c := range tr.Calls {
		status := "ok"
		if c.IsError {
			status = oneLine(c.Result, 160)
			if c.Local {
				status += " (answered by the agent; not sent)"
			}
		}
		fmt.Fprintf(w, "  %d. [step %d] %s %s -> %s (%s)\n", i+1, c.Step, oneLine(c.Tool, 80), oneLine(c.Arguments, 160),
			status, c.Duration.Round(1e6))
	}
	completed := "not completed"
	if tr.Completed {
		completed = "completed"
	}
	fmt.Fprintf(w, "agent: %d model turns, %d tool calls, task %s\n", tr.Steps, len(tr.Calls), completed)
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/mediator/claudecode"
)

// claudeHookPath is where `mediator serve` answers Claude Code's hooks.
const claudeHookPath = "/hooks/claude-code"

// hookMargin is how much sooner than its timeout the hook answers, so
// that Claude Code reads a "deny" instead of killing a silent hook (a
// killed hook lets the tool run).
const hookMargin = 5 * time.Second

// cmdHook is `mediator hook claude-code`: Claude Code's PreToolUse and
// PostToolUse command hook.
func cmdHook(ctx context.Context, args []string, e env) error {
	if len(args) == 0 || args[0] != "claude-code" {
		return &exitError{code: 2, err: errors.New("usage: mediator hook claude-code [--url URL] [--config FILE] [--db FILE] [--timeout 60s]")}
	}
	fs := newFlags("hook claude-code", "hook claude-code [--url URL] [--token-env NAME] [--config FILE] [--db FILE] [--timeout 60s]", e.stderr)
	var cf commonFlags
	cf.register(fs)
	url := fs.String("url", "", "ask a running `mediator serve` at this base URL (http://127.0.0.1:8080); default: decide on the database directly")
	tokenEnv := fs.String("token-env", "MEDIATOR_TOKEN", "environment variable holding the agent's token, sent to --url")
	timeout := fs.Duration("timeout", 60*time.Second, "the hook's timeout in Claude Code's settings; the answer comes 5s before it")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	wait := max(*timeout-hookMargin, time.Second)
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	body, rerr := io.ReadAll(io.LimitReader(e.stdin, claudecode.MaxEventBytes+1))
	var answer []byte
	switch {
	case rerr != nil:
		answer = claudecode.Deny("the hook could not read Claude Code's event: " + rerr.Error())
	case *url != "":
		token, _ := e.lookup(*tokenEnv)
		answer = askServer(ctx, *url, token, wait, body)
	default:
		answer = decideHere(ctx, cf, e, wait, body)
	}
	_, err := e.stdout.Write(answer)
	return err
}

// askServer passes the event to a running mediator and returns its answer;
// when there is none, a denial that says why.
func askServer(ctx context.Context, base, token string, wait time.Duration, body []byte) []byte {
	u := strings.TrimRight(base, "/") + claudeHookPath + "?timeout=" + (wait - time.Second).String()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return claudecode.Deny(fmt.Sprintf("--url %q is not usable: %v", base, err))
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return claudecode.Deny(fmt.Sprintf("the mediator at %s did not answer (%v); start it with `mediator serve`, or drop --url to decide on the database directly", base, err))
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK || !claudecode.IsDecision(out) {
		return claudecode.Deny(fmt.Sprintf("the mediator at %s answered HTTP %d, not a hook decision; is it a mediator of this version?", base, resp.StatusCode))
	}
	return out
}

// decideHere decides the event in this process, on the database of the
// config: the identity is the config's agent, as for `mediator stdio`.
func decideHere(ctx context.Context, cf commonFlags, e env, wait time.Duration, body []byte) []byte {
	cfg, err := cf.load(e)
	if err != nil {
		return claudecode.Deny("the mediator's config could not be loaded: " + err.Error())
	}
	cfg.Auth.stdio = true
	cfg.Upstreams, cfg.notices = nil, nil // a tool use needs no upstream
	if cfg.Log.Level == "info" {
		cfg.Log.Level = "warn" // Claude Code shows a hook's stderr
	}
	cfg.Approvals.Hold = min(cfg.Approvals.Hold, wait-time.Second)
	a, err := openApp(ctx, cfg, env{stdin: bytes.NewReader(nil), stdout: io.Discard, stderr: e.stderr, lookup: e.lookup, self: e.self})
	if err != nil {
		return claudecode.Deny("the mediator could not start: " + err.Error())
	}
	defer a.close()
	creds := mediator.Credentials{Transport: "stdio"}
	ev, perr := claudecode.ParseBytes(body)
	if perr != nil {
		perr = a.srv.RefuseToolUse(ctx, creds, mediator.ToolUse{Tool: a.srv.AgentToolName(claudecode.Client, ev.ToolName),
			Session: ev.SessionID, UseID: ev.ToolUseID, Client: claudecode.Client, Workspace: ev.Cwd}, perr)
	}
	return claudecode.Answer(ctx, a.srv, creds, ev, perr)
}

// cmdClaudeCode is `mediator claude-code setup`.
func cmdClaudeCode(_ context.Context, args []string, e env) error {
	if len(args) == 0 || args[0] != "setup" {
		return &exitError{code: 2, err: errors.New("usage: mediator claude-code setup [--project DIR] [--config FILE] [--url URL] [--http] [--print]")}
	}
	fs := newFlags("claude-code setup", "claude-code setup [--project DIR] [--config FILE] [--url URL] [--http] [--print]", e.stderr)
	project := fs.String("project", ".", "the project whose .claude/settings.json gets the hooks")
	config := fs.String("config", "", "the mediator config the hook and `mediator stdio` use (default: the embedded default)")
	url := fs.String("url", "", "a running `mediator serve` (http://127.0.0.1:8080) the hooks ask; default: decide on the database directly")
	useHTTP := fs.Bool("http", false, "with --url: Claude Code's http hook type posts to the mediator (no process per tool use)")
	printOnly := fs.Bool("print", false, "print the settings instead of writing them")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *useHTTP && *url == "" {
		return &exitError{code: 2, err: errors.New("--http needs --url: the address of the running `mediator serve`")}
	}
	cfgPath := ""
	if *config != "" {
		p, err := filepath.Abs(*config)
		if err != nil {
			return err
		}
		if _, err := LoadConfig(p, e.lookup); err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		cfgPath = p
	}
	cfg, err := LoadConfig(cfgPath, e.lookup)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(*project)
	if err != nil {
		return err
	}
	hooks := claudeHooks(e.self, cfgPath, *url, *useHTTP, newAgentTools(cfg.Builtins).names())
	file := filepath.Join(dir, ".claude", "settings.json")
	settings, err := mergeSettings(file, hooks)
	if err != nil {
		return err
	}
	if *printOnly {
		_, err := e.stdout.Write(settings)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	if err := writeFileAtomic(file, settings, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote the mediator's PreToolUse and PostToolUse hooks to %s\n\n", file)
	fmt.Fprintln(e.stdout, "Connect Claude Code to the mediator's MCP tools with:")
	if *url != "" {
		fmt.Fprintf(e.stdout, "  claude mcp add --scope project --transport http mediator %s/mcp --header \"Authorization: Bearer $MEDIATOR_TOKEN\"\n",
			strings.TrimRight(*url, "/"))
		fmt.Fprintln(e.stdout, "\nThe hooks send $MEDIATOR_TOKEN (mint one with `mediator token mint --agent ID`).")
	} else {
		line := "  claude mcp add --scope project mediator -- " + shellQuote(e.self) + " stdio"
		if cfgPath != "" {
			line += " --config " + shellQuote(cfgPath)
		}
		fmt.Fprintln(e.stdout, line)
	}
	fmt.Fprintln(e.stdout, "\nFor headless runs, the same decisions as a permission prompt:")
	fmt.Fprintln(e.stdout, "  claude -p --permission-prompt-tool mcp__mediator__permission_prompt \"...\"")
	return nil
}

// claudeHooks are the hook entries of the mediator for settings.json.
func claudeHooks(self, cfgPath, url string, useHTTP bool, tools []string) map[string]any {
	const timeout = 60
	var hook map[string]any
	if useHTTP {
		hook = map[string]any{"type": "http", "url": strings.TrimRight(url, "/") + claudeHookPath + "?timeout=55s",
			"headers": map[string]any{"Authorization": "Bearer $MEDIATOR_TOKEN"}, "allowedEnvVars": []any{"MEDIATOR_TOKEN"},
			"timeout": timeout}
	} else {
		cmd := shellQuote(self) + " hook claude-code --timeout 60s"
		if cfgPath != "" {
			cmd += " --config " + shellQuote(cfgPath)
		}
		if url != "" {
			cmd += " --url " + shellQuote(url)
		}
		hook = map[string]any{"type": "command", "command": cmd, "timeout": timeout}
	}
	entry := []any{map[string]any{"matcher": strings.Join(tools, "|"), "hooks": []any{hook}}}
	return map[string]any{"PreToolUse": entry, "PostToolUse": entry}
}

// mergeSettings returns the settings file with the mediator's hooks in
// place of any earlier ones, keeping everything else.
func mergeSettings(file string, hooks map[string]any) ([]byte, error) {
	settings := map[string]any{}
	raw, err := os.ReadFile(file)
	switch {
	case err == nil && len(bytes.TrimSpace(raw)) > 0:
		if err := json.Unmarshal(raw, &settings); err != nil {
			return nil, fmt.Errorf("%s is not a JSON object (%w); fix or move it, then run setup again", file, err)
		}
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	all, _ := settings["hooks"].(map[string]any)
	if all == nil {
		all = map[string]any{}
	}
	for event, entries := range hooks {
		old, _ := all[event].([]any)
		var kept []any
		for _, en := range old {
			if !isMediatorHook(en) {
				kept = append(kept, en)
			}
		}
		all[event] = append(kept, entries.([]any)...)
	}
	settings["hooks"] = all
	out, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// isMediatorHook reports a settings entry written by setup.
func isMediatorHook(entry any) bool {
	m, _ := entry.(map[string]any)
	hs, _ := m["hooks"].([]any)
	for _, h := range hs {
		hm, _ := h.(map[string]any)
		cmd, _ := hm["command"].(string)
		u, _ := hm["url"].(string)
		if strings.Contains(cmd, " hook claude-code") || strings.Contains(u, claudeHookPath) {
			return true
		}
	}
	return false
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-:=@+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeFileAtomic writes data to a temporary file beside name and renames
// it over name.
func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

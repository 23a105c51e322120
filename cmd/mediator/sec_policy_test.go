package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-mediator/mediator/mediator"
)

// Issue 14, finding 7: the example policy guarded the sandbox's secrets/
// folder for read_file and write_file only, so prompts/get
// demo__summarize_file {"path": "secrets/key.txt"} returned the secret to an
// agent with no roles at all. This runs that attack against a real mediator
// serving the demo upstream under the embedded example policy.
func TestExamplePolicyGuardsSecretsInPrompts(t *testing.T) {
	t.Parallel()
	p := startServe(t, intentConfig)
	box := filepath.Join(p.Dir, "sandbox")
	if err := os.MkdirAll(filepath.Join(box, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	const secret = "sk-live-SECRET-never-shown"
	if err := os.WriteFile(filepath.Join(box, "secrets", "key.txt"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	tok := mintCLI(t, p.Dir, "--agent", "stranger", "--config", filepath.Join(p.Dir, "mediator.yaml"))
	c := tokenClient(t, p.URL, tok)

	cases := []struct {
		name, path string
		want       string // "" = allowed
	}{
		{"the secret file", "secrets/key.txt", "sandbox-no-secrets-prompt"},
		{"the secret file spelt another way", "notes/../secrets/./key.txt", "sandbox-no-secrets-prompt"},
		{"an ordinary file", "notes/todo.md", ""},
	}
	for _, tc := range cases {
		req := mcp.GetPromptRequest{}
		req.Params.Name = "demo__summarize_file"
		req.Params.Arguments = map[string]string{"path": tc.path}
		res, err := c.GetPrompt(t.Context(), req)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v; want the prompt", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: prompts/get succeeded (%d messages); want a denial by %s", tc.name, len(res.Messages), tc.want)
			if strings.Contains(promptText(res), secret) {
				t.Errorf("%s: the secret reached the agent", tc.name)
			}
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not name rule %s", tc.name, err, tc.want)
		}
	}

	// Listing the folder is refused too: file names are data.
	res := callTool(t, c, "demo__list_files", map[string]any{"path": "secrets"})
	if !res.IsError || strings.Contains(resultText(res), "key.txt") {
		t.Errorf("list_files secrets: isError=%v %q; want a denial", res.IsError, resultText(res))
	}

	denied := 0
	for _, r := range exportRecords(t, p.Dir, p.DB) {
		if r.AgentID == "stranger" && r.Decision.Effect == mediator.EffectDeny && strings.HasPrefix(r.Decision.Rule, "sandbox-no-secrets") {
			denied++
		}
	}
	if denied != 3 {
		t.Errorf("denial records by sandbox-no-secrets*: %d; want 3 (two prompts, one listing)", denied)
	}
}

func promptText(r *mcp.GetPromptResult) string {
	var b strings.Builder
	for _, m := range r.Messages {
		switch c := m.Content.(type) {
		case mcp.TextContent:
			b.WriteString(c.Text)
		case mcp.EmbeddedResource:
			if tr, ok := c.Resource.(mcp.TextResourceContents); ok {
				b.WriteString(tr.Text)
			}
		}
	}
	return b.String()
}

// TestE2EMintRefusesLookalikeIdentities is finding 10 of issue 14: an
// owner "alice\u200b" or a Cyrillic look-alike of alice slipped past the
// separation of duties. `mediator token mint` refuses them, naming why, and
// mints the plain name.
func TestE2EMintRefusesLookalikeIdentities(t *testing.T) {
	t.Parallel()
	p := startServe(t, intentConfig)
	cfg := filepath.Join(p.Dir, "mediator.yaml")
	for _, tc := range []struct{ flag, value string }{
		{"--owner", "alice\u200b"},
		{"--owner", "\u0430lice"}, // Cyrillic а
		{"--agent", "bot\u202e"},
		{"--owner", "ali\u00adce"}, // soft hyphen
	} {
		out, stderr, code := runMediator(t, p.Dir, "token", "mint", "--agent", "bot", tc.flag, tc.value, "--config", cfg, "--server", noServer(t))
		if tc.flag == "--agent" {
			out, stderr, code = runMediator(t, p.Dir, "token", "mint", "--agent", tc.value, "--config", cfg, "--server", noServer(t))
		}
		if code == 0 || out != "" || !strings.Contains(stderr, "identity") {
			t.Errorf("token mint %s %q: exit %d, stdout %q, stderr %s", tc.flag, tc.value, code, out, stderr)
		}
	}
	if tok := mintCLI(t, p.Dir, "--agent", "bot", "--owner", "alice", "--config", cfg); tok == "" {
		t.Fatal("no token for a plain owner")
	}
}

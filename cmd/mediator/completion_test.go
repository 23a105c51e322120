package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// complete runs the bash completion of the built binary for a command
// line (the last word is the one being completed) in a real bash.
func complete(t *testing.T, script string, words ...string) []string {
	t.Helper()
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = quoteSh(w)
	}
	cmd := exec.Command("bash", "--norc", "--noprofile", "-c", `source "$1" || exit 9
COMP_WORDS=(`+strings.Join(quoted, " ")+`)
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_mediator
printf '%s\n' "${COMPREPLY[@]}"`, "bash", script)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash completion of %q: %v\n%s", words, err, out)
	}
	return strings.Fields(string(out))
}

func TestCompletionBash(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed: the bash completion is not checked")
	}
	out, errOut, code := runMediator(t, t.TempDir(), "completion", "bash")
	if code != 0 || !strings.Contains(out, "complete -o filenames -o bashdefault -F _mediator mediator") {
		t.Fatalf("completion bash: exit %d\n%s\n%s", code, out, errOut)
	}
	script := filepath.Join(t.TempDir(), "mediator.bash")
	if err := os.WriteFile(script, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		words []string
		want  []string // all present
		not   []string // none present
	}{
		{[]string{"mediator", "au"}, []string{"audit"}, []string{"serve"}},
		{[]string{"mediator", ""}, []string{"serve", "stdio", "call", "completion", "version", "approver", "policy"}, nil},
		{[]string{"mediator", "audit", ""}, []string{"verify", "export", "show"}, []string{"mint"}},
		{[]string{"mediator", "task", "re"}, []string{"resume"}, []string{"start"}},
		{[]string{"mediator", "token", "mint", "--a"}, []string{"--agent"}, []string{"--db"}},
		{[]string{"mediator", "token", "revoke", "--"}, []string{"--task", "--agent", "--reason", "--db", "--help"}, []string{"--ttl"}},
		{[]string{"mediator", "serve", "--l"}, []string{"--listen"}, nil},
		{[]string{"mediator", "serve", "--admin"}, []string{"--admin-listen"}, nil},
		{[]string{"mediator", "upstream", "add", "--da"}, []string{"--data-class"}, nil},
		{[]string{"mediator", "completion", "z"}, []string{"zsh"}, []string{"bash"}},
		{[]string{"mediator", "call", "demo__echo", "--ar"}, []string{"--args"}, nil},
	}
	for _, tc := range cases {
		got := complete(t, script, tc.words...)
		for _, w := range tc.want {
			if !strings.Contains(" "+strings.Join(got, " ")+" ", " "+w+" ") {
				t.Errorf("completing %q: %q lacks %s", tc.words, got, w)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(" "+strings.Join(got, " ")+" ", " "+w+" ") {
				t.Errorf("completing %q: %q offers %s", tc.words, got, w)
			}
		}
	}
	// Every command the completion offers is one the binary knows.
	for _, c := range complete(t, script, "mediator", "") {
		if _, errOut, _ := runMediator(t, t.TempDir(), c, "--help"); strings.Contains(errOut, "unknown command") {
			t.Errorf("the completion offers %q, which mediator does not know: %s", c, errOut)
		}
	}
}

func TestCompletionZshAndErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"completion"}, 2, "name one shell: bash or zsh"},
		{[]string{"completion", "fish"}, 2, `unknown shell "fish": bash or zsh`},
		{[]string{"completion", "--help"}, 0, "source <(mediator completion bash)"},
	} {
		out, errOut, code := runMediator(t, t.TempDir(), tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("mediator %s: exit %d, want %d with %q\n%s%s", strings.Join(tc.args, " "), code, tc.code, tc.want, out, errOut)
		}
	}
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("zsh is not installed (apt-get install zsh): the zsh completion is not checked; the bash one is")
	}
	out, errOut, code := runMediator(t, t.TempDir(), "completion", "zsh")
	if code != 0 {
		t.Fatalf("completion zsh: exit %d: %s", code, errOut)
	}
	script := filepath.Join(t.TempDir(), "_mediator")
	if err := os.WriteFile(script, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(zsh, "-f", "-c", `source "$1" && (( $+functions[_mediator] )) && [[ ${_comps[mediator]} == _bash_complete* ]]`, "zsh", script)
	cmd.Dir, cmd.Env = t.TempDir(), append(os.Environ(), "HOME="+t.TempDir())
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("zsh could not load the completion: %v\n%s", err, b)
	}
}

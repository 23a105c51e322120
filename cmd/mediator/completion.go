package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

const completionUsage = `Usage: mediator completion bash|zsh

Prints a shell completion script for mediator's commands, subcommands and
flags. Load it in the current shell, or at every start:

  source <(mediator completion bash)        # bash; or add the line to ~/.bashrc
  source <(mediator completion zsh)         # zsh; or add the line to ~/.zshrc

The words come from mediator's own usage text, so they follow the binary.
`

// cmdCompletion prints the completion script of a shell.
func cmdCompletion(_ context.Context, args []string, e env) error {
	if len(args) != 1 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 1 {
			fmt.Fprint(e.stdout, completionUsage)
			return nil
		}
		fmt.Fprint(e.stderr, completionUsage)
		return &exitError{code: 2, err: errors.New("name one shell: bash or zsh")}
	}
	words := completionWords(usage)
	switch args[0] {
	case "bash":
		fmt.Fprint(e.stdout, bashCompletion(words))
	case "zsh":
		// zsh runs the bash function through bashcompinit, which every
		// zsh since 4.2 ships.
		fmt.Fprint(e.stdout, "#compdef mediator\nautoload -U +X compinit && { (( $+functions[compdef] )) || compinit; }\n"+
			"autoload -U +X bashcompinit && bashcompinit\n"+bashCompletion(words))
	default:
		fmt.Fprint(e.stderr, completionUsage)
		return &exitError{code: 2, err: fmt.Errorf("unknown shell %q: bash or zsh", args[0])}
	}
	return nil
}

// cmdWords are the words that may follow a command: its subcommands and
// its flags (flags by "cmd" and by "cmd sub").
type cmdWords struct {
	commands []string
	subs     map[string][]string
	flags    map[string][]string
}

// completionDescCol is the column of the usage text's descriptions.
const completionDescCol = 66

var (
	completionFlagRe = regexp.MustCompile(`--[a-z][a-z0-9-]*`)
	completionSubRe  = regexp.MustCompile(`^[a-z][a-z-]*$`)
)

// completionWords reads the commands, subcommands and flags from the
// usage text: every line "  mediator CMD [SUB|SUB...] ... --flag ...",
// flags on the lines that continue it included.
func completionWords(text string) cmdWords {
	w := cmdWords{subs: map[string][]string{}, flags: map[string][]string{}}
	var cmd, sub string
	add := func(m map[string][]string, k string, vs ...string) {
		for _, v := range vs {
			if !slices.Contains(m[k], v) {
				m[k] = append(m[k], v)
			}
		}
	}
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if head := strings.Fields(trimmed); len(head) >= 2 && strings.HasPrefix(line, "  mediator ") {
			// The syntax, up to the description: the usage aligns
			// descriptions at column completionDescCol, after a gap.
			syntax := line
			if len(line) > completionDescCol && strings.HasSuffix(line[:completionDescCol], "  ") {
				syntax = line[:completionDescCol]
			}
			f := strings.Fields(syntax)
			cmd, sub = f[1], ""
			if !slices.Contains(w.commands, cmd) {
				w.commands = append(w.commands, cmd)
			}
			if len(f) >= 3 && completionSubRe.MatchString(f[2]) {
				add(w.subs, cmd, f[2])
				sub = f[2]
			} else if len(f) >= 3 && strings.Contains(f[2], "|") {
				// "list|show ID|end ID": the first word of each choice.
				for _, choice := range strings.Split(strings.Join(f[2:], " "), "|") {
					if first := strings.Fields(choice); len(first) > 0 && completionSubRe.MatchString(first[0]) {
						add(w.subs, cmd, first[0])
					}
				}
			}
		} else if !strings.HasPrefix(line, "    ") || cmd == "" {
			cmd, sub = "", "" // the end of the command lines
			continue
		}
		// Descriptions name no flags: every flag on the line is the
		// command's.
		flags := completionFlagRe.FindAllString(trimmed, -1)
		add(w.flags, cmd, flags...)
		if sub != "" {
			add(w.flags, cmd+" "+sub, flags...)
		}
	}
	for _, extra := range []string{"completion", "help"} {
		if !slices.Contains(w.commands, extra) {
			w.commands = append(w.commands, extra)
		}
	}
	w.subs["completion"] = []string{"bash", "zsh"}
	for k := range w.flags {
		w.flags[k] = append(w.flags[k], "--help")
	}
	return w
}

// bashCompletion is the bash completion function of words: the command
// first, then its subcommand, then flags (of the subcommand when the
// usage gives it its own line, else of the command); a flag's value and
// anything else are completed as file names.
func bashCompletion(w cmdWords) string {
	var b strings.Builder
	b.WriteString("# mediator completion (bash): source <(mediator completion bash)\n")
	b.WriteString("_mediator() {\n")
	b.WriteString("\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd=${COMP_WORDS[1]} sub=${COMP_WORDS[2]} words=\n")
	b.WriteString("\tif [ \"$COMP_CWORD\" -eq 1 ]; then\n")
	fmt.Fprintf(&b, "\t\tCOMPREPLY=($(compgen -W %s -- \"$cur\"))\n\t\treturn\n\tfi\n", shellWord(strings.Join(w.commands, " ")))
	b.WriteString("\tif [ \"$COMP_CWORD\" -eq 2 ] && [ \"${cur#-}\" = \"$cur\" ]; then\n\t\tcase $cmd in\n")
	for _, c := range sortedKeys(w.subs) {
		fmt.Fprintf(&b, "\t\t%s) COMPREPLY=($(compgen -W %s -- \"$cur\")); return ;;\n", shellWord(c), shellWord(strings.Join(w.subs[c], " ")))
	}
	b.WriteString("\t\tesac\n\tfi\n")
	b.WriteString("\tif [ \"${cur#-}\" != \"$cur\" ]; then\n\t\tcase \"$cmd $sub\" in\n")
	keys := sortedKeys(w.flags)
	// "cmd sub" patterns before "cmd *".
	slices.SortStableFunc(keys, func(a, b string) int { return strings.Count(b, " ") - strings.Count(a, " ") })
	for _, k := range keys {
		pat := shellWord(k)
		if !strings.Contains(k, " ") {
			pat = shellWord(k) + "\" \"*"
		}
		fmt.Fprintf(&b, "\t\t%s) words=%s ;;\n", pat, shellWord(strings.Join(w.flags[k], " ")))
	}
	b.WriteString("\t\tesac\n\t\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n\t\treturn\n\tfi\n")
	b.WriteString("\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n}\n")
	b.WriteString("complete -o filenames -o bashdefault -F _mediator mediator\n")
	return b.String()
}

// shellWord quotes s for the shell in double quotes (the words are
// mediator's own: letters, digits, dashes, spaces).
func shellWord(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(s) + `"`
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

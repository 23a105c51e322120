// Package shell reads a shell command the way a shell would, so that policy
// can decide an agent's command by what it runs (the programs, the pipes
// into a shell, the files it changes) instead of by regular expressions
// over its text, which a second command behind ";", "$(...)", a backtick,
// a newline or a here-document slips past.
//
// The parser is mvdan.cc/sh (bash syntax). A command that does not parse,
// or is longer than MaxBytes, is not guessed at: Analysis.Error says why,
// and policy refuses it.
package shell

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// MaxBytes is the longest command that is parsed.
const MaxBytes = 64 << 10

// maxDepth bounds nested shells (sh -c "bash -c '...'") and evals.
const maxDepth = 4

// maxItems bounds each list of an Analysis.
const maxItems = 256

// Analysis is what a command does, as far as can be told before it runs.
type Analysis struct {
	// Words are the words of the first simple command, quotes removed;
	// a word with an expansion is kept as written ("$HOME/x").
	Words []string
	// Programs are the programs it runs, by base name, in order, each
	// once: through pipes, lists, subshells, substitutions, wrappers
	// (sudo, env, xargs, timeout, nice, ...) and nested sh -c / eval.
	Programs []string
	// Commands is the number of simple commands.
	Commands int
	// Compound: more than one command (";", "&&", "||", "|", "&", a
	// newline, a subshell, a substitution, a loop or a function).
	Compound bool
	// Substitution: $(...), backticks, <(...) or >(...).
	Substitution bool
	// Heredoc: a here-document or here-string feeds a command.
	Heredoc bool
	// Dynamic: the program to run is computed ($CMD, $(...)) and cannot
	// be known before the command runs.
	Dynamic bool
	// PipeToShell: text is run as code by a shell or interpreter reading
	// it from a pipe, a substitution or a here-document (… | sh,
	// sh -c "$(…)", bash <(…), eval "$(…)", python - <<EOF).
	PipeToShell bool
	// Network: it runs a network tool (curl, wget, nc, ssh, ...) or
	// opens /dev/tcp or /dev/udp.
	Network bool
	// FetchToShell: what a network tool fetched is run as code.
	FetchToShell bool
	// Destructive: it deletes, overwrites or changes the permissions of
	// files (rm, mv, dd, shred, truncate, chmod, find -delete, git clean,
	// git reset --hard, ...).
	Destructive bool
	// Sudo: it runs something as another user (sudo, doas, su).
	Sudo bool
	// Writes are the paths it changes: redirection targets, tee's files,
	// the operands of destructive and file-changing programs; cleaned,
	// relative ones joined to the working directory.
	Writes []string
	// Paths are all path-like words and redirection targets, normalised
	// like Writes.
	Paths []string
	// Error is set when the command could not be read; the rest is then
	// empty.
	Error string
}

// Analyze reads cmd as bash would in the directory workdir (absolute, or
// "" when unknown: relative paths are then kept relative).
func Analyze(cmd, workdir string) Analysis {
	var a Analysis
	if len(cmd) > MaxBytes {
		a.Error = fmt.Sprintf("the command is %d bytes; commands longer than %d bytes are not read", len(cmd), MaxBytes)
		return a
	}
	if strings.IndexByte(cmd, 0) >= 0 {
		a.Error = "the command holds a NUL byte"
		return a
	}
	z := &analyzer{a: &a, workdir: workdir}
	if err := z.script(cmd, 0); err != nil {
		return Analysis{Error: err.Error()}
	}
	return a
}

type analyzer struct {
	a       *Analysis
	workdir string
}

// script parses and reads src (a nested one at depth > 0).
func (z *analyzer) script(src string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("shells nested more than %d deep (sh -c, eval)", maxDepth)
	}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(src), "")
	if err != nil {
		return fmt.Errorf("the command is not valid shell: %w", err)
	}
	if len(f.Stmts) > 1 {
		z.a.Compound = true
	}
	for _, st := range f.Stmts {
		if err := z.stmt(st, depth); err != nil {
			return err
		}
	}
	return nil
}

func (z *analyzer) stmt(st *syntax.Stmt, depth int) error {
	if st == nil {
		return nil
	}
	if st.Background {
		z.a.Compound = true
	}
	for _, r := range st.Redirs {
		z.redirect(r)
	}
	var err error
	syntax.Walk(st, func(n syntax.Node) bool {
		if err != nil {
			return false
		}
		switch n := n.(type) {
		case *syntax.CallExpr:
			err = z.call(n, st, depth)
		case *syntax.Stmt:
			if n != st {
				for _, r := range n.Redirs {
					z.redirect(r)
				}
			}
		case *syntax.BinaryCmd:
			z.a.Compound = true
			if n.Op == syntax.Pipe || n.Op == syntax.PipeAll {
				z.pipe(n)
			}
		case *syntax.CmdSubst:
			z.a.Substitution, z.a.Compound = true, true
		case *syntax.ProcSubst:
			z.a.Substitution, z.a.Compound = true, true
		case *syntax.Subshell, *syntax.Block, *syntax.IfClause, *syntax.WhileClause, *syntax.ForClause,
			*syntax.CaseClause, *syntax.FuncDecl, *syntax.CoprocClause:
			z.a.Compound = true
		}
		return true
	})
	return err
}

// redirect notes what a redirection writes or feeds.
func (z *analyzer) redirect(r *syntax.Redirect) {
	switch r.Op {
	case syntax.Hdoc, syntax.DashHdoc, syntax.WordHdoc:
		z.a.Heredoc = true
		return
	}
	if r.Word == nil {
		return
	}
	target, _ := wordText(r.Word)
	if strings.HasPrefix(target, "/dev/tcp/") || strings.HasPrefix(target, "/dev/udp/") {
		z.a.Network = true
	}
	switch r.Op {
	case syntax.DplIn, syntax.DplOut:
		if target == "-" || isDigits(target) {
			return
		}
	}
	p := z.norm(target)
	z.a.Paths = appendOnce(z.a.Paths, p)
	switch r.Op {
	case syntax.RdrOut, syntax.AppOut, syntax.RdrClob, syntax.AppClob, syntax.RdrAll, syntax.RdrAllClob,
		syntax.AppAll, syntax.AppAllClob, syntax.RdrInOut, syntax.DplOut:
		if !harmlessSink(target) {
			z.a.Writes = appendOnce(z.a.Writes, p)
		}
	}
}

// call reads one simple command.
func (z *analyzer) call(c *syntax.CallExpr, st *syntax.Stmt, depth int) error {
	if len(c.Args) == 0 {
		return nil // assignments only
	}
	z.a.Commands++
	words := make([]string, len(c.Args))
	literal := make([]bool, len(c.Args))
	for i, w := range c.Args {
		words[i], literal[i] = wordText(w)
	}
	if z.a.Words == nil && depth == 0 {
		z.a.Words = capList(words)
	}
	for i, w := range words {
		if i > 0 && looksLikePath(w) {
			z.a.Paths = appendOnce(z.a.Paths, z.norm(pathPart(w)))
		}
	}
	i := unwrap(words, z.a)
	if i >= len(words) {
		return nil
	}
	if !literal[i] {
		z.a.Dynamic = true
		z.a.Programs = appendOnce(z.a.Programs, "?")
		if containsSubst(c.Args[i]) {
			z.a.PipeToShell = true // the output of a command is run as a command
			if z.substFetches(c.Args[i]) {
				z.a.FetchToShell = true
			}
		}
		return nil
	}
	prog := path.Base(words[i])
	args, argWords := words[i+1:], c.Args[i+1:]
	z.a.Programs = appendOnce(z.a.Programs, prog)
	if networkTools[prog] {
		z.a.Network = true
	}
	z.destructive(prog, args)
	switch {
	case shells[prog] || prog == "eval" || prog == "source" || prog == ".":
		return z.shell(prog, args, argWords, st, depth)
	case interpreters[prog]:
		if readsStdin(args) {
			return z.runsInput(st, depth, false)
		}
	}
	return nil
}

// shell reads a shell, eval or source invocation: the code it runs.
func (z *analyzer) shell(prog string, args []string, argWords []*syntax.Word, st *syntax.Stmt, depth int) error {
	if prog == "eval" {
		z.a.Compound = true
		for _, w := range argWords {
			if containsSubst(w) {
				z.a.PipeToShell = true
				if z.substFetches(w) {
					z.a.FetchToShell = true
				}
			}
		}
		return z.script(strings.Join(args, " "), depth+1)
	}
	for j, arg := range args {
		if shells[prog] && (arg == "-c" || strings.HasPrefix(arg, "-") && !strings.HasPrefix(arg, "--") && strings.ContainsRune(arg, 'c')) {
			if j+1 >= len(args) {
				return nil
			}
			z.a.Compound = true
			if containsSubst(argWords[j+1]) {
				z.a.PipeToShell = true
				if z.substFetches(argWords[j+1]) {
					z.a.FetchToShell = true
				}
			}
			if _, lit := wordText(argWords[j+1]); !lit {
				z.a.Dynamic = true
				return nil
			}
			return z.script(args[j+1], depth+1)
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			// A script: a file, or a process substitution.
			if procSubstFetches(argWords[j], z) {
				z.a.PipeToShell, z.a.FetchToShell = true, true
			} else if containsProcSubst(argWords[j]) {
				z.a.PipeToShell = true
			}
			if arg != "-" && arg != "/dev/stdin" {
				return nil
			}
			break
		}
	}
	return z.runsInput(st, depth, true)
}

// runsInput notes a shell or interpreter that runs what it reads on its
// standard input: from a here-document, or (see pipe) a pipe. A shell's
// here-document is read as the script it is.
func (z *analyzer) runsInput(st *syntax.Stmt, depth int, shellCode bool) error {
	for _, r := range st.Redirs {
		switch r.Op {
		case syntax.Hdoc, syntax.DashHdoc, syntax.WordHdoc:
			z.a.PipeToShell, z.a.Compound = true, true
			// The document is the program: read it as one.
			body := r.Hdoc
			if r.Op == syntax.WordHdoc {
				body = r.Word
			}
			if body == nil || !shellCode {
				continue
			}
			text, literal := wordText(body)
			if !literal {
				z.a.Dynamic = true
			}
			if err := z.script(text, depth+1); err != nil {
				return err
			}
		case syntax.RdrIn:
			if r.Word != nil && containsProcSubst(r.Word) {
				z.a.PipeToShell = true
				if procSubstFetches(r.Word, z) {
					z.a.FetchToShell = true
				}
			}
		}
	}
	return nil
}

// pipe notes a pipeline whose later command runs its input as code.
func (z *analyzer) pipe(b *syntax.BinaryCmd) {
	if b.Y == nil || !runsStdin(b.Y) {
		return
	}
	z.a.PipeToShell = true
	if fetches(b.X) {
		z.a.FetchToShell = true
	}
}

// runsStdin reports whether st is a shell or interpreter that runs the
// program on its standard input.
func runsStdin(st *syntax.Stmt) bool {
	c, ok := st.Cmd.(*syntax.CallExpr)
	if !ok || len(c.Args) == 0 {
		return false
	}
	words := make([]string, len(c.Args))
	for i, w := range c.Args {
		words[i], _ = wordText(w)
	}
	var scratch Analysis
	i := unwrap(words, &scratch)
	if i >= len(words) {
		return false
	}
	prog := path.Base(words[i])
	switch {
	case shells[prog]:
		return shellReadsStdin(words[i+1:])
	case interpreters[prog]:
		return readsStdin(words[i+1:])
	case prog == "xargs":
		return false
	}
	return false
}

// shellReadsStdin: a shell given no -c and no script file reads stdin.
func shellReadsStdin(args []string) bool {
	for _, a := range args {
		if a == "-c" || strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && strings.ContainsRune(a, 'c') {
			return false
		}
		if a == "-" || a == "-s" || a == "/dev/stdin" {
			return true
		}
		if !strings.HasPrefix(a, "-") {
			return false
		}
	}
	return true
}

// readsStdin: an interpreter given no script (or "-") reads stdin.
func readsStdin(args []string) bool {
	for _, a := range args {
		switch {
		case a == "-" || a == "/dev/stdin":
			return true
		case a == "-c" || a == "-e" || a == "-E" || a == "-m" || a == "-r":
			return false // a program on the command line
		case !strings.HasPrefix(a, "-"):
			return false // a script file
		}
	}
	return true
}

// fetches reports whether a network tool runs anywhere in st.
func fetches(st *syntax.Stmt) bool {
	found := false
	syntax.Walk(st, func(n syntax.Node) bool {
		if found {
			return false
		}
		if c, ok := n.(*syntax.CallExpr); ok && len(c.Args) > 0 {
			words := make([]string, len(c.Args))
			for i, w := range c.Args {
				words[i], _ = wordText(w)
			}
			var scratch Analysis
			if i := unwrap(words, &scratch); i < len(words) && networkTools[path.Base(words[i])] {
				found = true
			}
		}
		if r, ok := n.(*syntax.Redirect); ok && r.Word != nil {
			if t, _ := wordText(r.Word); strings.HasPrefix(t, "/dev/tcp/") || strings.HasPrefix(t, "/dev/udp/") {
				found = true
			}
		}
		return true
	})
	return found
}

// substFetches reports whether a command substitution in w fetches.
func (z *analyzer) substFetches(w *syntax.Word) bool {
	found := false
	syntax.Walk(w, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.CmdSubst:
			for _, st := range n.Stmts {
				found = found || fetches(st)
			}
		case *syntax.ProcSubst:
			for _, st := range n.Stmts {
				found = found || fetches(st)
			}
		}
		return !found
	})
	return found
}

func procSubstFetches(w *syntax.Word, z *analyzer) bool {
	return containsProcSubst(w) && z.substFetches(w)
}

func containsSubst(w *syntax.Word) bool {
	found := false
	syntax.Walk(w, func(n syntax.Node) bool {
		switch n.(type) {
		case *syntax.CmdSubst, *syntax.ProcSubst:
			found = true
		}
		return !found
	})
	return found
}

func containsProcSubst(w *syntax.Word) bool {
	found := false
	syntax.Walk(w, func(n syntax.Node) bool {
		if _, ok := n.(*syntax.ProcSubst); ok {
			found = true
		}
		return !found
	})
	return found
}

// destructive notes a program that deletes or overwrites files, and the
// paths it changes.
func (z *analyzer) destructive(prog string, args []string) {
	operands := func() []string {
		var out []string
		for _, a := range args {
			if !strings.HasPrefix(a, "-") || a == "-" {
				out = append(out, a)
			}
		}
		return out
	}
	writes := func(ps []string) {
		for _, p := range ps {
			if p != "" && !harmlessSink(p) {
				z.a.Writes = appendOnce(z.a.Writes, z.norm(p))
			}
		}
	}
	switch {
	case destructiveTools[prog] || strings.HasPrefix(prog, "mkfs"):
		z.a.Destructive = true
		ops := operands()
		if prog == "chmod" || prog == "chown" || prog == "chgrp" {
			if len(ops) > 0 {
				ops = ops[1:] // the mode or owner
			}
		}
		if prog == "dd" {
			ops = nil
			for _, a := range args {
				if v, ok := strings.CutPrefix(a, "of="); ok {
					ops = append(ops, v)
				}
			}
		}
		writes(ops)
	case prog == "find":
		for _, a := range args {
			if a == "-delete" || a == "-exec" || a == "-execdir" || a == "-ok" {
				z.a.Destructive = true
			}
		}
		if z.a.Destructive {
			var roots []string
			for _, a := range args {
				if strings.HasPrefix(a, "-") || a == "!" || a == "(" {
					break
				}
				roots = append(roots, a)
			}
			writes(roots)
		}
	case prog == "git":
		sub := operands()
		if len(sub) > 0 && (sub[0] == "clean" ||
			sub[0] == "reset" && slices.Contains(args, "--hard") ||
			sub[0] == "push" && (slices.Contains(args, "--force") || slices.Contains(args, "-f")) ||
			sub[0] == "checkout" && slices.Contains(args, "--")) {
			z.a.Destructive = true
		}
	case writingTools[prog]:
		ops := operands()
		if prog == "cp" || prog == "install" || prog == "ln" || prog == "rsync" {
			if len(ops) > 0 {
				ops = ops[len(ops)-1:] // the destination
			}
		}
		if prog == "sed" && !hasFlag(args, "i") {
			ops = nil
		}
		writes(ops)
	}
}

// hasFlag reports a short flag given alone or grouped (-i, -ni).
func hasFlag(args []string, f string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && strings.Contains(a[1:], f) || a == "--in-place" || strings.HasPrefix(a, "--in-place=") {
			return true
		}
	}
	return false
}

// unwrap skips the wrappers that run another program (sudo, env, xargs,
// timeout, ...) and their options, returning the index of the program.
func unwrap(words []string, a *Analysis) int {
	i := 0
	for i < len(words) {
		w := path.Base(words[i])
		opts, ok := wrappers[w]
		if !ok {
			return i
		}
		if w == "sudo" || w == "doas" || w == "su" || w == "pkexec" || w == "runuser" {
			a.Sudo = true
		}
		i++
		for i < len(words) {
			x := words[i]
			switch {
			case x == "--":
				i++
				return skipAssignments(words, i)
			case strings.HasPrefix(x, "-"):
				i++
				if strings.Contains(opts, " "+x+" ") && i < len(words) {
					i++ // the option's value
				}
				continue
			case w == "env" && strings.Contains(x, "="):
				i++
				continue
			case w == "timeout" && isDuration(x):
				i++
				continue
			}
			break
		}
		if n := positional[w]; n > 0 {
			i += n // chroot DIR, flock FILE, taskset MASK, chrt PRIO
		}
		if w == "su" {
			return len(words) // su -c "..." is read by its -c (rare); its user is not a program
		}
	}
	return i
}

func skipAssignments(words []string, i int) int {
	for i < len(words) && strings.Contains(words[i], "=") && !strings.HasPrefix(words[i], "=") {
		i++
	}
	return i
}

func isDuration(s string) bool {
	if s == "" {
		return false
	}
	s = strings.TrimRight(s, "smhd")
	for _, r := range s {
		if (r < '0' || r > '9') && r != '.' {
			return false
		}
	}
	return s != ""
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// wordText returns the word with quotes and escapes removed, and whether
// it is literal (no parameter, command or arithmetic expansion). An
// expansion is kept as written.
func wordText(w *syntax.Word) (string, bool) {
	var b strings.Builder
	literal := true
	var part func(p syntax.WordPart, quoted bool)
	part = func(p syntax.WordPart, quoted bool) {
		switch p := p.(type) {
		case *syntax.Lit:
			b.WriteString(unescape(p.Value, quoted))
		case *syntax.SglQuoted:
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			for _, q := range p.Parts {
				part(q, true)
			}
		case *syntax.ParamExp:
			literal = false
			if p.Param != nil {
				b.WriteString("$" + p.Param.Value)
			} else {
				b.WriteString("$?")
			}
		case *syntax.CmdSubst:
			literal = false
			b.WriteString("$(…)")
		case *syntax.ProcSubst:
			literal = false
			b.WriteString("<(…)")
		default:
			literal = false
			b.WriteString("…")
		}
	}
	for _, p := range w.Parts {
		part(p, false)
	}
	return b.String(), literal
}

// unescape removes the backslashes of a literal: any character outside
// quotes, only \$ \` \" \\ and a newline inside double quotes.
func unescape(s string, quoted bool) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			n := s[i+1]
			if !quoted || strings.IndexByte("$`\"\\\n", n) >= 0 {
				if n != '\n' {
					b.WriteByte(n)
				}
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// looksLikePath reports a word that names a file: absolute, home-relative,
// dot-relative, or holding a slash (not a URL), or an option's value that
// does (--output=/x, of=/x).
func looksLikePath(w string) bool {
	w = pathPart(w)
	if w == "" || strings.Contains(w, "://") {
		return false
	}
	return w[0] == '/' || w[0] == '~' || w == "." || w == ".." || strings.HasPrefix(w, "./") ||
		strings.HasPrefix(w, "../") || strings.Contains(w, "/")
}

// pathPart is the value of "--opt=VALUE" or "key=VALUE", else w.
func pathPart(w string) string {
	if i := strings.IndexByte(w, '='); i > 0 && !strings.ContainsRune(w[:i], '/') {
		return w[i+1:]
	}
	return w
}

// norm normalises a path against the working directory.
func (z *analyzer) norm(p string) string { return Normalize(p, z.workdir) }

// Normalize cleans p; a relative path is joined to workdir first (when it
// is known). "~" and "~user" stay as they are: the home directory of the
// agent's machine is not known here. Backslashes count as slashes.
func Normalize(p, workdir string) string {
	if p == "" {
		return ""
	}
	p = strings.ReplaceAll(p, `\`, "/")
	switch {
	case p[0] == '/':
		return path.Clean(p)
	case p[0] == '~':
		return path.Clean(p)
	case workdir != "":
		return path.Join(workdir, p)
	}
	return path.Clean(p)
}

// harmlessSink: writing to it changes no file.
func harmlessSink(p string) bool {
	switch p {
	case "/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "-":
		return true
	}
	return strings.HasPrefix(p, "/dev/fd/")
}

func appendOnce(list []string, s string) []string {
	if s == "" || len(list) >= maxItems || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func capList(words []string) []string {
	if len(words) > maxItems {
		words = words[:maxItems]
	}
	return slices.Clone(words)
}

// The program families. Wrappers map to the options that take a value.
var (
	shells       = setOf("sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "busybox")
	interpreters = setOf("python", "python2", "python3", "perl", "ruby", "node", "nodejs", "deno", "bun", "php",
		"lua", "Rscript", "pwsh", "powershell", "tclsh", "osascript", "awk", "gawk")
	networkTools = setOf("curl", "wget", "nc", "ncat", "netcat", "socat", "ssh", "scp", "sftp", "rsync", "ftp",
		"tftp", "telnet", "http", "https", "xh", "aria2c", "lynx", "w3m", "links", "fetch", "rclone", "s3cmd")
	destructiveTools = setOf("rm", "rmdir", "unlink", "shred", "srm", "dd", "wipefs", "fdisk", "sfdisk", "parted",
		"truncate", "chmod", "chown", "chgrp", "chattr", "mv")
	writingTools = setOf("tee", "cp", "install", "ln", "touch", "mkdir", "sed", "patch", "rsync")
	wrappers     = map[string]string{
		"sudo": " -u -g -h -p -C -D -r -t -U ", "doas": " -u -C ", "su": " -c -s -g ", "pkexec": " --user ",
		"runuser": " -u -g ", "env": " -u -C -S ", "nice": " -n ", "ionice": " -c -n -p ", "nohup": "",
		"time": " -f -o ", "timeout": " -s -k --signal --kill-after ", "command": "", "exec": " -a ", "builtin": "",
		"xargs":  " -a -d -E -I -i -L -l -n -P -s --arg-file --delimiter --max-args --max-procs ",
		"stdbuf": " -i -o -e ", "setsid": "", "chrt": "", "taskset": "", "unbuffer": "", "caffeinate": "",
		"watch": " -n -d ", "strace": " -e -o -p ", "ltrace": " -e -o -p ", "flock": " -w ", "chroot": "",
	}
)

// positional are the wrappers whose first operands are not the program.
var positional = map[string]int{"chroot": 1, "flock": 1, "taskset": 1, "chrt": 1}

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

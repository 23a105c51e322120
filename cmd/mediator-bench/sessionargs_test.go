package main

import (
	"fmt"
	"testing"
)

func TestSessionArgs(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		n    int
		want string
	}{
		{[]string{"stdio", "--db", "run-{session}.db"}, 7, "[stdio --db run-7.db]"},
		{[]string{"{session}{session}"}, 2, "[22]"},
		{[]string{"plain"}, 1, "[plain]"},
	} {
		if got := fmt.Sprint(sessionArgs(tc.in, tc.n)); got != tc.want {
			t.Errorf("sessionArgs(%q, %d) = %s, want %s", tc.in, tc.n, got, tc.want)
		}
	}
}

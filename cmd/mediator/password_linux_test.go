//go:build linux

package main

import (
	"strings"
	"testing"
)

func TestReadSecretLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, want, rest string
		wantErr              bool
	}{
		{"a line", "secret\nnext", "secret", "next", false},
		{"carriage returns dropped", "sec\rret\r\n", "secret", "", false},
		{"end without a newline", "secret", "secret", "", false},
		{"nothing", "", "", "", true},
		{"too long", strings.Repeat("x", 5000) + "\n", "", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := strings.NewReader(tc.in)
			got, err := readSecretLine(r)
			if (err != nil) != tc.wantErr || string(got) != tc.want {
				t.Fatalf("readSecretLine(%.20q) = %q, %v; want %q (error %v)", tc.in, got, err, tc.want, tc.wantErr)
			}
			if !tc.wantErr {
				rest := make([]byte, 16)
				n, _ := r.Read(rest)
				if string(rest[:n]) != tc.rest {
					t.Fatalf("left %q unread; want %q", rest[:n], tc.rest)
				}
			}
		})
	}
}

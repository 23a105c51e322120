package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeRun writes one run's report as scripts/bench.sh names it.
func writeRun(t *testing.T, dir, name string, thr, p50, p99, cpu float64) {
	t.Helper()
	r := report{Transport: "stdio", Calls: int64(thr), OK: int64(thr), Throughput: thr,
		Latency: latency{P50: p50, P90: p50, P99: p99, Max: p99}, ServerCPUPerCall: cpu}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "runs", name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// summarize turns a results directory into the generated section of
// BENCHMARKS.md, keeping what is outside the markers, and splits the
// mediator's overhead at the bare relay when the rounds ran it.
func TestSummarize(t *testing.T) {
	tests := []struct {
		name      string
		withRelay bool
		want      []string
		dontWant  []string
	}{
		{"direct and mediated", false,
			[]string{"| stdio | 1 | 10000 | 2000 | 0.20 | 0.100 / 0.200 | 0.500 / 1.500 | +0.400 | +1.300 |"},
			[]string{"The floor"}},
		{"with the relay", true,
			[]string{
				"| stdio | 1 | 10000 | 2000 | 0.20 |",
				"### The floor: a bare mcp-go relay",
				// relay/direct 4000/10000, mediated/relay 2000/4000; hop
				// 0.25−0.10, pipeline 0.50−0.25.
				"| stdio | 1 | 4000 | 0.40 | 0.50 | 0.250 / 0.500 | +0.150 / +0.300 | +0.250 / +1.000 | 150 | 400 |",
				"| 1 | stdio | 1 | relay | 4000 |",
			}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "runs"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "machine.txt"), []byte("cpus (nproc): 2\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, r := range []string{"1", "2", "3"} {
				writeRun(t, dir, "r"+r+"-stdio-c1-direct.json", 10000, 0.1, 0.2, 40)
				writeRun(t, dir, "r"+r+"-stdio-c1-mediated.json", 2000, 0.5, 1.5, 400)
				if tc.withRelay {
					writeRun(t, dir, "r"+r+"-stdio-c1-relay.json", 4000, 0.25, 0.5, 150)
				}
			}
			writeRun(t, dir, "r1-stdio-c1-other.json", 1, 1, 1, 1) // not a run name: ignored
			out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
			const before, after = "# Benchmarks\n\nanalysis above\n\n", "\nanalysis below\n"
			old := before + beginMarker + "\nstale\n" + endMarker + "\n" + after
			if err := os.WriteFile(out, []byte(old), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := summarize(dir, out); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			got := string(b)
			if !strings.HasPrefix(got, before+beginMarker) || !strings.HasSuffix(got, endMarker+"\n"+after) {
				t.Errorf("the text outside the markers changed:\n%s", got)
			}
			if strings.Contains(got, "stale") {
				t.Errorf("the old generated section is still there:\n%s", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
			for _, w := range tc.dontWant {
				if strings.Contains(got, w) {
					t.Errorf("unexpected %q in:\n%s", w, got)
				}
			}
		})
	}
}

// A directory without runs is an error, not an empty report.
func TestSummarizeNoRuns(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "runs"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := summarize(dir, filepath.Join(dir, "out.md"))
	if err == nil || !strings.Contains(err.Error(), "no runs") {
		t.Fatalf("summarize of an empty directory: %v, want an error naming it", err)
	}
}

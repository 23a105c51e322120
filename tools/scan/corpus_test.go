package scan

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/mcp-mediator/mediator/mediator"
)

// corpusEntry is one labelled definition of testdata/corpus.jsonl.
type corpusEntry struct {
	ID     string          `json:"id"`
	Label  string          `json:"label"` // poisoned, benign, hard_benign
	Family string          `json:"family"`
	Note   string          `json:"note"`
	Tool   json.RawMessage `json:"tool"`
}

func loadCorpus(t testing.TB) []corpusEntry { return loadCorpusFile(t, "testdata/corpus.jsonl") }

func loadCorpusFile(t testing.TB, name string) []corpusEntry {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []corpusEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var e corpusEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("corpus line %d: %v", len(out)+1, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The held-out corpus's figures when it was added (see TestCorpus).
const (
	heldOutRecall         = 0.83
	heldOutFalsePositives = 0.05
)

// corpusOthers stands for the tools of the other servers in a catalog.
var corpusOthers = []string{"send_email", "github__create_issue", "create_issue", "read_file", "write_file",
	"execute_command", "slack__post_message", "post_message", "transfer_funds", "list_directory", "query_database"}

// quarantines reports whether the scanner would quarantine the tool on
// first sight: a high finding.
func quarantines(def json.RawMessage) ([]mediator.Finding, bool) {
	var head struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(def, &head)
	fs := Definition(def, Context{Own: []string{head.Name}, Others: corpusOthers})
	return fs, Highest(fs) == mediator.SeverityHigh
}

// TestCorpus measures the description scanner on the labelled corpus:
// recall on poisoned definitions (per family) and false positives on
// benign and hard-benign ones. Targets: recall ≥ 0.9, false positives on
// hard benign ≤ 0.05. The table is printed with -v.
func TestCorpus(t *testing.T) {
	t.Run("tuned", func(t *testing.T) { measureCorpus(t, "testdata/corpus.jsonl", 0.9, 0.05) })
	// The held-out set was written by someone who never saw the rules.
	// Measured blind when it was added: recall 0.771, false positives on
	// hard benign 0.04. Two general fixes it showed were needed followed
	// (emoji sequences with skin tones and U+FE0F; schema defaults that
	// pre-fill where data goes), giving 0.833 and 0; the set is no longer
	// blind, and its floor keeps a change from losing ground on it.
	t.Run("held out", func(t *testing.T) { measureCorpus(t, "testdata/holdout.jsonl", heldOutRecall, heldOutFalsePositives) })
	// A second held-out set (holdout2.jsonl, 120 definitions in nine
	// languages), written blind by another author. Measured blind when it
	// was added: recall 0.900 (exfiltration 5 of 10, encoded payloads 9
	// of 10, the rest 10 of 10), false positives on hard benign 0.167 (5
	// of 30), on benign 0. The general fixes it showed followed: a full
	// stop inside ".env" or a host name no longer ends a sentence; mail
	// addresses as destinations when what is sent is sensitive; secrets
	// encoded into a lookup; a credential "forwarded to our partner"; a
	// double-encoded jailbreak; the metadata address high only with a
	// path to credentials; another tool named without a directive is
	// medium; isolates around right-to-left words are Unicode's own
	// advice. Then: recall 1.000, hard benign 0.033 — the one left is a
	// linter quoting a whole payload as an example, which the model
	// reads like any other; it stays flagged on purpose.
	t.Run("held out 2", func(t *testing.T) { measureCorpus(t, "testdata/holdout2.jsonl", 0.95, 0.05) })
}

func measureCorpus(t *testing.T, file string, minRecall, maxFP float64) {
	corpus := loadCorpusFile(t, file)
	type tally struct{ n, hit int }
	families := map[string]*tally{}
	labels := map[string]*tally{}
	rules := map[string]int{}
	for _, e := range corpus {
		fs, q := quarantines(e.Tool)
		key := e.Label
		if e.Label == "poisoned" {
			key = "poisoned/" + e.Family
		}
		for _, kv := range [][2]string{{"f", key}, {"l", e.Label}} {
			m := families
			if kv[0] == "l" {
				m = labels
			}
			if m[kv[1]] == nil {
				m[kv[1]] = &tally{}
			}
			m[kv[1]].n++
			if q {
				m[kv[1]].hit++
			}
		}
		for _, f := range fs {
			if f.Severity == mediator.SeverityHigh {
				rules[e.Label+" "+f.Family]++
			}
		}
		switch {
		case e.Label == "poisoned" && !q:
			t.Logf("missed %s (%s): %s findings=%v", e.ID, e.Family, e.Note, fs)
		case e.Label != "poisoned" && q:
			t.Logf("false positive %s (%s): %v", e.ID, e.Label, fs)
		}
	}
	keys := make([]string, 0, len(families))
	for k := range families {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-32s %5s %9s %6s\n", "set", "n", "flagged", "rate")
	for _, k := range keys {
		f := families[k]
		fmt.Fprintf(&b, "%-32s %5d %9d %6.3f\n", k, f.n, f.hit, float64(f.hit)/float64(f.n))
	}
	t.Log(b.String())
	for _, l := range []string{"poisoned", "benign", "hard_benign"} {
		if labels[l] == nil || labels[l].n < 20 {
			t.Fatalf("corpus has fewer than 20 %s definitions", l)
		}
	}
	recall := float64(labels["poisoned"].hit) / float64(labels["poisoned"].n)
	fpHard := float64(labels["hard_benign"].hit) / float64(labels["hard_benign"].n)
	fpBenign := float64(labels["benign"].hit) / float64(labels["benign"].n)
	t.Logf("recall %.3f, false positives: benign %.3f, hard benign %.3f", recall, fpBenign, fpHard)
	if recall < minRecall {
		t.Errorf("recall %.3f < %.3f", recall, minRecall)
	}
	if fpHard > maxFP || fpBenign > maxFP {
		t.Errorf("false positives: benign %.3f, hard benign %.3f; want ≤ %.3f", fpBenign, fpHard, maxFP)
	}
}

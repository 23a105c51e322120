package sim

import (
	"bytes"
	"os"
	"testing"
)

// TestReport prints the default-size report (about 30 s): SIM_FULL=1.
func TestReport(t *testing.T) {
	if os.Getenv("SIM_FULL") == "" {
		t.Skip("set SIM_FULL=1 for the default-size report")
	}
	r, err := Eval(Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	r.Write(os.Stdout)
}

// smallOptions is the corpus the detection test runs: 12 drifting agents
// per kind, 200 normal.
func smallOptions() Options {
	return Options{Seed: 7, AgentsPerKind: 12, Normal: 200, ROC: []float64{0.5, 2}, ROCShare: 0.25}
}

// TestDetection checks detection quality on a small seeded corpus. The
// targets are: at least 95% of drifting sessions lose trust within 5 calls
// of drift start, per kind and overall, and at most 1% of normal sessions
// lose trust. The kinds that reach the target on the default corpus are
// held to it (less one session of slack for the small sample); those that
// do not (see the report) are held to what they reach now, so that a
// change that makes them worse fails. False alarms are held to 3% here
// (the 1% target is measured on the default corpus: 200 sessions are too few to tell 1% from 3%).
func TestDetection(t *testing.T) {
	r, err := Eval(smallOptions())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	r.Write(&buf)
	t.Log("\n" + buf.String())
	floor := map[string]float64{
		NewTool: 0.95, NewServer: 0.95, RateBurst: 0.95, FanOut: 0.95, OffHours: 0.95, DestructivePivot: 0.95,
		// below the target: the real figure, see the package report
		SlowCreep: 0.15,
	}
	for _, k := range r.Kinds {
		got := ratio(k.Within5+1, k.Sessions) // one session of slack
		if got < floor[k.Kind] {
			t.Errorf("%s: %d of %d sessions lost trust within %d calls (%.0f%%), want at least %.0f%%",
				k.Kind, k.Within5, k.Sessions, Within, 100*ratio(k.Within5, k.Sessions), 100*floor[k.Kind])
		}
	}
	if fa := ratio(r.FalseAlarms, r.NormalSessions); fa > 0.03 {
		t.Errorf("%d of %d normal sessions lost trust (%.1f%%), want at most 3%%", r.FalseAlarms, r.NormalSessions, 100*fa)
	}
	if len(r.ROC) != 2 || r.ROC[0].Detection < r.ROC[1].Detection {
		t.Errorf("ROC %+v: detection must not rise with drop_at", r.ROC)
	}
}

// TestDeterministic: one seed, one report.
func TestDeterministic(t *testing.T) {
	o := Options{Seed: 3, AgentsPerKind: 3, Normal: 20, ROC: []float64{}, HistoryDays: 9}
	a, err := Eval(o)
	if err != nil {
		t.Fatal(err)
	}
	o.Workers = 1
	b, err := Eval(o)
	if err != nil {
		t.Fatal(err)
	}
	a.Elapsed, b.Elapsed = 0, 0
	var wa, wb bytes.Buffer
	a.Write(&wa)
	b.Write(&wb)
	if wa.String() != wb.String() {
		t.Fatalf("two runs of one seed differ:\n%s\n%s", wa.String(), wb.String())
	}
}

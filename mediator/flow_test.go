package mediator

import (
	"fmt"
	"testing"
)

func TestFlowTrackerMergesAndBounds(t *testing.T) {
	t.Parallel()
	ft := NewFlowTracker(10)
	steps := []struct {
		add  SessionFlow
		want SessionFlow
	}{
		{SessionFlow{MaxDataClass: DataInternal}, SessionFlow{MaxDataClass: DataInternal}},
		{SessionFlow{MaxDataClass: DataPII, SecretsSeen: true}, SessionFlow{MaxDataClass: DataPII, SecretsSeen: true}},
		{SessionFlow{MaxDataClass: DataPublic, Tainted: true}, SessionFlow{MaxDataClass: DataPII, SecretsSeen: true, Tainted: true}},
		{SessionFlow{}, SessionFlow{MaxDataClass: DataPII, SecretsSeen: true, Tainted: true}},
	}
	for i, s := range steps {
		if got := ft.Add("s1", s.add); got != s.want {
			t.Fatalf("step %d: %+v, want %+v", i, got, s.want)
		}
	}
	if ft.Get("other") != (SessionFlow{}) || ft.Get("") != (SessionFlow{}) {
		t.Fatal("an unknown session has a flow")
	}
	for i := range 100 {
		ft.Add(fmt.Sprintf("k%d", i), SessionFlow{Tainted: true})
		if n := len(ft.flows); n > 10 {
			t.Fatalf("%d sessions kept, max 10", n)
		}
	}
	if ft.Get("k99") != (SessionFlow{Tainted: true}) {
		t.Fatal("the newest session was forgotten")
	}
	var nilTracker *FlowTracker
	if nilTracker.Get("x") != (SessionFlow{}) {
		t.Fatal("nil tracker")
	}
}

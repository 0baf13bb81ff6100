package controller

import (
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// A triggered group follows its consumer's backlog: awake while messages
// wait or are in work, out as the backlog grows, never down while the
// queue still holds work, to zero only once it was empty for IdleAfter.
func TestQueueDecision(t *testing.T) {
	s := spec.Autoscale{Min: 0, Max: 3, TargetConcurrency: 5, Trigger: "orders.placed", IdleAfter: "10s"}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name            string
		current         int
		pending, inWork uint64
		idleFor         time.Duration
		want            int
		mode            string
	}{
		{"asleep, nothing waits", 0, 0, 0, time.Hour, 0, ""},
		{"one message wakes it", 0, 1, 0, 0, 1, "wake"},
		{"a backlog scales out", 1, 12, 0, 0, 3, "stable"},
		{"max bounds it", 2, 100, 0, 0, 3, "stable"},
		{"shrinking backlog keeps the replicas", 3, 2, 1, 0, 3, ""},
		{"empty but recently busy stays", 2, 0, 0, 5 * time.Second, 2, ""},
		{"in work counts", 1, 0, 3, 20 * time.Second, 1, ""},
		{"idle long enough sleeps", 2, 0, 0, 11 * time.Second, 0, "idle"},
	} {
		d, change := queueDecision(s, tt.current, tt.pending, tt.inWork, now.Add(-tt.idleFor), now)
		if d.To != tt.want || change != (tt.want != tt.current) {
			t.Errorf("%s: %d → %d (change %v), want %d; %s", tt.name, tt.current, d.To, change, tt.want, d.Reason)
		}
		if change && (d.Mode != tt.mode || d.Reason == "") {
			t.Errorf("%s: mode %q reason %q, want mode %q and a reason", tt.name, d.Mode, d.Reason, tt.mode)
		}
	}
	s.Min = 1
	if d, _ := queueDecision(s, 1, 0, 0, now.Add(-time.Hour), now); d.To != 1 {
		t.Errorf("min 1 went to %d", d.To)
	}
}

// A scale down of an autoscaled group removes serving replicas before the
// warm pool's.
func TestMakePlanRemovesThePoolLast(t *testing.T) {
	g := spec.Group{Name: "web", Service: "recommend", Replicas: 2}
	pooled := withState(run(3), replica.StatePaused)
	in := PlanInput{Group: "web", Desired: &g, Template: replica.Spec{TemplateHash: hash},
		Actual: []replica.Replica{run(1), run(2), pooled, run(4)}, Pooled: map[string]bool{pooled.ID: true}, Now: time.Now()}
	p := MakePlan(in)
	var gone []int
	for _, a := range p.Actions {
		if a.Kind == Remove {
			gone = append(gone, a.Index)
		}
	}
	if len(gone) != 2 || gone[0] != 4 || gone[1] != 2 {
		t.Fatalf("removed %v, want 4 then 2 (3 is in the warm pool): %s", gone, p)
	}
}

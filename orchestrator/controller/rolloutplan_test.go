package controller

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// fleet is a group in a rollout: old replicas 1..old (hash "old"), new
// replicas after them (hash "new"); ready lists the numbers that are
// ready, since an hour.
type fleet struct {
	reps  []replica.Replica
	ready map[string]time.Time
}

func newFleet(old, fresh int, ready ...int) fleet {
	f := fleet{ready: map[string]time.Time{}}
	for i := 1; i <= old+fresh; i++ {
		h := "old"
		if i > old {
			h = "new"
		}
		f.reps = append(f.reps, replica.Replica{ID: fmt.Sprintf("id%d", i), Index: i, State: replica.StateRunning, TemplateHash: h})
	}
	for _, i := range ready {
		f.ready[fmt.Sprintf("id%d", i)] = t0.Add(-time.Hour)
	}
	return f
}

func rollIn(f fleet, s spec.Rollout, n int) PlanInput {
	g := spec.Group{Name: "web", Service: "monolith", Replicas: n}
	return PlanInput{Group: "web", Desired: &g, Template: replica.Spec{TemplateHash: "new"}, Actual: f.reps, Now: t0,
		Rollout: &RolloutInput{Settings: s.Settled(), Count: n, Hash: "new", Ready: f.ready, Now: t0, Started: t0.Add(-time.Second)}}
}

// summary is a plan's actions as "+N" (create at N) and "-N" (remove N).
func summary(p Plan) string {
	var out []string
	for _, a := range p.Actions {
		switch a.Kind {
		case Create:
			out = append(out, fmt.Sprintf("+%d", a.Index))
		case Remove:
			out = append(out, fmt.Sprintf("-%d", a.Index))
		case Replace:
			out = append(out, fmt.Sprintf("~%d", a.Index))
		}
	}
	return strings.Join(out, " ")
}

func ints(a, b int) spec.Rollout { return spec.Rollout{MaxSurge: &a, MaxUnavailable: &b} }

func TestRollingRespectsSurgeAndUnavailable(t *testing.T) {
	for _, tt := range []struct {
		name  string
		f     fleet
		s     spec.Rollout
		want  string
		done  bool
		total int
	}{
		{"start: one surge replica", newFleet(3, 0, 1, 2, 3), ints(1, 0), "+4", false, 3},
		{"surge full, new not ready: wait", newFleet(3, 1, 1, 2, 3), ints(1, 0), "", false, 3},
		{"new ready: one old goes", newFleet(3, 1, 1, 2, 3, 4), ints(1, 0), "-3", false, 3},
		{"unavailable 1, no surge: an old goes first", newFleet(3, 0, 1, 2, 3), ints(0, 1), "-3", false, 3},
		{"unavailable 1 after a removal: a new comes", newFleet(2, 0, 1, 2), ints(0, 1), "+3", false, 3},
		{"an unready old goes at once, a ready one only as new ones are ready", newFleet(3, 1, 1, 2, 4), ints(1, 0), "-3", false, 3},
		{"surge 2", newFleet(4, 0, 1, 2, 3, 4), ints(2, 0), "+5 +6", false, 4},
		{"all new and ready: done", newFleet(0, 3, 1, 2, 3), ints(1, 0), "", true, 3},
	} {
		in := rollIn(tt.f, tt.s, tt.total)
		p := MakePlan(in)
		if got := summary(p); got != tt.want || p.Rollout.Done != tt.done {
			t.Errorf("%s: %q done %v, want %q done %v (%s)", tt.name, got, p.Rollout.Done, tt.want, tt.done, p.Rollout.Progress)
		}
		// Never under the unavailable bound of ready replicas, never over
		// the surge bound of replicas.
		removedReady, created := 0, 0
		for _, a := range p.Actions {
			if a.Kind == Remove {
				if _, ok := tt.f.ready[a.ID]; ok {
					removedReady++
				}
			}
			if a.Kind == Create {
				created++
			}
		}
		if len(tt.f.ready)-removedReady < tt.total-*tt.s.MaxUnavailable && removedReady > 0 {
			t.Errorf("%s: would leave %d ready, under %d", tt.name, len(tt.f.ready)-removedReady, tt.total-*tt.s.MaxUnavailable)
		}
		if len(tt.f.reps)+created > tt.total+*tt.s.MaxSurge {
			t.Errorf("%s: would run %d, over %d", tt.name, len(tt.f.reps)+created, tt.total+*tt.s.MaxSurge)
		}
	}
}

// A rolling update driven round by round to its end, each new replica
// ready as soon as it is made: never fewer than n ready, never more than
// n+1 replicas, done with only new ones.
func TestRollingRunsToTheEnd(t *testing.T) {
	f := newFleet(5, 0, 1, 2, 3, 4, 5)
	s := ints(1, 0)
	for round := 0; round < 30; round++ {
		p := MakePlan(rollIn(f, s, 5))
		if p.Rollout.Done {
			for _, r := range f.reps {
				if r.TemplateHash != "new" {
					t.Fatalf("done with an old replica: %+v", f.reps)
				}
			}
			return
		}
		gone := map[string]bool{}
		for _, a := range p.Actions {
			if a.Kind == Remove {
				gone[a.ID] = true
			}
		}
		var next []replica.Replica
		for _, r := range f.reps {
			if !gone[r.ID] {
				next = append(next, r)
			}
		}
		for _, a := range p.Actions {
			if a.Kind == Create {
				id := fmt.Sprintf("n%d-%d", round, a.Index)
				next = append(next, replica.Replica{ID: id, Index: a.Index, State: replica.StateRunning, TemplateHash: "new"})
				f.ready[id] = t0.Add(-time.Hour)
			}
		}
		f.reps = next
		ready := 0
		for _, r := range f.reps {
			if _, ok := f.ready[r.ID]; ok {
				ready++
			}
		}
		if ready < 5 || len(f.reps) > 6 {
			t.Fatalf("round %d: %d ready of %d", round, ready, len(f.reps))
		}
	}
	t.Fatal("the rolling update never finished")
}

func TestRecreateStopsAllFirst(t *testing.T) {
	s := spec.Rollout{Strategy: spec.StrategyRecreate}
	if got := summary(MakePlan(rollIn(newFleet(3, 0, 1, 2, 3), s, 3))); got != "-3 -2 -1" {
		t.Fatalf("recreate first round %q", got)
	}
	if got := summary(MakePlan(rollIn(newFleet(0, 0), s, 3))); got != "+1 +2 +3" {
		t.Fatalf("recreate second round %q", got)
	}
}

func TestBlueGreenSwitchesOnceTheNewSetIsReady(t *testing.T) {
	s := spec.Rollout{Strategy: spec.StrategyBlueGreen, BlueGreen: &spec.BlueGreen{ScaleDownDelaySeconds: 30}}
	p := MakePlan(rollIn(newFleet(2, 0, 1, 2), s, 2))
	if summary(p) != "+3 +4" || p.Rollout.Rotation != RotateOld {
		t.Fatalf("green starts beside blue: %q rotation %d", summary(p), p.Rollout.Rotation)
	}
	in := rollIn(newFleet(2, 2, 1, 2, 3, 4), s, 2)
	p = MakePlan(in)
	if summary(p) != "" || p.Rollout.Rotation != RotateNew || !p.Rollout.Switched.Equal(t0) {
		t.Fatalf("the switch: %q rotation %d switched %v", summary(p), p.Rollout.Rotation, p.Rollout.Switched)
	}
	in.Rollout.Switched = t0.Add(-10 * time.Second)
	if p = MakePlan(in); summary(p) != "" || p.Rollout.Rotation != RotateNew {
		t.Fatalf("blue kept during the delay: %q", summary(p))
	}
	in.Rollout.Switched = t0.Add(-31 * time.Second)
	if p = MakePlan(in); summary(p) != "-2 -1" {
		t.Fatalf("blue removed after the delay: %q", summary(p))
	}
}

func TestCanarySteps(t *testing.T) {
	s := spec.Rollout{Strategy: spec.StrategyCanary, Canary: &spec.Canary{Steps: []int{10, 50}, PauseSeconds: 20}}
	p := MakePlan(rollIn(newFleet(4, 0, 1, 2, 3, 4), s, 4))
	if summary(p) != "+5" || p.Rollout.CanaryShare != 0 {
		t.Fatalf("step 1 makes one canary and sends it nothing until ready: %q share %d", summary(p), p.Rollout.CanaryShare)
	}
	in := rollIn(newFleet(4, 1, 1, 2, 3, 4, 5), s, 4)
	p = MakePlan(in)
	if summary(p) != "" || p.Rollout.CanaryShare != 10 || !p.Rollout.StepStarted.Equal(t0) || p.Rollout.Step != 0 {
		t.Fatalf("step 1 in force: %q share %d step %d", summary(p), p.Rollout.CanaryShare, p.Rollout.Step)
	}
	in.Rollout.StepStarted = t0.Add(-21 * time.Second)
	if p = MakePlan(in); p.Rollout.Step != 1 {
		t.Fatalf("after the pause the next step: step %d", p.Rollout.Step)
	}
	in.Rollout.Step, in.Rollout.StepStarted = 1, time.Time{}
	if p = MakePlan(in); summary(p) != "+6" || p.Rollout.CanaryShare != 10 {
		t.Fatalf("step 2 (50%%) makes a second canary: %q share %d", summary(p), p.Rollout.CanaryShare)
	}
	in = rollIn(newFleet(4, 4, 1, 2, 3, 4, 5, 6, 7, 8), s, 4)
	in.Rollout.Step = 2
	if p = MakePlan(in); summary(p) != "-4 -3 -2 -1" || p.Rollout.Rotation != RotateNew {
		t.Fatalf("the implied 100%% step: %q rotation %d", summary(p), p.Rollout.Rotation)
	}
}

func TestRolloutFailsOnItsDeadlineAndOnErrors(t *testing.T) {
	in := rollIn(newFleet(3, 1, 1, 2, 3), ints(1, 0), 3)
	in.Rollout.Started = t0.Add(-121 * time.Second)
	if p := MakePlan(in); !strings.Contains(p.Rollout.Failed, "progress deadline") {
		t.Fatalf("a new replica never ready: failed %q", p.Rollout.Failed)
	}
	in.Rollout.Paused = true
	if p := MakePlan(in); p.Rollout.Failed != "" {
		t.Fatalf("a paused rollout failed: %q", p.Rollout.Failed)
	}

	s := spec.Rollout{Strategy: spec.StrategyCanary, AutoRollback: &spec.AutoRollback{ErrorRate: 0.1}}
	in = rollIn(newFleet(4, 1, 1, 2, 3, 4, 5), s, 4)
	in.Rollout.NewAnswers, in.Rollout.NewErrors, in.Rollout.OldAnswers = 50, 15, 400
	if p := MakePlan(in); !strings.Contains(p.Rollout.Failed, "30%") {
		t.Fatalf("a canary failing 30%%: failed %q", p.Rollout.Failed)
	}
	in.Rollout.OldErrors = 200 // the old version fails more: not the canary's fault
	if p := MakePlan(in); p.Rollout.Failed != "" {
		t.Fatalf("failed although the old version fails more: %q", p.Rollout.Failed)
	}
	in.Rollout.OldErrors, in.Rollout.NewAnswers, in.Rollout.NewErrors = 0, 10, 5
	if p := MakePlan(in); p.Rollout.Failed != "" {
		t.Fatalf("failed on 10 answers: %q", p.Rollout.Failed)
	}
}

// A rollout back (the "new" hash is the old template again) of a canary
// at its first step removes the canary and keeps the old set serving.
func TestRollbackOfACanaryRemovesIt(t *testing.T) {
	f := newFleet(4, 1, 1, 2, 3, 4, 5)
	for i := range f.reps {
		f.reps[i].TemplateHash = map[string]string{"old": "new", "new": "old"}[f.reps[i].TemplateHash]
	}
	p := MakePlan(rollIn(f, ints(1, 0), 4))
	if summary(p) != "-5" {
		t.Fatalf("rollback: %q", summary(p))
	}
}

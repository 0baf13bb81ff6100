package controller

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

const hash = "h1"

func run(i int) replica.Replica {
	return replica.Replica{ID: "id" + string(rune('0'+i)), Group: "web", Index: i, State: replica.StateRunning, TemplateHash: hash}
}

func withState(r replica.Replica, state string) replica.Replica {
	r.State = state
	if state == replica.StateExited {
		r.ExitCode = 2
	}
	return r
}

func outdated(r replica.Replica) replica.Replica { r.TemplateHash = "old"; return r }

func desired(n int) *spec.Group {
	return &spec.Group{Name: "web", Service: "monolith", Replicas: n}
}

func TestMakePlan(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		desired   *spec.Group
		actual    []replica.Replica
		unhealthy map[string]bool
		crashes   map[int]crashState
		want      string
	}{
		{"empty to three", desired(3), nil, nil, nil,
			"web: create #1 (scale up), create #2 (scale up), create #3 (scale up)"},
		{"converged", desired(2), []replica.Replica{run(1), run(2)}, nil, nil,
			"web: nothing to do"},
		{"lowest free number is reused", desired(3), []replica.Replica{run(1), run(3)}, nil, nil,
			"web: create #2 (scale up)"},
		{"scale down removes highest numbers", desired(2), []replica.Replica{run(1), run(2), run(3), run(4)}, nil, nil,
			"web: remove #4 (scale down: highest number), remove #3 (scale down: highest number)"},
		{"scale down removes broken first", desired(2), []replica.Replica{run(1), withState(run(2), replica.StateExited), run(3)}, nil, nil,
			"web: remove #2 (scale down: exited with exit code 2)"},
		{"scale down prefers unhealthy, then outdated", desired(1), []replica.Replica{run(1), outdated(run(2)), run(3)}, map[string]bool{"id3": true}, nil,
			"web: remove #3 (scale down: unhealthy), remove #2 (scale down: outdated)"},
		{"dead replica is replaced", desired(2), []replica.Replica{run(1), withState(run(2), replica.StateDead)}, nil, nil,
			"web: replace #2 (dead with exit code 0)"},
		{"created but never started is replaced", desired(1), []replica.Replica{withState(run(1), replica.StateCreated)}, nil, nil,
			"web: replace #1 (created but never started)"},
		{"paused is left alone", desired(1), []replica.Replica{withState(run(1), replica.StatePaused)}, nil, nil,
			"web: nothing to do"},
		{"outdated template is replaced", desired(2), []replica.Replica{run(1), outdated(run(2))}, nil, nil,
			"web: replace #2 (outdated template)"},
		{"crash loop holds the replacement", desired(2), []replica.Replica{run(1), withState(run(2), replica.StateExited)}, nil,
			map[int]crashState{2: {id: "id2", count: 3, until: now.Add(4 * time.Second)}},
			"web: hold replace #2 (exited with exit code 2; crash loop, retry in 4s)"},
		{"expired hold replaces", desired(1), []replica.Replica{withState(run(1), replica.StateExited)}, nil,
			map[int]crashState{1: {id: "id1", count: 3, until: now.Add(-time.Second)}},
			"web: replace #1 (exited with exit code 2)"},
		{"deleted group removes all", nil, []replica.Replica{run(1), run(2)}, nil, nil,
			"web: remove #1 (group deleted), remove #2 (group deleted)"},
		{"duplicate number is removed", desired(1), []replica.Replica{run(1), func() replica.Replica { r := run(1); r.ID = "dup"; r.Created = now; return r }()}, nil, nil,
			"web: remove #1 (duplicate replica number)"},
		{"scale to zero", desired(0), []replica.Replica{run(1), run(2)}, nil, nil,
			"web: remove #2 (scale down: highest number), remove #1 (scale down: highest number)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := MakePlan(PlanInput{Group: "web", Desired: tt.desired, Template: replica.Spec{TemplateHash: hash}, Actual: tt.actual, Unhealthy: tt.unhealthy, Crashes: tt.crashes, Now: now})
			if got := p.String(); got != tt.want {
				t.Errorf("plan\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}
}

func TestHeldPlanAsksForRetry(t *testing.T) {
	now := time.Now()
	p := MakePlan(PlanInput{Group: "web", Desired: desired(2), Template: replica.Spec{TemplateHash: hash},
		Actual:  []replica.Replica{withState(run(1), replica.StateExited), withState(run(2), replica.StateExited)},
		Crashes: map[int]crashState{1: {id: "id1", count: 5, until: now.Add(8 * time.Second)}, 2: {id: "id2", count: 3, until: now.Add(2 * time.Second)}}, Now: now})
	if !p.Empty() || len(p.Held) != 2 {
		t.Fatalf("plan = %s, want two held replacements", p)
	}
	if !p.RetryAt.Equal(now.Add(2 * time.Second)) {
		t.Fatalf("RetryAt = %v, want the earliest hold", p.RetryAt.Sub(now))
	}
	if !strings.Contains(p.String(), "crash loop") {
		t.Fatalf("plan %q does not say crash loop", p)
	}
}

func withBalancer(g *spec.Group, policy string, port int) *spec.Group {
	g.Balancer = spec.Balancer{Policy: policy, Port: port}
	return g
}

func TestMakePlanBalancer(t *testing.T) {
	rr, lc := spec.PolicyRoundRobin, spec.PolicyLeastConnections
	running := BalancerState{Running: true, Policy: rr, Port: 0}
	tests := []struct {
		name    string
		desired *spec.Group
		cur     BalancerState
		actual  []replica.Replica
		want    string
	}{
		{"started with the group", withBalancer(desired(1), rr, 0), BalancerState{}, []replica.Replica{run(1)},
			"web: start balancer (round-robin on port 0)"},
		{"kept when it matches", withBalancer(desired(1), rr, 0), running, []replica.Replica{run(1)},
			"web: nothing to do"},
		{"policy switched in place", withBalancer(desired(1), lc, 0), running, []replica.Replica{run(1)},
			"web: balancer policy least-connections"},
		{"restarted on a new port", withBalancer(desired(1), rr, 18099), running, []replica.Replica{run(1)},
			"web: restart balancer (round-robin on port 18099)"},
		{"closed for policy none", withBalancer(desired(1), spec.PolicyNone, 0), running, []replica.Replica{run(1)},
			"web: close balancer"},
		{"none and not running: nothing", withBalancer(desired(1), spec.PolicyNone, 0), BalancerState{}, []replica.Replica{run(1)},
			"web: nothing to do"},
		{"a deleted group keeps it while replicas drain", nil, running, []replica.Replica{run(1)},
			"web: remove #1 (group deleted)"},
		{"a deleted group closes it after the last replica", nil, running, nil,
			"web: close balancer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := MakePlan(PlanInput{Group: "web", Desired: tt.desired, Template: replica.Spec{TemplateHash: hash}, Actual: tt.actual, Balancer: tt.cur, Now: time.Now()})
			if got := p.String(); got != tt.want {
				t.Errorf("plan\n got: %s\nwant: %s", got, tt.want)
			}
			if p.Empty() != (tt.want == "web: nothing to do") {
				t.Errorf("Empty() = %v for %s", p.Empty(), p)
			}
		})
	}
}

func TestMakePlanForgetsAGroupThatIsGone(t *testing.T) {
	if p := MakePlan(PlanInput{Group: "web", Now: time.Now()}); !p.Forget || !p.Empty() {
		t.Fatalf("plan %s, Forget %v: want an empty plan that forgets the group", p, p.Forget)
	}
	if p := MakePlan(PlanInput{Group: "web", Actual: []replica.Replica{run(1)}, Now: time.Now()}); p.Forget {
		t.Fatal("a deleted group with a replica left is forgotten")
	}
	if p := MakePlan(PlanInput{Group: "web", Desired: desired(0), Now: time.Now()}); p.Forget {
		t.Fatal("a desired group of zero replicas is forgotten")
	}
}

func TestMakePlanProbeTargets(t *testing.T) {
	up := func(r replica.Replica, addr string) replica.Replica { r.Address = addr; return r }
	g := desired(3)
	g.Probe = spec.Probe{PeriodMs: 250}
	p := MakePlan(PlanInput{Group: "web", Desired: g, Template: replica.Spec{TemplateHash: hash}, Now: time.Now(), Actual: []replica.Replica{
		up(run(1), "127.0.0.1:1001"),
		run(2), // running, no address yet
		up(withState(run(3), replica.StatePaused), "127.0.0.1:1003"),
	}})
	want := []ProbeTarget{{ID: "id1", Name: "", Addr: "127.0.0.1:1001"}}
	if len(p.Probes) != 1 || p.Probes[0] != want[0] {
		t.Fatalf("probes %+v, want %+v", p.Probes, want)
	}
	if p.Probe.PeriodMs != 250 {
		t.Fatalf("probe settings %+v, want the group's", p.Probe)
	}
}

func TestActionReasonsAreTyped(t *testing.T) {
	p := MakePlan(PlanInput{Group: "web", Desired: desired(3), Template: replica.Spec{TemplateHash: hash}, Now: time.Now(),
		Actual: []replica.Replica{outdated(run(1)), withState(run(2), replica.StateExited), run(3)}, Unhealthy: map[string]bool{"id3": true}})
	got := map[int]Reason{}
	for _, a := range p.Actions {
		if a.Kind != Replace {
			t.Fatalf("action %s, want only replacements", a)
		}
		got[a.Index] = a.Reason
	}
	if got[1] != ReasonOutdated || got[2] != ReasonDied || got[3] != ReasonUnhealthy {
		t.Fatalf("reasons %v", got)
	}
	if ReasonOutdated.broken() || !ReasonDied.broken() || !ReasonUnhealthy.broken() || !ReasonNeverStarted.broken() {
		t.Fatal("only failures of the replica itself count as restarts")
	}
}

func TestCountCrashes(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dead := withState(run(1), replica.StateExited)
	quick := map[string]time.Duration{"id1": time.Second}
	slow := map[string]time.Duration{"id1": time.Minute}

	first := countCrashes(nil, []replica.Replica{dead}, quick, now)
	if cs := first[1]; cs.count != 1 || !cs.until.IsZero() || cs.id != "id1" {
		t.Fatalf("first quick death: %+v, want counted and replaced at once", cs)
	}
	if again := countCrashes(first, []replica.Replica{dead}, quick, now); !reflect.DeepEqual(again[1], first[1]) {
		t.Fatalf("the same death counted twice: %+v", again[1])
	}
	second := dead
	second.ID = "id1b"
	held := countCrashes(first, []replica.Replica{second}, map[string]time.Duration{"id1b": time.Second}, now)
	if cs := held[1]; cs.count != 2 || !cs.until.Equal(now.Add(time.Second)) {
		t.Fatalf("second quick death: %+v, want a 1s hold", cs)
	}
	if reset := countCrashes(map[int]crashState{1: {id: "old", count: 4}}, []replica.Replica{dead}, slow, now); reset[1].count != 0 || !reset[1].until.IsZero() {
		t.Fatalf("a death after a long run: %+v, want the loop reset", reset[1])
	}
	if unknown := countCrashes(nil, []replica.Replica{dead}, nil, now); unknown[1].count != 0 {
		t.Fatalf("a death of unknown run time counted as quick: %+v", unknown[1])
	}
	if first[1].count != 1 || len(countCrashes(first, nil, nil, now)) != 1 {
		t.Fatal("countCrashes changed its input or lost a record")
	}
}

func TestMakePlanPlacing(t *testing.T) {
	tests := []struct {
		name    string
		desired *spec.Group
		placed  *Placement
		actual  []replica.Replica
		want    string
	}{
		{"first placement", desired(3), nil, nil, "web: set count 3 (not placed yet)"},
		{"placed and unchanged", desired(3), &Placement{Count: 3, Hash: hash}, []replica.Replica{run(1), withState(run(2), replica.StateExited)},
			"web: nothing to do"},
		{"scale up", desired(5), &Placement{Count: 3, Hash: hash}, nil, "web: set count 5 (scale up)"},
		{"scale down", desired(1), &Placement{Count: 3, Hash: hash}, nil, "web: set count 1 (scale down)"},
		{"new template", desired(3), &Placement{Count: 3, Hash: "old"}, nil, "web: set count 3 (outdated template)"},
		{"deleted", nil, &Placement{Count: 3, Hash: hash}, []replica.Replica{run(1)}, "web: unplace (group deleted)"},
		{"deleted after a restart of the controller", nil, nil, []replica.Replica{run(1)}, "web: unplace (group deleted)"},
		{"already unplaced", nil, &Placement{Removed: true}, []replica.Replica{run(1)}, "web: nothing to do"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := MakePlan(PlanInput{Group: "web", Desired: tt.desired, Template: replica.Spec{TemplateHash: hash}, Actual: tt.actual, Placing: true, Placed: tt.placed, Now: time.Now()})
			if got := p.String(); got != tt.want {
				t.Errorf("plan\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}
}

func TestTailLines(t *testing.T) {
	got := tailLines("boot\r\n\n  \nlistening on :8080 for requests\r\nstopping\n", 2, 12)
	if want := []string{"listening on", "stopping"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tailLines = %q, want %q", got, want)
	}
	got = tailLines("boot\npanic: deals\ngoroutine 1\nKernel panic - not syncing: Attempted to kill init!\nCPU: 0\nCall Trace:\n</TASK>\n", 2, 80)
	if want := []string{"panic: deals", "Kernel panic - not syncing: Attempted to kill init!"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tailLines of a panic = %q, want %q", got, want)
	}
	if got := tailLines("\n \n", 3, 10); len(got) != 0 {
		t.Errorf("blank logs gave %q, want none", got)
	}
}

package controller

import (
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

func group(n int) *spec.Group {
	return &spec.Group{Name: "web", Service: "monolith", Replicas: n}
}

func TestMakePlan(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		desired   *spec.Group
		actual    []replica.Replica
		unhealthy map[string]bool
		hold      map[int]time.Time
		want      string
	}{
		{"empty to three", group(3), nil, nil, nil,
			"web: create #1 (scale up), create #2 (scale up), create #3 (scale up)"},
		{"converged", group(2), []replica.Replica{run(1), run(2)}, nil, nil,
			"web: nothing to do"},
		{"lowest free number is reused", group(3), []replica.Replica{run(1), run(3)}, nil, nil,
			"web: create #2 (scale up)"},
		{"scale down removes highest numbers", group(2), []replica.Replica{run(1), run(2), run(3), run(4)}, nil, nil,
			"web: remove #4 (scale down: highest number), remove #3 (scale down: highest number)"},
		{"scale down removes broken first", group(2), []replica.Replica{run(1), withState(run(2), replica.StateExited), run(3)}, nil, nil,
			"web: remove #2 (scale down: exited with exit code 2)"},
		{"scale down prefers unhealthy, then outdated", group(1), []replica.Replica{run(1), outdated(run(2)), run(3)}, map[string]bool{"id3": true}, nil,
			"web: remove #3 (scale down: unhealthy), remove #2 (scale down: outdated)"},
		{"dead replica is replaced", group(2), []replica.Replica{run(1), withState(run(2), replica.StateDead)}, nil, nil,
			"web: replace #2 (dead with exit code 0)"},
		{"created but never started is replaced", group(1), []replica.Replica{withState(run(1), replica.StateCreated)}, nil, nil,
			"web: replace #1 (created but never started)"},
		{"paused is left alone", group(1), []replica.Replica{withState(run(1), replica.StatePaused)}, nil, nil,
			"web: nothing to do"},
		{"outdated template is replaced", group(2), []replica.Replica{run(1), outdated(run(2))}, nil, nil,
			"web: replace #2 (outdated template)"},
		{"crash loop holds the replacement", group(2), []replica.Replica{run(1), withState(run(2), replica.StateExited)}, nil,
			map[int]time.Time{2: now.Add(4 * time.Second)},
			"web: hold replace #2 (exited with exit code 2; crash loop, retry in 4s)"},
		{"expired hold replaces", group(1), []replica.Replica{withState(run(1), replica.StateExited)}, nil,
			map[int]time.Time{1: now.Add(-time.Second)},
			"web: replace #1 (exited with exit code 2)"},
		{"deleted group removes all", nil, []replica.Replica{run(1), run(2)}, nil, nil,
			"web: remove #1 (group deleted), remove #2 (group deleted)"},
		{"duplicate number is removed", group(1), []replica.Replica{run(1), func() replica.Replica { r := run(1); r.ID = "dup"; r.Created = now; return r }()}, nil, nil,
			"web: remove #1 (duplicate replica number)"},
		{"scale to zero", group(0), []replica.Replica{run(1), run(2)}, nil, nil,
			"web: remove #2 (scale down: highest number), remove #1 (scale down: highest number)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := MakePlan(PlanInput{Group: "web", Desired: tt.desired, Hash: hash, Actual: tt.actual, Unhealthy: tt.unhealthy, HoldUntil: tt.hold, Now: now})
			if got := p.String(); got != tt.want {
				t.Errorf("plan\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}
}

func TestHeldPlanAsksForRetry(t *testing.T) {
	now := time.Now()
	p := MakePlan(PlanInput{Group: "web", Desired: group(2), Hash: hash,
		Actual:    []replica.Replica{withState(run(1), replica.StateExited), withState(run(2), replica.StateExited)},
		HoldUntil: map[int]time.Time{1: now.Add(8 * time.Second), 2: now.Add(2 * time.Second)}, Now: now})
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

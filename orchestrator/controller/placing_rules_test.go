package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

func TestPlacingRuntimeRefusesWhatItCannotRun(t *testing.T) {
	c := New(Options{Runtime: newFakePlacer("127.0.0.1:1"), Store: &memStore{groups: map[string]spec.Group{}}, Images: map[string]string{"shop": "flotilla-shop:test"}})
	two := 2
	for _, tt := range []struct {
		g     spec.Group
		field string
	}{
		{spec.Group{Name: "p", Service: "catalog", Replicas: 1, Isolation: spec.IsolationPod}, "isolation"},
		{spec.Group{Name: "v", Service: "catalog", Replicas: 1, Isolation: spec.IsolationVM}, "isolation"},
		{spec.Group{Name: "f", Service: "recommend", Replicas: 0, Autoscale: &spec.Autoscale{Min: 0, Max: 4, TargetConcurrency: 2, WarmPool: 1}}, "autoscale.warmPool"},
		{spec.Group{Name: "c", Service: "monolith", Replicas: 2, Rollout: &spec.Rollout{Strategy: spec.StrategyCanary}}, "rollout.strategy"},
		{spec.Group{Name: "b", Service: "monolith", Replicas: 2, Rollout: &spec.Rollout{Strategy: spec.StrategyBlueGreen}}, "rollout.strategy"},
	} {
		_, _, err := c.PutGroup(context.Background(), tt.g)
		var ve *spec.ValidationError
		if !errors.As(err, &ve) || ve.Field != tt.field || !strings.Contains(ve.Reason, "swarm runtime") {
			t.Errorf("group %s: %v, want a validation error on %s naming the swarm runtime", tt.g.Name, err, tt.field)
		}
		if _, err := c.Group(tt.g.Name); err == nil {
			t.Errorf("group %s was stored although refused", tt.g.Name)
		}
	}
	for _, g := range []spec.Group{
		{Name: "r", Service: "monolith", Replicas: 2, Rollout: &spec.Rollout{Strategy: spec.StrategyRecreate}},
		{Name: "a", Service: "recommend", Replicas: 0, Autoscale: &spec.Autoscale{Min: 0, Max: 4, TargetConcurrency: 2}},
		{Name: "m", Service: "monolith", Replicas: 1, Rollout: &spec.Rollout{MaxSurge: &two}},
	} {
		if _, _, err := c.PutGroup(context.Background(), g); err != nil {
			t.Errorf("group %s: %v, want it accepted", g.Name, err)
		}
	}
}

func TestUpdatePolicy(t *testing.T) {
	zero, one, two, three := 0, 1, 2, 3
	for _, tt := range []struct {
		name string
		r    *spec.Rollout
		want replica.UpdatePolicy
	}{
		{"default rolling: one new first", nil,
			replica.UpdatePolicy{Parallelism: 1, Order: replica.UpdateStartFirst, Monitor: swarmMonitor, FailureAction: replica.UpdateRollback}},
		{"surge 3, none unavailable: three new first", &spec.Rollout{MaxSurge: &three, MaxUnavailable: &zero, MinReadySeconds: 10},
			replica.UpdatePolicy{Parallelism: 3, Order: replica.UpdateStartFirst, Delay: 10 * time.Second, Monitor: 10 * time.Second, FailureAction: replica.UpdateRollback}},
		{"two may be unavailable: two old stopped first", &spec.Rollout{MaxSurge: &one, MaxUnavailable: &two},
			replica.UpdatePolicy{Parallelism: 2, Order: replica.UpdateStopFirst, Monitor: swarmMonitor, FailureAction: replica.UpdateRollback}},
		{"recreate: all at once, old first", &spec.Rollout{Strategy: spec.StrategyRecreate, MinReadySeconds: 3},
			replica.UpdatePolicy{Parallelism: 0, Order: replica.UpdateStopFirst, Monitor: swarmMonitor, FailureAction: replica.UpdateRollback}},
	} {
		if got := updatePolicy(tt.r); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// A template change on a placing runtime is the runtime's own update:
// the controller tells it the new template once, with the update policy,
// and follows the rollout to complete without making a replica itself.
func TestPlacedRolloutIsTheRuntimes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()
	rt := newFakePlacer(strings.TrimPrefix(srv.URL, "http://"))
	c := New(Options{Runtime: rt, Store: &memStore{groups: map[string]spec.Group{}}, Images: map[string]string{"shop": "flotilla-shop:test"}, Resync: time.Hour, DataPath: DataPathPublished})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	g := spec.Group{Name: "web", Service: "monolith", Replicas: 2}
	if _, _, err := c.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	var gs GroupStatus
	status := func() string { return fmt.Sprintf("%+v; runtime calls: %s", gs, rt.log()) }
	eventually(t, "2 replicas of v1 ready", func() bool {
		gs, _ = c.Group("web")
		return gs.Status == StatusConverged && gs.Ready == 2
	}, status)

	g.Version = "v2"
	if _, _, err := c.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	var ros []RolloutStatus
	eventually(t, "the rollout to v2 complete", func() bool {
		ros, _, _ = c.Rollouts("web")
		return len(ros) > 0 && ros[0].Version == "v2" && ros[0].Status == RolloutComplete
	}, func() string { return fmt.Sprintf("rollouts %+v; %s", ros, status()) })
	if got := rt.log(); got != "place web 2; place web 2" {
		t.Errorf("runtime calls %q, want the count, then the new template once", got)
	}
	rt.mu.Lock()
	up := rt.want["web"].tmpl.Update
	rt.mu.Unlock()
	if up.Order != replica.UpdateStartFirst || up.Parallelism != 1 || up.FailureAction != replica.UpdateRollback {
		t.Errorf("update policy %+v, want one at a time, start first, rollback on failure", up)
	}
	if _, err := c.PauseRollout("web", true); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "Swarm") {
		t.Errorf("pause on a placing runtime: %v, want a conflict saying Swarm carries out the update", err)
	}
}

func TestPlacementNeedsSeveralNodes(t *testing.T) {
	pl := &spec.Placement{Constraints: []string{"node.labels.zone==a"}, Spread: "node.labels.zone"}
	engine := New(Options{Runtime: newFakeRuntime(), Store: &memStore{groups: map[string]spec.Group{}}, Images: map[string]string{"shop": "flotilla-shop:test"}})
	_, _, err := engine.PutGroup(context.Background(), spec.Group{Name: "web", Service: "catalog", Replicas: 1, Placement: pl})
	var ve *spec.ValidationError
	if !errors.As(err, &ve) || ve.Field != "placement" || !strings.Contains(ve.Reason, "--runtime swarm") {
		t.Errorf("placement on the engine runtime: %v, want a refusal on placement saying how to run the swarm runtime", err)
	}

	rt := newFakePlacer("127.0.0.1:1")
	swarm := New(Options{Runtime: rt, Store: &memStore{groups: map[string]spec.Group{}}, Images: map[string]string{"shop": "flotilla-shop:test"}})
	if _, _, err := swarm.PutGroup(context.Background(), spec.Group{Name: "web", Service: "catalog", Replicas: 1, Placement: pl}); err != nil {
		t.Fatalf("placement on a placing runtime: %v", err)
	}
	tmpl, err := swarm.templateOf(spec.Group{Name: "web", Service: "catalog", Replicas: 1, Placement: pl})
	if err != nil || len(tmpl.Constraints) != 1 || tmpl.Constraints[0] != "node.labels.zone==a" || tmpl.Spread != "node.labels.zone" {
		t.Errorf("template %+v (%v), want the placement carried to the runtime", tmpl, err)
	}
}

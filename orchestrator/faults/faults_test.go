package faults

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/replica"
)

// fakeController holds the observed replicas of desired groups.
type fakeController struct {
	mu      sync.Mutex
	groups  map[string][]replica.Replica
	down    []string
	resyncs []string
	ready   []func(group, id string)
}

func (f *fakeController) Replicas(group string) ([]replica.Replica, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	reps, ok := f.groups[group]
	if !ok {
		return nil, fmt.Errorf("group %q: %w", group, controller.ErrNotFound)
	}
	return slices.Clone(reps), nil
}

func (f *fakeController) ReplicaByID(id string) (replica.Replica, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, reps := range f.groups {
		for _, r := range reps {
			if r.ID == id {
				return r, true
			}
		}
	}
	return replica.Replica{}, false
}

func (f *fakeController) MarkDown(group, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = append(f.down, group+"/"+id)
}

func (f *fakeController) Resync(group string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resyncs = append(f.resyncs, group)
}

func (f *fakeController) OnReady(fn func(group, id string)) { f.ready = append(f.ready, fn) }

// fakeRuntime records what is done to replicas; it can kill, pause and
// partition them.
type fakeRuntime struct {
	controller.Runtime // not called
	mu                 sync.Mutex
	calls              []string
	state              map[string]string
}

func (f *fakeRuntime) record(call, id, want, next string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call+" "+id)
	if f.state[id] != want {
		return fmt.Errorf("%s %s: %w", call, id, replica.ErrConflict)
	}
	f.state[id] = next
	return nil
}

func (f *fakeRuntime) Kill(_ context.Context, id, _ string) error {
	return f.record("kill", id, replica.StateRunning, replica.StateExited)
}
func (f *fakeRuntime) Pause(_ context.Context, id string) error {
	return f.record("pause", id, replica.StateRunning, replica.StatePaused)
}
func (f *fakeRuntime) Unpause(_ context.Context, id string) error {
	return f.record("unpause", id, replica.StatePaused, replica.StateRunning)
}
func (f *fakeRuntime) Disconnect(_ context.Context, id string) error {
	return f.record("disconnect", id, replica.StateRunning, replica.StateRunning)
}
func (f *fakeRuntime) Reconnect(_ context.Context, id string) error {
	return f.record("reconnect", id, replica.StateRunning, replica.StateRunning)
}

type events struct {
	mu   sync.Mutex
	list []hub.Event
}

func (e *events) Publish(ev hub.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, ev)
}

func setup() (*Injector, *fakeController, *fakeRuntime, *events) {
	ctrl := &fakeController{groups: map[string][]replica.Replica{"web": {
		{ID: "a1", Name: "web-1", Group: "web", Index: 1, State: replica.StateRunning},
		{ID: "a2", Name: "web-2", Group: "web", Index: 2, State: replica.StateRunning},
		{ID: "a3", Name: "web-3", Group: "web", Index: 3, State: replica.StateExited},
	}}}
	rt := &fakeRuntime{state: map[string]string{"a1": replica.StateRunning, "a2": replica.StateRunning}}
	ev := &events{}
	return New(Options{Controller: ctrl, Runtime: rt, Events: ev}), ctrl, rt, ev
}

func TestFaultValidation(t *testing.T) {
	in, _, rt, _ := setup()
	ctx := context.Background()
	invalid := []Spec{
		{},
		{Kind: "explode", Group: "web"},
		{Kind: Kill},
		{Kind: CrashFeature, Group: "web"},
		{Kind: CrashFeature, Group: "web", Feature: "payments"},
		{Kind: Latency, Group: "web", LatencyMs: 0},
		{Kind: Latency, Group: "web", LatencyMs: 60000},
		{Kind: Errors, Group: "web", ErrorRate: 0},
		{Kind: Errors, Group: "web", ErrorRate: 1.5},
		{Kind: Kill, Group: "web", Feature: "deals"},
		{Kind: Pause, Group: "web", LatencyMs: 5},
		{Kind: Latency, Group: "web", LatencyMs: 5, ErrorRate: 0.5},
		{Kind: Poison, Group: "web"},
		{Kind: Poison, Group: "web", Messages: MaxPoison + 1},
		{Kind: Poison, Group: "web", Messages: 1, Feature: "deals"},
		{Kind: Poison, Group: "web", Messages: 1, LatencyMs: 5},
		{Kind: SlowConsumer, Group: "web"},
		{Kind: SlowConsumer, Group: "web", LatencyMs: 30001},
		{Kind: Latency, Group: "web", LatencyMs: 5, Messages: 2},
		// web's replicas run no subscriber of the bus.
		{Kind: Poison, Group: "web", Messages: 1},
		{Kind: SlowConsumer, Group: "web", LatencyMs: 50},
	}
	for _, s := range invalid {
		if _, err := in.InjectFault(ctx, s); !errors.Is(err, ErrInvalid) {
			t.Errorf("InjectFault(%+v) = %v, want ErrInvalid", s, err)
		}
	}
	for _, s := range []Spec{
		{Kind: Kill, Group: "nope"},
		{Kind: Pause, Group: "web", Replica: "web-9"},
		{Kind: Pause, Group: "web", Replica: "other-1"},
		{Kind: Pause, Group: "web", Replica: "web-3"}, // dead
	} {
		if _, err := in.InjectFault(ctx, s); !errors.Is(err, controller.ErrNotFound) {
			t.Errorf("InjectFault(%+v) = %v, want ErrNotFound", s, err)
		}
	}
	_, err := in.InjectFault(ctx, Spec{Kind: Poison, Group: "web", Messages: 1})
	if err == nil || !strings.Contains(err.Error(), "subscribes to nothing") || !strings.Contains(err.Error(), "notifications") {
		t.Errorf("poison on web: %v, want it to say web subscribes to nothing, and name the subscribers", err)
	}
	if n := len(in.Faults()); n != 0 {
		t.Fatalf("%d faults recorded from refused requests", n)
	}
	if len(rt.calls) != 0 {
		t.Fatalf("refused requests reached the runtime: %v", rt.calls)
	}
	if _, err := in.RevertFault(ctx, "f-nope"); !errors.Is(err, controller.ErrNotFound) {
		t.Fatalf("RevertFault of an unknown id = %v, want ErrNotFound", err)
	}
}

func TestKillTakesTheHighestNumberAndIsOneShot(t *testing.T) {
	in, ctrl, rt, ev := setup()
	f, err := in.InjectFault(context.Background(), Spec{Kind: Kill, Group: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if f.Active || !slices.Equal(f.Replicas, []string{"web-2"}) || !strings.HasPrefix(f.ID, "f-") {
		t.Fatalf("fault %+v, want an inactive kill of web-2, the highest running number", f)
	}
	if !slices.Equal(rt.calls, []string{"kill a2"}) || !slices.Equal(ctrl.resyncs, []string{"web"}) {
		t.Fatalf("runtime calls %v, resyncs %v", rt.calls, ctrl.resyncs)
	}
	if len(ev.list) != 1 || ev.list[0].Kind != hub.FaultInjected || ev.list[0].ID != f.ID {
		t.Fatalf("events %+v", ev.list)
	}
	if _, err := in.RevertFault(context.Background(), f.ID); err != nil || len(in.Faults()) != 0 {
		t.Fatalf("revert of a kill = %v, %d faults left", err, len(in.Faults()))
	}
}

func TestPauseAndPartitionRevertOnTheSameReplica(t *testing.T) {
	in, ctrl, rt, _ := setup()
	ctx := context.Background()
	p, err := in.InjectFault(ctx, Spec{Kind: Pause, Group: "web", Replica: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	cut, err := in.InjectFault(ctx, Spec{Kind: Partition, Group: "web", Replica: "web-2"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ctrl.down, []string{"web/a2"}) {
		t.Fatalf("marked down %v: a partitioned replica must leave rotation at once", ctrl.down)
	}
	if fs := in.Faults(); len(fs) != 2 || !fs[0].Created.After(fs[1].Created) && !fs[0].Created.Equal(fs[1].Created) {
		t.Fatalf("faults %+v, want two, newest first", fs)
	}
	// The controller sees what the runtime now says.
	ctrl.mu.Lock()
	ctrl.groups["web"][0].State = replica.StatePaused
	ctrl.mu.Unlock()
	for _, id := range []string{p.ID, cut.ID} {
		if _, err := in.RevertFault(ctx, id); err != nil {
			t.Fatalf("revert %s: %v", id, err)
		}
	}
	want := []string{"pause a1", "disconnect a2", "unpause a1", "reconnect a2"}
	if !slices.Equal(rt.calls, want) {
		t.Fatalf("runtime calls %v, want %v", rt.calls, want)
	}
}

func TestRevertSkipsAReplicaThatDied(t *testing.T) {
	in, ctrl, rt, _ := setup()
	ctx := context.Background()
	f, err := in.InjectFault(ctx, Spec{Kind: Pause, Group: "web", Replica: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctrl.mu.Lock()
	ctrl.groups["web"][0].State = replica.StateExited
	ctrl.mu.Unlock()
	if _, err := in.RevertFault(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rt.calls, []string{"pause a1"}) {
		t.Fatalf("runtime calls %v: a dead replica's faults died with it", rt.calls)
	}
}

func TestReadyHookIsRegistered(t *testing.T) {
	_, ctrl, _, _ := setup()
	if len(ctrl.ready) != 1 {
		t.Fatalf("%d ready hooks, want the injector's", len(ctrl.ready))
	}
	// A replica the controller does not know, or no fault in force: nothing happens.
	done := make(chan struct{})
	go func() { ctrl.ready[0]("web", "zzz"); ctrl.ready[0]("web", "a1"); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the ready hook blocked")
	}
}

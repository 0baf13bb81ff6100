package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// fakePlacer is a runtime that places and heals replicas itself, as Swarm
// mode does with a service's tasks. It has no method to create or remove
// one replica, so the controller cannot do either.
type fakePlacer struct {
	mu     sync.Mutex
	next   int
	want   map[string]placement
	byID   map[string]*replica.Replica
	calls  []string
	addr   string // every replica answers here
	events chan replica.Event
	// assign, if set, picks the node of a replica it places (fakeSwarm).
	assign func() string
}

type placement struct {
	count int
	tmpl  replica.Spec
}

var _ PlacingRuntime = (*fakePlacer)(nil)

func newFakePlacer(addr string) *fakePlacer {
	return &fakePlacer{want: map[string]placement{}, byID: map[string]*replica.Replica{}, addr: addr, events: make(chan replica.Event, 256)}
}

func (f *fakePlacer) EnsureNetwork(context.Context) error { return nil }

func (f *fakePlacer) List(context.Context) ([]replica.Replica, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]replica.Replica, 0, len(f.byID))
	for _, r := range f.byID {
		out = append(out, *r)
	}
	replica.Sort(out)
	return out, nil
}

func (f *fakePlacer) Events(ctx context.Context) <-chan replica.Event {
	out := make(chan replica.Event)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-f.events:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

func (f *fakePlacer) Stats(_ context.Context, id string) (replica.Usage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.byID[id]; !ok {
		return replica.Usage{}, replica.ErrNotFound
	}
	return replica.Usage{Time: time.Now(), MemBytes: 1 << 20}, nil
}

func (f *fakePlacer) Down(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byID, f.want = map[string]*replica.Replica{}, map[string]placement{}
	return nil
}

func (f *fakePlacer) Place(_ context.Context, group string, count int, tmpl replica.Spec) error {
	if tmpl.Group != group || tmpl.Index != 0 || tmpl.TemplateHash == "" {
		return fmt.Errorf("place %s: template %+v", group, tmpl)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("place %s %d", group, count))
	f.want[group] = placement{count: count, tmpl: tmpl}
	f.convergeLocked(group)
	return nil
}

func (f *fakePlacer) Unplace(_ context.Context, group string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "unplace "+group)
	delete(f.want, group)
	f.convergeLocked(group)
	return nil
}

// convergeLocked is the runtime's own reconcile: it removes replicas
// above the count or of another template and fills the lowest free numbers.
func (f *fakePlacer) convergeLocked(group string) {
	w, desired := f.want[group]
	used := map[int]bool{}
	for id, r := range f.byID {
		if r.Group != group {
			continue
		}
		if !desired || r.Index > w.count || r.TemplateHash != w.tmpl.TemplateHash || r.State != replica.StateRunning {
			delete(f.byID, id)
			f.events <- replica.Event{Action: replica.ActionDestroy, ID: id, Group: group, Index: r.Index}
			continue
		}
		used[r.Index] = true
	}
	for i := 1; desired && i <= w.count; i++ {
		if used[i] {
			continue
		}
		f.next++
		r := &replica.Replica{ID: fmt.Sprintf("t%03d", f.next), Name: replica.Name(group, i), Group: group, Index: i,
			Service: w.tmpl.Service, TemplateHash: w.tmpl.TemplateHash, State: replica.StateRunning, Created: time.Now(), Address: f.addr}
		if f.assign != nil {
			r.Node = f.assign()
		}
		f.byID[r.ID] = r
		f.events <- replica.Event{Action: replica.ActionStart, ID: r.ID, Group: group, Index: i}
	}
}

// crash makes a replica die; the runtime heals it on its own.
func (f *fakePlacer) crash(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.byID {
		if r.Name == name {
			r.State, r.ExitCode = replica.StateExited, 1
			f.events <- replica.Event{Action: replica.ActionDie, ID: r.ID, Group: r.Group, Index: r.Index, ExitCode: 1}
			id := r.ID
			f.convergeLocked(r.Group)
			return id
		}
	}
	return ""
}

func (f *fakePlacer) log() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, "; ")
}

func (f *fakePlacer) names() string {
	reps, _ := f.List(context.Background())
	var out []string
	for _, r := range reps {
		out = append(out, r.Name)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func TestPlacingRuntime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()
	rt := newFakePlacer(strings.TrimPrefix(srv.URL, "http://"))
	st := &memStore{groups: map[string]spec.Group{}}
	c := New(Options{Runtime: rt, Store: st, Images: map[string]string{"shop": "flotilla-shop:test"}, Resync: time.Hour, DataPath: DataPathPublished})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	var gs GroupStatus
	status := func() string { return fmt.Sprintf("%+v; runtime calls: %s", gs, rt.log()) }
	converged := func(n int) func() bool {
		return func() bool {
			gs, _ = c.Group("web")
			return gs.Status == StatusConverged && gs.Desired == n && gs.Ready == n && len(gs.Replicas) == n
		}
	}

	// Create: the runtime is told the count once and places the replicas;
	// the controller probes and balances what it placed.
	if _, _, err := c.PutGroup(ctx, spec.Group{Name: "web", Service: "monolith", Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "3 placed replicas ready", converged(3), status)
	if got := rt.log(); got != "place web 3" {
		t.Fatalf("runtime calls %q, want one placement", got)
	}
	for i := 0; i < 30; i++ {
		resp, err := http.Get("http://" + gs.Endpoint + "/")
		if err != nil {
			t.Fatalf("request %d through the balancer: %v", i, err)
		}
		resp.Body.Close()
	}
	eventually(t, "traffic on every placed replica", func() bool {
		gs, _ = c.Group("web")
		var total uint64
		for _, r := range gs.Replicas {
			if r.Traffic == nil || r.Traffic.Requests == 0 {
				return false
			}
			total += r.Traffic.Requests
		}
		return total == 30
	}, status)

	// Heal: the runtime replaces a dead replica itself; the controller
	// tells it nothing new.
	dead := rt.crash("web-2")
	eventually(t, "healed by the runtime", func() bool {
		if !converged(3)() {
			return false
		}
		for _, r := range gs.Replicas {
			if r.ID == dead {
				return false
			}
		}
		return true
	}, status)
	if got := rt.log(); got != "place web 3" {
		t.Fatalf("runtime calls %q after a crash, want none: the runtime heals", got)
	}

	// Scale.
	if _, err := c.Scale(ctx, "web", 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "scaled to 1", converged(1), status)
	if got := rt.log(); got != "place web 3; place web 1" {
		t.Fatalf("runtime calls %q", got)
	}
	if rt.names() != "web-1" {
		t.Fatalf("runtime runs %s", rt.names())
	}

	// Delete: the runtime is told once; the group goes when its replicas do.
	if err := c.DeleteGroup(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "group gone", func() bool { _, err := c.Group("web"); return errors.Is(err, ErrNotFound) }, status)
	if got := rt.log(); got != "place web 3; place web 1; unplace web" {
		t.Fatalf("runtime calls %q", got)
	}
	if rt.names() != "" {
		t.Fatalf("runtime still runs %s", rt.names())
	}
}

func TestPlacingRuntimeAdoptsAfterRestart(t *testing.T) {
	rt := newFakePlacer("127.0.0.1:1")
	g := spec.Group{Name: "web", Service: "monolith", Replicas: 2, Balancer: spec.Balancer{Policy: spec.PolicyNone}}.WithDefaults()
	tmpl := template(g, "flotilla-shop:test")
	if err := rt.Place(context.Background(), "web", 2, tmpl); err != nil {
		t.Fatal(err)
	}
	before := rt.names()
	ids, _ := rt.List(context.Background())

	c := New(Options{Runtime: rt, Store: &memStore{groups: map[string]spec.Group{"web": g}}, Images: map[string]string{"shop": "flotilla-shop:test"}, Resync: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	eventually(t, "placement told again", func() bool { return rt.log() == "place web 2; place web 2" }, rt.log)
	eventually(t, "2 replicas observed", func() bool { gs, _ := c.Group("web"); return len(gs.Replicas) == 2 }, rt.log)
	after, _ := rt.List(context.Background())
	if rt.names() != before || after[0].ID != ids[0].ID || after[1].ID != ids[1].ID {
		t.Fatalf("replicas %+v after the restart, want the same as %+v", after, ids)
	}
}

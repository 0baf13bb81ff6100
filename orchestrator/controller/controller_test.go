package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// fakeRuntime is an in-memory engine: containers by ID, names unique.
type fakeRuntime struct {
	mu      sync.Mutex
	next    int
	byID    map[string]*replica.Replica
	creates int
	events  chan replica.Event
	// exitOnStart makes new replicas of this group die at once (a crash loop).
	exitOnStart string
	// createDelay slows every Create, as a busy engine does.
	createDelay time.Duration
	// specs are the specs Create received, in order.
	specs []replica.Spec
	// busAddr, if set, is the project-network address of a started bus
	// replica.
	busAddr string
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{byID: map[string]*replica.Replica{}, events: make(chan replica.Event, 64)}
}

func (f *fakeRuntime) EnsureNetwork(context.Context) error { return nil }

func (f *fakeRuntime) List(context.Context) ([]replica.Replica, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []replica.Replica
	for _, r := range f.byID {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fakeRuntime) Inspect(_ context.Context, id string) (replica.Replica, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.byID[id]
	if !ok {
		return replica.Replica{}, replica.ErrNotFound
	}
	return *r, nil
}

func (f *fakeRuntime) Create(_ context.Context, rs replica.Spec) (replica.Replica, error) {
	time.Sleep(f.createDelay)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.byID {
		if r.Name == rs.Name() {
			return replica.Replica{}, fmt.Errorf("create %s: %w", rs.Name(), replica.ErrConflict)
		}
	}
	f.next++
	f.creates++
	f.specs = append(f.specs, rs)
	r := &replica.Replica{ID: fmt.Sprintf("c%03d", f.next), Name: rs.Name(), Group: rs.Group, Index: rs.Index,
		Service: rs.Service, TemplateHash: rs.TemplateHash, State: replica.StateCreated, Created: time.Now()}
	f.byID[r.ID] = r
	return *r, nil
}

func (f *fakeRuntime) Start(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.byID[id]
	if !ok {
		return replica.ErrNotFound
	}
	r.State, r.StartedAt = replica.StateRunning, time.Now()
	if r.Service == spec.BusService {
		r.NetworkAddress = f.busAddr
	}
	if r.Group == f.exitOnStart {
		r.State, r.ExitCode, r.FinishedAt = replica.StateExited, 1, time.Now()
		f.events <- replica.Event{Action: "die", ID: id, Group: r.Group, Index: r.Index}
	}
	return nil
}

func (f *fakeRuntime) Stop(_ context.Context, id string, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.byID[id]
	if !ok {
		return replica.ErrNotFound
	}
	r.State = replica.StateExited
	return nil
}

func (f *fakeRuntime) Remove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.byID[id]; !ok {
		return replica.ErrNotFound
	}
	delete(f.byID, id)
	return nil
}

func (f *fakeRuntime) Events(ctx context.Context) <-chan replica.Event {
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

func (f *fakeRuntime) Stats(_ context.Context, id string) (replica.Usage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.byID[id]; !ok {
		return replica.Usage{}, replica.ErrNotFound
	}
	return replica.Usage{Time: time.Now(), MemBytes: 1 << 20, MemLimit: 64 << 20}, nil
}

func (f *fakeRuntime) Down(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byID = map[string]*replica.Replica{}
	return nil
}

// kill makes a replica die as the engine would report it.
func (f *fakeRuntime) kill(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.byID {
		if r.Name == name {
			r.State, r.ExitCode, r.FinishedAt = replica.StateExited, 137, time.Now()
			r.StartedAt = r.FinishedAt.Add(-time.Minute)
			f.events <- replica.Event{Action: "die", ID: r.ID, Group: r.Group, Index: r.Index}
		}
	}
}

func (f *fakeRuntime) names() string {
	reps, _ := f.List(context.Background())
	var out []string
	for _, r := range reps {
		out = append(out, r.Name+"="+r.State)
	}
	return strings.Join(out, " ")
}

type memStore struct {
	mu       sync.Mutex
	groups   map[string]spec.Group
	scenario string
	history  map[string][]byte
}

func (m *memStore) PutHistory(group string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.history == nil {
		m.history = map[string][]byte{}
	}
	m.history[group] = data
	return nil
}

func (m *memStore) History(group string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.history[group], nil
}

func (m *memStore) SetScenario(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.scenario = name
	return nil
}

func (m *memStore) Scenario() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.scenario, nil
}

func (m *memStore) Groups() ([]spec.Group, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []spec.Group
	for _, g := range m.groups {
		out = append(out, g)
	}
	return out, nil
}

func (m *memStore) PutGroup(g spec.Group) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.groups[g.Name] = g
	return nil
}

func (m *memStore) DeleteGroup(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.groups, name)
	return nil
}

func startController(t *testing.T, rt *fakeRuntime, st *memStore) *Controller {
	t.Helper()
	c := New(Options{Runtime: rt, Store: st, Images: map[string]string{"shop": "flotilla-shop:test"}, Resync: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return c
}

func eventually(t *testing.T, what string, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; have %s", what, describe())
}

func TestScaleUpDownAndDelete(t *testing.T) {
	rt := newFakeRuntime()
	c := startController(t, rt, &memStore{groups: map[string]spec.Group{}})
	ctx := context.Background()

	if _, created, err := c.PutGroup(ctx, spec.Group{Name: "web", Service: "monolith", Replicas: 5}); err != nil || !created {
		t.Fatalf("PutGroup = created %v, %v", created, err)
	}
	want := "web-1=running web-2=running web-3=running web-4=running web-5=running"
	eventually(t, "5 replicas", func() bool { return rt.names() == want }, rt.names)

	if _, err := c.Scale(ctx, "web", 2); err != nil {
		t.Fatal(err)
	}
	eventually(t, "2 replicas", func() bool { return rt.names() == "web-1=running web-2=running" }, rt.names)

	st, err := c.Group("web")
	if err != nil || st.Desired != 2 || len(st.Replicas) != 2 || st.Service != "monolith" {
		t.Fatalf("Group = %+v, %v", st, err)
	}

	if err := c.DeleteGroup(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "no replicas", func() bool { return rt.names() == "" }, rt.names)
	eventually(t, "group gone", func() bool { _, err := c.Group("web"); return errors.Is(err, ErrNotFound) }, func() string { return "group still listed" })
}

func TestKilledReplicaIsReplaced(t *testing.T) {
	rt := newFakeRuntime()
	c := startController(t, rt, &memStore{groups: map[string]spec.Group{}})
	if _, _, err := c.PutGroup(context.Background(), spec.Group{Name: "web", Service: "monolith", Replicas: 2}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "2 replicas", func() bool { return rt.names() == "web-1=running web-2=running" }, rt.names)
	before := rt.creates
	rt.kill("web-2")
	eventually(t, "replacement", func() bool {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		return rt.creates == before+1
	}, rt.names)
	eventually(t, "2 running", func() bool { return rt.names() == "web-1=running web-2=running" }, rt.names)
}

func TestAdoptsOwnedReplicasOnStart(t *testing.T) {
	rt := newFakeRuntime()
	g := spec.Group{Name: "web", Service: "monolith", Replicas: 3}.WithDefaults()
	hash := g.TemplateHash("flotilla-shop:test")
	// What a controller killed mid-scale leaves: two running, one created
	// and never started, and an orphan of a group nobody wants any more.
	for i, state := range []string{replica.StateRunning, replica.StateRunning, replica.StateCreated} {
		r, _ := rt.Create(context.Background(), replica.Spec{Group: "web", Index: i + 1, Service: "monolith", TemplateHash: hash})
		rt.byID[r.ID].State = state
	}
	orphan, _ := rt.Create(context.Background(), replica.Spec{Group: "old", Index: 1, Service: "cart"})
	rt.byID[orphan.ID].State = replica.StateRunning
	adopted := rt.byID["c001"].ID

	startController(t, rt, &memStore{groups: map[string]spec.Group{"web": g}})
	eventually(t, "converged", func() bool { return rt.names() == "web-1=running web-2=running web-3=running" }, rt.names)
	if _, err := rt.Inspect(context.Background(), adopted); err != nil {
		t.Fatalf("the running replica web-1 was not adopted but replaced: %v", err)
	}
	if rt.creates != 5 {
		t.Fatalf("creates = %d, want 5: 4 before start and only web-3 recreated", rt.creates)
	}
}

func TestCrashLoopIsShownAndBackedOff(t *testing.T) {
	rt := newFakeRuntime()
	rt.exitOnStart = "bad"
	c := startController(t, rt, &memStore{groups: map[string]spec.Group{}})
	if _, _, err := c.PutGroup(context.Background(), spec.Group{Name: "bad", Service: "cart", Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	var st GroupStatus
	eventually(t, "crash-loop status", func() bool {
		st, _ = c.Group("bad")
		return st.Status == StatusCrashLoop
	}, func() string { return fmt.Sprintf("%+v", st) })
	if !strings.Contains(st.Message, "crash loop") {
		t.Fatalf("message %q does not explain the crash loop", st.Message)
	}
	// Backoff: within the next 500ms at most one more attempt is made.
	rt.mu.Lock()
	before := rt.creates
	rt.mu.Unlock()
	time.Sleep(500 * time.Millisecond)
	rt.mu.Lock()
	after := rt.creates
	rt.mu.Unlock()
	if after-before > 1 {
		t.Fatalf("%d creates in 500ms during a crash loop: no backoff", after-before)
	}
}

func TestInvalidGroupIsRefused(t *testing.T) {
	c := New(Options{Runtime: newFakeRuntime(), Store: &memStore{groups: map[string]spec.Group{}}, MaxReplicas: 5})
	for _, g := range []spec.Group{
		{Name: "web", Service: "nginx:latest", Replicas: 1},
		{Name: "web", Service: "monolith", Replicas: 6},
		{Name: "Web_1", Service: "monolith", Replicas: 1},
		{Name: "web", Service: "monolith", Replicas: -1},
	} {
		if _, _, err := c.PutGroup(context.Background(), g); !errors.Is(err, spec.ErrInvalid) {
			t.Errorf("PutGroup(%+v) = %v, want ErrInvalid", g, err)
		}
	}
	if gs := c.Groups(); len(gs) != 0 {
		t.Fatalf("refused groups were stored: %+v", gs)
	}
	if _, err := c.Scale(context.Background(), "nope", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Scale of unknown group = %v, want ErrNotFound", err)
	}
}

// A vm group is the controller's question: refused with what to install
// when there is no VM image, made from the VM image when there is.
func TestVMGroupNeedsAVMImage(t *testing.T) {
	noVM := errors.New("VM images need QEMU and a guest kernel: qemu-system-x86_64 is not installed (make vm)")
	c := New(Options{Runtime: newFakeRuntime(), Store: &memStore{groups: map[string]spec.Group{}}, Images: map[string]string{"shop": "flotilla-shop:test"}, NoVM: noVM})
	g := spec.Group{Name: "web", Service: "monolith", Replicas: 1, Isolation: spec.IsolationVM}
	_, _, err := c.PutGroup(context.Background(), g)
	var ve *spec.ValidationError
	if !errors.As(err, &ve) || ve.Field != "isolation" || !strings.Contains(err.Error(), "make vm") || !errors.Is(err, spec.ErrInvalid) {
		t.Fatalf("PutGroup of a vm group without a VM image = %v, want an isolation ValidationError saying make vm", err)
	}
	if _, err := c.ApplyScenario(context.Background(), spec.Scenario{Name: "s", Groups: []spec.Group{g}}); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("ApplyScenario with a vm group and no VM image = %v, want ErrInvalid", err)
	}
	if gs := c.Groups(); len(gs) != 0 {
		t.Fatalf("a refused vm group was stored: %+v", gs)
	}

	rt := newFakeRuntime()
	c = New(Options{Runtime: rt, Store: &memStore{groups: map[string]spec.Group{}}, Images: map[string]string{"shop": "flotilla-shop:test", VMImage: "flotilla-vm:test"}, VMAccel: "tcg", Resync: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	st, _, err := c.PutGroup(ctx, g)
	if err != nil {
		t.Fatalf("PutGroup of a vm group with a VM image: %v", err)
	}
	if st.Isolation != spec.IsolationVM || st.Accel != "tcg" {
		t.Errorf("group JSON isolation %q accel %q, want vm and tcg", st.Isolation, st.Accel)
	}
	eventually(t, "a VM replica created", func() bool {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		return len(rt.specs) > 0
	}, rt.names)
	rt.mu.Lock()
	rs := rt.specs[0]
	rt.mu.Unlock()
	if rs.Image != "flotilla-vm:test" || rs.Isolation != spec.IsolationVM {
		t.Errorf("VM replica made from %q with isolation %q, want the VM image and vm", rs.Image, rs.Isolation)
	}
	for _, want := range []string{"FLOTILLA_ROLE=monolith", "ADMIN_PORT=9090", "FLOTILLA_VM_ACCEL=tcg", "FLOTILLA_VM_MEMORY=256"} {
		if !slices.Contains(rs.Env, want) {
			t.Errorf("VM replica env %v lacks %s", rs.Env, want)
		}
	}
	if rs.Port != 8080 {
		t.Errorf("VM replica port %d, want the shop's 8080 (QEMU forwards it to the guest)", rs.Port)
	}
	// The default 64 MiB group: 64 + 256 for the guest + 192 for QEMU.
	if rs.MemoryBytes != 512<<20 || rs.PidsLimit != 64 {
		t.Errorf("VM replica memory %d MiB, pids %d; want 512 MiB and 64", rs.MemoryBytes>>20, rs.PidsLimit)
	}
	if rs.TemplateHash == template(g.WithDefaults(), "flotilla-shop:test").TemplateHash {
		t.Error("a vm group and a container group of the same service hash alike")
	}
}

func TestDownWaitsForCreatesInFlight(t *testing.T) {
	rt := newFakeRuntime()
	rt.createDelay = 200 * time.Millisecond
	c := startController(t, rt, &memStore{groups: map[string]spec.Group{}})
	ctx := context.Background()
	if _, _, err := c.PutGroup(ctx, spec.Group{Name: "web", Service: "monolith", Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the creates are under way
	if err := c.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rt.names(); got != "" {
		t.Fatalf("after Down returned, the engine still holds %s", got)
	}
}

// VMs are counted at their containers' limits against the machine's budget
// for VMs, all vm groups together; what would not fit is refused, saying
// how many would.
func TestVMGroupsMustFitTheMachine(t *testing.T) {
	c := New(Options{Runtime: newFakeRuntime(), Store: &memStore{groups: map[string]spec.Group{}},
		Images: map[string]string{"shop": "flotilla-shop:test", VMImage: "flotilla-vm:test"}, VMMemoryMiB: 2048})
	ctx := context.Background()
	a := spec.Group{Name: "a", Service: "monolith", Replicas: 3, Isolation: spec.IsolationVM} // 3 × 512 MiB
	if _, _, err := c.PutGroup(ctx, a); err != nil {
		t.Fatalf("3 VMs of 512 MiB in 2048: %v", err)
	}
	b := spec.Group{Name: "b", Service: "catalog", Replicas: 2, Isolation: spec.IsolationVM}
	_, _, err := c.PutGroup(ctx, b)
	var ve *spec.ValidationError
	if !errors.As(err, &ve) || ve.Field != "replicas" || !strings.Contains(ve.Reason, "1536 of them taken by other vm groups: at most 1 fit") {
		t.Fatalf("2 more VMs beside 3 = %v, want a replicas error saying at most 1 fits", err)
	}
	b.Replicas = 1
	if _, _, err := c.PutGroup(ctx, b); err != nil {
		t.Fatalf("1 more VM that fits: %v", err)
	}
	if _, err := c.Scale(ctx, "a", 4); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("scaling a to 4 past the budget = %v, want refused", err)
	}
	if _, err := c.Scale(ctx, "a", 2); err != nil {
		t.Errorf("scaling a down: %v", err)
	}
	// Containers and pods are not VMs: the budget does not count them.
	if _, _, err := c.PutGroup(ctx, spec.Group{Name: "c", Service: "catalog", Replicas: 20}); err != nil {
		t.Errorf("a container group beside the VMs: %v", err)
	}
}

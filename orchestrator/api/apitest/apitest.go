// Package apitest holds Controller, an in-memory stand-in for everything the
// API drives (the controller with its nodes, its fault injector, its reading
// of the bus and the load generator), so
// that the tests of the API, of the CLI that calls it and of the dashboard in
// a browser run the real handlers against one fake instead of three copies.
//
// It is for tests only: nothing but _test.go files imports it. It does not
// import package api, so that the API's own tests can use it.
package apitest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/flotilla/flotilla/orchestrator/bus"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/faults"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/load"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// ErrBroken is what PutGroup returns for a group named "broken": a failure of
// the controller itself, which the API must answer with a 500.
var ErrBroken = errors.New("docker engine unreachable")

// Options configure New. Every field may be left zero.
type Options struct {
	// MaxReplicas bounds a group as the controller's --max-replicas does;
	// 0 means spec.DefaultMaxReplicas.
	MaxReplicas int
	// Events receives the events the real controller would publish; nil
	// publishes none. SetEvents changes it later.
	Events *hub.Hub
	// Status makes a group's status from its spec (defaults applied) after
	// every change; nil uses DefaultStatus.
	Status func(spec.Group) controller.GroupStatus
	// VM makes the controller one with a VM image; without it, vm groups
	// are refused as the real controller refuses them on a machine
	// without QEMU.
	VM bool
	// HoldRollouts keeps each rollout progressing until EndRollout ends
	// it; without it a rollout completes as soon as it starts.
	HoldRollouts bool
}

// errNoVM is what the real controller says on a machine without QEMU.
var errNoVM = errors.New("VM images need QEMU and a guest kernel: qemu-system-x86_64 is not installed (make vm, or apt-get install qemu-system-x86)")

// Controller keeps groups, faults and load runs in memory and validates like
// the real controller. A group named "panic" panics in PutGroup and one named
// "broken" fails with ErrBroken, for the API's 500 paths. Its methods are
// safe for concurrent use.
type Controller struct {
	max    int
	vm     bool
	hold   bool
	status func(spec.Group) controller.GroupStatus

	mu       sync.Mutex
	events   *hub.Hub
	specs    map[string]spec.Group
	groups   map[string]controller.GroupStatus
	stats    map[string]controller.ReplicaStats
	scenario string
	puts     []spec.Group
	actions  []string
	downs    int
	faults   []faults.Fault // oldest first
	injected []faults.Spec
	nFaults  int
	loads    []load.Report // oldest first
	nLoads   int
	bus      *bus.Status // nil: no bus runs
	replays  []uint64
	nodes    *controller.NodesStatus // nil: the engine runtime
	nodesErr error                   // set: Nodes fails with it
	avails   []string
	hist     map[string]*history
}

// New returns a Controller holding groups (defaults applied by it).
func New(opts Options, groups ...spec.Group) *Controller {
	f := &Controller{
		max: opts.MaxReplicas, vm: opts.VM, hold: opts.HoldRollouts, status: opts.Status, events: opts.Events,
		specs: map[string]spec.Group{}, groups: map[string]controller.GroupStatus{},
		stats: map[string]controller.ReplicaStats{}, hist: map[string]*history{},
	}
	if f.max == 0 {
		f.max = spec.DefaultMaxReplicas
	}
	if f.status == nil {
		f.status = DefaultStatus
	}
	for _, g := range groups {
		g = g.WithDefaults()
		f.specs[g.Name] = g
		f.noteTemplateLocked(g, false)
		f.groups[g.Name] = f.statusLocked(g)
	}
	return f
}

// DefaultStatus is a converged group: every replica running and ready, at
// 127.0.0.1:32001 and up.
func DefaultStatus(g spec.Group) controller.GroupStatus {
	st := controller.GroupStatus{
		Name: g.Name, Service: g.Service, Desired: g.Replicas, Ready: g.Replicas,
		Status: controller.StatusConverged, Isolation: g.Isolation, Resources: g.Resources, Balancer: g.Balancer, Probe: g.Probe, Liveness: g.Liveness,
	}
	for i := 1; i <= g.Replicas; i++ {
		st.Replicas = append(st.Replicas, controller.ReplicaStatus{
			Name: fmt.Sprintf("%s-%d", g.Name, i), ID: fmt.Sprintf("c0ffee%02d", i),
			State: "running", Health: controller.HealthReady, Address: fmt.Sprintf("127.0.0.1:%d", 32000+i),
		})
	}
	return st
}

// SetEvents makes the fake publish to h from now on (nil: nowhere), as a
// controller restarted with a new hub would.
func (f *Controller) SetEvents(h *hub.Hub) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = h
}

func (f *Controller) publishLocked(kind, group, replica, id, format string, args ...any) {
	if f.events != nil {
		f.events.Publish(hub.Event{Kind: kind, Group: group, Replica: replica, ID: id, Message: fmt.Sprintf(format, args...)})
	}
}

// SetGroup makes st a group's status as it is, the way a test shows what the
// controller observed (a replica dying, a rollout under way, what each
// replica sees once ready). The group's spec follows the status.
func (f *Controller) SetGroup(st controller.GroupStatus) {
	// A copy, so the caller may go on changing its own for the next step.
	st.Replicas = slices.Clone(st.Replicas)
	for i, r := range st.Replicas {
		if r.Traffic != nil {
			t := *r.Traffic
			st.Replicas[i].Traffic = &t
		}
		if r.Sees != nil {
			v := *r.Sees
			st.Replicas[i].Sees = &v
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups[st.Name] = st
	f.specs[st.Name] = spec.Group{Name: st.Name, Service: st.Service, Replicas: st.Desired,
		Resources: st.Resources, Balancer: st.Balancer, Probe: st.Probe, Isolation: st.Isolation}.WithDefaults()
}

// SetStats replaces the live figures Stats returns.
func (f *Controller) SetStats(stats map[string]controller.ReplicaStats) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats = maps.Clone(stats)
}

// SetScenario sets the name Scenario returns.
func (f *Controller) SetScenario(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scenario = name
}

// Spec returns a group's spec and whether there is such a group.
func (f *Controller) Spec(name string) (spec.Group, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.specs[name]
	return g, ok
}

// Len is the number of groups.
func (f *Controller) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.groups)
}

// Puts are the groups PutGroup received, as received (before defaults).
func (f *Controller) Puts() []spec.Group {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.puts)
}

// Actions are the replica actions done, as "group/replica/action".
func (f *Controller) Actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.actions)
}

// Downs counts the calls of Down.
func (f *Controller) Downs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.downs
}

// Injected are the fault specs InjectFault accepted, in order.
func (f *Controller) Injected() []faults.Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.injected)
}

// Services returns the real catalogue.
func (f *Controller) Services() []spec.Service { return spec.Services() }

// Groups returns every group's status, sorted by name.
func (f *Controller) Groups() []controller.GroupStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]controller.GroupStatus, 0, len(f.groups))
	for _, st := range f.groups {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Group returns one group's status.
func (f *Controller) Group(name string) (controller.GroupStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.groups[name]
	if !ok {
		return controller.GroupStatus{}, fmt.Errorf("group %q: %w", name, controller.ErrNotFound)
	}
	return st, nil
}

// validate checks g as the real controller does.
func (f *Controller) validate(g spec.Group) error {
	if err := g.Validate(f.max); err != nil {
		return err
	}
	if g.Isolation == spec.IsolationVM && !f.vm {
		return controller.VMUnavailable(errNoVM)
	}
	return nil
}

// PutGroup validates g with its defaults applied and keeps it.
func (f *Controller) PutGroup(ctx context.Context, g spec.Group) (controller.GroupStatus, bool, error) {
	return f.PutGroupWith(ctx, g, false)
}

// PutGroupWith is PutGroup; a change of template while a rollout runs is
// refused as the controller refuses it, unless supersede.
func (f *Controller) PutGroupWith(_ context.Context, g spec.Group, supersede bool) (controller.GroupStatus, bool, error) {
	switch g.Name {
	case "panic":
		panic("fake controller bug")
	case "broken":
		return controller.GroupStatus{}, false, ErrBroken
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts = append(f.puts, g)
	st, created, err := f.putLocked(g, supersede)
	return st, created, err
}

// CheckGroup says whether PutGroupWith would take g, changing nothing.
func (f *Controller) CheckGroup(g spec.Group, supersede bool) error {
	if g.Name == "broken" {
		return ErrBroken
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	g = g.WithDefaults()
	if err := f.validate(g); err != nil {
		return fmt.Errorf("put group %q: %w", g.Name, err)
	}
	return f.checkRolloutLocked(g, supersede)
}

func (f *Controller) putLocked(g spec.Group, supersede bool) (controller.GroupStatus, bool, error) {
	g = g.WithDefaults()
	if err := f.validate(g); err != nil {
		return controller.GroupStatus{}, false, fmt.Errorf("put group %q: %w", g.Name, err)
	}
	if err := f.checkRolloutLocked(g, supersede); err != nil {
		return controller.GroupStatus{}, false, err
	}
	old, existed := f.specs[g.Name]
	f.specs[g.Name] = g
	f.noteTemplateLocked(g, supersede)
	f.groups[g.Name] = f.statusLocked(g)
	switch {
	case !existed:
		f.publishLocked(hub.GroupCreated, g.Name, "", "", "group %s created: %d × %s, balancer %s", g.Name, g.Replicas, g.Service, g.Balancer.Policy)
	case old.Replicas != g.Replicas:
		f.publishLocked(hub.GroupScaled, g.Name, "", "", "group %s scaled from %d to %d", g.Name, old.Replicas, g.Replicas)
	default:
		f.publishLocked(hub.GroupUpdated, g.Name, "", "", "group %s updated", g.Name)
	}
	return f.groups[g.Name], !existed, nil
}

// DeleteGroup forgets a group.
func (f *Controller) DeleteGroup(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.groups[name]; !ok {
		return fmt.Errorf("group %q: %w", name, controller.ErrNotFound)
	}
	f.deleteLocked(name)
	return nil
}

func (f *Controller) deleteLocked(name string) {
	delete(f.groups, name)
	delete(f.specs, name)
	delete(f.hist, name)
	f.publishLocked(hub.GroupDeleted, name, "", "", "group %s deleted; its replicas drain and stop", name)
}

// Scale sets a group's desired count.
func (f *Controller) Scale(_ context.Context, name string, replicas int) (controller.GroupStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.specs[name]
	if !ok {
		return controller.GroupStatus{}, fmt.Errorf("group %q: %w", name, controller.ErrNotFound)
	}
	if replicas < 0 || replicas > f.max {
		return controller.GroupStatus{}, &spec.ValidationError{Field: "replicas", Reason: fmt.Sprintf("%d is out of range: must be 0 to %d", replicas, f.max)}
	}
	g.Replicas = replicas
	st, _, err := f.putLocked(g, false)
	return st, err
}

// Down forgets every group.
func (f *Controller) Down(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.downs++
	for _, name := range slices.Sorted(maps.Keys(f.groups)) {
		f.deleteLocked(name)
	}
	return nil
}

// ReplicaAction records an action on a replica the group shows.
func (f *Controller) ReplicaAction(_ context.Context, group, replica, action string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.groups[group]
	if !ok {
		return fmt.Errorf("group %q: %w", group, controller.ErrNotFound)
	}
	for _, r := range st.Replicas {
		if r.Name == replica {
			f.actions = append(f.actions, group+"/"+replica+"/"+action)
			return nil
		}
	}
	return fmt.Errorf("replica %q: %w", replica, controller.ErrNotFound)
}

// Stats returns what SetStats last set.
func (f *Controller) Stats() map[string]controller.ReplicaStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.stats)
}

// ApplyScenario makes the groups exactly the scenario's, as the controller
// does: every group is checked before any changes, groups the scenario lacks
// are deleted, and only what differs is put.
func (f *Controller) ApplyScenario(_ context.Context, sc spec.Scenario) (controller.ScenarioResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	res := controller.ScenarioResult{Scenario: sc.Name, Created: []string{}, Updated: []string{}, Deleted: []string{}, Unchanged: []string{}}
	want := map[string]spec.Group{}
	for _, g := range sc.Groups {
		g = g.WithDefaults()
		if err := f.validate(g); err != nil {
			return res, fmt.Errorf("scenario %s: group %q: %w", sc.Name, g.Name, err)
		}
		want[g.Name] = g
	}
	for _, name := range slices.Sorted(maps.Keys(f.specs)) {
		if _, ok := want[name]; !ok {
			f.deleteLocked(name)
			res.Deleted = append(res.Deleted, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		g := want[name]
		old, ok := f.specs[name]
		switch {
		case !ok:
			res.Created = append(res.Created, name)
		case !old.Equal(g):
			res.Updated = append(res.Updated, name)
		default:
			res.Unchanged = append(res.Unchanged, name)
			continue
		}
		if _, _, err := f.putLocked(g, false); err != nil {
			return res, err
		}
	}
	f.scenario = sc.Name
	f.publishLocked(hub.ScenarioApplied, "", "", "", "scenario %s applied: created %v, updated %v, deleted %v", sc.Name, res.Created, res.Updated, res.Deleted)
	return res, nil
}

// Scenario is the name of the scenario applied last.
func (f *Controller) Scenario() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.scenario
}

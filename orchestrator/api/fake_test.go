package api

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// fakeController keeps groups in memory and validates like the real one.
// A group named "panic" panics and one named "broken" fails with a plain
// error, to exercise the API's 500 paths.
type fakeController struct {
	scenario string
	mu       sync.Mutex
	groups   map[string]spec.Group
	max      int
	downs    int
	puts     []spec.Group // as received, before defaults
	actions  []string     // group/replica/action of ReplicaAction calls
}

var errBroken = errors.New("docker engine unreachable")

func newFake(groups ...spec.Group) *fakeController {
	f := &fakeController{groups: map[string]spec.Group{}, max: spec.DefaultMaxReplicas}
	for _, g := range groups {
		f.groups[g.Name] = g.WithDefaults()
	}
	return f
}

func status(g spec.Group) controller.GroupStatus {
	st := controller.GroupStatus{
		Name: g.Name, Service: g.Service, Desired: g.Replicas, Ready: g.Replicas,
		Status: controller.StatusConverged, Resources: g.Resources,
	}
	for i := 1; i <= g.Replicas; i++ {
		st.Replicas = append(st.Replicas, controller.ReplicaStatus{
			Name: fmt.Sprintf("%s-%d", g.Name, i), ID: fmt.Sprintf("c0ffee%02d", i),
			State: "running", Health: controller.HealthReady, Address: fmt.Sprintf("127.0.0.1:%d", 32000+i),
		})
	}
	return st
}

func (f *fakeController) Services() []spec.Service { return spec.Services() }

func (f *fakeController) Groups() []controller.GroupStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []controller.GroupStatus
	for _, g := range f.groups {
		out = append(out, status(g))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (f *fakeController) Group(name string) (controller.GroupStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.groups[name]
	if !ok {
		return controller.GroupStatus{}, fmt.Errorf("group %q: %w", name, controller.ErrNotFound)
	}
	return status(g), nil
}

func (f *fakeController) PutGroup(_ context.Context, g spec.Group) (controller.GroupStatus, bool, error) {
	switch g.Name {
	case "panic":
		panic("fake controller bug")
	case "broken":
		return controller.GroupStatus{}, false, errBroken
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts = append(f.puts, g)
	g = g.WithDefaults()
	if err := g.Validate(f.max); err != nil {
		return controller.GroupStatus{}, false, fmt.Errorf("put group %q: %w", g.Name, err)
	}
	_, existed := f.groups[g.Name]
	f.groups[g.Name] = g
	return status(g), !existed, nil
}

func (f *fakeController) DeleteGroup(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.groups[name]; !ok {
		return controller.ErrNotFound
	}
	delete(f.groups, name)
	return nil
}

func (f *fakeController) Scale(_ context.Context, name string, replicas int) (controller.GroupStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.groups[name]
	if !ok {
		return controller.GroupStatus{}, controller.ErrNotFound
	}
	if replicas < 0 || replicas > f.max {
		return controller.GroupStatus{}, &spec.ValidationError{Field: "replicas", Reason: fmt.Sprintf("%d is out of range: must be 0 to %d", replicas, f.max)}
	}
	g.Replicas = replicas
	f.groups[name] = g
	return status(g), nil
}

func (f *fakeController) Down(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.downs++
	clear(f.groups)
	return nil
}

func (f *fakeController) ReplicaAction(_ context.Context, group, replica, action string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.groups[group]
	if !ok {
		return fmt.Errorf("group %q: %w", group, controller.ErrNotFound)
	}
	for _, r := range status(g).Replicas {
		if r.Name == replica {
			f.actions = append(f.actions, group+"/"+replica+"/"+action)
			return nil
		}
	}
	return fmt.Errorf("replica %q: %w", replica, controller.ErrNotFound)
}

func (f *fakeController) Stats() map[string]controller.ReplicaStats {
	return map[string]controller.ReplicaStats{"web-1": {Group: "web", RPS: 10}}
}

func (f *fakeController) ApplyScenario(ctx context.Context, sc spec.Scenario) (controller.ScenarioResult, error) {
	res := controller.ScenarioResult{Scenario: sc.Name}
	for _, g := range sc.Groups {
		if _, _, err := f.PutGroup(ctx, g); err != nil {
			return res, err
		}
		res.Created = append(res.Created, g.Name)
	}
	f.scenario = sc.Name
	return res, nil
}

func (f *fakeController) Scenario() string { return f.scenario }

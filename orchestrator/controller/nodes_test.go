package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// fakeSwarm is a placing runtime over several nodes, as Swarm mode is: it
// spreads a group's replicas over the active nodes, and draining a node
// replaces the replicas there by new ones on other nodes. Its nodes are
// guarded by the placer's lock.
type fakeSwarm struct {
	*fakePlacer
	nodes []replica.Node
	sets  []string // "id availability", in order
	reads atomic.Int64
	next  int
}

var (
	_ PlacingRuntime = (*fakeSwarm)(nil)
	_ NodeRuntime    = (*fakeSwarm)(nil)
)

func newFakeSwarm(nodes ...replica.Node) *fakeSwarm {
	f := &fakeSwarm{fakePlacer: newFakePlacer("127.0.0.1:1"), nodes: nodes}
	f.assign = f.assignLocked
	return f
}

// assignLocked picks the active nodes in turn; "" when none is.
func (f *fakeSwarm) assignLocked() string {
	for range f.nodes {
		n := f.nodes[f.next%len(f.nodes)]
		f.next++
		if n.Availability == replica.AvailabilityActive && n.State == "ready" {
			return n.ID
		}
	}
	return ""
}

func (f *fakeSwarm) Nodes(context.Context) ([]replica.Node, error) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.nodes), nil
}

func (f *fakeSwarm) SetNodeAvailability(_ context.Context, id, availability string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.nodes, func(n replica.Node) bool { return n.ID == id })
	if i < 0 {
		return fmt.Errorf("node %s: %w", id, replica.ErrNotFound)
	}
	f.sets = append(f.sets, id+" "+availability)
	f.nodes[i].Availability = availability
	if availability != replica.AvailabilityDrain {
		return nil
	}
	groups := map[string]bool{}
	for rid, r := range f.byID {
		if r.Node == id {
			delete(f.byID, rid)
			f.events <- replica.Event{Action: replica.ActionDestroy, ID: rid, Group: r.Group, Index: r.Index}
			groups[r.Group] = true
		}
	}
	for g := range groups {
		f.convergeLocked(g)
	}
	return nil
}

// setNode changes a node as the swarm would on its own (a node going down).
func (f *fakeSwarm) setNode(id string, change func(*replica.Node)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.nodes {
		if f.nodes[i].ID == id {
			change(&f.nodes[i])
		}
	}
}

func (f *fakeSwarm) availabilityCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sets)
}

func threeNodes() []replica.Node {
	return []replica.Node{
		{ID: "w2id", Name: "w2", Role: replica.RoleWorker, State: "ready", Availability: replica.AvailabilityActive, NanoCPUs: 2e9, MemoryBytes: 4 << 30},
		{ID: "m1id", Name: "m1", Role: replica.RoleManager, Leader: true, State: "ready", Availability: replica.AvailabilityActive, NanoCPUs: 4e9, MemoryBytes: 8 << 30},
		{ID: "w1id", Name: "w1", Role: replica.RoleWorker, State: "ready", Availability: replica.AvailabilityActive, NanoCPUs: 2e9, MemoryBytes: 4 << 30,
			Labels: map[string]string{"zone": "a"}},
	}
}

// placed is where a NodesStatus puts each replica: "node: name name; ...".
func placed(st NodesStatus) string {
	var parts []string
	for _, n := range st.Nodes {
		var names []string
		for _, r := range n.Replicas {
			names = append(names, r.Name)
		}
		parts = append(parts, n.Name+": "+strings.Join(names, " "))
	}
	if len(st.Unassigned) > 0 {
		parts = append(parts, fmt.Sprintf("unassigned: %d", len(st.Unassigned)))
	}
	return strings.Join(parts, "; ")
}

func TestNodesOfTheEngineRuntime(t *testing.T) {
	rt := newFakeRuntime()
	c := startController(t, rt, &memStore{groups: map[string]spec.Group{}})
	ctx := context.Background()
	if _, _, err := c.PutGroup(ctx, spec.Group{Name: "web", Service: "monolith", Replicas: 3, Balancer: spec.Balancer{Policy: spec.PolicyNone}}); err != nil {
		t.Fatal(err)
	}
	var st NodesStatus
	eventually(t, "3 replicas on the local engine", func() bool {
		var err error
		st, err = c.Nodes(ctx)
		return err == nil && len(st.Nodes) == 1 && len(st.Nodes[0].Replicas) == 3
	}, func() string { return fmt.Sprintf("%+v", st) })

	if c.RuntimeName() != RuntimeEngine || st.Runtime != RuntimeEngine {
		t.Errorf("runtime %q, nodes of runtime %q; want %q", c.RuntimeName(), st.Runtime, RuntimeEngine)
	}
	host, _ := os.Hostname()
	n := st.Nodes[0]
	if n.ID != LocalNodeID || n.Role != replica.RoleEngine || n.Name != host || n.State != "ready" || n.Availability != replica.AvailabilityActive {
		t.Errorf("the local node is %+v; want ID local, role engine, named %q, ready and active", n.Node, host)
	}
	if n.NanoCPUs != int64(runtime.NumCPU())*1e9 || n.MemoryBytes <= 0 && runtime.GOOS == "linux" {
		t.Errorf("the local node has %d nano CPUs and %d bytes; want the machine's %d CPUs and its memory", n.NanoCPUs, n.MemoryBytes, runtime.NumCPU())
	}
	for i, r := range n.Replicas {
		if r.Group != "web" || r.Name != replica.Name("web", i+1) || r.ID == "" || r.State == "" {
			t.Errorf("replica %d on the node: %+v", i, r)
		}
	}
	gs, _ := c.Group("web")
	if gs.Runtime != RuntimeEngine {
		t.Errorf("the group's runtime is %q, want engine", gs.Runtime)
	}

	// Nothing to drain: said so, and why.
	_, err := c.SetNodeAvailability(ctx, LocalNodeID, replica.AvailabilityDrain)
	if !errors.Is(err, ErrNotSwarm) || !strings.Contains(err.Error(), "flotilla serve --runtime swarm") {
		t.Errorf("draining the local engine: %v; want ErrNotSwarm saying how to start the swarm runtime", err)
	}
	var ve *spec.ValidationError
	if _, err := c.SetNodeAvailability(ctx, LocalNodeID, "sideways"); !errors.As(err, &ve) || ve.Field != "availability" {
		t.Errorf("an availability of sideways: %v; want a validation error of field availability", err)
	}
}

func TestNodesOfASwarm(t *testing.T) {
	rt := newFakeSwarm(threeNodes()...)
	events := &recordEvents{}
	c := New(Options{Runtime: rt, RuntimeName: RuntimeSwarm, Store: &memStore{groups: map[string]spec.Group{}}, Events: events,
		Images: map[string]string{"shop": "flotilla-shop:test"}, Resync: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	defer stop()

	if _, _, err := c.PutGroup(ctx, spec.Group{Name: "web", Service: "monolith", Replicas: 3, Balancer: spec.Balancer{Policy: spec.PolicyNone}}); err != nil {
		t.Fatal(err)
	}
	var st NodesStatus
	describe := func() string { return fmt.Sprintf("%s (%+v)", placed(st), st) }
	eventually(t, "a replica on each node", func() bool {
		st, _ = c.Nodes(ctx)
		return placed(st) == "m1: web-2; w1: web-3; w2: web-1"
	}, describe)
	if st.Runtime != RuntimeSwarm || c.RuntimeName() != RuntimeSwarm {
		t.Errorf("runtime %q, want swarm", st.Runtime)
	}
	m1 := st.Nodes[0]
	if m1.Role != replica.RoleManager || !m1.Leader || m1.NanoCPUs != 4e9 || st.Nodes[1].Labels["zone"] != "a" {
		t.Errorf("the nodes, managers first: %+v", st.Nodes)
	}
	gs, _ := c.Group("web")
	if gs.Runtime != RuntimeSwarm || len(gs.Replicas) != 3 || gs.Replicas[0].Node != "w2id" {
		t.Errorf("the group says runtime %q and replicas %+v; want swarm, web-1 on w2", gs.Runtime, gs.Replicas)
	}

	// Drain w1, by name: its replica moves to another node.
	before := st.Nodes[1].Replicas[0].ID
	ns, err := c.SetNodeAvailability(ctx, "w1", replica.AvailabilityDrain)
	if err != nil {
		t.Fatal(err)
	}
	if ns.ID != "w1id" || ns.Availability != replica.AvailabilityDrain {
		t.Errorf("the drained node: %+v", ns.Node)
	}
	if got := rt.availabilityCalls(); !slices.Equal(got, []string{"w1id drain"}) {
		t.Errorf("the runtime was asked %q; want w1 drained, by its ID", got)
	}
	eventually(t, "web-3 moved off w1", func() bool {
		st, _ = c.Nodes(ctx)
		return len(st.Nodes) == 3 && len(st.Nodes[1].Replicas) == 0 && len(st.Nodes[0].Replicas)+len(st.Nodes[2].Replicas) == 3 &&
			st.Nodes[1].Availability == replica.AvailabilityDrain
	}, describe)
	for _, n := range st.Nodes {
		for _, r := range n.Replicas {
			if r.ID == before {
				t.Errorf("replica %s still listed on %s after the drain", before, n.Name)
			}
		}
	}
	// Told once: as a request, not again as a change the reading found.
	time.Sleep(2500 * time.Millisecond)
	if evs := events.of(hub.NodeAvailability); len(evs) != 1 || evs[0].ID != "w1id" || !strings.Contains(evs[0].Message, "node w1 set to drain") {
		t.Errorf("availability events %+v; want one for w1", evs)
	}
	if evs := events.of(hub.NodeChanged); len(evs) != 0 {
		t.Errorf("change events after a drain by request: %+v; want none", evs)
	}

	// A change the swarm makes on its own is read within about a second.
	rt.setNode("w2id", func(n *replica.Node) { n.State = "down" })
	eventually(t, "w2 seen down", func() bool {
		evs := events.of(hub.NodeChanged)
		return len(evs) == 1 && evs[0].Message == "node w2 is down (was ready)"
	}, func() string { return fmt.Sprintf("%+v", events.of(hub.NodeChanged)) })
	rt.setNode("w1id", func(n *replica.Node) { n.Availability = replica.AvailabilityActive })
	eventually(t, "w1 seen active again", func() bool {
		evs := events.of(hub.NodeChanged)
		return len(evs) == 2 && strings.HasPrefix(evs[1].Message, "node w1 is now active (was drain)")
	}, func() string { return fmt.Sprintf("%+v", events.of(hub.NodeChanged)) })

	// Readings are bounded: many callers share the last one.
	reads := rt.reads.Load()
	for range 200 {
		if _, err := c.Nodes(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := rt.reads.Load() - reads; n > 3 {
		t.Errorf("200 calls of Nodes read the runtime %d times; want the last reading shared", n)
	}

	// Refused: an unknown node, and anything but the three availabilities.
	if _, err := c.SetNodeAvailability(ctx, "nosuch", replica.AvailabilityDrain); !errors.Is(err, replica.ErrNotFound) {
		t.Errorf("draining an unknown node: %v; want replica.ErrNotFound", err)
	}
	var ve *spec.ValidationError
	for _, bad := range []string{"", "Drain", "paused"} {
		if _, err := c.SetNodeAvailability(ctx, "w1", bad); !errors.As(err, &ve) || ve.Field != "availability" || !strings.Contains(err.Error(), "active") {
			t.Errorf("availability %q: %v; want a validation error of field availability naming the three", bad, err)
		}
	}
	if got := rt.availabilityCalls(); len(got) != 1 {
		t.Errorf("refused requests reached the runtime: %q", got)
	}

	// The reading stops with Run.
	stop()
	reads = rt.reads.Load()
	time.Sleep(2500 * time.Millisecond)
	if n := rt.reads.Load() - reads; n != 0 {
		t.Errorf("the runtime's nodes were read %d times after Run ended", n)
	}
}

func TestNodeChanges(t *testing.T) {
	old := threeNodes()
	cur := threeNodes()[:2]
	cur[0].Availability = replica.AvailabilityPause
	cur[1].Leader = false
	cur = append(cur, replica.Node{ID: "w3id", Name: "w3", Role: replica.RoleWorker, State: "ready", Availability: replica.AvailabilityActive})
	var got []string
	for _, c := range nodeChanges(old, cur) {
		got = append(got, c.id+": "+c.text)
	}
	want := []string{
		"w2id: node w2 is now pause (was active): it keeps its replicas and takes no new ones",
		"w3id: node w3 joined: worker, ready, active",
		"w1id: node w1 left the swarm",
	}
	if !slices.Equal(got, want) {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(nodeChanges(old, threeNodes())) != 0 {
		t.Error("the same nodes again are a change")
	}
}

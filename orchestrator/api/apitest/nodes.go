package apitest

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// LocalNode is the fake's one node on the engine runtime, as the real
// controller shows the local engine.
var LocalNode = replica.Node{
	ID: controller.LocalNodeID, Name: "flotilla-host", Role: replica.RoleEngine, State: "ready",
	Availability: replica.AvailabilityActive, NanoCPUs: 2e9, MemoryBytes: 4 << 30,
}

// SetNodes makes st the runtime's nodes, as the controller would have read
// them, and st.Runtime its runtime (RuntimeSwarm for nodes that can be
// drained). Until then the fake is the engine runtime, whose one node,
// LocalNode, holds every group's replicas.
func (f *Controller) SetNodes(st controller.NodesStatus) {
	st = cloneNodes(st)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes = &st
}

// SetNodesError makes Nodes fail with err (nil: answer again).
func (f *Controller) SetNodesError(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodesErr = err
}

// Availabilities are the availability changes done, as "id availability",
// in order.
func (f *Controller) Availabilities() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.avails)
}

// RuntimeName is what SetNodes set last, or the engine runtime.
func (f *Controller) RuntimeName() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nodes != nil && f.nodes.Runtime != "" {
		return f.nodes.Runtime
	}
	return controller.RuntimeEngine
}

// Nodes returns what SetNodes set last, or the local engine with every
// replica.
func (f *Controller) Nodes(context.Context) (controller.NodesStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nodesErr != nil {
		return controller.NodesStatus{}, f.nodesErr
	}
	if f.nodes != nil {
		return cloneNodes(*f.nodes), nil
	}
	n := controller.NodeStatus{Node: LocalNode, Replicas: []controller.NodeReplica{}}
	for _, name := range slices.Sorted(maps.Keys(f.groups)) {
		for _, r := range f.groups[name].Replicas {
			n.Replicas = append(n.Replicas, controller.NodeReplica{Group: name, Name: r.Name, ID: r.ID, State: r.State})
		}
	}
	return controller.NodesStatus{Runtime: controller.RuntimeEngine, Nodes: []controller.NodeStatus{n}}, nil
}

// SetNodeAvailability changes the availability of a node SetNodes set, by
// ID or name, and records it; its replicas stay where they are until the
// test moves them with SetNodes. It refuses as the controller does: an
// invalid availability, the engine runtime (controller.ErrNotSwarm) and an
// unknown node (replica.ErrNotFound).
func (f *Controller) SetNodeAvailability(_ context.Context, id, availability string) (controller.NodeStatus, error) {
	if !replica.ValidAvailability(availability) {
		return controller.NodeStatus{}, &spec.ValidationError{Field: "availability", Reason: fmt.Sprintf("%q is not a node availability: one of active, pause, drain", availability)}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nodes == nil || f.nodes.Runtime != controller.RuntimeSwarm {
		return controller.NodeStatus{}, fmt.Errorf("node %q: %w", id, controller.ErrNotSwarm)
	}
	i := slices.IndexFunc(f.nodes.Nodes, func(n controller.NodeStatus) bool { return n.ID == id })
	if i < 0 {
		i = slices.IndexFunc(f.nodes.Nodes, func(n controller.NodeStatus) bool { return n.Name == id })
	}
	if i < 0 {
		return controller.NodeStatus{}, fmt.Errorf("node %q: %w", id, replica.ErrNotFound)
	}
	n := &f.nodes.Nodes[i]
	f.avails = append(f.avails, n.ID+" "+availability)
	was := n.Availability
	n.Availability = availability
	f.publishLocked(hub.NodeAvailability, "", "", n.ID, "node %s set to %s (was %s)", n.Name, availability, was)
	return cloneNodes(controller.NodesStatus{Nodes: []controller.NodeStatus{*n}}).Nodes[0], nil
}

// cloneNodes copies st deeply enough that neither side sees the other's
// later changes.
func cloneNodes(st controller.NodesStatus) controller.NodesStatus {
	st.Nodes = slices.Clone(st.Nodes)
	for i := range st.Nodes {
		st.Nodes[i].Replicas = slices.Clone(st.Nodes[i].Replicas)
		if st.Nodes[i].Replicas == nil {
			st.Nodes[i].Replicas = []controller.NodeReplica{}
		}
		st.Nodes[i].Labels = maps.Clone(st.Nodes[i].Labels)
	}
	st.Unassigned = slices.Clone(st.Unassigned)
	return st
}

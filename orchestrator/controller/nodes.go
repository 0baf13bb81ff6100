package controller

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// The names of the runtimes, as Options.RuntimeName, GET /healthz and the
// group JSON say them.
const (
	// RuntimeEngine: the local engine's containers, one machine.
	RuntimeEngine = "engine"
	// RuntimeSwarm: Docker Swarm mode's services, over its nodes.
	RuntimeSwarm = "swarm"
)

// LocalNodeID is the ID of the one node of a runtime without nodes: the
// local engine.
const LocalNodeID = "local"

// ErrNotSwarm: the runtime has no nodes to change; only the swarm runtime
// has.
var ErrNotSwarm = errors.New("draining a node needs the swarm runtime: flotilla serve --runtime swarm")

// NodesStatus is every node of the runtime with the replicas it holds.
type NodesStatus struct {
	// Runtime is RuntimeEngine or RuntimeSwarm.
	Runtime string       `json:"runtime"`
	Nodes   []NodeStatus `json:"nodes"`
	// Unassigned are replicas no listed node holds: a swarm task waiting
	// for a node it may run on (every node drained, or none with room).
	Unassigned []NodeReplica `json:"unassigned,omitempty"`
	// Error says why the last reading of the nodes failed; Nodes are then
	// those of the reading before.
	Error string `json:"error,omitempty"`
}

// NodeStatus is one node and the replicas placed on it.
type NodeStatus struct {
	replica.Node
	Replicas []NodeReplica `json:"replicas"`
}

// NodeReplica is a replica as the nodes view shows it.
type NodeReplica struct {
	Group string `json:"group"`
	Name  string `json:"name"`
	ID    string `json:"id"`
	// State is the runtime's state of the replica: running, created,
	// paused, exited or dead.
	State string `json:"state"`
}

// nodesPeriod is how often the controller reads a NodeRuntime's nodes.
const nodesPeriod = time.Second

// nodesTimeout bounds one reading of the nodes.
const nodesTimeout = 5 * time.Second

// RuntimeName is the name of the runtime this controller drives:
// RuntimeEngine or RuntimeSwarm.
func (c *Controller) RuntimeName() string { return c.opt.RuntimeName }

// localNode is the local engine as a node: the machine the controller runs
// on, which is the engine's, since the engine is reached on this host.
func localNode() replica.Node {
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "localhost"
	}
	return replica.Node{
		ID: LocalNodeID, Name: name, Role: replica.RoleEngine,
		State: "ready", Availability: replica.AvailabilityActive,
		NanoCPUs: int64(runtime.NumCPU()) * 1e9, MemoryBytes: machineMemory(),
	}
}

// machineMemory is the machine's memory in bytes, from /proc/meminfo; 0
// where there is none.
func machineMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kib, err := strconv.ParseInt(f[1], 10, 64)
			if err == nil {
				return kib << 10
			}
		}
	}
	return 0
}

// Nodes returns the runtime's nodes, each with its replicas. A NodeRuntime's
// come from a reading at most about two seconds old (the controller reads
// every second while it runs); any other runtime has one node, the local
// engine, holding every replica. The error is the runtime's, when it could
// not list its nodes even once.
func (c *Controller) Nodes(ctx context.Context) (NodesStatus, error) {
	if c.nodeRT == nil {
		return c.nodesStatus([]replica.Node{c.local}, ""), nil
	}
	nodes, why, err := c.readNodes(ctx, 2*nodesPeriod)
	if err != nil {
		return NodesStatus{}, err
	}
	return c.nodesStatus(nodes, why), nil
}

// nodesStatus joins nodes with the replicas every group has on them.
func (c *Controller) nodesStatus(nodes []replica.Node, why string) NodesStatus {
	st := NodesStatus{Runtime: c.RuntimeName(), Nodes: make([]NodeStatus, 0, len(nodes)), Error: why}
	at := map[string]int{} // node ID -> index in st.Nodes
	for _, n := range nodes {
		at[n.ID] = len(st.Nodes)
		n.Labels = maps.Clone(n.Labels)
		st.Nodes = append(st.Nodes, NodeStatus{Node: n, Replicas: []NodeReplica{}})
	}
	c.mu.Lock()
	for _, name := range slices.Sorted(maps.Keys(c.groups)) {
		reps := c.replicasLocked(c.groups[name])
		replica.Sort(reps)
		for _, r := range reps {
			nr := NodeReplica{Group: name, Name: r.Name, ID: r.ID, State: r.State}
			node := r.Node
			if c.nodeRT == nil {
				node = LocalNodeID
			}
			if i, ok := at[node]; ok {
				st.Nodes[i].Replicas = append(st.Nodes[i].Replicas, nr)
			} else {
				st.Unassigned = append(st.Unassigned, nr)
			}
		}
	}
	c.mu.Unlock()
	return st
}

// ErrNodesUnread: the runtime's nodes could not be read yet (no reading
// has succeeded since the controller started); the API answers 503.
var ErrNodesUnread = errors.New("the runtime's nodes cannot be read yet")

// readNodes returns the nodes of the last reading if it is younger than
// fresh, else reads them again. A failed reading after a good one returns
// the good one's nodes and why the new one failed.
func (c *Controller) readNodes(ctx context.Context, fresh time.Duration) ([]replica.Node, string, error) {
	// One reading at a time, so a change is told once; a caller that
	// waited for one gets it.
	c.nodesReadMu.Lock()
	defer c.nodesReadMu.Unlock()
	c.nodesMu.Lock()
	if !c.nodesAt.IsZero() && time.Since(c.nodesAt) < fresh {
		nodes, why := slices.Clone(c.nodes), c.nodesWhy
		c.nodesMu.Unlock()
		return nodes, why, nil
	}
	c.nodesMu.Unlock()

	rctx, cancel := context.WithTimeout(ctx, nodesTimeout)
	nodes, err := c.nodeRT.Nodes(rctx)
	cancel()
	c.nodesMu.Lock()
	if err != nil {
		had := c.nodesRead
		c.nodesWhy = "list the nodes: " + err.Error()
		c.nodesAt = time.Now()
		nodes, why := slices.Clone(c.nodes), c.nodesWhy
		c.nodesMu.Unlock()
		if !had {
			return nil, "", fmt.Errorf("%w: list the nodes: %w", ErrNodesUnread, err)
		}
		return nodes, why, nil
	}
	slices.SortFunc(nodes, compareNodes)
	old, had := c.nodes, c.nodesRead
	c.nodes, c.nodesAt, c.nodesWhy, c.nodesRead = nodes, time.Now(), "", true
	c.nodesMu.Unlock()
	// The first reading is what there was; only changes after it are news.
	if had {
		for _, msg := range nodeChanges(old, nodes) {
			c.publish(hub.NodeChanged, "", "", msg.id, "%s", msg.text)
		}
	}
	return slices.Clone(nodes), "", nil
}

// compareNodes puts managers first, then workers, each by name.
func compareNodes(a, b replica.Node) int {
	ra, rb := a.Role != replica.RoleManager, b.Role != replica.RoleManager
	switch {
	case ra != rb && !ra:
		return -1
	case ra != rb:
		return 1
	}
	return strings.Compare(a.Name+"\x00"+a.ID, b.Name+"\x00"+b.ID)
}

type nodeChange struct{ id, text string }

// nodeChanges says, for people, what differs between two readings: nodes
// that joined or left, and changes of state, availability and leader.
func nodeChanges(old, cur []replica.Node) []nodeChange {
	was := map[string]replica.Node{}
	for _, n := range old {
		was[n.ID] = n
	}
	var out []nodeChange
	for _, n := range cur {
		o, ok := was[n.ID]
		delete(was, n.ID)
		switch {
		case !ok:
			out = append(out, nodeChange{n.ID, fmt.Sprintf("node %s joined: %s, %s, %s", n.Name, n.Role, n.State, n.Availability)})
			continue
		case o.State != n.State:
			out = append(out, nodeChange{n.ID, fmt.Sprintf("node %s is %s (was %s)", n.Name, n.State, o.State)})
		}
		if o.Availability != n.Availability {
			out = append(out, nodeChange{n.ID, fmt.Sprintf("node %s is now %s (was %s): %s", n.Name, n.Availability, o.Availability, availabilityMeans(n.Availability))})
		}
		if n.Leader && !o.Leader {
			out = append(out, nodeChange{n.ID, fmt.Sprintf("node %s leads the swarm's managers", n.Name)})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(was)) {
		out = append(out, nodeChange{id, fmt.Sprintf("node %s left the swarm", was[id].Name)})
	}
	return out
}

// availabilityMeans says what an availability does to a node's replicas.
func availabilityMeans(a string) string {
	switch a {
	case replica.AvailabilityDrain:
		return "its replicas move to other nodes and it takes no new ones"
	case replica.AvailabilityPause:
		return "it keeps its replicas and takes no new ones"
	}
	return "it takes new replicas"
}

// nodeLoop reads a NodeRuntime's nodes every nodesPeriod until ctx ends;
// each reading that differs from the one before publishes what changed.
func (c *Controller) nodeLoop(ctx context.Context) {
	t := time.NewTicker(nodesPeriod)
	defer t.Stop()
	for {
		if _, _, err := c.readNodes(ctx, 0); err != nil && ctx.Err() == nil {
			c.log.Debug("read nodes", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SetNodeAvailability makes node id (its ID or its name) active, paused or
// drained, and returns it as it is then. The error is a
// *spec.ValidationError (field "availability") for anything else, wraps
// ErrNotSwarm on a runtime without nodes, and wraps replica.ErrNotFound for
// an unknown node.
func (c *Controller) SetNodeAvailability(ctx context.Context, id, availability string) (NodeStatus, error) {
	if !replica.ValidAvailability(availability) {
		return NodeStatus{}, &spec.ValidationError{Field: "availability", Reason: fmt.Sprintf(
			"%q is not a node availability: one of %q (takes new replicas), %q (keeps its replicas, takes no new ones), %q (moves its replicas to other nodes)",
			availability, replica.AvailabilityActive, replica.AvailabilityPause, replica.AvailabilityDrain)}
	}
	if c.nodeRT == nil {
		return NodeStatus{}, fmt.Errorf("node %q: the %s runtime runs everything on the one local engine: %w", id, c.RuntimeName(), ErrNotSwarm)
	}
	nodes, _, err := c.readNodes(ctx, 0)
	if err != nil {
		return NodeStatus{}, err
	}
	i := slices.IndexFunc(nodes, func(n replica.Node) bool { return n.ID == id })
	if i < 0 {
		i = slices.IndexFunc(nodes, func(n replica.Node) bool { return n.Name == id })
	}
	if i < 0 {
		return NodeStatus{}, fmt.Errorf("node %q: %w: no node has that ID or name", id, replica.ErrNotFound)
	}
	n := nodes[i]
	if err := c.nodeRT.SetNodeAvailability(ctx, n.ID, availability); err != nil {
		return NodeStatus{}, fmt.Errorf("set node %s %s: %w", n.Name, availability, err)
	}
	was := n.Availability
	// Shown changed at once, not only from the next reading, which then
	// finds nothing new to tell.
	c.nodesMu.Lock()
	for j := range c.nodes {
		if c.nodes[j].ID == n.ID {
			c.nodes[j].Availability = availability
		}
	}
	c.nodesMu.Unlock()
	n.Availability = availability
	if was != availability {
		c.publish(hub.NodeAvailability, "", "", n.ID, "node %s set to %s (was %s): %s", n.Name, availability, was, availabilityMeans(availability))
	}
	st := c.nodesStatus([]replica.Node{n}, "")
	return st.Nodes[0], nil
}

package docker

import (
	"context"
	"net"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// Labels Swarm puts on a task's container.
const (
	swarmServiceNameLabel = "com.docker.swarm.service.name"
	swarmTaskNameLabel    = "com.docker.swarm.task.name"
)

// gwbridge is the bridge network the engine gives every task attached to
// an overlay network a second endpoint on; the host reaches a task there,
// not on the overlay.
const gwbridge = "docker_gwbridge"

// taskIDPrefix marks a replica ID that is a task's, not a container's: a
// task that has no container yet.
const taskIDPrefix = "task:"

// List returns the tasks Swarm wants running of this instance's services,
// as replicas: ID is the task's container (or "task:<task ID>" before it
// has one), Index its slot, Node its node, State the task's state refined
// by its container's when the container is on this engine (a paused
// container is a running task to Swarm).
//
// Address and NetworkAddress are both the task's docker_gwbridge address
// and service port, which this host reaches; the overlay address it does
// not. A task on another node has neither: this host has no route to it
// (reaching one needs a balancer on each node, or ports published on a
// private network between the nodes), so the controller does not balance
// to it.
func (s *Swarm) List(ctx context.Context) ([]replica.Replica, error) {
	svcs, err := s.services(ctx)
	if err != nil {
		return nil, err
	}
	if len(svcs) == 0 {
		// Without a service filter, the task list is every task of the swarm.
		return []replica.Replica{}, nil
	}
	ours := map[string]bool{}
	f := filters.NewArgs(filters.Arg("desired-state", string(swarm.TaskStateRunning)))
	for _, v := range svcs {
		ours[v.ID] = true
		f.Add("service", v.ID)
	}
	tasks, err := s.d.cli.TaskList(ctx, swarm.TaskListOptions{Filters: f})
	if err != nil {
		return nil, translate("list tasks", err)
	}
	cs, err := s.d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: s.d.ownedFilter()})
	if err != nil {
		return nil, translate("list task containers", err)
	}
	local := map[string]string{} // container ID → state
	for _, c := range cs {
		if ownedBy(c.Labels, s.d.instance) {
			local[c.ID] = string(c.State)
		}
	}
	addrs, err := s.gwbridgeAddrs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]replica.Replica, 0, len(tasks))
	for _, t := range tasks {
		if !ours[t.ServiceID] || t.DesiredState != swarm.TaskStateRunning {
			continue
		}
		r := replicaFromTask(t)
		if r.Group == "" {
			continue // not made from our spec
		}
		cid := containerOf(t)
		if st, ok := local[cid]; ok && t.NodeID == s.node {
			r.State = refineState(r.State, st)
		}
		if ip := addrs[cid]; ip != "" && t.NodeID == s.node && reachable(r.State) {
			if port := envPort(t); port != "" {
				r.Address = net.JoinHostPort(ip, port)
				r.NetworkAddress = r.Address
			}
		}
		out = append(out, r)
	}
	replica.Sort(out)
	return out, nil
}

// gwbridgeAddrs maps the containers on docker_gwbridge to their IPv4
// addresses; none before a task first joined an overlay network here.
func (s *Swarm) gwbridgeAddrs(ctx context.Context) (map[string]string, error) {
	n, err := s.d.cli.NetworkInspect(ctx, gwbridge, network.InspectOptions{})
	if isSDKNotFound(err) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, translate("inspect network "+gwbridge, err)
	}
	return endpointIPs(n.Containers), nil
}

// endpointIPs reads a network's endpoints: container ID → IPv4 address
// without its prefix length.
func endpointIPs(eps map[string]network.EndpointResource) map[string]string {
	out := make(map[string]string, len(eps))
	for id, ep := range eps {
		ip, _, _ := strings.Cut(ep.IPv4Address, "/")
		if net.ParseIP(ip) != nil {
			out[id] = ip
		}
	}
	return out
}

// replicaFromTask maps a task: its identity from the labels of the spec it
// was made from (a task of an older template keeps its own hash while a
// rolling update replaces it), its number from its slot.
func replicaFromTask(t swarm.Task) replica.Replica {
	var labels map[string]string
	if cs := t.Spec.ContainerSpec; cs != nil {
		labels = cs.Labels
	}
	r := replica.Replica{
		ID:           containerOf(t),
		Group:        labels[LabelGroup],
		Index:        t.Slot,
		Service:      labels[LabelService],
		TemplateHash: labels[LabelTemplateHash],
		State:        taskState(t.Status.State),
		Created:      t.CreatedAt,
		Node:         t.NodeID,
	}
	if r.ID == "" {
		r.ID = taskIDPrefix + t.ID
	}
	if r.Group != "" && r.Index > 0 {
		r.Name = replica.Name(r.Group, r.Index)
	}
	if cs := t.Status.ContainerStatus; cs != nil {
		r.ExitCode = cs.ExitCode
	}
	if r.State == replica.StateRunning {
		r.StartedAt = t.Status.Timestamp
	}
	return r
}

// containerOf is the ID of a task's container, "" before it has one.
func containerOf(t swarm.Task) string {
	if t.Status.ContainerStatus == nil {
		return ""
	}
	return t.Status.ContainerStatus.ContainerID
}

// taskState maps a task's state onto a replica's: running is running;
// anything before it (new up to starting) is created, a replica that will
// run; a task that ended is exited, and one that never could run (failed
// to start, rejected by its node, orphaned on a lost node) is dead.
func taskState(st swarm.TaskState) string {
	switch st {
	case swarm.TaskStateRunning:
		return replica.StateRunning
	case swarm.TaskStateNew, swarm.TaskStateAllocated, swarm.TaskStatePending, swarm.TaskStateAssigned,
		swarm.TaskStateAccepted, swarm.TaskStatePreparing, swarm.TaskStateReady, swarm.TaskStateStarting:
		return replica.StateCreated
	case swarm.TaskStateComplete, swarm.TaskStateShutdown:
		return replica.StateExited
	case swarm.TaskStateRemove:
		return replica.StateRemoving
	}
	// failed, rejected, orphaned and anything newer.
	return replica.StateDead
}

// refineState is a task's state as its container on this engine shows
// it: Swarm has not yet seen a container that just started or just died,
// and never sees a pause.
func refineState(task, container string) string {
	if task == replica.StateCreated && (container == replica.StateRunning || container == replica.StatePaused) {
		// The container runs (or was paused since) before the node's agent
		// has told the manager so, which can take seconds; its start event
		// is the last hint.
		return container
	}
	if task != replica.StateRunning {
		return task
	}
	switch container {
	case replica.StatePaused, replica.StateExited, replica.StateDead, replica.StateRestarting, replica.StateRemoving:
		return container
	}
	return task
}

// envPort is the service port a task's spec gives its container (PORT,
// which serviceSpec sets last).
func envPort(t swarm.Task) string {
	if t.Spec.ContainerSpec == nil {
		return ""
	}
	port := ""
	for _, e := range t.Spec.ContainerSpec.Env {
		if v, ok := strings.CutPrefix(e, "PORT="); ok {
			port = v
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return ""
	}
	return port
}

// slotFromTaskName reads the slot of a replicated service's task from its
// name, <service>.<slot>.<task ID>; 0 if it is not one.
func slotFromTaskName(name string) int {
	rest, id, ok := cutLast(name, ".")
	if !ok || id == "" {
		return 0
	}
	_, slot, ok := cutLast(rest, ".")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(slot)
	if err != nil || n < 1 {
		return 0
	}
	return n
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

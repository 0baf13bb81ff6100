package docker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// A pod is one replica made of several containers that share the network,
// PID and IPC namespaces and the hostname of its infra container, like a
// small VM running several processes. The infra container holds the
// namespaces and the published port; the replica's ID is its ID, and the
// other members carry it in LabelPod, so everything the controller does to
// the replica is done to the pod as a whole.
const (
	// MemberInfra holds the pod's namespaces; it runs the shop's pause role.
	MemberInfra = "infra"
	// MemberService runs the group's service.
	MemberService = "service"
	// MemberAgent is the visible sidecar: the shop's agent role, which polls
	// the service on localhost.
	MemberAgent = "agent"
)

// podMembers lists a pod's members in the order they start.
var podMembers = []string{MemberInfra, MemberService, MemberAgent}

// IsolationPod is replica.Spec.Isolation for a pod.
const IsolationPod = "pod"

// Each helper member (infra, agent) gets an eighth of the replica's memory
// and pids and a tenth of its CPU, at least enough for a small Go process;
// the service gets the rest. The engine's API sets no limit on a whole pod
// (that needs a cgroup parent), so the split keeps the sum at the limit.
const (
	helperMinMemory = 8 << 20
	helperMinPids   = 8
	helperMinNano   = 10_000_000
	// PodMinMemoryBytes leaves the service at least 32 MiB.
	PodMinMemoryBytes = 48 << 20
	// PodMinPids leaves the service at least 16 processes and threads.
	PodMinPids = 32
)

// podShares splits a replica's limits between a helper member and the
// service member.
func podShares(s replica.Spec) (helper, service container.Resources) {
	mem := max(s.MemoryBytes/8, helperMinMemory)
	pids := max(s.PidsLimit/8, helperMinPids)
	nano := max(s.NanoCPUs/10, helperMinNano)
	svcPids := s.PidsLimit - 2*pids
	helper = container.Resources{Memory: mem, MemorySwap: mem, NanoCPUs: nano, PidsLimit: &pids}
	service = container.Resources{
		Memory:     s.MemoryBytes - 2*mem,
		MemorySwap: s.MemoryBytes - 2*mem,
		NanoCPUs:   max(s.NanoCPUs-2*nano, helperMinNano),
		PidsLimit:  &svcPids,
	}
	return helper, service
}

// validatePod rejects a pod whose limits leave the service too little.
func validatePod(s replica.Spec) error {
	if s.MemoryBytes < PodMinMemoryBytes {
		return fmt.Errorf("memory limit %d MiB is under a pod's %d MiB", s.MemoryBytes>>20, PodMinMemoryBytes>>20)
	}
	if s.PidsLimit < PodMinPids {
		return fmt.Errorf("pids limit %d is under a pod's %d", s.PidsLimit, PodMinPids)
	}
	return nil
}

// podMemberName is the container name of a pod's member; the infra
// container takes the replica's own name.
func (d *Driver) podMemberName(s replica.Spec, member string) string {
	name := d.ContainerName(s.Group, s.Index)
	if member == MemberInfra {
		return name
	}
	return name + "." + member
}

// podConfig is the create arguments of one member; infraID is empty for the
// infra container itself. Every member has the container policy; only the
// infra container joins the project network and publishes the port, since
// the others live in its network namespace.
func (d *Driver) podConfig(s replica.Spec, member, infraID string) (*container.Config, *container.HostConfig) {
	cfg, host, _ := d.containerConfig(s)
	cfg.Labels[LabelMember] = member
	helper, service := podShares(s)
	host.Resources = helper
	yes := true
	switch member {
	case MemberInfra:
		cfg.Env = podHelperEnv(s, "pause")
		host.IpcMode = container.IpcMode("shareable")
		// docker-init is PID 1 of the pod's PID namespace: it reaps every
		// member's orphans and forwards signals. The engine gives no
		// member in another's PID namespace an init of its own (it would
		// not be PID 1), so this is the pod's one init.
		host.Init = &yes
		return cfg, host
	case MemberService:
		host.Resources = service
	case MemberAgent:
		cfg.Env = podHelperEnv(s, "agent")
	}
	cfg.Labels[LabelPod] = infraID
	// The engine refuses a hostname or exposed ports for a container in
	// another's network namespace: both are the infra container's.
	cfg.Hostname = ""
	cfg.ExposedPorts = nil
	join := "container:" + infraID
	host.NetworkMode = container.NetworkMode(join)
	host.PidMode = container.PidMode(join)
	host.IpcMode = container.IpcMode(join)
	host.PortBindings = nil
	return cfg, host
}

// podHelperEnv runs a helper role of the shop binary on one core's worth of
// threads, which its pids share bounds.
func podHelperEnv(s replica.Spec, role string) []string {
	return []string{
		"FLOTILLA_ROLE=" + role,
		"FLOTILLA_REPLICA=" + s.Name(),
		"PORT=" + strconv.Itoa(s.Port),
		"GOMAXPROCS=1",
	}
}

// createPod creates every member of a pod, or none: on a failure it removes
// what it made.
func (d *Driver) createPod(ctx context.Context, s replica.Spec) (replica.Replica, error) {
	var made []string
	undo := func(err error) (replica.Replica, error) {
		// The caller's context may be what failed; the cleanup must still run.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for i := len(made) - 1; i >= 0; i-- {
			if rerr := d.remove(ctx, made[i]); rerr != nil && !isNotFound(rerr) {
				err = errors.Join(err, rerr)
			}
		}
		return replica.Replica{}, err
	}
	infraID := ""
	for _, m := range podMembers {
		cfg, host := d.podConfig(s, m, infraID)
		netCfg := d.podNetwork(s, m)
		mctx, cancel := making(ctx)
		resp, err := d.cli.ContainerCreate(mctx, cfg, host, netCfg, nil, d.podMemberName(s, m))
		cancel()
		if err != nil {
			return undo(translate("create "+d.podMemberName(s, m), err))
		}
		made = append(made, resp.ID)
		if m == MemberInfra {
			infraID = resp.ID
		}
	}
	return replica.Replica{
		ID: infraID, Name: s.Name(), Group: s.Group, Index: s.Index, Service: s.Service,
		TemplateHash: s.TemplateHash, State: replica.StateCreated, Created: time.Now(),
	}, nil
}

// members lists the owned containers of the pod whose infra container is
// infraID, the infra container first, then in podMembers order. It finds
// members left behind by an infra container that is gone.
func (d *Driver) members(ctx context.Context, infraID string) ([]container.Summary, error) {
	f := d.ownedFilter()
	cs, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, translate("list members of "+infraID, err)
	}
	var out []container.Summary
	for _, m := range podMembers {
		for _, c := range cs {
			if ownedBy(c.Labels, d.instance) && c.Labels[LabelMember] == m && podKey(c) == infraID {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// podKey is the replica a container belongs to: its pod's infra ID for a
// member, else its own ID.
func podKey(c container.Summary) string {
	if p := c.Labels[LabelPod]; p != "" {
		return p
	}
	return c.ID
}

// eachMember calls fn on every member of the pod infraID in order (reverse
// order if backwards), and joins the errors; a pod with no member left is
// replica.ErrNotFound.
func (d *Driver) eachMember(ctx context.Context, op, infraID string, backwards bool, fn func(c container.Summary) error) error {
	ms, err := d.members(ctx, infraID)
	if err != nil {
		return err
	}
	if len(ms) == 0 {
		return fmt.Errorf("%s %s: %w: no pod member of this Flotilla instance", op, infraID, replica.ErrNotFound)
	}
	var errs []error
	for i := range ms {
		c := ms[i]
		if backwards {
			c = ms[len(ms)-1-i]
		}
		if err := fn(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// podState is a pod's state from its members': running only if every
// member of a complete pod runs; a member that stopped makes the pod exited.
func podState(states []string, complete bool) string {
	has := func(want ...string) bool {
		for _, s := range states {
			for _, w := range want {
				if s == w {
					return true
				}
			}
		}
		return false
	}
	switch {
	case len(states) == 0:
		return replica.StateDead
	case has(replica.StateExited):
		return replica.StateExited
	case has(replica.StateDead, replica.StateRemoving):
		return replica.StateDead
	case !complete && has(replica.StateRunning, replica.StatePaused):
		// A member was removed from under a live pod: it is broken.
		return replica.StateDead
	case has(replica.StateRestarting):
		return replica.StateRestarting
	case has(replica.StatePaused):
		return replica.StatePaused
	case has(replica.StateCreated):
		return replica.StateCreated
	}
	return replica.StateRunning
}

// podNetwork puts the infra container on the project network under the
// replica's names; the other members have the infra container's network.
func (d *Driver) podNetwork(s replica.Spec, member string) *network.NetworkingConfig {
	if member != MemberInfra {
		return nil
	}
	_, _, netCfg := d.containerConfig(s)
	return netCfg
}

// resolve finds the replica id names. For a pod (id may be any member's ID,
// or the ID of an infra container that is gone but left members behind) it
// returns the pod's ID and pod true; c is then the infra container, or
// empty if it is gone.
func (d *Driver) resolve(ctx context.Context, op, id string) (c container.InspectResponse, podID string, pod bool, err error) {
	c, err = d.owned(ctx, op, id)
	if isNotFound(err) {
		if ms, lerr := d.members(ctx, id); lerr == nil && len(ms) > 0 {
			return container.InspectResponse{}, id, true, nil
		}
		return c, "", false, err
	}
	if err != nil {
		return c, "", false, err
	}
	if p := c.Config.Labels[LabelPod]; p != "" {
		return d.resolve(ctx, op, p)
	}
	if c.Config.Labels[LabelMember] == "" {
		return c, c.ID, false, nil
	}
	return c, c.ID, true, nil
}

// podSignal sends signal to the pod's service member: the pod dies with its
// service, as the engine then reports the member exited.
func (d *Driver) podSignal(ctx context.Context, podID, signal string) error {
	return d.eachMember(ctx, "kill", podID, false, func(m container.Summary) error {
		if m.Labels[LabelMember] != MemberService {
			return nil
		}
		return translate("kill "+podID, d.cli.ContainerKill(ctx, m.ID, signal))
	})
}

// podList folds the containers of the pods among cs into one replica each,
// keyed by the pod's ID, and returns the containers that are not pod
// members unchanged.
func (d *Driver) podList(cs []container.Summary) ([]replica.Replica, []container.Summary) {
	var (
		plain []container.Summary
		order []string
		pods  = map[string][]container.Summary{}
	)
	for _, c := range cs {
		if c.Labels[LabelMember] == "" {
			plain = append(plain, c)
			continue
		}
		k := podKey(c)
		if _, ok := pods[k]; !ok {
			order = append(order, k)
		}
		pods[k] = append(pods[k], c)
	}
	out := make([]replica.Replica, 0, len(order))
	for _, k := range order {
		ms := pods[k]
		var (
			infra  *container.Summary
			states []string
			seen   = map[string]bool{}
		)
		for i := range ms {
			states = append(states, string(ms[i].State))
			seen[ms[i].Labels[LabelMember]] = true
			if ms[i].ID == k {
				infra = &ms[i]
			}
		}
		var r replica.Replica
		if infra != nil {
			r = d.replicaFromSummary(*infra)
		} else {
			r = d.replicaFromSummary(ms[0])
			r.ID = k
		}
		r.State = podState(states, len(seen) == len(podMembers) && len(ms) == len(podMembers))
		if !reachable(r.State) {
			r.Address, r.NetworkAddress = "", ""
		}
		out = append(out, r)
	}
	return out, plain
}

// podInspect is Inspect for a pod: the infra container's addresses, the
// state of the pod as a whole and, if a member stopped, its exit status.
func (d *Driver) podInspect(ctx context.Context, c container.InspectResponse, podID string) (replica.Replica, error) {
	ms, err := d.members(ctx, podID)
	if err != nil {
		return replica.Replica{}, err
	}
	var r replica.Replica
	if c.Config != nil {
		r = d.replicaFromInspect(c)
	} else if len(ms) > 0 {
		r = replicaFromLabels(podID, ms[0].Labels)
	}
	var (
		states []string
		seen   = map[string]bool{}
	)
	for _, m := range ms {
		mc, err := d.cli.ContainerInspect(ctx, m.ID)
		if err != nil {
			if isSDKNotFound(err) {
				continue
			}
			return replica.Replica{}, translate("inspect "+podID, err)
		}
		seen[m.Labels[LabelMember]] = true
		if mc.State == nil {
			continue
		}
		states = append(states, string(mc.State.Status))
		if m.Labels[LabelMember] == MemberService {
			r.StartedAt = parseTime(mc.State.StartedAt)
		}
		if mc.State.Status != container.StateRunning && r.FinishedAt.IsZero() {
			r.ExitCode = mc.State.ExitCode
			r.OOMKilled = mc.State.OOMKilled
			r.FinishedAt = parseTime(mc.State.FinishedAt)
		}
	}
	r.State = podState(states, len(seen) == len(podMembers) && len(states) == len(podMembers))
	if !reachable(r.State) {
		r.Address, r.NetworkAddress = "", ""
	}
	return r, nil
}

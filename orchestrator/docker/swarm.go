package docker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// The swarm runtime. Each group is a Docker Swarm-mode service,
// <project>-<group>, replicated as many times as the controller says; Swarm
// places its tasks on the swarm's nodes, numbers them (the task slot is the
// replica's index) and replaces those that die. The runtime only tells
// Swarm the desire (Place, Unplace) and observes the tasks (List, Events);
// it never creates or removes a replica's container itself.
//
// Ownership is the driver's: the services, their tasks' containers, the
// project's overlay network and the store volumes carry LabelManaged and
// LabelInstance, every list filters on them, and an object without them is
// never touched. Nodes are the swarm's, not the instance's: Nodes reads
// them and SetNodeAvailability changes one on request.

// ErrSwarmInactive: the engine is not part of an active swarm.
var ErrSwarmInactive = errors.New("swarm mode is not active on this Docker engine")

// Swarm runs groups as the services of the swarm its driver's engine
// manages. It is safe for concurrent use.
type Swarm struct {
	d *Driver
	// node is the ID of the engine's own node: only its tasks' containers
	// are reachable (docker_gwbridge) and can be killed, paused or read.
	node string
}

// NewSwarm returns the swarm runtime on d's engine. The engine must be a
// manager of an active swarm: otherwise the error wraps ErrSwarmInactive
// (or says to use a manager) and says how to fix it.
func NewSwarm(ctx context.Context, d *Driver) (*Swarm, error) {
	info, err := d.cli.Info(ctx)
	if err != nil {
		return nil, translate("read the engine's swarm state", err)
	}
	if err := swarmUsable(info.Swarm); err != nil {
		return nil, err
	}
	return &Swarm{d: d, node: info.Swarm.NodeID}, nil
}

// swarmUsable says why an engine in swarm state sw cannot run the swarm
// runtime, or nil.
func swarmUsable(sw swarm.Info) error {
	switch sw.LocalNodeState {
	case swarm.LocalNodeStateActive:
	case swarm.LocalNodeStateLocked:
		return fmt.Errorf("%w: the swarm is locked; unlock it with `docker swarm unlock`", ErrSwarmInactive)
	case swarm.LocalNodeStatePending, swarm.LocalNodeStateError:
		return fmt.Errorf("%w: the node is %s (%s); fix or leave that swarm, or choose the engine runtime", ErrSwarmInactive, sw.LocalNodeState, sw.Error)
	default:
		return fmt.Errorf("%w: enable it with `docker swarm init --advertise-addr 127.0.0.1`, or run `flotilla serve --runtime swarm --swarm-init`", ErrSwarmInactive)
	}
	if !sw.ControlAvailable {
		return fmt.Errorf("this engine is a worker node of its swarm (node %s): the swarm runtime needs a manager; run Flotilla against a manager node or promote this one (`docker node promote`)", sw.NodeID)
	}
	return nil
}

// Driver is the driver whose engine and labels the runtime uses.
func (s *Swarm) Driver() *Driver { return s.d }

// NodeID is the ID of the swarm node of the engine the runtime talks to.
func (s *Swarm) NodeID() string { return s.node }

// ServiceName is the name of group's service: <project>-<group>.
func (s *Swarm) ServiceName(group string) string { return s.d.project + "-" + group }

// serviceFilter selects this instance's services.
func (s *Swarm) serviceFilter() filters.Args { return s.d.ownedFilter() }

// services returns this instance's services.
func (s *Swarm) services(ctx context.Context) ([]swarm.Service, error) {
	svcs, err := s.d.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: s.serviceFilter()})
	if err != nil {
		return nil, translate("list services", err)
	}
	// The engine filtered already; an unowned service must never pass.
	return slices.DeleteFunc(svcs, func(v swarm.Service) bool { return !ownedBy(v.Spec.Labels, s.d.instance) }), nil
}

// service returns group's service: replica.ErrNotFound if there is none,
// replica.ErrConflict if a service of its name is not this instance's.
func (s *Swarm) service(ctx context.Context, group string) (swarm.Service, error) {
	name := s.ServiceName(group)
	// The name filter matches prefixes, so compare names exactly.
	svcs, err := s.d.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
	if err != nil {
		return swarm.Service{}, translate("list services", err)
	}
	for _, v := range svcs {
		if v.Spec.Name != name {
			continue
		}
		if !ownedBy(v.Spec.Labels, s.d.instance) {
			return v, fmt.Errorf("service %s exists but does not belong to this Flotilla instance: %w; remove it or choose another project name", name, replica.ErrConflict)
		}
		return v, nil
	}
	return swarm.Service{}, fmt.Errorf("service %s: %w", name, replica.ErrNotFound)
}

// EnsureNetwork makes sure the project's attachable overlay network exists
// and is ours. A network of that name without our instance label, or ours
// but not an attachable overlay (the engine runtime's bridge), is never
// reused: an error wrapping replica.ErrConflict.
func (s *Swarm) EnsureNetwork(ctx context.Context) error {
	found, err := s.findOverlay(ctx)
	if err != nil || found {
		return err
	}
	mctx, cancel := making(ctx)
	defer cancel()
	_, err = s.d.cli.NetworkCreate(mctx, s.d.project, network.CreateOptions{
		Driver:     "overlay",
		Attachable: true,
		Labels:     ownerLabels(s.d.instance),
	})
	if err == nil {
		return nil
	}
	// Another caller may have made it between our look and our create.
	if found, ferr := s.findOverlay(ctx); ferr == nil && found {
		return nil
	}
	return translate("create overlay network "+s.d.project, err)
}

// findOverlay reports whether the project's overlay network exists; one of
// that name that is not ours, or not an attachable overlay, is an error.
func (s *Swarm) findOverlay(ctx context.Context) (bool, error) {
	nets, err := s.d.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", s.d.project))})
	if err != nil {
		return false, translate("list networks", err)
	}
	for _, n := range nets {
		if n.Name != s.d.project {
			continue
		}
		if !ownedBy(n.Labels, s.d.instance) {
			return false, fmt.Errorf("network %q exists but does not belong to this Flotilla instance (labels %s=%q, %s=%q); remove it or choose another project name: %w",
				n.Name, LabelManaged, n.Labels[LabelManaged], LabelInstance, n.Labels[LabelInstance], replica.ErrConflict)
		}
		// Just made, an overlay may be listed before its driver is filled
		// in: only a network that is surely another kind is refused.
		if n.Driver != "" && (n.Driver != "overlay" || !n.Attachable) {
			return false, fmt.Errorf("network %q is this instance's but a %s network, not an attachable overlay (left by the engine runtime?); run `flotilla down` first: %w",
				n.Name, n.Driver, replica.ErrConflict)
		}
		return true, nil
	}
	return false, nil
}

// Place makes group's service run count tasks of tmpl (whose Index is
// ignored: Swarm numbers tasks by slot). It creates the service, updates
// only its replica count when only the count changed, updates its whole
// spec when the template hash changed (Swarm rolls the tasks over as the
// service's update configuration says), and calls nothing when the desire
// is the one the service already has. It returns once Swarm took the desire.
func (s *Swarm) Place(ctx context.Context, group string, count int, tmpl replica.Spec) error {
	name := s.ServiceName(group)
	tmpl.Group = group
	if count < 0 {
		return fmt.Errorf("place %s: count %d is negative", name, count)
	}
	if err := validateTemplate(tmpl); err != nil {
		return fmt.Errorf("place %s: invalid replica template: %w", name, err)
	}
	if err := s.EnsureNetwork(ctx); err != nil {
		return fmt.Errorf("place %s: %w", name, err)
	}
	if tmpl.Store != "" {
		// Made here, on this node, so a volume of the name that is not
		// ours is refused rather than mounted; a task on another node has
		// its engine make one from the mount's labelled options.
		for n := 1; n <= count; n++ {
			v := tmpl
			v.Index = n
			if err := s.d.ensureVolume(ctx, v); err != nil {
				return fmt.Errorf("place %s: %w", name, err)
			}
		}
	}
	// An update races other writers of the service (Swarm itself, while it
	// rolls back): on a stale version, read it again and retry.
	for attempt := 0; ; attempt++ {
		err := s.place(ctx, group, count, tmpl)
		if err == nil || attempt == 2 || !strings.Contains(err.Error(), "out of sequence") {
			return err
		}
	}
}

func (s *Swarm) place(ctx context.Context, group string, count int, tmpl replica.Spec) error {
	name := s.ServiceName(group)
	svc, err := s.service(ctx, group)
	if isNotFound(err) {
		mctx, cancel := making(ctx)
		defer cancel()
		_, err := s.d.cli.ServiceCreate(mctx, s.serviceSpec(count, tmpl), swarm.ServiceCreateOptions{})
		return translate("create service "+name, err)
	}
	if err != nil {
		return fmt.Errorf("place %s: %w", name, err)
	}
	var spec swarm.ServiceSpec
	switch placeChange(svc.Spec, count, tmpl.TemplateHash) {
	case placeNothing:
		return nil
	case placeCount:
		spec = svc.Spec
		n := uint64(count)
		spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &n}
	default:
		// A new template and a new count in one update race in Swarm
		// (seen on 20.10: a start-first task of the new template was
		// killed as it started, which the update counted as a failure and
		// rolled back): roll the template at the current count, then
		// scale, which Swarm does with the new template.
		cur := count
		if r := svc.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
			cur = int(*r.Replicas)
		}
		spec = s.serviceSpec(cur, tmpl)
	}
	mctx, cancel := making(ctx)
	defer cancel()
	if _, err = s.d.cli.ServiceUpdate(mctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
		return translate("update service "+name, err)
	}
	if r := spec.Mode.Replicated; r != nil && r.Replicas != nil && *r.Replicas != uint64(count) {
		return s.place(ctx, group, count, tmpl)
	}
	return nil
}

// What Place asks of an existing service.
const (
	placeNothing  = iota // the desire is the service's already
	placeCount           // only the replica count changes
	placeTemplate        // the template changed: the whole spec is replaced
)

// placeChange compares a service's spec with a desire.
func placeChange(cur swarm.ServiceSpec, count int, hash string) int {
	if cur.Labels[LabelTemplateHash] != hash || cur.Mode.Replicated == nil || cur.Mode.Replicated.Replicas == nil {
		return placeTemplate
	}
	if *cur.Mode.Replicated.Replicas != uint64(count) {
		return placeCount
	}
	return placeNothing
}

// validateTemplate is validateSpec for a service's template, which has no
// index, and only runs containers (pods and VMs are the engine runtime's).
func validateTemplate(t replica.Spec) error {
	t.Index = 1
	if err := validateSpec(t); err != nil {
		return err
	}
	if t.Isolation != "" && t.Isolation != "container" {
		return fmt.Errorf("isolation %q is not one the swarm runtime runs (container only)", t.Isolation)
	}
	return nil
}

// Unplace removes group's service, and so its tasks; a group without one
// (or whose service is not ours) is not an error.
func (s *Swarm) Unplace(ctx context.Context, group string) error {
	svc, err := s.service(ctx, group)
	if isNotFound(err) || errors.Is(err, replica.ErrConflict) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unplace %s: %w", group, err)
	}
	if err := s.d.cli.ServiceRemove(ctx, svc.ID); err != nil && !isSDKNotFound(err) {
		return translate("remove service "+svc.Spec.Name, err)
	}
	return nil
}

// Bounds of Down's wait for Swarm to stop the removed services' tasks,
// before it removes what is left itself.
const (
	downTaskWait = 20 * time.Second
	downPoll     = 200 * time.Millisecond
)

// Down removes this instance's services, waits (a while) for Swarm to stop
// their tasks, then removes whatever containers of the instance are left,
// its networks and its volumes. It never touches an object without our
// instance label, and succeeds with nothing to remove.
func (s *Swarm) Down(ctx context.Context) error {
	svcs, err := s.services(ctx)
	if err != nil {
		return fmt.Errorf("down: %w", err)
	}
	var errs []error
	for _, v := range svcs {
		if err := s.d.cli.ServiceRemove(ctx, v.ID); err != nil && !isSDKNotFound(err) {
			errs = append(errs, translate("down: remove service "+v.Spec.Name, err))
		}
	}
	// Swarm stops the tasks with their grace period; the driver's Down
	// then force-removes any container still there, the network (which
	// the manager refuses while a task still uses it) and the volumes.
	deadline := time.Now().Add(downTaskWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		cs, err := s.d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: s.d.ownedFilter()})
		if err != nil || len(cs) == 0 {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(downPoll):
		}
	}
	if err := s.d.Down(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

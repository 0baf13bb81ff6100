package docker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/swarm"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// Nodes returns the swarm's nodes, sorted by name then ID, with their
// role, state, availability, resources and labels.
func (s *Swarm) Nodes(ctx context.Context) ([]replica.Node, error) {
	ns, err := s.d.cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, translate("list nodes", err)
	}
	out := make([]replica.Node, 0, len(ns))
	for _, n := range ns {
		out = append(out, nodeFromSwarm(n))
	}
	slices.SortFunc(out, func(a, b replica.Node) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// nodeFromSwarm maps a swarm node. Its name is the one its spec was given,
// if any (rarely), else its hostname.
func nodeFromSwarm(n swarm.Node) replica.Node {
	name := n.Spec.Name
	if name == "" {
		name = n.Description.Hostname
	}
	out := replica.Node{
		ID:            n.ID,
		Name:          name,
		Role:          string(n.Spec.Role),
		State:         string(n.Status.State),
		Availability:  string(n.Spec.Availability),
		Addr:          n.Status.Addr,
		EngineVersion: n.Description.Engine.EngineVersion,
		NanoCPUs:      n.Description.Resources.NanoCPUs,
		MemoryBytes:   n.Description.Resources.MemoryBytes,
	}
	if len(n.Spec.Labels) > 0 {
		out.Labels = maps.Clone(n.Spec.Labels)
	}
	if m := n.ManagerStatus; m != nil {
		out.Leader = m.Leader
		if out.Addr == "" || out.Addr == "0.0.0.0" {
			// A manager's status may show 0.0.0.0; its manager address
			// is the one the swarm dials.
			if host, _, ok := strings.Cut(m.Addr, ":"); ok {
				out.Addr = host
			}
		}
	}
	if out.State == "" {
		out.State = string(swarm.NodeStateUnknown)
	}
	return out
}

// SetNodeAvailability sets a node's availability ("active", "pause" or
// "drain"): a drained node's tasks move to other nodes, a paused one keeps
// them but takes no new one. idOrName is the node's ID (or a unique prefix
// of it) or its hostname; an unknown node is replica.ErrNotFound. Setting
// the availability it has changes nothing.
func (s *Swarm) SetNodeAvailability(ctx context.Context, idOrName, availability string) error {
	if !replica.ValidAvailability(availability) {
		return fmt.Errorf("node %s: availability %q is not active, pause or drain", idOrName, availability)
	}
	// A node update races the swarm's own (its status, another writer): on
	// a stale version, read it again.
	for attempt := 0; ; attempt++ {
		n, _, err := s.d.cli.NodeInspectWithRaw(ctx, idOrName)
		if err != nil {
			return translate("inspect node "+idOrName, err)
		}
		if string(n.Spec.Availability) == availability {
			return nil
		}
		spec := n.Spec
		spec.Availability = swarm.NodeAvailability(availability)
		err = s.d.cli.NodeUpdate(ctx, n.ID, n.Version, spec)
		if err == nil || attempt == 2 || !strings.Contains(err.Error(), "out of sequence") {
			return translate("set availability of node "+idOrName, err)
		}
	}
}

package controller

import (
	"fmt"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// What packages above the controller (faults) may read and nudge.

// Replicas returns the replicas of a desired group as last observed, with
// the runtime's later events folded in, in number order. A group that is
// not desired is ErrNotFound.
func (c *Controller) Replicas(group string) ([]replica.Replica, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[group]
	if g == nil || g.desired == nil {
		return nil, fmt.Errorf("group %q: %w", group, ErrNotFound)
	}
	out := c.replicasLocked(g)
	replica.Sort(out)
	return out, nil
}

// ReplicaByID returns an observed replica of any group, with the runtime's
// later events folded in.
func (c *Controller) ReplicaByID(id string) (replica.Replica, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.groups {
		for _, r := range g.observed {
			if r.ID == id {
				return c.withNotesLocked(r), true
			}
		}
	}
	return replica.Replica{}, false
}

// MarkDown takes a replica out of its group's balancer rotation at once,
// ahead of failed requests or probes; it comes back when it passes again.
func (c *Controller) MarkDown(group, id string) {
	if b := c.balancer(group); b != nil {
		b.MarkDown(id)
	}
}

// Resync asks for a reconcile of group soon: something changed that the
// runtime's events may not tell.
func (c *Controller) Resync(group string) { c.markDirty(group) }

package controller

import (
	"context"
	"time"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// Observed is what one reconcile saw of a group: its replicas from one
// list of the runtime, with engine events that were ahead of the list
// folded in, and what the prober and Inspect add. Making it changes
// nothing.
type Observed struct {
	Group string
	// Replicas are the group's; Listed is every replica of the list, for
	// the bookkeeping of events about replicas now gone.
	Replicas []replica.Replica
	Listed   []replica.Replica
	// Unhealthy are running replicas that failed their probe past the grace.
	Unhealthy map[string]bool
	// Ran is how long each newly dead replica ran, where the runtime says.
	Ran map[string]time.Duration
}

// observe reads what runs of one group out of a list of every replica. Its
// only calls are reads: Inspect of replicas that died since the last look.
func (c *Controller) observe(ctx context.Context, name string, all []replica.Replica) Observed {
	obs := Observed{Group: name, Listed: all, Unhealthy: map[string]bool{}, Ran: map[string]time.Duration{}}
	c.mu.Lock()
	var counted map[int]crashState
	if g := c.groups[name]; g != nil {
		counted = g.crashes
	}
	for _, r := range all {
		if r.Group == name {
			obs.Replicas = append(obs.Replicas, c.withNotesLocked(r))
		}
	}
	c.mu.Unlock()

	for _, r := range obs.Replicas {
		switch r.State {
		case replica.StateExited, replica.StateDead:
			if c.replicas == nil || counted[r.Index].id == r.ID {
				continue
			}
			if info, err := c.replicas.Inspect(ctx, r.ID); err == nil && !info.StartedAt.IsZero() {
				obs.Ran[r.ID] = info.FinishedAt.Sub(info.StartedAt)
			}
		case replica.StateRunning:
			if c.notLivePastGrace(r.ID) {
				obs.Unhealthy[r.ID] = true
			}
		}
	}
	return obs
}

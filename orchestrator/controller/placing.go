package controller

import (
	"fmt"
	"time"

	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// What a placing runtime (Docker Swarm mode) can and cannot run. It runs
// containers only, places and heals them itself, and rolls a group to a
// new template with its own update configuration, which follows the
// group's rollout settings.

// placingRefuses says why a placing runtime cannot run g, naming the field.
func placingRefuses(g spec.Group) error {
	if g.Isolation != "" && g.Isolation != spec.IsolationContainer {
		return &spec.ValidationError{Field: "isolation", Reason: fmt.Sprintf(
			"%q cannot run on the swarm runtime, whose replicas are a service's containers; run pod and vm groups on the engine runtime (flotilla serve --runtime engine)", g.Isolation)}
	}
	if g.Autoscale != nil && g.Autoscale.WarmPool > 0 {
		return &spec.ValidationError{Field: "autoscale.warmPool", Reason: fmt.Sprintf(
			"%d: a warm pool pauses replicas the controller made itself, and on the swarm runtime Swarm makes them; leave warmPool at 0 or use the engine runtime", g.Autoscale.WarmPool)}
	}
	switch s := g.Rollout.Settled(); s.Strategy {
	case spec.StrategyBlueGreen, spec.StrategyCanary:
		return &spec.ValidationError{Field: "rollout.strategy", Reason: fmt.Sprintf(
			"%q needs the balancer to split or switch traffic between two sets of replicas, and Swarm's own updates replace tasks in place; choose %q or %q on the swarm runtime, or use the engine runtime",
			s.Strategy, spec.StrategyRolling, spec.StrategyRecreate)}
	}
	return nil
}

// swarmMonitor is how long Swarm watches each updated batch for a failure
// when the rollout asks for no minimum ready time.
const swarmMonitor = 5 * time.Second

// updatePolicy maps a group's rollout settings onto a placing runtime's
// update configuration: a rolling update with no unavailable replica
// starts maxSurge new ones first; one that allows some stops that many
// first; recreate replaces them all at once. A failure rolls back.
func updatePolicy(r *spec.Rollout) replica.UpdatePolicy {
	s := r.Settled()
	p := replica.UpdatePolicy{
		Order:         replica.UpdateStartFirst,
		Parallelism:   max(*s.MaxSurge, 1),
		Delay:         time.Duration(s.MinReadySeconds) * time.Second,
		Monitor:       max(time.Duration(s.MinReadySeconds)*time.Second, swarmMonitor),
		FailureAction: replica.UpdateRollback,
	}
	switch {
	case s.Strategy == spec.StrategyRecreate:
		p.Order, p.Parallelism, p.Delay = replica.UpdateStopFirst, 0, 0
	case *s.MaxUnavailable > 0:
		p.Order, p.Parallelism = replica.UpdateStopFirst, *s.MaxUnavailable
	}
	return p
}

// planPlacedRollout follows a rollout the placing runtime carries out with
// its own update configuration: the same judgement as the planner's
// (progress, deadline, error rate, done), over every replica the runtime
// lists (a start-first update runs a new replica beside the old one of the
// same number), and no action of its own: the runtime moves the replicas.
func planPlacedRollout(in PlanInput, actual []replica.Replica) RolloutPlan {
	rp := planRollout(in, actual)
	rp.Actions = nil
	if !rp.Done && rp.Failed == "" {
		rp.Progress = "Swarm's update: " + rp.Progress
	}
	return rp
}

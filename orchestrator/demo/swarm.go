package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/faults"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// SwarmController starts a controller on the swarm runtime (initialising
// a single-node swarm if none is active) for the swarm demo when the one
// it was given runs the engine runtime, and returns its client and a
// function that removes what it made, leaves a swarm it initialised and
// stops it. It is wired in by the command line, which can start processes;
// while it is nil, the swarm demo needs a controller on the swarm runtime.
var SwarmController func(ctx context.Context, out func(format string, args ...any)) (*api.Client, func(), error)

const (
	// swarmHealWithin bounds Swarm's replacement of a killed task (its
	// restart delay is 1 s) and the return of the tasks of a node made
	// active again.
	swarmHealWithin = 30 * time.Second
	// swarmDrainWithin bounds the move (or the stop) of a drained node's
	// tasks.
	swarmDrainWithin = 30 * time.Second
)

// swarmDemo shows services as clusters on Docker Swarm mode: the same
// group, API and balancer, but Swarm places, heals and updates the
// replicas, over nodes the learner can drain.
func swarmDemo(ctx context.Context, r *run) error {
	h, err := r.api.Health(ctx)
	if err != nil {
		return err
	}
	if h.Runtime != controller.RuntimeSwarm {
		if SwarmController == nil {
			return errors.New("this controller runs the engine runtime; start one with `flotilla serve --runtime swarm` and run the demo against it")
		}
		r.say("The controller at %s runs the engine runtime: the demo starts a second one, on the swarm runtime.", r.api.Addr)
		cl, stop, err := SwarmController(ctx, r.say)
		if err != nil {
			return fmt.Errorf("start a controller on the swarm runtime: %w", err)
		}
		defer stop()
		sr := *r
		sr.api, sr.dashboard = cl, "http://"+cl.Addr+"/"
		sr.loads, sr.failed = nil, nil
		defer func() { r.failed = append(r.failed, sr.failed...) }()
		defer sr.stopLoads()
		r = &sr
		r.say("Its dashboard: %s", r.dashboard)
	}
	return swarmLessons(ctx, r)
}

func swarmLessons(ctx context.Context, r *run) error {
	// Only this demo's group: the controller may have been given others.
	if _, err := r.api.ApplyScenario(ctx, "monolith"); err != nil {
		return err
	}
	surge, unavailable := 1, 0
	g := spec.Group{Name: rolloutGroup, Service: "monolith", Replicas: 3,
		Balancer: spec.Balancer{Policy: "round-robin"},
		Rollout:  &spec.Rollout{Strategy: spec.StrategyRolling, MaxSurge: &surge, MaxUnavailable: &unavailable}}
	r.say("")
	r.say("1. The monolith, 3 replicas behind a round-robin balancer, as on the engine runtime. Here the group is a")
	r.say("   Swarm service: the controller says how many and from what, and Swarm places, numbers and heals the tasks.")
	if _, _, err := r.api.PutGroup(ctx, g); err != nil {
		return err
	}
	if err := r.converged(ctx, 2*time.Minute); err != nil {
		return err
	}
	st, err := r.group(ctx, rolloutGroup)
	if err != nil {
		return err
	}
	nodes, err := r.api.Nodes(ctx)
	if err != nil {
		return err
	}
	r.look("the nodes view: each node of the swarm with the replicas placed on it.")
	placed := 0
	for _, n := range nodes.Nodes {
		leader := ""
		if n.Leader {
			leader = ", leader"
		}
		r.say("   node %s (%s%s, %s, %s): %s", n.Name, n.Role, leader, n.State, n.Availability, replicaNames(n.Replicas))
		placed += len(n.Replicas)
	}
	r.check(nodes.Runtime == controller.RuntimeSwarm && st.Runtime == controller.RuntimeSwarm,
		"the controller and the group say runtime swarm (nodes %q, group %q)", nodes.Runtime, st.Runtime)
	r.check(placed == 3, "the nodes view places all 3 replicas on nodes (%d placed)", placed)

	s := startShoppers(ctx, st.Endpoint)
	defer s.stop()
	if err := sleep(ctx, 2*time.Second); err != nil {
		return err
	}

	r.say("")
	r.say("2. Kill a replica. Flotilla does not replace it: Swarm sees its task end and starts another in its slot.")
	r.look("the tile of shop-2 goes red and leaves the rotation; a new shop-2 appears about two seconds later.")
	victim := st.Replicas[1]
	from := s.mark()
	killed := time.Now()
	if _, err := r.inject(ctx, faults.Spec{Kind: faults.Kill, Group: rolloutGroup, Replica: victim.Name}); err != nil {
		return err
	}
	var healed controller.ReplicaStatus
	err = waitFor(ctx, swarmHealWithin, func() (bool, error) {
		gs, err := r.group(ctx, rolloutGroup)
		if err != nil {
			return false, err
		}
		for _, rep := range gs.Replicas {
			if rep.Name == victim.Name && rep.ID != victim.ID && rep.Traffic != nil && rep.Traffic.State == "ready" {
				healed = rep
				return gs.Ready == 3, nil
			}
		}
		return false, nil
	})
	took := time.Since(killed)
	if err := sleep(ctx, time.Second); err != nil {
		return err
	}
	t := s.tally(from, s.mark())
	r.say("A new %s (%.12s) was in rotation %s after the kill; shoppers sent %d requests meanwhile, %d failed.",
		victim.Name, healed.ID, seconds(took), t.requests, t.failed)
	r.check(err == nil && healed.ID != "", "Swarm replaced the killed replica within %s", swarmHealWithin)
	r.check(t.requests > 0 && t.failed == 0, "no request failed across the kill (%d of %d)", t.failed, t.requests)

	r.say("")
	r.say("3. A rolling update from v1 to v2 is Swarm's own update, set from the group's rollout: one new task")
	r.say("   started before an old one stops (start-first), and a failed update rolled back by Swarm.")
	r.look("the shop's card shows the rollout's progress; the tiles change version one by one.")
	v2 := g
	v2.Version = "v2"
	from = s.mark()
	ro, err := r.roll(ctx, v2)
	if err != nil {
		return err
	}
	t = s.tally(from, s.mark())
	r.say("The update took %s: %d requests, %d failed, answers: %s.", seconds(ro.took), t.requests, t.failed, t.versions())
	r.check(ro.done() && allOn(ro.group, "v2"), "every replica runs v2 at the end (%s)", replicaVersions(ro.group))
	r.check(t.requests > 0 && t.failed == 0, "no request failed during Swarm's rolling update (%d of %d)", t.failed, t.requests)
	s.stop()

	r.say("")
	r.say("4. Drain a node: Swarm moves its tasks to the other nodes. With a single node there is nowhere to go,")
	r.say("   so the tasks wait, unassigned, until the node is active again: that is why clusters have several.")
	r.look("the node's column empties; its replicas move to another node, or wait below the nodes.")
	target := nodes.Nodes[0]
	for _, n := range nodes.Nodes {
		if len(n.Replicas) > len(target.Replicas) {
			target = n
		}
	}
	if _, err := r.api.SetNodeAvailability(ctx, target.ID, replica.AvailabilityDrain); err != nil {
		return err
	}
	// Whatever happens next, the node is made active again.
	defer func() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, _ = r.api.SetNodeAvailability(actx, target.ID, replica.AvailabilityActive)
	}()
	err = waitFor(ctx, swarmDrainWithin, func() (bool, error) {
		ns, err := r.api.Nodes(ctx)
		if err != nil {
			return false, err
		}
		for _, n := range ns.Nodes {
			if n.ID == target.ID {
				return n.Availability == replica.AvailabilityDrain && len(n.Replicas) == 0, nil
			}
		}
		return false, nil
	})
	r.check(err == nil, "the drained node %s holds no replica within %s", target.Name, swarmDrainWithin)
	// Where its replicas went: other nodes, or waiting for one. Swarm
	// makes the waiting tasks a moment after it stopped the old ones.
	elsewhere, waiting := 0, 0
	_ = waitFor(ctx, 5*time.Second, func() (bool, error) {
		ns, err := r.api.Nodes(ctx)
		if err != nil {
			return false, err
		}
		elsewhere, waiting = 0, len(ns.Unassigned)
		for _, n := range ns.Nodes {
			if n.ID != target.ID {
				elsewhere += len(n.Replicas)
			}
		}
		return elsewhere+waiting >= 3, nil
	})
	r.say("Node %s drained: no replica on it, %d on other nodes, %d waiting for a node.", target.Name, elsewhere, waiting)
	if _, err := r.api.SetNodeAvailability(ctx, target.ID, replica.AvailabilityActive); err != nil {
		return err
	}
	r.say("Node %s is active again.", target.Name)
	err = waitFor(ctx, swarmHealWithin, func() (bool, error) {
		gs, err := r.group(ctx, rolloutGroup)
		return err == nil && gs.Ready == 3, err
	})
	r.check(err == nil, "the group is back to 3 ready replicas within %s of the node's return", swarmHealWithin)

	if err := r.api.DeleteGroup(ctx, rolloutGroup); err != nil {
		return err
	}
	r.say("")
	r.say("Swarm placed, healed and updated the replicas; Flotilla balanced, probed and drew them the same way as")
	r.say("on the engine runtime. More machines join with `docker swarm join` (see the README).")
	return nil
}

// replicaNames lists a node's replicas by name, or says it has none.
func replicaNames(rs []controller.NodeReplica) string {
	if len(rs) == 0 {
		return "no replica"
	}
	names := make([]string, len(rs))
	for i, rep := range rs {
		names[i] = rep.Name
	}
	return strings.Join(names, ", ")
}

package controller

import (
	"context"
	"time"

	"github.com/flotilla/flotilla/orchestrator/health"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// This file is the controller's only use of the prober: the verdicts it
// reads and the targets it sets.

func (c *Controller) newProber() *health.Prober {
	return health.New(c.opt.Probe, c.probeChanged)
}

// Two probes watch each running replica, and they lead to different acts.
// Readiness (GET /readyz) says whether it can serve, dependencies included:
// failing it takes the replica out of its balancer's rotation, and nothing
// more. Liveness (GET /healthz) says whether the process answers at all:
// failing it past UnhealthyGrace gets the replica replaced. Replacing on
// readiness would restart every dependent of a service that is down, losing
// what they hold in memory, and the replacements could not be ready either.

// probeChanged follows a replica's probes: rotation follows readiness at
// once; a replica that is no longer live is marked for the reconcile,
// which replaces it once it stayed so past the grace period.
func (c *Controller) probeChanged(ch health.Change) {
	if ch.Verdict == ch.Prev {
		return // only the reason changed; the status shows it
	}
	c.log.Info("replica "+ch.Probe, "replica", ch.Name, "from", ch.Prev, "to", ch.Verdict, "reason", ch.Reason)
	switch {
	case ch.Probe == health.Readiness && ch.Verdict == health.Ready:
		if ch.Prev == health.Unready {
			c.publish(hub.ReplicaReady, ch.Group, ch.Name, ch.ID, "%s is ready again: back in rotation", ch.Name)
		} else {
			c.publish(hub.ReplicaReady, ch.Group, ch.Name, ch.ID, "%s is ready", ch.Name)
		}
		c.firstReady(ch.ID, ch.URL)
		c.autoReady(ch.Group, ch.ID)
		c.mu.Lock()
		hooks := c.onReady
		c.mu.Unlock()
		for _, fn := range hooks {
			go fn(ch.Group, ch.ID)
		}
	case ch.Probe == health.Readiness && ch.Verdict == health.Unready:
		c.publish(hub.ReplicaUnready, ch.Group, ch.Name, ch.ID, "%s is not ready (%s): out of rotation, not replaced", ch.Name, ch.Reason)
	case ch.Probe == health.Liveness && ch.Verdict == health.NotLive:
		c.publish(hub.ReplicaUnhealthy, ch.Group, ch.Name, ch.ID, "%s failed its liveness probe (%s): replaced if it does not answer within %s", ch.Name, ch.Reason, c.opt.UnhealthyGrace)
	case ch.Probe == health.Liveness && ch.Verdict == health.Live && ch.Prev == health.NotLive:
		c.publish(hub.ReplicaLive, ch.Group, ch.Name, ch.ID, "%s answers its liveness probe again", ch.Name)
	}
	// Rotation follows readiness at once; the reconcile follows.
	c.syncUpstreams(ch.Group)
	c.markDirty(ch.Group)
}

// OnReady registers fn to be called, in a goroutine of its own, each time
// a replica of group passes its readiness probe after not passing it.
// Register before Run.
func (c *Controller) OnReady(fn func(group, id string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onReady = append(c.onReady, fn)
}

// syncProbes makes the probed replicas of group exactly the plan's targets.
func (c *Controller) syncProbes(ctx context.Context, group string, p Plan) {
	c.mu.Lock()
	ts := c.probeTargetsLocked(group, p)
	c.mu.Unlock()
	c.prober.Sync(ctx, group, ts)
}

// probeTargetsLocked are the probe targets of a plan's running replicas; a
// starting replica of an autoscaled group is probed at the waking interval.
func (c *Controller) probeTargetsLocked(group string, p Plan) []health.Target {
	ts := probeTargets(group, p)
	if g := c.groups[group]; g != nil && g.desired != nil && g.desired.Autoscale != nil {
		for i := range ts {
			ts[i].Config.StartInterval = wakeProbeInterval
		}
	}
	return ts
}

// probeTargets are the prober's targets for a plan's running replicas, each
// with a readiness and a liveness URL and config.
func probeTargets(group string, p Plan) []health.Target {
	rc, lc := probeConfig(p.Probe), probeConfig(p.Liveness)
	ts := make([]health.Target, 0, len(p.Probes))
	for _, t := range p.Probes {
		base := "http://" + t.Addr
		ts = append(ts, health.Target{ID: t.ID, Group: group, Name: t.Name,
			URL: base + readyPath, LiveURL: base + livePath, Config: rc, Liveness: lc})
	}
	return ts
}

// Every catalogued service answers these; the shop's faults never touch them.
const (
	readyPath = "/readyz"
	livePath  = "/healthz"
)

// forgetProbe stops probing a replica at once: it died or is leaving.
func (c *Controller) forgetProbe(id string) { c.prober.Forget(id) }

// notLivePastGrace reports whether a running replica has failed its
// liveness probe for longer than the grace period: the only probe verdict
// that gets a replica replaced.
func (c *Controller) notLivePastGrace(id string) bool {
	st, ok := c.prober.Status(id)
	return ok && st.Live == health.NotLive && time.Since(st.LiveSince) > c.opt.UnhealthyGrace
}

// probedReady reports whether a replica passes its readiness probe and does
// not fail its liveness probe: only then does it get traffic.
func (c *Controller) probedReady(id string) bool {
	st, ok := c.prober.Status(id)
	return ok && st.Verdict == health.Ready && st.Live != health.NotLive
}

// healthOf merges the runtime's state with the probe verdicts, and says
// why a running replica is not ready or not live.
func (c *Controller) healthOf(r replica.Replica) (string, string) {
	switch r.State {
	case replica.StatePaused:
		return HealthPaused, ""
	case replica.StateExited, replica.StateDead, replica.StateRemoving:
		return HealthDead, ""
	case replica.StateRunning:
		if st, ok := c.prober.Status(r.ID); ok {
			return probeHealth(st)
		}
	}
	return HealthStarting, ""
}

// probeHealth is a running replica's health by its probes: unhealthy when
// not live, else its readiness verdict. The reason says why it is not
// ready or not live, or why a starting replica is not ready yet.
func probeHealth(st health.Status) (string, string) {
	switch {
	case st.Live == health.NotLive:
		return HealthUnhealthy, st.LiveReason
	case st.Verdict == health.Ready:
		return HealthReady, ""
	case st.Verdict == health.Unready:
		return HealthUnready, st.Reason
	}
	return HealthStarting, st.Reason
}

// probeConfig turns a group's probe spec into the prober's terms; zero
// fields keep the prober's defaults.
func probeConfig(p spec.Probe) health.Config {
	return health.Config{
		Interval:         time.Duration(p.PeriodMs) * time.Millisecond,
		Timeout:          time.Duration(p.TimeoutMs) * time.Millisecond,
		SuccessThreshold: p.SuccessThreshold,
		FailureThreshold: p.FailureThreshold,
	}
}

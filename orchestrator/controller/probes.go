package controller

import (
	"context"
	"time"

	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/health"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// Two probes watch each running replica, and they lead to different acts.
// Readiness (GET /readyz) says whether it can serve, dependencies included:
// failing it takes the replica out of its balancer's rotation, and nothing
// more. Liveness (GET /healthz) says whether the process answers at all:
// failing it past UnhealthyGrace gets the replica replaced. Replacing on
// readiness would restart every dependent of a service that is down, losing
// what they hold in memory, and the replacements could not be ready either.

// probeTargets are the prober's targets for a group's running replicas.
func probeTargets(g spec.Group, actual []docker.Replica) []health.Target {
	svc, _ := spec.LookupService(g.Service)
	ready, live := svc.Ready, svc.Health
	if ready == "" {
		ready = "/readyz"
	}
	if live == "" {
		live = "/healthz"
	}
	rc, lc := probeConfig(g.Probe), probeConfig(g.Liveness)
	var targets []health.Target
	for _, r := range actual {
		if r.State == docker.StateRunning && r.Address != "" {
			base := "http://" + r.Address
			targets = append(targets, health.Target{ID: r.ID, Group: r.Group, Name: r.Name,
				URL: base + ready, LiveURL: base + live, Config: rc, Liveness: lc})
		}
	}
	return targets
}

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
		go c.reapplyFaults(context.Background(), ch.Group, ch.ID)
	case ch.Probe == health.Readiness && ch.Verdict == health.Unready:
		c.publish(hub.ReplicaUnready, ch.Group, ch.Name, ch.ID, "%s is not ready (%s): out of rotation, not replaced", ch.Name, ch.Reason)
	case ch.Probe == health.Liveness && ch.Verdict == health.NotLive:
		c.publish(hub.ReplicaUnhealthy, ch.Group, ch.Name, ch.ID, "%s failed its liveness probe (%s): replaced if it does not answer within %s", ch.Name, ch.Reason, c.opt.UnhealthyGrace)
	case ch.Probe == health.Liveness && ch.Verdict == health.Live && ch.Prev == health.NotLive:
		c.publish(hub.ReplicaLive, ch.Group, ch.Name, ch.ID, "%s answers its liveness probe again", ch.Name)
	}
	c.syncUpstreams(ch.Group)
	c.markDirty(ch.Group)
}

// notLivePastGrace reports whether a running replica has failed its
// liveness probe for longer than the grace period: the only probe verdict
// that gets a replica replaced.
func (c *Controller) notLivePastGrace(id string) bool {
	st, ok := c.prober.Status(id)
	return ok && st.Live == health.NotLive && time.Since(st.LiveSince) > c.opt.UnhealthyGrace
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

// probeReason is why a running replica is not ready or not live, or "".
func (c *Controller) probeReason(r docker.Replica) string {
	if r.State != docker.StateRunning {
		return ""
	}
	st, ok := c.prober.Status(r.ID)
	if !ok {
		return ""
	}
	_, reason := probeHealth(st)
	return reason
}

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
	return health.New(c.opt.Probe, func(ch health.Change) {
		c.log.Info("replica health", "replica", ch.Name, "from", ch.Prev, "to", ch.Verdict)
		switch ch.Verdict {
		case health.Ready:
			c.publish(hub.ReplicaReady, ch.Group, ch.Name, ch.ID, "%s is ready", ch.Name)
			c.mu.Lock()
			hooks := c.onReady
			c.mu.Unlock()
			for _, fn := range hooks {
				go fn(ch.Group, ch.ID)
			}
		case health.Unhealthy:
			c.publish(hub.ReplicaUnhealthy, ch.Group, ch.Name, ch.ID, "%s failed its readiness probe", ch.Name)
		}
		// Rotation follows readiness at once; the reconcile follows.
		c.syncUpstreams(ch.Group)
		c.markDirty(ch.Group)
	})
}

// OnReady registers fn to be called, in a goroutine of its own, each time
// a replica of group passes its readiness probe after not passing it.
// Register before Run.
func (c *Controller) OnReady(fn func(group, id string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onReady = append(c.onReady, fn)
}

// syncProbes makes the probed replicas of group exactly targets.
func (c *Controller) syncProbes(ctx context.Context, group string, targets []ProbeTarget, p spec.Probe) {
	pc := health.Config{
		Interval:         time.Duration(p.PeriodMs) * time.Millisecond,
		Timeout:          time.Duration(p.TimeoutMs) * time.Millisecond,
		SuccessThreshold: p.SuccessThreshold,
		FailureThreshold: p.FailureThreshold,
	}
	ts := make([]health.Target, 0, len(targets))
	for _, t := range targets {
		ts = append(ts, health.Target{ID: t.ID, Group: group, Name: t.Name, URL: "http://" + t.Addr + "/readyz", Config: pc})
	}
	c.prober.Sync(ctx, group, ts)
}

// forgetProbe stops probing a replica at once: it died or is leaving.
func (c *Controller) forgetProbe(id string) { c.prober.Forget(id) }

// unhealthyTooLong reports a replica that has failed its probe for longer
// than the grace period: it is replaced.
func (c *Controller) unhealthyTooLong(id string) bool {
	st, ok := c.prober.Status(id)
	return ok && st.Verdict == health.Unhealthy && time.Since(st.Since) > c.opt.UnhealthyGrace
}

// probedReady reports whether a replica passes its readiness probe.
func (c *Controller) probedReady(id string) bool {
	st, ok := c.prober.Status(id)
	return ok && st.Verdict == health.Ready
}

// healthOf merges the runtime's state with the probe verdict.
func (c *Controller) healthOf(r replica.Replica) string {
	switch r.State {
	case replica.StatePaused:
		return HealthPaused
	case replica.StateExited, replica.StateDead, replica.StateRemoving:
		return HealthDead
	case replica.StateRunning:
		if st, ok := c.prober.Status(r.ID); ok {
			return st.Verdict
		}
	}
	return HealthStarting
}

package controller

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/replica"
)

// Run reconciles until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	if c.replicas == nil && c.placing == nil {
		return fmt.Errorf("runtime %T neither runs replicas one by one nor places them", c.opt.Runtime)
	}
	if err := c.Load(); err != nil {
		return err
	}
	if err := c.opt.Runtime.EnsureNetwork(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("project network: %w", err)
	}
	c.mu.Lock()
	c.ctx = ctx
	c.mu.Unlock()

	go c.watch(ctx)
	go c.sampleLoop(ctx, time.Second)
	go c.busLoop(ctx)
	go c.autoscaleLoop(ctx)
	go c.rolloutLoop(ctx)
	if c.nodeRT != nil {
		go c.nodeLoop(ctx)
	}
	c.resyncAll(ctx)

	ticker := time.NewTicker(c.opt.Resync)
	defer ticker.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	var wg sync.WaitGroup
	defer c.closeAllBalancers()
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			c.resyncAll(ctx)
		case <-retry.C:
		case <-c.poke:
		}
		next := c.dispatch(ctx, &wg)
		if !next.IsZero() {
			retry.Reset(max(time.Until(next), time.Millisecond))
		}
	}
}

// dispatch starts a reconcile for every dirty group not already in flight
// and returns when the loop must wake for a pending retry.
func (c *Controller) dispatch(ctx context.Context, wg *sync.WaitGroup) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	var next time.Time
	for name, g := range c.groups {
		if !g.retryAt.IsZero() {
			if !now.Before(g.retryAt) {
				g.dirty, g.retryAt = true, time.Time{}
			} else if next.IsZero() || g.retryAt.Before(next) {
				next = g.retryAt
			}
		}
		if !g.dirty {
			continue
		}
		g.dirty = false
		if g.running {
			g.again = true
			continue
		}
		g.running = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.reconcile(ctx, name)
		}()
	}
	return next
}

// resyncAll marks every known group dirty, and every group that has
// replicas but no desire (orphans of a deleted group).
func (c *Controller) resyncAll(ctx context.Context) {
	reps, err := c.opt.Runtime.List(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.groups {
		g.dirty = true
	}
	if err != nil {
		c.log.Warn("resync: list replicas", "err", err)
	}
	for _, r := range reps {
		c.groupLocked(r.Group).dirty = true
	}
	c.pokeLocked()
}

func (c *Controller) markDirty(group string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.markDirtyLocked(group)
}

func (c *Controller) markDirtyLocked(group string) {
	c.groupLocked(group).dirty = true
	c.pokeLocked()
}

func (c *Controller) pokeLocked() {
	select {
	case c.poke <- struct{}{}:
	default:
	}
}

// watch turns runtime events into notes and dirty marks. Events are hints:
// the reconcile re-observes rather than trusting them.
func (c *Controller) watch(ctx context.Context) {
	for ev := range c.opt.Runtime.Events(ctx) {
		switch ev.Action {
		case replica.ActionResync:
			c.resyncAll(ctx)
		case replica.ActionDie, replica.ActionOOM, replica.ActionKill, replica.ActionDestroy,
			replica.ActionPause, replica.ActionUnpause, replica.ActionStart, replica.ActionStop:
			if ev.Action == replica.ActionDie || ev.Action == replica.ActionDestroy {
				c.forgetProbe(ev.ID)
			}
			c.mu.Lock()
			switch ev.Action {
			case replica.ActionDie:
				n := c.noteLocked(ev.ID)
				n.died, n.exitCode = true, ev.ExitCode
			case replica.ActionPause, replica.ActionUnpause:
				n := c.noteLocked(ev.ID)
				n.pauseKnown, n.paused = true, ev.Action == replica.ActionPause
			case replica.ActionDestroy:
				if n := c.notes[ev.ID]; n != nil {
					n.pauseKnown = false
				}
			}
			c.mu.Unlock()
			pool := (ev.Action == replica.ActionPause || ev.Action == replica.ActionUnpause) && c.ownPause(ev.Group, ev.ID)
			if !pool { // the warm pool announces its own
				c.eventFromRuntime(ev)
			}
			if ev.Action == replica.ActionDie || ev.Action == replica.ActionPause && !pool {
				// Out of rotation now, without waiting for failed requests.
				if b := c.balancer(ev.Group); b != nil {
					b.MarkDown(ev.ID)
					name := replica.Name(ev.Group, ev.Index)
					c.publish(hub.BalancerEjected, ev.Group, name, ev.ID, "%s left rotation: it %s", name, map[string]string{"die": "died", "pause": "is paused"}[ev.Action])
				}
			}
			if ev.Group != "" {
				c.markDirty(ev.Group)
			}
		}
	}
}

// reconcile runs one reconcile of a group and books its outcome: a failure
// is retried with backoff; work left after the last round is picked up by
// the next reconcile.
func (c *Controller) reconcile(ctx context.Context, name string) {
	began := time.Now()
	acted, err := c.reconcileOnce(ctx, name)
	c.metrics.observeReconcile(time.Since(began), err)
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	if g == nil {
		return // forgotten
	}
	g.running = false
	if err != nil && ctx.Err() == nil {
		g.failures++
		backoff := min(time.Duration(1<<min(g.failures-1, 5))*time.Second, 30*time.Second)
		g.err = err
		g.retryAt = time.Now().Add(backoff)
		c.log.Warn("reconcile failed", "group", name, "err", err, "retry", backoff)
	} else {
		g.err, g.failures = nil, 0
		if acted {
			g.again = true
		}
	}
	if g.again {
		g.again, g.dirty = false, true
	}
	c.pokeLocked()
}

// rounds bounds the observe, plan, apply rounds of one reconcile.
const rounds = 3

// reconcileOnce observes, plans and applies one group. A plan that acted is
// followed by another round, whose list is the only one of that round: it
// shows what the plan did, and what is left to do. It reports whether the
// last round still acted.
func (c *Controller) reconcileOnce(ctx context.Context, name string) (bool, error) {
	for round := 1; ; round++ {
		acted, err := c.round(ctx, name)
		if err != nil || !acted || round == rounds || ctx.Err() != nil {
			return acted, err
		}
	}
}

// round is one list of the runtime, one observation, one plan, one apply.
func (c *Controller) round(ctx context.Context, name string) (bool, error) {
	all, err := c.opt.Runtime.List(ctx)
	if err != nil {
		return false, fmt.Errorf("list replicas of %q: %w", name, err)
	}
	obs := c.observe(ctx, name, all)

	in := PlanInput{Group: name, Actual: obs.Replicas, Unhealthy: obs.Unhealthy, Ran: obs.Ran, Now: time.Now(), Placing: c.placing != nil}
	c.mu.Lock()
	g := c.groupLocked(name)
	if g.desired != nil {
		d := *g.desired
		in.Desired = &d
		if a := c.autoLocked(g); a != nil {
			d.Replicas = a.want + a.poolSize()
			in.Pooled = maps.Clone(a.pool)
		}
	}
	in.Crashes = g.crashes
	in.Placed = g.placed
	if g.balancer != nil {
		in.Balancer = BalancerState{Running: true, Policy: g.balancer.b.Policy(), Port: g.balancer.port}
	}
	c.mu.Unlock()

	var tmplErr error
	if in.Desired != nil {
		in.Template, tmplErr = c.templateOf(*in.Desired)
		c.mu.Lock()
		in.Rollout = c.rolloutInputLocked(g, *in.Desired, in.Template.TemplateHash, in.Now)
		c.mu.Unlock()
	}
	p := MakePlan(in)
	if tmplErr == nil {
		c.advanceRollout(ctx, name, p.Rollout)
	}
	if tmplErr != nil {
		// Nothing can be made; what is observed is still recorded.
		p.Actions, p.Held, p.Balancer = nil, nil, BalancerAction{}
	}
	if err := c.apply(ctx, p, obs); err != nil {
		return false, err
	}
	return len(p.Actions) > 0, tmplErr
}

// waitIdle waits until no reconcile is in flight, or timeout passes.
func (c *Controller) waitIdle(ctx context.Context, timeout time.Duration) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		c.mu.Lock()
		busy := false
		for _, g := range c.groups {
			busy = busy || g.running
		}
		c.mu.Unlock()
		if !busy {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

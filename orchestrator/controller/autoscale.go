package controller

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/flotilla/flotilla/orchestrator/autoscale"
	"github.com/flotilla/flotilla/orchestrator/health"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/lb"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// Serverless groups. A group with autoscale settings has its count chosen
// by the controller, once a second, from what its balancer carries (the
// requests in flight, held ones included) or, for a group triggered by a
// bus subject, from the messages waiting for its consumer. At zero its
// balancer holds requests and asks the controller to wake it (wake); the
// replica that wakes is probed every few milliseconds until it first
// answers, so the probe is not what makes a cold start slow. A warm pool
// keeps some replicas started and paused, out of rotation: a wake thaws one
// instead of making one, and the pool refills behind it.

const (
	// autoscaleTick is how often the autoscaler samples and decides.
	autoscaleTick = time.Second
	// wakeProbeInterval is the readiness probe's period while a replica
	// of an autoscaled group starts.
	wakeProbeInterval = 5 * time.Millisecond
	// keepDecisions and keepColdStarts bound what a group remembers;
	// keepHistory is its count over the last 4 minutes, a point a tick.
	keepDecisions  = 20
	keepColdStarts = 20
	keepHistory    = 240
)

// autoState is what the controller holds of an autoscaled group, guarded
// by Controller.mu.
type autoState struct {
	spec   spec.Autoscale
	scaler *autoscale.Scaler
	// want is the count the autoscaler chose: replicas that serve. The
	// group runs want plus the warm pool.
	want int
	// last and lastAt are the balancer's load at the last tick.
	last   lb.Load
	lastAt time.Time
	// concurrency is the last sample; pending the messages waiting, for a
	// triggered group, and active when one last waited or was in work.
	concurrency float64
	pending     uint64
	delivered   uint64 // the consumer's last delivered sequence at the last reading
	active      time.Time
	// pool holds the replicas paused into the warm pool (or being paused);
	// own the replicas whose next pause or unpause event is the pool's
	// doing, announced as such rather than as a fault.
	pool map[string]bool
	own  map[string]bool
	// waking is the cold start under way; cold the last ones finished.
	waking    *ColdStart
	cold      []ColdStart
	decisions []autoscale.Decision
	history   []CountPoint
	starts    Starts
}

// AutoscaleStatus is an autoscaled group's autoscaler as the API shows it.
type AutoscaleStatus struct {
	Settings spec.Autoscale `json:"settings"`
	// Want is the count of serving replicas the autoscaler chose.
	Want      int  `json:"want"`
	Panicking bool `json:"panicking"`
	// Concurrency is the last sample of requests in flight (held ones
	// included); Pending the messages waiting, for a triggered group.
	Concurrency float64 `json:"concurrency"`
	Pending     uint64  `json:"pending,omitempty"`
	// Held are the requests the balancer holds now, waiting for a replica.
	Held int `json:"held"`
	// Pool are the warm pool's replicas and PoolMemBytes the memory they
	// hold while paused.
	Pool         []string `json:"pool"`
	PoolMemBytes uint64   `json:"poolMemBytes"`
	// Decisions are the autoscaler's latest, newest last.
	Decisions []autoscale.Decision `json:"decisions"`
	// ColdStarts are the latest wakes' timelines, newest last.
	ColdStarts []ColdStart   `json:"coldStarts"`
	Starts     Starts        `json:"starts"`
	History    []CountPoint  `json:"history"`
	Windows    WindowSeconds `json:"windows"`
}

// WindowSeconds are the autoscaler's windows and idle time, in seconds.
type WindowSeconds struct {
	Stable    float64 `json:"stable"`
	Panic     float64 `json:"panic"`
	IdleAfter float64 `json:"idleAfter"`
}

// Starts counts how requests found the group: Cold the wakes that made a
// replica, Pooled the wakes that thawed one from the warm pool, Warm the
// requests that found a replica ready, Held those that waited for one.
type Starts struct {
	Cold   int    `json:"cold"`
	Pooled int    `json:"pooled"`
	Warm   uint64 `json:"warm"`
	Held   uint64 `json:"held"`
	// Failed are held requests answered 503: the queue was full, or no
	// replica came in time.
	Failed uint64 `json:"failed"`
}

// CountPoint is the group's count at one tick.
type CountPoint struct {
	At      int64 `json:"t"` // Unix milliseconds
	Serving int   `json:"serving"`
	Want    int   `json:"want"`
	Pooled  int   `json:"pooled"`
}

// ColdStart is the timeline of one wake, as its first held request lived
// it: held at the balancer, the wake decided, the replica made (created and
// started) or thawed from the pool, its first passed readiness probe, the
// request forwarded and answered.
type ColdStart struct {
	Group   string    `json:"group"`
	Replica string    `json:"replica,omitempty"`
	From    string    `json:"from"` // "zero" or "pool"
	At      time.Time `json:"at"`   // the first request held
	// Held counts the requests held by this wake; Failed those answered 503.
	Held    int     `json:"held"`
	Failed  int     `json:"failed"`
	Phases  []Phase `json:"phases"`
	TotalMs float64 `json:"totalMs"`
	Status  int     `json:"status"` // the first held request's answer

	decided, began, created, started, thawed, ready, released time.Time
	id                                                        string
}

// Phase is one step of a cold start, StartMs after it began.
type Phase struct {
	Name    string  `json:"name"`
	StartMs float64 `json:"startMs"`
	Ms      float64 `json:"ms"`
}

// autoLocked returns the group's autoscaler state, made or remade to match
// its desire, or nil if it is not autoscaled.
func (c *Controller) autoLocked(g *group) *autoState {
	if g.desired == nil || g.desired.Autoscale == nil {
		if g.auto != nil && g.desired != nil {
			// Autoscaling turned off: the pool's paused replicas are
			// plain replicas again, and must run.
			for id := range g.auto.pool {
				g.unpool = append(g.unpool, id)
			}
		}
		g.auto = nil
		return nil
	}
	want := *g.desired.Autoscale
	if g.auto != nil && g.auto.spec == want {
		return g.auto
	}
	ds := want.Durations()
	scaler := autoscale.New(autoscale.Settings{
		Min: want.Min, Max: want.Max, TargetConcurrency: want.Target(),
		StableWindow: ds.StableWindow, PanicWindow: ds.PanicWindow, IdleAfter: ds.IdleAfter,
	})
	if g.auto != nil { // new settings: the count carries over, within the new bounds
		g.auto.spec, g.auto.scaler = want, scaler
		g.auto.want = min(max(g.auto.want, want.Min), want.Max)
		return g.auto
	}
	serving := 0
	for _, r := range g.observed {
		if r.State == replica.StateRunning {
			serving++
		}
	}
	// A new scaler lets no group go idle before IdleAfter has passed.
	now := time.Now()
	g.auto = &autoState{
		spec: want, scaler: scaler, pool: map[string]bool{}, own: map[string]bool{}, active: now,
		want: min(max(g.desired.Replicas, serving, want.Min), want.Max),
	}
	// Paused replicas found (a restarted controller's pool) are the pool.
	for _, r := range g.observed {
		if r.State == replica.StatePaused && len(g.auto.pool) < want.WarmPool {
			g.auto.pool[r.ID] = true
		}
	}
	return g.auto
}

// poolSize is how many paused replicas the warm pool keeps beside the
// wanted ones: WarmPool, less what would take the group over its max.
func (a *autoState) poolSize() int {
	return max(min(a.spec.WarmPool, a.spec.Max-a.want), 0)
}

// autoscaleLoop samples and decides for every autoscaled group until ctx ends.
func (c *Controller) autoscaleLoop(ctx context.Context) {
	t := time.NewTicker(autoscaleTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c.autoscaleTick(ctx, now)
		}
	}
}

// autoscaleTick is one sample and decision per autoscaled group.
func (c *Controller) autoscaleTick(ctx context.Context, now time.Time) {
	type target struct {
		name, service string
		b             *lb.Balancer
		trigger       bool
	}
	var targets []target
	thaws := map[string][]string{}
	c.mu.Lock()
	for name, g := range c.groups {
		a := c.autoLocked(g)
		if len(g.unpool) > 0 {
			thaws[name], g.unpool = g.unpool, nil
		}
		if a != nil {
			t := target{name: name, service: g.desired.Service, trigger: a.spec.Trigger != ""}
			if g.balancer != nil {
				t.b = g.balancer.b
			}
			targets = append(targets, t)
		}
	}
	c.mu.Unlock()
	for name, ids := range thaws {
		for _, id := range ids {
			c.thaw(ctx, name, id)
		}
	}
	for _, t := range targets {
		var load lb.Load
		if t.b != nil {
			load = t.b.Load()
		}
		var pending, inWork, delivered uint64
		busUp := false
		if t.trigger {
			pending, inWork, delivered, busUp = c.consumerBacklog(t.service)
		}
		c.mu.Lock()
		g := c.groups[t.name]
		a := (*autoState)(nil)
		if g != nil {
			a = c.autoLocked(g)
		}
		if a == nil {
			c.mu.Unlock()
			continue
		}
		from := a.want
		var d autoscale.Decision
		change := false
		if t.trigger {
			if !busUp {
				c.mu.Unlock()
				continue // nothing known of the queue: keep the count
			}
			a.pending = pending
			// Busy if messages wait or are in work now, or if any was
			// delivered since the last reading: a fast consumer leaves the
			// queue empty at most readings while orders still flow.
			if pending+inWork > 0 || delivered != a.delivered {
				a.active = now
			}
			a.delivered = delivered
			d, change = queueDecision(a.spec, from, pending, inWork, a.active, now)
		} else {
			a.observe(load, now)
			var want int
			want, d, change = a.scaler.Decide(now, from)
			d.To = want
		}
		if change {
			a.want = d.To
			a.remember(d)
			c.markDirtyLocked(t.name)
		}
		a.starts.Warm = load.Arrived - min(load.Arrived, a.starts.Held)
		a.starts.Failed = load.Refused
		a.point(c.servingLocked(g), now)
		pool := c.poolWorkLocked(t.name, g, a)
		c.mu.Unlock()
		if change {
			c.publish(hub.AutoscaleScaled, t.name, "", "", "group %s: %d → %d (%s)", t.name, from, d.To, d.Reason)
		}
		if pool != nil {
			pool(ctx)
		}
	}
}

// observe turns the balancer's load since the last tick into a sample:
// the request time carried over the interval is its average concurrency;
// requests still held or in flight count at least as much, so a wait
// longer than the tick is not missed.
func (a *autoState) observe(load lb.Load, now time.Time) {
	if !a.lastAt.IsZero() && load.Arrived >= a.last.Arrived && load.Busy >= a.last.Busy {
		dt := now.Sub(a.lastAt)
		conc := 0.0
		if dt > 0 {
			conc = float64(load.Busy-a.last.Busy) / float64(dt)
		}
		conc = max(conc, float64(load.InFlight)+float64(load.Held))
		a.concurrency = conc
		a.scaler.Observe(autoscale.Sample{At: now, Concurrency: conc, Requests: load.Arrived - a.last.Arrived})
	}
	a.last, a.lastAt = load, now
}

// queueDecision is a triggered group's count from its consumer's backlog,
// the way a queue-length scaler does it: enough replicas for the waiting
// messages at the target each, at least one while any wait or are in work
// or did within IdleAfter, and zero (with Min 0) after that.
func queueDecision(s spec.Autoscale, current int, pending, inWork uint64, active, now time.Time) (autoscale.Decision, bool) {
	idle := s.Durations().IdleAfter
	backlog := float64(pending + inWork)
	want := int(math.Ceil(backlog/s.Target() - 1e-9))
	reason := fmt.Sprintf("%d messages waiting on %s and %d in work, at %g a replica", pending, s.Trigger, inWork, s.Target())
	mode := "stable"
	switch {
	case want == 0 && now.Sub(active) < idle:
		want = max(current, 1)
		if current == 0 {
			want = 0 // asleep and nothing came: stays asleep
		}
		reason = fmt.Sprintf("no message waiting on %s, but one did %s ago (idle after %s)", s.Trigger, now.Sub(active).Round(time.Second), idle)
	case want == 0:
		mode = "idle"
		reason = fmt.Sprintf("no message on %s for %s", s.Trigger, idle)
	case current == 0:
		mode = "wake"
	case want < current:
		want = current // a replica in work keeps its messages; the queue drains first
		reason += ": keeping the replicas until the queue drains"
	}
	bounded := min(max(want, s.Min), s.Max)
	if bounded != want {
		reason += fmt.Sprintf("; bounded to %d (autoscale %d to %d)", bounded, s.Min, s.Max)
		if bounded == current {
			mode = "bounds"
		}
	}
	d := autoscale.Decision{At: now, From: current, To: bounded, Mode: mode, Observed: backlog,
		Reason: fmt.Sprintf("%s: %d → %d", reason, current, bounded)}
	return d, bounded != current
}

// consumerBacklog reads, from the last reading of the bus, the messages
// waiting for the durable consumer named after service, those delivered
// and not yet acknowledged, and the stream sequence last delivered; ok is
// false without a reading.
func (c *Controller) consumerBacklog(service string) (pending, inWork, delivered uint64, ok bool) {
	c.busMu.Lock()
	defer c.busMu.Unlock()
	if !c.busStatus.Up {
		return 0, 0, 0, false
	}
	for _, s := range c.busStatus.Streams {
		for _, k := range s.Consumers {
			if k.Name == service {
				return k.Pending, uint64(max(k.AckPending, 0)), k.Delivered, true
			}
		}
	}
	return 0, 0, 0, false
}

func (a *autoState) remember(d autoscale.Decision) {
	d.WindowS = d.Window.Seconds()
	a.decisions = append(a.decisions, d)
	if len(a.decisions) > keepDecisions {
		a.decisions = slices.Delete(a.decisions, 0, len(a.decisions)-keepDecisions)
	}
}

func (a *autoState) point(serving int, now time.Time) {
	a.history = append(a.history, CountPoint{At: now.UnixMilli(), Serving: serving, Want: a.want, Pooled: len(a.pool)})
	if len(a.history) > keepHistory {
		a.history = slices.Delete(a.history, 0, len(a.history)-keepHistory)
	}
}

// servingLocked counts a group's replicas that serve: running, ready and
// not in the warm pool.
func (c *Controller) servingLocked(g *group) int {
	n := 0
	for _, r := range c.replicasLocked(g) {
		if r.State == replica.StateRunning && (g.auto == nil || !g.auto.pool[r.ID]) && c.probedReady(r.ID) {
			n++
		}
	}
	return n
}

// activation is how the group's balancer holds requests while it wakes:
// only a group autoscaled on its requests holds them.
func (c *Controller) activation(group string, a *spec.Autoscale) *lb.Activation {
	if a == nil || a.Trigger != "" {
		return nil
	}
	return &lb.Activation{
		Wake:        func() { c.wake(group) },
		MaxHeld:     a.QueueSize(),
		HoldTimeout: a.Durations().QueueTimeout,
		OnHeld:      func(h lb.HeldRequest) { c.held(group, h) },
	}
}

// wake answers a balancer that holds a request and has no replica: the
// count goes to at least one, and a replica of the warm pool, if there is
// one, is thawed at once.
func (c *Controller) wake(group string) {
	now := time.Now()
	c.mu.Lock()
	g := c.groups[group]
	var a *autoState
	if g != nil {
		a = c.autoLocked(g)
	}
	if a == nil {
		c.mu.Unlock()
		return
	}
	a.scaler.Wake(now)
	a.active = now
	from := a.want
	if a.want < 1 {
		a.want = max(1, a.spec.Min)
		a.remember(autoscale.Decision{At: now, From: from, To: a.want, Mode: "wake",
			Reason: fmt.Sprintf("a request arrived and no replica was ready: waking %d", a.want)})
	}
	// One wake per wait: a cold start is counted when its timeline begins,
	// even if a tick already scaled out for the held request (its sample
	// counts held requests), so want is no longer 0 here.
	fresh := a.waking == nil
	if fresh {
		a.waking = &ColdStart{Group: group, At: now, decided: now, From: "zero"}
	}
	id := c.poolPickLocked(g, a)
	if id != "" {
		a.waking.From, a.waking.id = "pool", id
		a.starts.Pooled++
	} else {
		if fresh {
			a.starts.Cold++
		}
		c.markDirtyLocked(group)
	}
	ctx := c.ctx
	c.mu.Unlock()
	how := "making a replica"
	if id != "" {
		how = "thawing a replica of the warm pool"
	}
	c.publish(hub.AutoscaleWake, group, "", id, "group %s woke: a request is held at its balancer; %s", group, how)
	if id != "" && ctx != nil {
		c.thaw(ctx, group, id)
	}
}

// poolPickLocked takes a paused replica out of the warm pool, lowest
// number first, and returns its ID, or "" if the pool is empty.
func (c *Controller) poolPickLocked(g *group, a *autoState) string {
	reps := c.replicasLocked(g)
	sort.Slice(reps, func(i, j int) bool { return reps[i].Index < reps[j].Index })
	for _, r := range reps {
		if a.pool[r.ID] && r.State == replica.StatePaused {
			delete(a.pool, r.ID)
			return r.ID
		}
	}
	return ""
}

// thaw unpauses a replica taken out of the warm pool and probes it at
// once, at the waking interval.
func (c *Controller) thaw(ctx context.Context, group, id string) {
	f, ok := c.opt.Runtime.(Faulter)
	if !ok {
		c.markDirty(group)
		return
	}
	// Noted as running before the engine is asked, so that a reconcile
	// listing meanwhile does not stop the probe this starts.
	c.mu.Lock()
	g := c.groups[group]
	if g == nil || g.desired == nil {
		c.mu.Unlock()
		return
	}
	n := c.noteLocked(id)
	n.pauseKnown, n.paused = true, false
	if g.auto != nil {
		g.auto.own[id] = true
	}
	var target *health.Target
	for _, r := range g.observed {
		if r.ID == id && r.Address != "" {
			ts := c.probeTargetsLocked(group, Plan{Probes: []ProbeTarget{{ID: r.ID, Name: r.Name, Addr: r.Address}}, Probe: g.desired.Probe, Liveness: g.desired.Liveness})
			target = &ts[0]
		}
	}
	c.mu.Unlock()

	err := f.Unpause(ctx, id)
	now := time.Now()
	c.mu.Lock()
	if err != nil {
		if n := c.notes[id]; n != nil {
			n.pauseKnown = false
		}
		if g.auto != nil {
			delete(g.auto.own, id)
		}
		c.mu.Unlock()
		if !errors.Is(err, replica.ErrNotFound) {
			c.log.Warn("thaw pooled replica", "group", group, "id", id, "err", err)
		}
		c.markDirty(group)
		return
	}
	name := replicaName(g, id)
	if a := g.auto; a != nil && a.waking != nil && a.waking.id == id {
		a.waking.thawed, a.waking.Replica = now, name
	}
	c.mu.Unlock()
	if target != nil {
		// Afresh: a probe a reconcile started while it was still paused
		// waits out its timeout.
		c.prober.Forget(id)
		c.prober.Add(ctx, *target)
	}
	c.publish(hub.AutoscalePool, group, name, id, "%s left the warm pool of group %s: unpaused to serve", name, group)
}

// replicaName is the name of the replica id in g's last observation.
func replicaName(g *group, id string) string {
	if g != nil {
		for _, r := range g.observed {
			if r.ID == id {
				return r.Name
			}
		}
	}
	return ""
}

// poolWorkLocked says what the warm pool needs now: a replica thawed when
// fewer serve than the autoscaler wants, or a ready replica paused into the
// pool when more serve than wanted and the pool is short. The returned
// work runs without the lock; nil when there is none.
func (c *Controller) poolWorkLocked(name string, g *group, a *autoState) func(context.Context) {
	// Forget pool members that are gone.
	live := map[string]bool{}
	for _, r := range g.observed {
		live[r.ID] = true
	}
	for id := range a.pool {
		if !live[id] {
			delete(a.pool, id)
		}
	}
	serving := c.servingLocked(g)
	if serving < a.want {
		// Every replica wanted that the pool holds comes out at once.
		var ids []string
		for ; serving < a.want; serving++ {
			id := c.poolPickLocked(g, a)
			if id == "" {
				break
			}
			ids = append(ids, id)
		}
		if len(ids) == 0 {
			return nil
		}
		return func(ctx context.Context) {
			var wg sync.WaitGroup
			for _, id := range ids {
				wg.Go(func() { c.thaw(ctx, name, id) })
			}
			wg.Wait()
		}
	}
	ids := c.poolCandidatesLocked(g, a, serving)
	if len(ids) == 0 {
		return nil
	}
	for _, id := range ids {
		a.pool[id] = true
	}
	return func(ctx context.Context) {
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Go(func() { c.freeze(ctx, name, id) })
		}
		wg.Wait()
	}
}

// poolCandidatesLocked are the serving replicas to pause into the warm
// pool, highest numbers first: as many as the pool is short, while more
// replicas serve than are wanted.
func (c *Controller) poolCandidatesLocked(g *group, a *autoState, serving int) []string {
	n := min(a.poolSize()-len(a.pool), serving-a.want)
	if n <= 0 {
		return nil
	}
	reps := c.replicasLocked(g)
	sort.Slice(reps, func(i, j int) bool { return reps[i].Index > reps[j].Index })
	var ids []string
	for _, r := range reps {
		if len(ids) == n {
			break
		}
		if r.State == replica.StateRunning && !a.pool[r.ID] && c.probedReady(r.ID) && (c.notes[r.ID] == nil || !c.notes[r.ID].leaving) {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// freeze drains a replica out of rotation and pauses it into the warm pool.
func (c *Controller) freeze(ctx context.Context, group, id string) {
	c.syncUpstreams(group) // out of rotation first: the pool serves no one
	c.drain(ctx, group, id)
	c.mu.Lock()
	if n := c.notes[id]; n != nil {
		n.leaving = false
	}
	c.mu.Unlock()
	f, ok := c.opt.Runtime.(Faulter)
	var err error
	if ok {
		c.mu.Lock()
		if g := c.groups[group]; g != nil && g.auto != nil {
			g.auto.own[id] = true
		}
		c.mu.Unlock()
		err = f.Pause(ctx, id)
	}
	c.forgetProbe(id)
	if !ok || err != nil {
		c.mu.Lock()
		if g := c.groups[group]; g != nil && g.auto != nil {
			delete(g.auto.pool, id)
		}
		c.mu.Unlock()
		if err != nil {
			c.log.Warn("pause into the warm pool", "group", group, "id", id, "err", err)
		}
		c.syncUpstreams(group)
		return
	}
	c.mu.Lock()
	n := c.noteLocked(id)
	n.pauseKnown, n.paused = true, true
	name := replicaName(c.groups[group], id)
	c.mu.Unlock()
	c.publish(hub.AutoscalePool, group, name, id, "%s joined the warm pool of group %s: paused, out of rotation, its memory kept", name, group)
}

// ownPause reports, once, whether a pause or unpause event of a replica
// was the warm pool's doing.
func (c *Controller) ownPause(group, id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[group]
	if g == nil || g.auto == nil || !g.auto.own[id] {
		return false
	}
	delete(g.auto.own, id)
	return true
}

// autoReady follows a replica's passed readiness probe: it marks the cold
// start under way, and a replica made to refill the warm pool goes into it
// before it ever enters rotation.
func (c *Controller) autoReady(group, id string) {
	now := time.Now()
	c.mu.Lock()
	g := c.groups[group]
	if g == nil || g.auto == nil {
		c.mu.Unlock()
		return
	}
	a := g.auto
	if cs := a.waking; cs != nil && cs.ready.IsZero() && (cs.id == id || cs.id == "") {
		cs.id, cs.ready = id, now
		cs.Replica = replicaName(g, id)
	}
	var freeze bool
	if a.waking == nil || a.waking.id != id {
		// Serving replicas other than this one: does the pool need it?
		serving := 0
		for _, r := range c.replicasLocked(g) {
			if r.ID != id && r.State == replica.StateRunning && !a.pool[r.ID] && c.probedReady(r.ID) {
				serving++
			}
		}
		if len(a.pool) < a.poolSize() && serving >= a.want {
			a.pool[id] = true
			freeze = true
		}
	}
	ctx := c.ctx
	c.mu.Unlock()
	if freeze && ctx != nil {
		go c.freeze(ctx, group, id)
	}
}

// autoCreated marks the replica a wake made, for its cold start.
func (c *Controller) autoCreated(group, id string, began, created, started time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[group]
	if g == nil || g.auto == nil || g.auto.waking == nil {
		return
	}
	if cs := g.auto.waking; cs.id == "" && cs.began.IsZero() {
		cs.id, cs.began, cs.created, cs.started = id, began, created, started
	}
}

// held books a request the balancer held once it was answered: the first
// one answered ends the wake's cold start.
func (c *Controller) held(group string, h lb.HeldRequest) {
	c.mu.Lock()
	g := c.groups[group]
	if g == nil || g.auto == nil {
		c.mu.Unlock()
		return
	}
	a := g.auto
	a.starts.Held++
	cs := a.waking
	if cs == nil {
		if n := len(a.cold); n > 0 && !h.Arrived.After(a.cold[n-1].released) {
			a.cold[n-1].Held++ // held by the wake just ended
			if h.Released.IsZero() {
				a.cold[n-1].Failed++
			}
		}
		c.mu.Unlock()
		return
	}
	cs.Held++
	if h.Arrived.Before(cs.At) {
		cs.At = h.Arrived
	}
	if h.Released.IsZero() {
		cs.Failed++
		c.mu.Unlock()
		return
	}
	cs.released = h.Released
	cs.Status = h.Status
	if cs.From == "pool" && cs.thawed.IsZero() {
		// The replica answered before the engine's unpause call returned:
		// it was unpaused by its first passed probe at the latest.
		cs.thawed = cs.ready
	}
	cs.finish(h.Answered)
	a.cold = append(a.cold, *cs)
	if len(a.cold) > keepColdStarts {
		a.cold = slices.Delete(a.cold, 0, len(a.cold)-keepColdStarts)
	}
	a.waking = nil
	done := *cs
	c.mu.Unlock()
	c.publish(hub.AutoscaleCold, group, done.Replica, done.id, "group %s answered its first held request in %.0f ms (%s)", group, done.TotalMs, done.describe())
}

// finish lays out the phases of a cold start answered at answered.
func (cs *ColdStart) finish(answered time.Time) {
	ms := func(t time.Time) float64 { return float64(t.Sub(cs.At).Microseconds()) / 1000 }
	steps := []struct {
		name string
		at   time.Time
	}{{"wake decided", cs.decided}}
	if cs.From == "pool" {
		steps = append(steps, struct {
			name string
			at   time.Time
		}{"unpaused", cs.thawed})
	} else {
		steps = append(steps, []struct {
			name string
			at   time.Time
		}{{"create called", cs.began}, {"created", cs.created}, {"started", cs.started}}...)
	}
	steps = append(steps, []struct {
		name string
		at   time.Time
	}{{"first ready probe", cs.ready}, {"forwarded", cs.released}, {"answered", answered}}...)
	cs.Phases = cs.Phases[:0]
	prev := cs.At
	for _, s := range steps {
		if s.at.IsZero() {
			continue // not seen: a replica that was already on its way
		}
		// Two steps seen by different goroutines may be noted a few
		// microseconds out of order: the later one then takes no time.
		s.at = later(s.at, prev)
		cs.Phases = append(cs.Phases, Phase{Name: s.name, StartMs: ms(prev), Ms: float64(s.at.Sub(prev).Microseconds()) / 1000})
		prev = s.at
	}
	cs.TotalMs = ms(answered)
}

func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

// describe is a cold start's phases in one line.
func (cs ColdStart) describe() string {
	out := "from " + cs.From
	for _, p := range cs.Phases {
		out += fmt.Sprintf(", %s +%.0f ms", p.Name, p.Ms)
	}
	return out
}

// autoscaleStatusLocked is the group's autoscaler for the API.
func (c *Controller) autoscaleStatusLocked(g *group) *AutoscaleStatus {
	a := c.autoLocked(g)
	if a == nil {
		return nil
	}
	ds := a.spec.Durations()
	st := &AutoscaleStatus{
		Settings: a.spec, Want: a.want, Panicking: a.scaler.Panicking(time.Now()),
		Concurrency: a.concurrency, Pending: a.pending, Pool: []string{},
		Decisions: slices.Clone(a.decisions), ColdStarts: slices.Clone(a.cold),
		Starts: a.starts, History: slices.Clone(a.history),
		Windows: WindowSeconds{Stable: ds.StableWindow.Seconds(), Panic: ds.PanicWindow.Seconds(), IdleAfter: ds.IdleAfter.Seconds()},
	}
	if g.balancer != nil {
		st.Held = g.balancer.b.Load().Held
	}
	c.stats.mu.Lock() // after c.mu, as everywhere
	for _, r := range g.observed {
		if a.pool[r.ID] {
			st.Pool = append(st.Pool, r.Name)
			st.PoolMemBytes += c.stats.usage[r.ID].MemBytes
		}
	}
	c.stats.mu.Unlock()
	sort.Strings(st.Pool)
	if st.Decisions == nil {
		st.Decisions = []autoscale.Decision{}
	}
	if st.ColdStarts == nil {
		st.ColdStarts = []ColdStart{}
	}
	if st.History == nil {
		st.History = []CountPoint{}
	}
	return st
}

// ErrAutoscaled refuses a manual scale of an autoscaled group.
var ErrAutoscaled = fmt.Errorf("%w: the group is autoscaled", ErrConflict)

package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flotilla/flotilla/orchestrator/health"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/lb"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// Runtime runs replicas. *docker.Driver is the real one.
type Runtime interface {
	// EnsureNetwork creates the project network if it does not exist.
	EnsureNetwork(ctx context.Context) error
	// List returns every replica this instance owns, in any state.
	List(ctx context.Context) ([]replica.Replica, error)
	// Inspect returns one owned replica with its start and finish times.
	Inspect(ctx context.Context, id string) (replica.Replica, error)
	// Create makes a replica's container; replica.ErrConflict if the name is taken.
	Create(ctx context.Context, rs replica.Spec) (replica.Replica, error)
	// Start starts a created replica.
	Start(ctx context.Context, id string) error
	// Stop asks a replica to stop and kills it after timeout.
	Stop(ctx context.Context, id string, timeout time.Duration) error
	// Remove deletes a replica, running or not; replica.ErrNotFound if gone.
	Remove(ctx context.Context, id string) error
	// Events streams lifecycle events of owned replicas until ctx ends; an
	// event with Action "resync" means events may have been missed.
	Events(ctx context.Context) <-chan replica.Event
	// Down removes every object this instance owns.
	Down(ctx context.Context) error
}

// Store persists the desired groups.
type Store interface {
	// Groups returns every stored group.
	Groups() ([]spec.Group, error)
	// PutGroup stores a group, replacing one of the same name.
	PutGroup(g spec.Group) error
	// DeleteGroup removes a group; a missing one is not an error.
	DeleteGroup(name string) error
	// SetScenario records the scenario last applied ("" for none).
	SetScenario(name string) error
	// Scenario returns the scenario last applied, or "".
	Scenario() (string, error)
}

// Options configure a Controller.
type Options struct {
	Runtime Runtime
	Store   Store
	// Images maps an image name of the catalogue ("shop") to the reference
	// replicas are created from.
	Images      map[string]string
	MaxReplicas int
	// Parallelism bounds the creates and removes applied at once.
	Parallelism int
	// StopTimeout is how long a leaving replica gets to finish its requests.
	StopTimeout time.Duration
	// Resync is the period of the full re-observe of every group.
	Resync time.Duration
	// UnhealthyGrace is how long a replica may fail its probes before it is replaced.
	UnhealthyGrace time.Duration
	Probe          health.Config
	// DataPath is how balancers reach replicas: DataPathAuto (default),
	// DataPathNetwork or DataPathPublished.
	DataPath string
	// Metrics, if set, gets the controller's and the balancers' metrics.
	Metrics prometheus.Registerer
	// Events, if set, receives what happens, for people to watch.
	Events Publisher
	Log    *slog.Logger
}

// Controller owns the desired state and converges the engine towards it.
type Controller struct {
	opt    Options
	log    *slog.Logger
	prober *health.Prober

	poke chan struct{}

	mu       sync.Mutex
	desired  map[string]spec.Group
	observed map[string][]replica.Replica // by group, from the last list
	dirty    map[string]bool
	running  map[string]bool // groups with a reconcile in flight
	again    map[string]bool // dirtied while in flight
	retryAt  map[string]time.Time
	errs     map[string]error
	failures map[string]int
	crashes  map[string]map[int]*crashState
	held     map[string][]Action
	// died holds replicas the engine reported dead, with their exit code.
	// The engine's container list can lag its die event by seconds, so the
	// event is trusted for this one fact until the list agrees.
	died map[string]int
	// leaving holds replicas being drained before they stop; they get no
	// traffic. paused holds the last pause (true) or unpause (false) event
	// of a replica until the engine's list agrees, for the same reason as died.
	leaving       map[string]bool
	paused        map[string]bool
	balancers     map[string]*groupBalancer
	stats         statsState
	metrics       *metrics
	scenario      string
	faults        faultState
	direct        bool // balancers dial the project network
	dataPathKnown bool
	ctx           context.Context // the Run context, for probes; nil before Run
}

type crashState struct {
	id       string // the dead container already counted
	count    int    // consecutive quick deaths
	restarts int
	until    time.Time
	lastExit int
}

// crashWindow: a replica that dies sooner than this after starting counts
// towards a crash loop.
const crashWindow = 10 * time.Second

// New returns a controller; call Run to start reconciling.
func New(opt Options) *Controller {
	if opt.MaxReplicas <= 0 {
		opt.MaxReplicas = spec.DefaultMaxReplicas
	}
	if opt.Parallelism <= 0 {
		opt.Parallelism = 32
	}
	if opt.StopTimeout <= 0 {
		opt.StopTimeout = 5 * time.Second
	}
	if opt.Resync <= 0 {
		opt.Resync = 10 * time.Second
	}
	if opt.UnhealthyGrace <= 0 {
		opt.UnhealthyGrace = 10 * time.Second
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Events == nil {
		opt.Events = discard{}
	}
	c := &Controller{
		opt:       opt,
		log:       opt.Log,
		poke:      make(chan struct{}, 1),
		desired:   map[string]spec.Group{},
		observed:  map[string][]replica.Replica{},
		dirty:     map[string]bool{},
		running:   map[string]bool{},
		again:     map[string]bool{},
		retryAt:   map[string]time.Time{},
		errs:      map[string]error{},
		failures:  map[string]int{},
		crashes:   map[string]map[int]*crashState{},
		held:      map[string][]Action{},
		died:      map[string]int{},
		leaving:   map[string]bool{},
		paused:    map[string]bool{},
		balancers: map[string]*groupBalancer{},
		metrics:   newMetrics(),
		faults:    newFaultState(),
		stats: statsState{
			byName:  map[string]ReplicaStats{},
			traffic: map[string]trafficSample{},
			usage:   map[string]replica.Usage{},
			cpu:     map[string]float64{},
		},
	}
	if opt.Metrics != nil {
		opt.Metrics.MustRegister(c.Collector(), balancersCollector{c})
	}
	c.prober = health.New(opt.Probe, func(ch health.Change) {
		c.log.Info("replica health", "replica", ch.Name, "from", ch.Prev, "to", ch.Verdict)
		switch ch.Verdict {
		case health.Ready:
			c.publish(hub.ReplicaReady, ch.Group, ch.Name, ch.ID, "%s is ready", ch.Name)
			go c.reapplyFaults(context.Background(), ch.Group, ch.ID)
		case health.Unhealthy:
			c.publish(hub.ReplicaUnhealthy, ch.Group, ch.Name, ch.ID, "%s failed its readiness probe", ch.Name)
		}
		// Rotation follows readiness at once; the reconcile follows.
		c.syncUpstreams(ch.Group)
		c.markDirty(ch.Group)
	})
	return c
}

// Load reads the desired state from the store. Run calls it; tests and the
// API may call it earlier to serve before the first reconcile.
func (c *Controller) Load() error {
	groups, err := c.opt.Store.Groups()
	if err != nil {
		return fmt.Errorf("load desired state: %w", err)
	}
	scenario, err := c.opt.Store.Scenario()
	if err != nil {
		return fmt.Errorf("load desired state: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scenario = scenario
	for _, g := range groups {
		// Groups stored by an older controller lack newer fields.
		c.desired[g.Name] = g.WithDefaults()
	}
	return nil
}

// Run reconciles until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
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
	for name, at := range c.retryAt {
		if !now.Before(at) {
			c.dirty[name] = true
			delete(c.retryAt, name)
		} else if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	for name := range c.dirty {
		delete(c.dirty, name)
		if c.running[name] {
			c.again[name] = true
			continue
		}
		c.running[name] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.reconcile(ctx, name)
		}()
	}
	return next
}

// resyncAll marks every desired group dirty, and every group that has
// containers but no desire (orphans of a deleted group).
func (c *Controller) resyncAll(ctx context.Context) {
	reps, err := c.opt.Runtime.List(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	for name := range c.desired {
		c.dirty[name] = true
	}
	if err != nil {
		c.log.Warn("resync: list replicas", "err", err)
	}
	for _, r := range reps {
		c.dirty[r.Group] = true
	}
	c.pokeLocked()
}

func (c *Controller) markDirty(group string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirty[group] = true
	c.pokeLocked()
}

func (c *Controller) pokeLocked() {
	select {
	case c.poke <- struct{}{}:
	default:
	}
}

// watch turns engine events into dirty marks. Events are hints: the
// reconcile re-observes rather than trusting them.
func (c *Controller) watch(ctx context.Context) {
	for ev := range c.opt.Runtime.Events(ctx) {
		switch ev.Action {
		case "resync":
			c.resyncAll(ctx)
		case "die", "oom", "kill", "destroy", "pause", "unpause", "start", "stop":
			if ev.Action == "die" || ev.Action == "destroy" {
				c.prober.Forget(ev.ID)
			}
			c.mu.Lock()
			switch ev.Action {
			case "die":
				c.died[ev.ID] = ev.ExitCode
			case "pause":
				c.paused[ev.ID] = true
			case "unpause":
				c.paused[ev.ID] = false
			case "destroy":
				delete(c.paused, ev.ID)
			}
			c.mu.Unlock()
			c.eventFromEngine(ev)
			if ev.Action == "die" || ev.Action == "pause" {
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

func (c *Controller) reconcile(ctx context.Context, name string) {
	began := time.Now()
	err := c.reconcileOnce(ctx, name)
	c.metrics.observeReconcile(time.Since(began), err)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.running, name)
	if err != nil && ctx.Err() == nil {
		c.failures[name]++
		backoff := min(time.Duration(1<<min(c.failures[name]-1, 5))*time.Second, 30*time.Second)
		c.errs[name] = err
		c.retryAt[name] = time.Now().Add(backoff)
		c.log.Warn("reconcile failed", "group", name, "err", err, "retry", backoff)
	} else {
		delete(c.errs, name)
		delete(c.failures, name)
	}
	if c.again[name] {
		delete(c.again, name)
		c.dirty[name] = true
	}
	c.pokeLocked()
}

func (c *Controller) listGroup(ctx context.Context, name string) ([]replica.Replica, error) {
	all, err := c.opt.Runtime.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list replicas of %q: %w", name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	present := make(map[string]bool, len(all))
	var out []replica.Replica
	for _, r := range all {
		present[r.ID] = true
		r = c.withEventsLocked(r, true)
		if r.Group == name {
			out = append(out, r)
		}
	}
	// Forget what was noted of containers that are gone.
	for _, m := range []map[string]bool{c.leaving, c.paused} {
		for id := range m {
			if !present[id] {
				delete(m, id)
			}
		}
	}
	for id := range c.died {
		if !present[id] {
			delete(c.died, id)
		}
	}
	return out, nil
}

// withEventsLocked corrects a listed replica's state with the die, pause
// and unpause events that arrived ahead of the engine's list. With forget,
// an event the list now agrees with is dropped.
func (c *Controller) withEventsLocked(r replica.Replica, forget bool) replica.Replica {
	if code, ok := c.died[r.ID]; ok {
		if r.State == replica.StateRunning {
			r.State, r.ExitCode = replica.StateExited, code
		} else if forget {
			delete(c.died, r.ID) // the list caught up
		}
	}
	if want, ok := c.paused[r.ID]; ok {
		switch {
		case (r.State == replica.StatePaused) == want:
			if forget {
				delete(c.paused, r.ID)
			}
		case want && r.State == replica.StateRunning:
			r.State = replica.StatePaused
		case !want && r.State == replica.StatePaused:
			r.State = replica.StateRunning
		}
	}
	return r
}

func (c *Controller) reconcileOnce(ctx context.Context, name string) error {
	actual, err := c.listGroup(ctx, name)
	if err != nil {
		return err
	}
	c.observe(ctx, name, actual)

	c.mu.Lock()
	g, ok := c.desired[name]
	c.mu.Unlock()
	in := PlanInput{Group: name, Actual: actual, Now: time.Now()}
	var image string
	if ok {
		svc, _ := spec.LookupService(g.Service)
		image = c.opt.Images[svc.Image]
		if image == "" {
			return fmt.Errorf("no image built for service %q", g.Service)
		}
		in.Desired = &g
		in.Hash = g.TemplateHash(image)
		if err := c.ensureBalancer(ctx, g); err != nil {
			return err
		}
	}
	in.HoldUntil, in.Unhealthy = c.crashHolds(ctx, name, actual)

	plan := MakePlan(in)
	c.mu.Lock()
	wasHeld := len(c.held[name]) > 0
	c.held[name] = plan.Held
	if !plan.RetryAt.IsZero() {
		c.retryAt[name] = plan.RetryAt
	}
	c.mu.Unlock()
	if !wasHeld && len(plan.Held) > 0 {
		c.publish(hub.GroupCrashLoop, name, "", "", "group %s is in a crash loop: %s", name, plan.Held[0])
	}
	if plan.Empty() {
		if !ok && len(actual) == 0 {
			c.closeBalancer(name)
			c.forget(name)
		}
		return nil
	}
	c.log.Info("reconcile", "plan", plan.String())
	applyErr := c.apply(ctx, plan, in.Desired, image, in.Hash)

	// Observe again so status reflects what the plan did, even if part failed.
	if after, err := c.listGroup(ctx, name); err == nil {
		c.observe(ctx, name, after)
	}
	return applyErr
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

// forget drops bookkeeping of a group that is gone from desire and engine.
func (c *Controller) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.observed, name)
	delete(c.crashes, name)
	delete(c.held, name)
}

// observe records a group's replicas and points the prober at the running ones.
func (c *Controller) observe(ctx context.Context, name string, actual []replica.Replica) {
	c.mu.Lock()
	c.observed[name] = actual
	pctx := c.ctx
	c.mu.Unlock()
	if pctx == nil {
		pctx = ctx
	}
	c.mu.Lock()
	pc := probeConfig(c.desired[name].Probe)
	c.mu.Unlock()
	var targets []health.Target
	for _, r := range actual {
		if r.State == replica.StateRunning && r.Address != "" {
			targets = append(targets, health.Target{ID: r.ID, Group: name, Name: r.Name, URL: "http://" + r.Address + "/readyz", Config: pc})
		}
	}
	c.prober.Sync(pctx, name, targets)
	c.detectDataPath(actual)
	c.syncUpstreams(name)
}

// crashHolds tracks replicas that die soon after starting and returns, per
// replica number, when its replacement may go ahead, plus the replicas that
// stayed unhealthy past the grace period.
func (c *Controller) crashHolds(ctx context.Context, name string, actual []replica.Replica) (map[int]time.Time, map[string]bool) {
	hold := map[int]time.Time{}
	unhealthy := map[string]bool{}
	for _, r := range actual {
		switch r.State {
		case replica.StateExited, replica.StateDead:
			c.countCrash(ctx, name, r)
		case replica.StateRunning:
			if st, ok := c.prober.Status(r.ID); ok && st.Verdict == health.Unhealthy && time.Since(st.Since) > c.opt.UnhealthyGrace {
				unhealthy[r.ID] = true
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for idx, cs := range c.crashes[name] {
		if !cs.until.IsZero() {
			hold[idx] = cs.until
		}
	}
	return hold, unhealthy
}

func (c *Controller) countCrash(ctx context.Context, name string, r replica.Replica) {
	c.mu.Lock()
	cs := c.crashes[name][r.Index]
	seen := cs != nil && cs.id == r.ID
	c.mu.Unlock()
	if seen {
		return
	}
	quick := false
	if info, err := c.opt.Runtime.Inspect(ctx, r.ID); err == nil {
		r = info
		quick = !info.StartedAt.IsZero() && info.FinishedAt.Sub(info.StartedAt) < crashWindow
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crashes[name] == nil {
		c.crashes[name] = map[int]*crashState{}
	}
	cs = c.crashes[name][r.Index]
	if cs == nil {
		cs = &crashState{}
		c.crashes[name][r.Index] = cs
	}
	cs.id = r.ID
	cs.lastExit = r.ExitCode
	if quick {
		cs.count++
	} else {
		cs.count = 0
	}
	cs.until = time.Time{}
	if cs.count >= 2 {
		// The first quick death is replaced at once; from the second on,
		// wait 1s, 2s, 4s ... up to a minute.
		cs.until = time.Now().Add(min(time.Second<<min(cs.count-2, 6), time.Minute))
	}
}

// apply runs a plan: removes and replacements first, then creates, each
// bounded by Parallelism.
func (c *Controller) apply(ctx context.Context, plan Plan, g *spec.Group, image, hash string) error {
	sem := make(chan struct{}, c.opt.Parallelism)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	do := func(a Action) {
		defer wg.Done()
		sem <- struct{}{}
		defer func() { <-sem }()
		if err := c.applyOne(ctx, plan.Group, a, g, image, hash); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	}
	for _, a := range plan.Actions {
		wg.Add(1)
		go do(a)
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Controller) applyOne(ctx context.Context, group string, a Action, g *spec.Group, image, hash string) error {
	name := replica.Name(group, a.Index)
	if a.Kind == Remove || a.Kind == Replace {
		c.drain(ctx, group, a.ID)
		c.prober.Forget(a.ID)
		timeout := c.opt.StopTimeout
		if a.Kind == Replace {
			timeout = time.Second // it is broken or outdated; its replacement is waiting
		}
		if err := c.opt.Runtime.Stop(ctx, a.ID, timeout); err != nil && !errors.Is(err, replica.ErrNotFound) {
			c.log.Warn("stop replica", "replica", name, "err", err)
		}
		if err := c.opt.Runtime.Remove(ctx, a.ID); err != nil && !errors.Is(err, replica.ErrNotFound) {
			return fmt.Errorf("remove %s: %w", name, err)
		}
		c.publish(hub.ReplicaRemoved, group, name, a.ID, "%s removed: %s", name, a.Reason)
		if a.Kind == Replace {
			c.mu.Lock()
			if cs := c.crashes[group][a.Index]; cs != nil && a.Reason != "outdated template" {
				cs.restarts++
			}
			c.mu.Unlock()
		}
	}
	if a.Kind == Create || a.Kind == Replace {
		rs := c.replicaSpec(*g, a.Index, image, hash)
		r, err := c.opt.Runtime.Create(ctx, rs)
		if err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		c.publish(hub.ReplicaCreated, group, name, r.ID, "%s created: %s", name, a.Reason)
		if err := c.opt.Runtime.Start(ctx, r.ID); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
	}
	return nil
}

// drain takes a leaving replica out of its balancer's rotation and waits,
// up to StopTimeout, for its requests in flight to finish.
func (c *Controller) drain(ctx context.Context, group, id string) {
	c.mu.Lock()
	c.leaving[id] = true
	c.mu.Unlock()
	b := c.balancer(group)
	if b == nil {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, c.opt.StopTimeout)
	defer cancel()
	if err := b.Drain(dctx, id); err != nil && !errors.Is(err, lb.ErrUnknownUpstream) {
		c.log.Warn("drain", "group", group, "err", err)
	}
}

func (c *Controller) closeAllBalancers() {
	c.mu.Lock()
	var names []string
	for name := range c.balancers {
		names = append(names, name)
	}
	c.mu.Unlock()
	for _, name := range names {
		c.closeBalancer(name)
	}
}

func (c *Controller) replicaSpec(g spec.Group, index int, image, hash string) replica.Spec {
	svc, _ := spec.LookupService(g.Service)
	return replica.Spec{
		Group:        g.Name,
		Index:        index,
		Service:      g.Service,
		Image:        image,
		Port:         svc.Port,
		Env:          []string{"FLOTILLA_ROLE=" + svc.Role, "FLOTILLA_GROUP=" + g.Name, "ADMIN_PORT=" + strconv.Itoa(AdminPort)},
		Aliases:      []string{g.Name},
		MemoryBytes:  g.Resources.MemoryMiB << 20,
		NanoCPUs:     g.Resources.MilliCPU * 1_000_000,
		PidsLimit:    g.Resources.Pids,
		TemplateHash: hash,
	}
}

// Services returns the catalogue of runnable services.
func (c *Controller) Services() []spec.Service { return spec.Services() }

// PutGroup creates or updates a group. Unset resources get defaults.
func (c *Controller) PutGroup(ctx context.Context, g spec.Group) (GroupStatus, bool, error) {
	g = g.WithDefaults()
	if err := g.Validate(c.opt.MaxReplicas); err != nil {
		return GroupStatus{}, false, err
	}
	c.mu.Lock()
	_, existed := c.desired[g.Name]
	c.mu.Unlock()
	if err := c.opt.Store.PutGroup(g); err != nil {
		return GroupStatus{}, false, fmt.Errorf("store group %q: %w", g.Name, err)
	}
	c.mu.Lock()
	old := c.desired[g.Name]
	c.desired[g.Name] = g
	c.dirty[g.Name] = true
	c.pokeLocked()
	gb := c.balancers[g.Name]
	c.mu.Unlock()
	// A policy switch takes effect at once; the reconcile does the rest.
	if gb != nil && g.Balancer.Policy != spec.PolicyNone && gb.b.Policy() != g.Balancer.Policy {
		if err := gb.b.SetPolicy(g.Balancer.Policy); err != nil {
			c.log.Warn("switch balancer policy", "group", g.Name, "err", err)
		}
	}
	switch {
	case !existed:
		c.publish(hub.GroupCreated, g.Name, "", "", "group %s created: %d × %s, balancer %s", g.Name, g.Replicas, g.Service, g.Balancer.Policy)
	case old.Replicas != g.Replicas && old.Service == g.Service && old.Resources == g.Resources && old.Balancer == g.Balancer:
		c.publish(hub.GroupScaled, g.Name, "", "", "group %s scaled from %d to %d", g.Name, old.Replicas, g.Replicas)
	case old.Balancer.Policy != g.Balancer.Policy:
		c.publish(hub.BalancerPolicy, g.Name, "", "", "group %s balancer policy: %s → %s", g.Name, old.Balancer.Policy, g.Balancer.Policy)
	case old != g:
		c.publish(hub.GroupUpdated, g.Name, "", "", "group %s updated", g.Name)
	}
	st, _ := c.Group(g.Name)
	return st, !existed, nil
}

// Scale changes a group's desired replica count.
func (c *Controller) Scale(ctx context.Context, name string, replicas int) (GroupStatus, error) {
	c.mu.Lock()
	g, ok := c.desired[name]
	c.mu.Unlock()
	if !ok {
		return GroupStatus{}, fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	g.Replicas = replicas
	st, _, err := c.PutGroup(ctx, g)
	return st, err
}

// DeleteGroup removes a group from desired state; its replicas are drained
// and removed by the reconcile.
func (c *Controller) DeleteGroup(ctx context.Context, name string) error {
	c.mu.Lock()
	_, ok := c.desired[name]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	if err := c.opt.Store.DeleteGroup(name); err != nil {
		return fmt.Errorf("delete group %q: %w", name, err)
	}
	c.mu.Lock()
	delete(c.desired, name)
	c.dirty[name] = true
	c.pokeLocked()
	c.mu.Unlock()
	c.publish(hub.GroupDeleted, name, "", "", "group %s deleted; its replicas drain and stop", name)
	return nil
}

// Down deletes every group and removes every object this instance owns.
func (c *Controller) Down(ctx context.Context) error {
	c.mu.Lock()
	names := make([]string, 0, len(c.desired))
	for name := range c.desired {
		names = append(names, name)
	}
	c.mu.Unlock()
	for _, name := range names {
		if err := c.opt.Store.DeleteGroup(name); err != nil {
			return fmt.Errorf("delete group %q: %w", name, err)
		}
		c.mu.Lock()
		delete(c.desired, name)
		c.mu.Unlock()
	}
	// A reconcile already applying a plan could create a replica after the
	// engine-wide removal below has listed; let those finish first. With
	// nothing desired, any later reconcile only removes.
	c.waitIdle(ctx, 30*time.Second)
	// The network goes too; the next Create makes it again.
	if err := c.opt.Runtime.Down(ctx); err != nil {
		return err
	}
	c.resyncAll(ctx)
	return nil
}

// waitIdle waits until no reconcile is in flight, or timeout passes.
func (c *Controller) waitIdle(ctx context.Context, timeout time.Duration) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		c.mu.Lock()
		busy := len(c.running) > 0
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

// Groups returns the status of every group, desired or still being removed.
func (c *Controller) Groups() []GroupStatus {
	c.mu.Lock()
	names := map[string]bool{}
	for name := range c.desired {
		names[name] = true
	}
	for name, reps := range c.observed {
		if len(reps) > 0 {
			names[name] = true
		}
	}
	c.mu.Unlock()
	out := make([]GroupStatus, 0, len(names))
	for name := range names {
		if st, err := c.Group(name); err == nil {
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Group returns one group's status.
func (c *Controller) Group(name string) (GroupStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, desired := c.desired[name]
	reps := c.observed[name]
	if !desired && len(reps) == 0 {
		return GroupStatus{}, fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	st := GroupStatus{Name: name, Service: g.Service, Desired: g.Replicas, Resources: g.Resources, Balancer: g.Balancer, Probe: g.Probe, Replicas: []ReplicaStatus{}}
	traffic := map[string]*Traffic{}
	if gb := c.balancers[name]; gb != nil {
		st.Endpoint = gb.b.Endpoint()
		for _, us := range gb.b.Stats() {
			traffic[us.ID] = &Traffic{
				State: us.State, Requests: us.Requests, Errors: us.Errors, InFlight: us.InFlight,
				Share: us.Share, TotalShare: us.TotalShare, Ejections: us.Ejections,
				P50Ms: float64(us.P50) / 1e6, P99Ms: float64(us.P99) / 1e6,
			}
		}
	}
	for _, r := range reps {
		r = c.withEventsLocked(r, false) // events may be ahead of the last list
		rs := ReplicaStatus{Name: r.Name, ID: r.ID, State: r.State, Address: r.Address, ExitCode: r.ExitCode}
		if r.State == replica.StateRunning {
			rs.Upstream = c.upstreamLocked(r)
		}
		rs.Traffic = traffic[r.ID]
		rs.Health = c.healthLocked(r)
		if cs := c.crashes[name][r.Index]; cs != nil {
			rs.Restarts = cs.restarts
		}
		if rs.Health == HealthReady {
			st.Ready++
		}
		if st.Service == "" {
			st.Service = r.Service
		}
		st.Replicas = append(st.Replicas, rs)
	}
	sort.Slice(st.Replicas, func(i, j int) bool { return replicaNumber(st.Replicas[i].Name) < replicaNumber(st.Replicas[j].Name) })

	switch {
	case !desired:
		st.Status = StatusDeleting
	case c.errs[name] != nil:
		st.Status, st.Message = StatusError, c.errs[name].Error()
	case len(c.held[name]) > 0:
		st.Status = StatusCrashLoop
		st.Message = c.held[name][0].String()
	case len(reps) != g.Replicas || c.running[name]:
		st.Status = StatusScaling
	case st.Ready < g.Replicas:
		st.Status = StatusStarting
	default:
		st.Status = StatusConverged
	}
	return st, nil
}

func replicaNumber(name string) int {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '-' {
			n, _ := strconv.Atoi(name[i+1:])
			return n
		}
	}
	return 0
}

// healthLocked merges the engine's state with the probe verdict.
func (c *Controller) healthLocked(r replica.Replica) string {
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

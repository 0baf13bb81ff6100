// Package health probes replicas over HTTP and keeps two verdicts for each:
// liveness (the process answers: GET /healthz) and readiness (it can serve,
// its dependencies included: GET /readyz).
//
// The two answer different questions and drive different actions. A
// replica that is not ready leaves its balancer's rotation and comes back
// when it is; only a replica that is no longer live is worth replacing. A
// readiness probe reports dependencies, so replacing on it would restart
// every dependent of a service that is down, losing what they hold in
// memory, and the replacements could not become ready either.
//
// Each probe's verdict is starting until its first success, then good
// (ready, live) after SuccessThreshold successes in a row and bad (unready,
// not-live) after FailureThreshold failures in a row. A replica that has
// never answered stays starting: it has not served yet. A failed readiness
// probe keeps a short reason, taken from the replica's answer where it
// names its failing dependencies.
//
// The engine's own view (paused, dead) is the controller's to merge; the
// prober only knows what the replica answers. It probes through the
// published 127.0.0.1 port, the way a client would reach the replica.
package health

import (
	"context"
	"sync"
	"time"
)

// Verdicts of the readiness probe.
const (
	Starting = "starting"
	Ready    = "ready"
	Unready  = "unready"
)

// Verdicts of the liveness probe; it starts as Starting too.
const (
	Live    = "live"
	NotLive = "not-live"
)

// Probe kinds, as a Change names them.
const (
	Readiness = "readiness"
	Liveness  = "liveness"
)

// Config tunes the probes.
type Config struct {
	// Interval between probes of a replica that has answered once.
	Interval time.Duration
	// StartInterval between probes while a replica is still starting, so a
	// new replica enters rotation soon after it is able to serve.
	StartInterval time.Duration
	// Timeout of one probe.
	Timeout          time.Duration
	SuccessThreshold int
	FailureThreshold int
}

// DefaultConfig probes every second, and every 10 ms while starting: a
// refused connection costs next to nothing, and a new replica then joins
// its rotation within 10 ms of answering, as soon as a client polling it
// itself would see it answer.
var DefaultConfig = Config{Interval: time.Second, StartInterval: 10 * time.Millisecond, Timeout: 500 * time.Millisecond, SuccessThreshold: 1, FailureThreshold: 3}

// over fills c's unset fields from d.
func (c Config) over(d Config) Config {
	if c.Interval <= 0 {
		c.Interval = d.Interval
	}
	if c.StartInterval <= 0 {
		c.StartInterval = d.StartInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	if c.SuccessThreshold <= 0 {
		c.SuccessThreshold = d.SuccessThreshold
	}
	if c.FailureThreshold <= 0 {
		c.FailureThreshold = d.FailureThreshold
	}
	return c
}

// Target is one replica to probe.
type Target struct {
	ID    string
	Group string
	Name  string
	URL   string // readiness, e.g. http://127.0.0.1:PORT/readyz
	// LiveURL is the liveness probe's, e.g. http://127.0.0.1:PORT/healthz;
	// empty probes no liveness and the replica counts as live.
	LiveURL string
	// Config and Liveness override the prober's config for this target's
	// readiness and liveness probes where set.
	Config   Config
	Liveness Config
}

// Change reports a new verdict, or a new reason, of one of a replica's probes.
type Change struct {
	Target
	Probe   string // Readiness or Liveness
	Verdict string
	Prev    string
	// Reason says why the last probe failed; empty after a success.
	Reason string
}

// Status is what the probes of one replica last found.
type Status struct {
	// Verdict is the readiness verdict and Since when it began to hold.
	Verdict string
	Since   time.Time
	// Reason says why the last readiness probe failed, such as
	// "dependency catalog unavailable"; empty after a success.
	Reason string
	// Live is the liveness verdict and LiveSince when it began to hold.
	Live      string
	LiveSince time.Time
	// LiveReason says why the last liveness probe failed.
	LiveReason string
}

// Prober runs two probe loops, readiness and liveness, per target.
type Prober struct {
	cfg      Config
	checker  *checker
	onChange func(Change)

	mu     sync.Mutex
	probes map[string]*probe
}

type probe struct {
	target Target
	cancel context.CancelFunc
	status Status
}

// New returns a prober that calls onChange (from its own goroutines; it
// must not block) whenever a verdict or a failure's reason changes.
func New(cfg Config, onChange func(Change)) *Prober {
	return &Prober{
		cfg:      cfg.over(DefaultConfig),
		checker:  newChecker(),
		onChange: onChange,
		probes:   map[string]*probe{},
	}
}

// Sync makes the probed set of group equal to targets: new targets start
// probing (starting), vanished ones stop.
func (p *Prober) Sync(ctx context.Context, group string, targets []Target) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := map[string]bool{}
	for _, t := range targets {
		keep[t.ID] = true
		p.addLocked(ctx, t)
	}
	for id, pr := range p.probes {
		if pr.target.Group == group && !keep[id] {
			pr.cancel()
			delete(p.probes, id)
		}
	}
}

// Add starts probing one target, as starting, unless it is probed as it
// is already; the group's other targets are left alone. A replica thawed
// from a pause is added at once rather than at the next Sync.
func (p *Prober) Add(ctx context.Context, t Target) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.addLocked(ctx, t)
}

func (p *Prober) addLocked(ctx context.Context, t Target) {
	if old, ok := p.probes[t.ID]; ok && old.target == t {
		return
	} else if ok {
		old.cancel()
	}
	pctx, cancel := context.WithCancel(ctx)
	now := time.Now()
	pr := &probe{target: t, cancel: cancel, status: Status{Verdict: Starting, Since: now, Live: Starting, LiveSince: now}}
	if t.LiveURL == "" {
		pr.status.Live = Live
	}
	p.probes[t.ID] = pr
	go p.loop(pctx, pr, Readiness)
	if t.LiveURL != "" {
		go p.loop(pctx, pr, Liveness)
	}
}

// Forget stops probing a replica at once (it died or is leaving).
func (p *Prober) Forget(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr, ok := p.probes[id]; ok {
		pr.cancel()
		delete(p.probes, id)
	}
}

// Status returns what the probes of a replica found; ok is false if it is
// not probed.
func (p *Prober) Status(id string) (Status, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr, ok := p.probes[id]
	if !ok {
		return Status{}, false
	}
	return pr.status, true
}

// loop runs one of a target's two probes until ctx ends.
func (p *Prober) loop(ctx context.Context, pr *probe, kind string) {
	url, cfg, good, bad := pr.target.URL, pr.target.Config, Ready, Unready
	if kind == Liveness {
		url, cfg, good, bad = pr.target.LiveURL, pr.target.Liveness, Live, NotLive
	}
	cfg = cfg.over(p.cfg)
	successes, failures := 0, 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		reason := p.checker.check(ctx, url, cfg.Timeout)
		if ctx.Err() != nil {
			return
		}
		ok := reason == ""
		if ok {
			successes, failures = successes+1, 0
		} else {
			successes, failures = 0, failures+1
		}

		p.mu.Lock()
		verdict, since, why := &pr.status.Verdict, &pr.status.Since, &pr.status.Reason
		if kind == Liveness {
			verdict, since, why = &pr.status.Live, &pr.status.LiveSince, &pr.status.LiveReason
		}
		prev, prevReason := *verdict, *why
		next := prev
		switch {
		case ok && successes >= cfg.SuccessThreshold:
			next = good
		case !ok && failures >= cfg.FailureThreshold && prev != Starting:
			next = bad
		}
		if next != prev {
			*verdict, *since = next, time.Now()
		}
		*why = reason
		interval := cfg.Interval
		if next == Starting {
			interval = cfg.StartInterval
		}
		p.mu.Unlock()

		if (next != prev || reason != prevReason) && p.onChange != nil {
			p.onChange(Change{Target: pr.target, Probe: kind, Verdict: next, Prev: prev, Reason: reason})
		}
		timer.Reset(interval)
	}
}

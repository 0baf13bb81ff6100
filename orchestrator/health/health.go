// Package health probes replicas' readiness over HTTP and keeps each one's
// probe verdict: starting until the first success, ready after SuccessThreshold
// successes in a row, unhealthy after FailureThreshold failures in a row.
//
// The engine's own view (paused, dead) is the controller's to merge; the
// prober only knows what the replica answers. It probes through the published
// 127.0.0.1 port, the way a client would reach the replica.
package health

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// Verdicts of the prober.
const (
	Starting  = "starting"
	Ready     = "ready"
	Unhealthy = "unhealthy"
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

// DefaultConfig probes every second, and every 50 ms while starting.
var DefaultConfig = Config{Interval: time.Second, StartInterval: 50 * time.Millisecond, Timeout: 500 * time.Millisecond, SuccessThreshold: 1, FailureThreshold: 3}

func (c Config) withDefaults() Config {
	d := DefaultConfig
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
	URL   string // e.g. http://127.0.0.1:PORT/readyz
	// Config overrides the prober's for this target where set.
	Config Config
}

// Change reports a new verdict for a replica.
type Change struct {
	Target
	Verdict string
	Prev    string
}

// Status is the current verdict of one replica and since when it holds.
type Status struct {
	Verdict string
	Since   time.Time
}

// Prober runs one probe loop per target.
type Prober struct {
	cfg      Config
	client   *http.Client
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
// must not block) whenever a replica's verdict changes.
func New(cfg Config, onChange func(Change)) *Prober {
	cfg = cfg.withDefaults()
	tr := &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: 30 * time.Second, DisableCompression: true}
	return &Prober{
		cfg:      cfg,
		client:   &http.Client{Transport: tr},
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
		if old, ok := p.probes[t.ID]; ok && old.target.URL == t.URL && old.target.Config == t.Config {
			continue
		} else if ok {
			old.cancel()
		}
		pctx, cancel := context.WithCancel(ctx)
		pr := &probe{target: t, cancel: cancel, status: Status{Verdict: Starting, Since: time.Now()}}
		p.probes[t.ID] = pr
		go p.loop(pctx, pr)
	}
	for id, pr := range p.probes {
		if pr.target.Group == group && !keep[id] {
			pr.cancel()
			delete(p.probes, id)
		}
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

// Status returns the verdict for a replica; ok is false if it is not probed.
func (p *Prober) Status(id string) (Status, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr, ok := p.probes[id]
	if !ok {
		return Status{}, false
	}
	return pr.status, true
}

func (p *Prober) loop(ctx context.Context, pr *probe) {
	cfg := pr.target.Config
	if cfg.Interval <= 0 {
		cfg.Interval = p.cfg.Interval
	}
	if cfg.StartInterval <= 0 {
		cfg.StartInterval = p.cfg.StartInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = p.cfg.Timeout
	}
	if cfg.SuccessThreshold <= 0 {
		cfg.SuccessThreshold = p.cfg.SuccessThreshold
	}
	if cfg.FailureThreshold <= 0 {
		cfg.FailureThreshold = p.cfg.FailureThreshold
	}
	successes, failures := 0, 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		ok := p.check(ctx, pr.target.URL, cfg.Timeout)
		if ctx.Err() != nil {
			return
		}
		if ok {
			successes, failures = successes+1, 0
		} else {
			successes, failures = 0, failures+1
		}

		p.mu.Lock()
		prev := pr.status.Verdict
		next := prev
		switch {
		case ok && successes >= cfg.SuccessThreshold:
			next = Ready
		case !ok && failures >= cfg.FailureThreshold && prev != Starting:
			next = Unhealthy
		}
		if next != prev {
			pr.status = Status{Verdict: next, Since: time.Now()}
		}
		interval := cfg.Interval
		if next == Starting {
			interval = cfg.StartInterval
		}
		p.mu.Unlock()

		if next != prev && p.onChange != nil {
			p.onChange(Change{Target: pr.target, Verdict: next, Prev: prev})
		}
		timer.Reset(interval)
	}
}

func (p *Prober) check(ctx context.Context, url string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

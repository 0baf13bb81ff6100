package controller

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// ReplicaStats is one replica's live figures, sampled about once a second.
type ReplicaStats struct {
	Group string `json:"group"`
	// RPS and ErrorRate are over the last sample interval; the latency
	// percentiles are the balancer's histogram since the replica joined.
	RPS           float64 `json:"rps"`
	ErrorRate     float64 `json:"errorRate"`
	P50Ms         float64 `json:"p50Ms"`
	P99Ms         float64 `json:"p99Ms"`
	Share         float64 `json:"share"`
	InFlight      int64   `json:"inFlight"`
	CPUPercent    float64 `json:"cpuPercent"`
	MemBytes      uint64  `json:"memBytes"`
	MemLimitBytes uint64  `json:"memLimitBytes"`
}

type trafficSample struct {
	at       time.Time
	requests uint64
	errors   uint64
}

type statsState struct {
	mu      sync.Mutex
	byName  map[string]ReplicaStats
	traffic map[string]trafficSample // by replica ID
	usage   map[string]replica.Usage // by replica ID
	cpu     map[string]float64
	// sampling: a round of resource reads is in flight.
	sampling atomic.Bool
}

// Stats returns the latest figures of every replica, by replica name.
func (c *Controller) Stats() map[string]ReplicaStats {
	c.stats.mu.Lock()
	defer c.stats.mu.Unlock()
	out := make(map[string]ReplicaStats, len(c.stats.byName))
	for k, v := range c.stats.byName {
		out[k] = v
	}
	return out
}

// sampleLoop refreshes Stats every interval until ctx ends; resource use is
// read every other tick, since each read is a call to the engine.
func (c *Controller) sampleLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A round of the engine's stats takes about a second (the engine
		// waits for its second sample); it runs beside the traffic
		// samples, never two at once.
		if n%2 == 0 && c.stats.sampling.CompareAndSwap(false, true) {
			go func() {
				defer c.stats.sampling.Store(false)
				c.sampleUsage(ctx)
			}()
		}
		c.sampleTraffic()
	}
}

func (c *Controller) sampleUsage(ctx context.Context) {
	c.mu.Lock()
	var ids []string
	for _, g := range c.groups {
		for _, r := range g.observed {
			// A paused replica's memory is read too: a warm pool's cost.
			if r.State == replica.StateRunning || r.State == replica.StatePaused {
				ids = append(ids, r.ID)
			}
		}
	}
	c.mu.Unlock()

	// Each read may take the engine a second: many at once, each with its
	// own deadline, so that a hundred replicas are read in a few seconds.
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			u, err := c.opt.Runtime.Stats(ctx, id)
			if err != nil {
				return
			}
			c.stats.mu.Lock()
			if prev, ok := c.stats.usage[id]; ok {
				c.stats.cpu[id] = replica.CPUPercent(prev, u)
			}
			c.stats.usage[id] = u
			c.stats.mu.Unlock()
		}()
	}
	wg.Wait()
}

func (c *Controller) sampleTraffic() {
	now := time.Now()
	c.mu.Lock()
	type rep struct{ id, name, group string }
	var reps []rep
	balancers := map[string]*groupBalancer{}
	for name, g := range c.groups {
		for _, r := range g.observed {
			reps = append(reps, rep{r.ID, r.Name, name})
		}
		if g.balancer != nil {
			balancers[name] = g.balancer
		}
	}
	c.mu.Unlock()

	traffic := map[string]ReplicaStats{}
	for group, gb := range balancers {
		for _, us := range gb.b.Stats() {
			rs := ReplicaStats{Group: group, P50Ms: float64(us.P50) / 1e6, P99Ms: float64(us.P99) / 1e6, Share: us.Share, InFlight: us.InFlight}
			c.stats.mu.Lock()
			if prev, ok := c.stats.traffic[us.ID]; ok && now.After(prev.at) && us.Requests >= prev.requests {
				dt := now.Sub(prev.at).Seconds()
				dr := us.Requests - prev.requests
				rs.RPS = float64(dr) / dt
				if dr > 0 && us.Errors >= prev.errors {
					rs.ErrorRate = float64(us.Errors-prev.errors) / float64(dr)
				}
			}
			c.stats.traffic[us.ID] = trafficSample{at: now, requests: us.Requests, errors: us.Errors}
			c.stats.mu.Unlock()
			traffic[us.ID] = rs
		}
	}

	c.stats.mu.Lock()
	defer c.stats.mu.Unlock()
	byName := make(map[string]ReplicaStats, len(reps))
	live := map[string]bool{}
	for _, r := range reps {
		live[r.id] = true
		rs, ok := traffic[r.id]
		if !ok {
			rs = ReplicaStats{Group: r.group}
		}
		if u, ok := c.stats.usage[r.id]; ok {
			rs.MemBytes, rs.MemLimitBytes = u.MemBytes, u.MemLimit
			rs.CPUPercent = c.stats.cpu[r.id]
		}
		byName[r.name] = rs
	}
	for id := range c.stats.usage {
		if !live[id] {
			delete(c.stats.usage, id)
			delete(c.stats.cpu, id)
		}
	}
	for id := range c.stats.traffic {
		if !live[id] {
			delete(c.stats.traffic, id)
		}
	}
	c.stats.byName = byName
}

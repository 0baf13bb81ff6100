package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/flotilla/flotilla/orchestrator/health"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/lb"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// Data paths from a balancer to its replicas.
const (
	// DataPathAuto dials replicas on the project network when the host can
	// reach it (Linux), and their published ports otherwise (Docker Desktop).
	DataPathAuto = "auto"
	// DataPathNetwork always dials the replica's address on the project network.
	DataPathNetwork = "network"
	// DataPathPublished always dials the replica's published 127.0.0.1 port.
	DataPathPublished = "published"
)

// groupBalancer is a group's running balancer and the spec it was made from.
type groupBalancer struct {
	b    *lb.Balancer
	port int // the spec's port; 0 for ephemeral
}

// ensureBalancer makes the group's balancer match its spec: started,
// switched to the spec's policy, restarted on a new port, or closed for
// policy none.
func (c *Controller) ensureBalancer(ctx context.Context, g spec.Group) error {
	c.mu.Lock()
	gb := c.balancers[g.Name]
	runCtx := c.ctx
	c.mu.Unlock()
	if runCtx == nil {
		runCtx = ctx
	}

	if g.Balancer.Policy == spec.PolicyNone {
		c.closeBalancer(g.Name)
		return nil
	}
	if gb != nil && gb.port != g.Balancer.Port {
		c.closeBalancer(g.Name)
		gb = nil
	}
	if gb != nil {
		if gb.b.Policy() != g.Balancer.Policy {
			if err := gb.b.SetPolicy(g.Balancer.Policy); err != nil {
				return fmt.Errorf("balancer of %q: %w", g.Name, err)
			}
			c.log.Info("balancer policy", "group", g.Name, "policy", g.Balancer.Policy)
		}
		return nil
	}

	listen := "127.0.0.1:" + strconv.Itoa(g.Balancer.Port)
	b, err := lb.New(lb.Config{
		Group:   g.Name,
		Listen:  listen,
		Policy:  g.Balancer.Policy,
		OnEvent: c.balancerEvent,
	})
	if err != nil {
		return fmt.Errorf("balancer of %q: %w", g.Name, err)
	}
	if err := b.Start(runCtx); err != nil {
		return fmt.Errorf("balancer of %q on %s: %w", g.Name, listen, err)
	}
	c.mu.Lock()
	c.balancers[g.Name] = &groupBalancer{b: b, port: g.Balancer.Port}
	c.mu.Unlock()
	c.log.Info("balancer listening", "group", g.Name, "endpoint", b.Endpoint(), "policy", g.Balancer.Policy)
	c.syncUpstreams(g.Name)
	return nil
}

func (c *Controller) balancerEvent(e lb.Event) {
	c.log.Info("balancer "+string(e.Kind), "group", e.Group, "replica", e.Replica, "reason", e.Reason)
	switch e.Kind {
	case lb.EventEjected:
		c.publish(hub.BalancerEjected, e.Group, e.Replica, e.ID, "%s ejected until %s: %s", e.Replica, e.Until.Format("15:04:05"), e.Reason)
	case lb.EventRestored:
		c.publish(hub.BalancerRestored, e.Group, e.Replica, e.ID, "%s back in rotation", e.Replica)
	}
}

// closeBalancer stops a group's balancer, letting requests in flight finish.
func (c *Controller) closeBalancer(group string) {
	c.mu.Lock()
	gb := c.balancers[group]
	delete(c.balancers, group)
	c.mu.Unlock()
	if gb == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opt.StopTimeout)
	defer cancel()
	if err := gb.b.Close(ctx); err != nil {
		c.log.Warn("close balancer", "group", group, "err", err)
	}
	c.log.Info("balancer closed", "group", group)
}

func (c *Controller) balancer(group string) *lb.Balancer {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gb := c.balancers[group]; gb != nil {
		return gb.b
	}
	return nil
}

// syncUpstreams hands the balancer the group's ready replicas: running,
// answering their readiness probe, not dead by event and not leaving.
func (c *Controller) syncUpstreams(group string) {
	c.mu.Lock()
	gb := c.balancers[group]
	if gb == nil {
		c.mu.Unlock()
		return
	}
	var ups []lb.Upstream
	for _, r := range c.observed[group] {
		if r.State != replica.StateRunning || c.leaving[r.ID] {
			continue
		}
		if _, dead := c.died[r.ID]; dead {
			continue
		}
		if st, ok := c.prober.Status(r.ID); !ok || st.Verdict != health.Ready {
			continue
		}
		ups = append(ups, lb.Upstream{ID: r.ID, Name: r.Name, Addr: c.upstreamLocked(r)})
	}
	c.mu.Unlock()
	gb.b.SetUpstreams(ups)
}

// upstreamLocked is the address a balancer dials for r.
func (c *Controller) upstreamLocked(r replica.Replica) string {
	if c.direct && r.NetworkAddress != "" {
		return r.NetworkAddress
	}
	return r.Address
}

// detectDataPath decides once whether this host reaches replicas on the
// project network, by dialling one. A refused connection counts as
// reachable: the packet got there. A timeout or no route means the network
// is behind a VM (Docker Desktop), and published ports are used instead.
func (c *Controller) detectDataPath(reps []replica.Replica) {
	c.mu.Lock()
	done := c.dataPathKnown
	c.mu.Unlock()
	if done {
		return
	}
	switch c.opt.DataPath {
	case DataPathNetwork, DataPathPublished:
		c.mu.Lock()
		c.direct, c.dataPathKnown = c.opt.DataPath == DataPathNetwork, true
		c.mu.Unlock()
		return
	}
	for _, r := range reps {
		if r.State != replica.StateRunning || r.NetworkAddress == "" {
			continue
		}
		conn, err := net.DialTimeout("tcp", r.NetworkAddress, 300*time.Millisecond)
		reachable := err == nil || errors.Is(err, syscall.ECONNREFUSED)
		if conn != nil {
			conn.Close()
		}
		c.mu.Lock()
		c.direct, c.dataPathKnown = reachable, true
		c.mu.Unlock()
		path := "published ports on 127.0.0.1"
		if reachable {
			path = "the project network"
		}
		c.log.Info("balancer data path", "via", path, "probe", r.NetworkAddress)
		return
	}
}

// DataPath says how balancers reach replicas: "network", "published", or
// "unknown" before the first replica ran.
func (c *Controller) DataPath() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.dataPathKnown:
		return "unknown"
	case c.direct:
		return DataPathNetwork
	}
	return DataPathPublished
}

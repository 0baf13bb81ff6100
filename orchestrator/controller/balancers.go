package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

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

// applyBalancer carries out the plan's step for a group's balancer.
// emulatedTryTimeout bounds one try at an emulated (TCG) VM replica. Such
// a guest answers in milliseconds when the host is quiet, but every one of
// its instructions is the host's work: on a busy host its answers can take
// over the balancer's default second, which would count a slow replica as
// a dead one and fail requests a retry elsewhere would also find slow.
const emulatedTryTimeout = 5 * time.Second

func (c *Controller) applyBalancer(ctx context.Context, group string, a BalancerAction) error {
	switch a.Kind {
	case BalancerKeep:
		return nil
	case BalancerClose:
		c.closeBalancer(group)
		return nil
	case BalancerSetPolicy:
		b := c.balancer(group)
		if b == nil {
			return nil // closed meanwhile; the next reconcile starts one
		}
		if err := b.SetPolicy(a.Policy); err != nil {
			return fmt.Errorf("balancer of %q: %w", group, err)
		}
		c.log.Info("balancer policy", "group", group, "policy", a.Policy)
		return nil
	case BalancerRestart:
		c.closeBalancer(group)
	}

	c.mu.Lock()
	runCtx := c.ctx
	var tryTimeout time.Duration
	if g := c.groups[group]; g != nil && g.desired != nil && g.desired.Isolation == spec.IsolationVM && c.vmAccel() == "tcg" {
		tryTimeout = emulatedTryTimeout
	}
	c.mu.Unlock()
	if runCtx == nil {
		runCtx = ctx
	}
	listen := "127.0.0.1:" + strconv.Itoa(a.Port)
	b, err := lb.New(lb.Config{
		Group:      group,
		Listen:     listen,
		Policy:     a.Policy,
		OnEvent:    c.balancerEvent,
		TryTimeout: tryTimeout,
	})
	if err != nil {
		return fmt.Errorf("balancer of %q: %w", group, err)
	}
	if err := b.Start(runCtx); err != nil {
		return fmt.Errorf("balancer of %q on %s: %w", group, listen, err)
	}
	c.mu.Lock()
	c.groupLocked(group).balancer = &groupBalancer{b: b, port: a.Port}
	c.mu.Unlock()
	c.log.Info("balancer listening", "group", group, "endpoint", b.Endpoint(), "policy", a.Policy)
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
	var gb *groupBalancer
	if g := c.groups[group]; g != nil {
		gb, g.balancer = g.balancer, nil
	}
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
	if g := c.groups[group]; g != nil && g.balancer != nil {
		return g.balancer.b
	}
	return nil
}

// syncUpstreams hands the balancer the group's ready replicas: running,
// answering their readiness probe, not dead by event and not leaving.
func (c *Controller) syncUpstreams(group string) {
	c.mu.Lock()
	g := c.groups[group]
	if g == nil || g.balancer == nil {
		c.mu.Unlock()
		return
	}
	b := g.balancer.b
	var ups []lb.Upstream
	var canary []string
	for _, r := range c.replicasLocked(g) {
		if r.State != replica.StateRunning || c.notes[r.ID] != nil && c.notes[r.ID].leaving || !g.rotation.inRotation(r) {
			continue
		}
		if !c.probedReady(r.ID) || g.auto != nil && g.auto.pool[r.ID] {
			continue
		}
		if addr := c.upstreamLocked(r); addr != "" {
			ups = append(ups, lb.Upstream{ID: r.ID, Name: r.Name, Addr: addr})
			if r.TemplateHash == g.rotation.hash {
				canary = append(canary, r.ID)
			}
		}
	}
	share := g.rotation.share
	c.mu.Unlock()
	b.SetUpstreams(ups)
	b.SetSplit(canary, share) // a canary's share of traffic; none without one
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

func (c *Controller) closeAllBalancers() {
	c.mu.Lock()
	var names []string
	for name, g := range c.groups {
		if g.balancer != nil {
			names = append(names, name)
		}
	}
	c.mu.Unlock()
	for _, name := range names {
		c.closeBalancer(name)
	}
}

package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/flotilla/flotilla/orchestrator/bus"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/sample-services/bus/access"
)

// The bus (catalogue service spec.BusService) admits one user per sample
// service, each allowed only its own subjects (package access). Its
// passwords derive from one secret, Options.BusSecret: the bus's replicas
// get the secret, and each replica of a service that uses the bus gets
// only its own user's password, and the bus's address, by DNS on the
// project network: nats://bus:4222, so the bus's group is named bus.

// newBusSecret makes a secret for a controller given none; the server
// keeps one in the state directory so replicas made before a restart of
// the controller still match the bus.
func newBusSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// withBus adds to s what its service needs of the bus, if anything.
func (c *Controller) withBus(s replica.Spec) replica.Spec {
	s.Env = append(s.Env, busEnv(s.Service, c.opt.BusSecret)...)
	return s
}

// busEnv is the environment a replica of service needs for the bus.
func busEnv(service, secret string) []string {
	if service == spec.BusService {
		return []string{access.SecretEnv + "=" + secret}
	}
	if _, ok := access.Shop.Lookup(service); !ok {
		return nil
	}
	pw, err := access.Password(secret, service)
	if err != nil {
		return nil // a secret too short is refused by New; nothing to give
	}
	return []string{
		access.URLEnv + "=nats://" + net.JoinHostPort(spec.BusService, strconv.Itoa(spec.BusClientPort)),
		access.UserEnv + "=" + service,
		access.PasswordEnv + "=" + pw,
	}
}

// The controller reads the bus every busPeriod while a bus group runs, as
// the monitor user, over one connection (orchestrator/bus), and keeps the
// last reading for the API, the stream and the metrics. It dials the bus
// replica's address on the project network, as balancers dial replicas,
// since the bus's client port is published nowhere.

// busPeriod is how often the controller reads the bus.
const busPeriod = time.Second

// noBus is the reading while no bus group exists.
const noBus = "no bus runs: the bus is a group named bus of service bus (apply the event-driven stage, or flotilla apply a group of it)"

// busLoop reads the bus until ctx ends.
func (c *Controller) busLoop(ctx context.Context) {
	t := time.NewTicker(busPeriod)
	defer t.Stop()
	defer c.busReader.Close()
	for {
		c.readBus(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Controller) readBus(ctx context.Context) {
	addr, groups, why := c.busTarget()
	var st bus.Status
	if addr == "" {
		// No bus to read: let go of any connection to one that was.
		c.busReader.Close()
		st = bus.Status{Time: time.Now(), Error: why, Streams: []bus.Stream{}, Dead: []bus.DeadLetter{}}
	} else {
		st = c.busReader.Read(ctx, addr, groups)
	}
	c.busMu.Lock()
	c.busStatus = st
	var fresh []bus.DeadLetter
	if st.Up {
		for _, d := range st.Dead {
			if d.Seq > c.busSeen {
				if c.busRead {
					fresh = append(fresh, d)
				}
			}
		}
		for _, d := range st.Dead {
			c.busSeen = max(c.busSeen, d.Seq)
		}
		c.busRead = true
	}
	c.busMu.Unlock()
	// Dead letters there before the controller started are not news.
	for _, d := range slices.Backward(fresh) {
		c.publish(hub.BusDeadLetter, spec.BusService, "", strconv.FormatUint(d.Seq, 10),
			"dead letter %d: %s gave up on %s %s (%s seq %d) after %d deliveries; replay it with flotilla bus replay %d",
			d.Seq, d.Consumer, d.Subject, d.EventID, d.Stream, d.StreamSeq, d.Deliveries, d.Seq)
	}
}

// busTarget is the NATS URL of the bus on the project network and the
// groups that run each subscriber service (by service, which is also the
// consumer's name); or no URL and why the bus cannot be read.
func (c *Controller) busTarget() (string, map[string]string, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[spec.BusService]
	if g == nil || g.desired == nil && len(g.observed) == 0 {
		return "", nil, noBus
	}
	if c.dataPathKnown && !c.direct {
		return "", nil, "the bus runs on the project network, which this controller cannot reach from here (its data path is published ports); the bus's client port is not published"
	}
	var host string
	for _, r := range c.replicasLocked(g) {
		if r.State != replica.StateRunning || r.Service != spec.BusService || r.NetworkAddress == "" {
			continue
		}
		if h, _, err := net.SplitHostPort(r.NetworkAddress); err == nil {
			host = h
			break
		}
	}
	if host == "" {
		return "", nil, "the bus group has no running replica yet"
	}
	groups := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(c.groups)) {
		o := c.groups[name]
		if o.desired == nil || name == spec.BusService {
			continue
		}
		if _, taken := groups[o.desired.Service]; taken {
			continue
		}
		for _, r := range o.observed {
			if r.State == replica.StateRunning {
				groups[o.desired.Service] = name
				break
			}
		}
	}
	return bus.URL(host, c.busPort), groups, ""
}

// BusStatus is the last reading of the bus: Up false, with the reason,
// when no bus runs or it cannot be read.
func (c *Controller) BusStatus() bus.Status {
	c.busMu.Lock()
	defer c.busMu.Unlock()
	st := c.busStatus
	if st.Time.IsZero() {
		return bus.Status{Time: time.Now(), Error: "the bus has not been read yet", Streams: []bus.Stream{}, Dead: []bus.DeadLetter{}}
	}
	return st
}

// ReplayDeadLetter publishes dead letter seq's message again and deletes
// the dead letter. The error wraps bus.ErrNotFound for no such dead letter
// and bus.ErrUnavailable when no bus runs or it cannot be reached.
func (c *Controller) ReplayDeadLetter(ctx context.Context, seq uint64) (bus.ReplayResult, error) {
	addr, _, why := c.busTarget()
	if addr == "" {
		return bus.ReplayResult{}, fmt.Errorf("%w: %s", bus.ErrUnavailable, why)
	}
	res, err := c.busReader.Replay(ctx, addr, seq)
	if err != nil {
		return res, err
	}
	c.publish(hub.BusReplayed, spec.BusService, "", strconv.FormatUint(seq, 10),
		"dead letter %d replayed: %s %s published again to %s as %s", seq, res.Replayed.Stream, res.Replayed.EventID, res.Subject, res.MsgID)
	// Shown gone at once, not only from the next reading.
	c.busMu.Lock()
	c.busStatus.Dead = slices.DeleteFunc(slices.Clone(c.busStatus.Dead), func(d bus.DeadLetter) bool { return d.Seq == seq })
	c.busMu.Unlock()
	return res, nil
}

package lb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Balancer is the load balancer of one group. Create it with New, start it
// with Start (or Serve), feed it the group's ready replicas with
// SetUpstreams, and stop it with Close. Every method is safe for concurrent
// use.
type Balancer struct {
	cfg Config

	policy   atomic.Pointer[policy]
	rotation atomic.Pointer[set]
	budget   retryBudget

	retries       atomic.Uint64
	retriesDenied atomic.Uint64
	unrouted      atomic.Uint64
	droppedEvents atomic.Uint64
	refusedConns  atomic.Uint64

	// The activator (activator.go), and what an autoscaler reads (Load).
	actMu     sync.Mutex
	act       atomic.Pointer[activator]
	arrived   atomic.Uint64
	busyNanos atomic.Int64

	mem  memBudget    // bytes held in buffers, both data paths
	open atomic.Int64 // open client connections, both data paths

	split *split // guarded by mu

	framedMu sync.Mutex
	framed   map[*framedConn]struct{} // the fasthttp path's client connections

	// noReplicas is the 503 body, made once.
	noReplicas []byte

	events     chan Event
	eventsDone chan struct{}

	mu sync.Mutex
	// hosts holds every host in rotation, plus those that left it and may
	// still have requests in flight; order is the controller's order.
	hosts  map[string]*host
	order  []string
	closed bool

	srv       *fasthttp.Server
	freshHead atomic.Pointer[fasthttp.ResponseHeader] // see keepFreshHead
	ev        *evEngine                               // the event loops, when they carry the requests
	ln        net.Listener
	serveDone chan struct{}
}

// New returns a balancer for cfg, not yet listening and with no upstreams.
func New(cfg Config) (*Balancer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("load balancer config for group %q: %w", cfg.Group, err)
	}
	b := &Balancer{
		cfg:    cfg,
		budget: retryBudget{ratio: cfg.RetryRatio, floor: cfg.RetryFloor},
		hosts:  map[string]*host{},
		framed: map[*framedConn]struct{}{},
	}
	b.mem.max = int64(cfg.MaxBufferedBytes)
	p, _ := newPolicy(cfg.Policy) // validated by withDefaults
	b.policy.Store(p)
	b.rotation.Store(&set{})
	b.noReplicas = errorBody("no ready replicas in group " + cfg.Group)
	if cfg.OnEvent != nil {
		b.events = make(chan Event, 256)
		b.eventsDone = make(chan struct{})
		go b.deliverEvents()
	}
	b.srv = b.newServer()
	return b, nil
}

// Start listens on Config.Listen and serves in the background until Close.
// ctx bounds only the start.
func (b *Balancer) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", b.cfg.Listen)
	if err != nil {
		return fmt.Errorf("load balancer of group %q: listen: %w", b.cfg.Group, err)
	}
	if err := b.attach(ln); err != nil {
		ln.Close()
		return err
	}
	go b.serveOn(ln) //nolint:errcheck // after Close it is nil; a failing listener shows in the clients' errors
	return nil
}

// Serve serves on ln until Close, and then returns nil.
func (b *Balancer) Serve(ln net.Listener) error {
	if err := b.attach(ln); err != nil {
		ln.Close()
		return err
	}
	return b.serveOn(ln)
}

// attach makes ln the balancer's listener.
func (b *Balancer) attach(ln net.Listener) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return ErrClosed
	case b.ln != nil:
		return fmt.Errorf("load balancer of group %q is already serving on %s", b.cfg.Group, b.ln.Addr())
	}
	// The event loop reads a TCP listener's socket itself; any other
	// listener (a test's, a TLS wrapper) is served the fasthttp way.
	if _, tcp := ln.(*net.TCPListener); tcp && b.cfg.DataPath == DataPathEventLoop {
		ev, err := newEvEngine(b, ln)
		if err != nil {
			return fmt.Errorf("load balancer of group %q: %w", b.cfg.Group, err)
		}
		b.ev = ev
	}
	b.ln = ln
	b.serveDone = make(chan struct{})
	return nil
}

func (b *Balancer) serveOn(ln net.Listener) error {
	defer close(b.serveDone)
	if b.ev != nil {
		<-b.ev.done
		return nil
	}
	err := b.srv.Serve(limitedListener{Listener: ln, b: b})
	if b.isClosed() {
		return nil
	}
	return err
}

// Endpoint returns the "host:port" the balancer listens on, or "" before
// Start.
func (b *Balancer) Endpoint() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln == nil {
		return ""
	}
	return b.ln.Addr().String()
}

// Close stops accepting connections, waits for requests in flight to finish
// (until ctx ends), then closes every connection and stops event delivery.
func (b *Balancer) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	serving := b.ln != nil
	if a := b.act.Load(); a != nil {
		a.releaseAll(time.Time{}) // held requests are answered 503, not cut
	}
	for _, h := range b.hosts {
		if h.ejectTimer != nil {
			h.ejectTimer.Stop()
		}
	}
	b.mu.Unlock()

	var err error
	if serving && b.ev != nil {
		err = b.ev.shutdown(ctx)
		b.ln.Close()
		<-b.serveDone
	} else if serving {
		err = b.srv.ShutdownWithContext(ctx)
		// A Close right after Start can come before Serve has registered
		// the listener with the server, and Shutdown then leaves Serve
		// running; closing the listener ends it either way.
		b.ln.Close()
		<-b.serveDone
	}
	b.closeFramed()
	for _, h := range b.knownHosts() {
		h.client.CloseIdleConnections()
	}
	if b.events != nil {
		close(b.events)
		select { // an OnEvent that never returns must not hold up Close
		case <-b.eventsDone:
		case <-ctx.Done():
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("close load balancer of group %q: %w", b.cfg.Group, err)
	}
	return err
}

func (b *Balancer) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// SetUpstreams makes ups the set in rotation. It is the controller's word
// on which replicas are ready: new ones enter rotation, absent ones leave it
// (their requests in flight finish), and one drained or marked down earlier
// comes back if it is listed again. An upstream listed as before (same ID,
// Name and Addr) keeps its counters, ejection state and connections; one
// with a known ID but a new Addr or Name starts afresh.
func (b *Balancer) SetUpstreams(ups []Upstream) {
	b.mu.Lock()
	defer b.mu.Unlock()
	hosts := make([]*host, 0, len(ups))
	order := make([]string, 0, len(ups))
	seen := make(map[string]bool, len(ups))
	for _, u := range ups {
		if u.ID == "" || seen[u.ID] {
			continue
		}
		seen[u.ID] = true
		h := b.hosts[u.ID]
		if h == nil || h.up != u { // h.up is read without a lock: never changed, replaced
			if h != nil {
				b.retireLocked(h)
			}
			h = newHost(u, &b.cfg, b)
			b.hosts[u.ID] = h
		}
		h.draining.Store(false)
		hosts = append(hosts, h)
		order = append(order, u.ID)
	}
	for id, h := range b.hosts {
		if !seen[id] {
			b.retireLocked(h)
		}
	}
	b.order = order
	b.rotation.Store(b.newSetLocked(hosts))
	b.pruneLocked()
	if a := b.act.Load(); a != nil && len(hosts) > 0 {
		a.releaseAll(time.Now())
	}
}

// retireLocked marks h as out of the set; it stays known while requests
// are in flight.
func (b *Balancer) retireLocked(h *host) {
	if h.ejectTimer != nil {
		h.ejectTimer.Stop()
		h.ejectTimer = nil
	}
	h.ejected.Store(false)
	h.ejectedUntil = time.Time{}
	h.draining.Store(true)
}

// pruneLocked forgets hosts out of the set with nothing in flight.
func (b *Balancer) pruneLocked() {
	inSet := b.inSetLocked()
	for id, h := range b.hosts {
		if !inSet[h] && h.inflight.Load() == 0 {
			delete(b.hosts, id)
			h.client.CloseIdleConnections()
		}
	}
}

func (b *Balancer) inSetLocked() map[*host]bool {
	cur := b.rotation.Load().hosts
	m := make(map[*host]bool, len(cur))
	for _, h := range cur {
		m[h] = true
	}
	return m
}

// removeLocked takes the host with id out of rotation and returns it.
func (b *Balancer) removeLocked(id string) (*host, error) {
	h := b.hosts[id]
	if h == nil {
		return nil, fmt.Errorf("%w %q in group %q", ErrUnknownUpstream, id, b.cfg.Group)
	}
	cur := b.rotation.Load().hosts
	next := make([]*host, 0, len(cur))
	for _, x := range cur {
		if x != h {
			next = append(next, x)
		}
	}
	if len(next) != len(cur) {
		b.rotation.Store(b.newSetLocked(next))
	}
	b.retireLocked(h)
	return h, nil
}

// Drain takes the upstream with id out of rotation at once and returns when
// its requests in flight have finished, or with ctx's error when ctx ends
// first. It stays out until a later SetUpstreams lists it again.
func (b *Balancer) Drain(ctx context.Context, id string) error {
	b.mu.Lock()
	h, err := b.removeLocked(id)
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	for h.inflight.Load() > 0 {
		select {
		case <-h.drained:
		case <-ctx.Done():
			return fmt.Errorf("drain %q of group %q: %d requests still in flight: %w", h.up.label(), b.cfg.Group, h.inflight.Load(), ctx.Err())
		}
	}
	b.mu.Lock()
	b.pruneLocked()
	b.mu.Unlock()
	return nil
}

// MarkDown takes the upstream with id out of rotation at once, without
// waiting: its replica died, and requests in flight to it fail (and are
// retried where safe). An unknown id is ignored: the replica is gone
// already.
func (b *Balancer) MarkDown(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if h, err := b.removeLocked(id); err == nil {
		h.client.CloseIdleConnections()
		b.pruneLocked()
	}
}

// SetPolicy switches the selection policy; requests already routed are not
// affected.
func (b *Balancer) SetPolicy(name string) error {
	p, err := newPolicy(name)
	if err != nil {
		return fmt.Errorf("set policy of group %q: %w", b.cfg.Group, err)
	}
	b.policy.Store(p)
	return nil
}

// Policy returns the name of the selection policy in force.
func (b *Balancer) Policy() string { return b.policy.Load().name }

// Group returns the group's name.
func (b *Balancer) Group() string { return b.cfg.Group }

// knownHosts returns the hosts in rotation, in the controller's order,
// then those leaving it.
func (b *Balancer) knownHosts() []*host {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*host, 0, len(b.hosts))
	listed := make(map[*host]bool, len(b.order))
	for _, id := range b.order {
		if h := b.hosts[id]; h != nil && !listed[h] {
			out = append(out, h)
			listed[h] = true
		}
	}
	for _, h := range b.hosts {
		if !listed[h] {
			out = append(out, h)
		}
	}
	return out
}

// Stats returns a snapshot of every replica's traffic: those in rotation in
// the controller's order, then those leaving it.
func (b *Balancer) Stats() []UpstreamStats {
	b.mu.Lock()
	b.pruneLocked()
	inSet := b.inSetLocked()
	type row struct {
		h     *host
		state string
		until time.Time
	}
	var rows []row
	listed := map[*host]bool{}
	add := func(h *host) {
		if listed[h] {
			return
		}
		listed[h] = true
		r := row{h: h, state: "removed"}
		if inSet[h] {
			r.state = "ready"
			if h.ejected.Load() {
				r.state, r.until = "ejected", h.ejectedUntil
			}
		}
		rows = append(rows, r)
	}
	for _, id := range b.order {
		if h := b.hosts[id]; h != nil {
			add(h)
		}
	}
	for _, h := range b.hosts {
		add(h)
	}
	b.mu.Unlock()

	sec := time.Now().Unix()
	out := make([]UpstreamStats, len(rows))
	recent := make([]uint64, len(rows))
	var sumRecent, sumTotal uint64
	for i, r := range rows {
		out[i], recent[i] = r.h.snapshot(r.state, sec)
		out[i].EjectedUntil = r.until
		sumRecent += recent[i]
		sumTotal += out[i].Requests
	}
	for i := range out {
		if sumRecent > 0 {
			out[i].Share = float64(recent[i]) / float64(sumRecent)
		}
		if sumTotal > 0 {
			out[i].TotalShare = float64(out[i].Requests) / float64(sumTotal)
		}
	}
	return out
}

// BalancerStats are the group-wide counters.
type BalancerStats struct {
	Policy        string
	Retries       uint64 // requests retried on another replica
	RetriesDenied uint64 // retries the budget refused
	Unrouted      uint64 // requests answered 503: no ready replica
	DroppedEvents uint64 // events OnEvent fell too far behind to receive
}

// Totals returns the group-wide counters.
func (b *Balancer) Totals() BalancerStats {
	return BalancerStats{
		Policy:        b.Policy(),
		Retries:       b.retries.Load(),
		RetriesDenied: b.retriesDenied.Load(),
		Unrouted:      b.unrouted.Load(),
		DroppedEvents: b.droppedEvents.Load(),
	}
}

// pick chooses a host for a request: a usable one if any, else, rather
// than refuse, one that is ejected (every replica in the set failing is the
// learner's real error to see). It returns nil only when the set is empty
// (or holds only exclude).
func (b *Balancer) pick(p *policy, hosts []*host, key []byte, exclude *host) *host {
	pc := pickCtx{key: key, exclude: exclude}
	if h := p.sel.pick(hosts, pc); h != nil {
		return h
	}
	pc.ignoreEjection = true
	return p.sel.pick(hosts, pc)
}

// recordTry feeds one try's outcome to outlier detection.
func (b *Balancer) recordTry(h *host, failed bool) {
	if !failed {
		if h.consecFails.Load() != 0 {
			h.consecFails.Store(0)
		}
		return
	}
	if b.cfg.EjectAfter < 0 {
		return
	}
	if n := h.consecFails.Add(1); int(n) >= b.cfg.EjectAfter && !h.ejected.Load() {
		b.eject(h, int(n))
	}
}

// eject takes h out of rotation for a growing interval, unless that would
// eject more than MaxEjectedPercent of the set.
func (b *Balancer) eject(h *host, fails int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || h.ejected.Load() || h.draining.Load() {
		return
	}
	cur := b.rotation.Load().hosts
	ejected, member := 0, false
	for _, x := range cur {
		if x.ejected.Load() {
			ejected++
		}
		member = member || x == h
	}
	if !member || (ejected+1)*100 > len(cur)*b.cfg.MaxEjectedPercent {
		return // keep serving: its real errors reach the client
	}
	now := time.Now()
	if !h.restoredAt.IsZero() && now.Sub(h.restoredAt) >= b.cfg.EjectMax {
		h.ejections = 0 // healthy for long enough: forgive the streak
	}
	d := b.cfg.EjectBase
	for i := 0; i < h.ejections && d < b.cfg.EjectMax; i++ {
		d *= 2
	}
	d = min(d, b.cfg.EjectMax)
	h.ejections++
	h.ejected.Store(true)
	h.ejectedUntil = now.Add(d)
	h.consecFails.Store(0)
	h.m.ejections.Add(1)
	h.ejectTimer = time.AfterFunc(d, func() { b.restore(h) })
	b.emit(Event{Time: now, Kind: EventEjected, Replica: h.up.label(), ID: h.up.ID, Until: h.ejectedUntil,
		Reason: fmt.Sprintf("%d consecutive failures; out for %s", fails, d)})
}

// restore returns h to rotation after its ejection.
func (b *Balancer) restore(h *host) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || !h.ejected.Load() {
		return
	}
	h.ejected.Store(false)
	h.ejectedUntil = time.Time{}
	h.ejectTimer = nil
	h.consecFails.Store(0)
	h.restoredAt = time.Now()
	b.emit(Event{Time: h.restoredAt, Kind: EventRestored, Replica: h.up.label(), ID: h.up.ID,
		Reason: "ejection interval elapsed"})
}

// emit queues an event without blocking; the caller holds b.mu, which keeps
// emit from racing with Close's close of b.events.
func (b *Balancer) emit(e Event) {
	if b.events == nil {
		return
	}
	e.Group = b.cfg.Group
	select {
	case b.events <- e:
	default:
		b.droppedEvents.Add(1)
	}
}

func (b *Balancer) deliverEvents() {
	defer close(b.eventsDone)
	for e := range b.events {
		b.cfg.OnEvent(e)
	}
}

package lb

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The activator: what a balancer does with a request that finds no ready
// replica when its group may sleep at zero. Instead of answering 503 it
// holds the request in a bounded queue, asks once for the group to wake,
// and releases the held requests, in arrival order, as soon as a replica
// enters rotation. Only the fasthttp path holds requests (a goroutine per
// request can wait); the event loop hands such a connection over to it.

// Activation configures the holding of requests while a group wakes.
type Activation struct {
	// Wake asks for a replica. It is called once per wait, on a goroutine
	// of its own, when the first request is held; again only after the
	// held requests were released or all gave up.
	Wake func()
	// MaxHeld bounds the requests held at once (default 1000); one more is
	// answered 503 with Retry-After.
	MaxHeld int
	// HoldTimeout bounds how long one request is held (default 30s); then
	// it is answered 503 with Retry-After.
	HoldTimeout time.Duration
	// OnHeld, if set, is told of every request that was held, once it was
	// answered. It runs on the data path: it must be quick.
	OnHeld func(HeldRequest)
}

// Activation defaults.
const (
	DefaultMaxHeld     = 1000
	DefaultHoldTimeout = 30 * time.Second
)

// HeldRequest is the timeline of one request that waited for a replica.
type HeldRequest struct {
	Arrived  time.Time // held at the balancer
	Released time.Time // a replica entered rotation; zero if none did in time
	Answered time.Time // the answer was ready to send
	Status   int       // the answer's status
}

// activator is a balancer's queue of held requests.
type activator struct {
	cfg Activation

	mu     sync.Mutex
	queue  []*waiter
	waking bool // Wake was called and the queue not released since

	wakes   atomic.Uint64
	refused atomic.Uint64
}

// waiter is one held request.
type waiter struct {
	ready    chan struct{} // closed on release
	arrived  time.Time
	released time.Time // set before ready is closed
}

// SetActivation makes the balancer hold requests that find no ready
// replica, as a describes; nil turns holding off, and requests held then
// are answered 503 at once.
func (b *Balancer) SetActivation(a *Activation) {
	b.actMu.Lock()
	defer b.actMu.Unlock()
	old := b.act.Load()
	if a == nil {
		b.act.Store(nil)
		if old != nil {
			old.releaseAll(time.Time{})
		}
		return
	}
	cfg := *a
	if cfg.MaxHeld <= 0 {
		cfg.MaxHeld = DefaultMaxHeld
	}
	if cfg.HoldTimeout <= 0 {
		cfg.HoldTimeout = DefaultHoldTimeout
	}
	if cfg.Wake == nil {
		cfg.Wake = func() {}
	}
	if old != nil {
		old.mu.Lock()
		old.cfg = cfg
		old.mu.Unlock()
		return
	}
	b.act.Store(&activator{cfg: cfg})
}

// holding reports whether a request now would be held: the balancer holds
// requests and no replica is in rotation.
func (b *Balancer) holding() bool {
	return b.act.Load() != nil && len(b.rotation.Load().hosts) == 0
}

// hold holds a request that found no replica until one enters rotation.
// It returns the waiter (nil if it was not held because a replica came
// meanwhile) or, when the request may not wait, the 503 to answer.
func (b *Balancer) hold(a *activator) (w *waiter, code int, body []byte) {
	a.mu.Lock()
	if len(b.rotation.Load().hosts) > 0 {
		a.mu.Unlock()
		return nil, 0, nil
	}
	cfg := a.cfg
	if len(a.queue) >= cfg.MaxHeld {
		a.mu.Unlock()
		a.refused.Add(1)
		return nil, 503, errorBody(fmt.Sprintf("group %s is waking and already holds %d requests; try again", b.cfg.Group, cfg.MaxHeld))
	}
	w = &waiter{ready: make(chan struct{}), arrived: time.Now()}
	a.queue = append(a.queue, w)
	if !a.waking {
		a.waking = true
		a.wakes.Add(1)
		go cfg.Wake()
	}
	a.mu.Unlock()

	t := time.NewTimer(cfg.HoldTimeout)
	defer t.Stop()
	select {
	case <-w.ready:
	case <-t.C:
		a.mu.Lock()
		gone := a.drop(w)
		a.mu.Unlock()
		if gone { // released meanwhile after all
			<-w.ready
		}
	}
	b.busyNanos.Add(int64(time.Since(w.arrived)))
	if w.released.IsZero() {
		a.refused.Add(1)
		return w, 503, errorBody(fmt.Sprintf("no replica of group %s became ready within %s; try again", b.cfg.Group, cfg.HoldTimeout))
	}
	return w, 0, nil
}

// drop takes w out of the queue, and reports false if it is not there
// (it was released). A queue left empty ends the wait: the next held
// request asks to wake again. Called with a.mu held.
func (a *activator) drop(w *waiter) bool {
	for i, x := range a.queue {
		if x == w {
			a.queue = append(a.queue[:i], a.queue[i+1:]...)
			if len(a.queue) == 0 {
				a.waking = false
			}
			return false
		}
	}
	return true
}

// releaseAll lets every held request go, in arrival order: at when a
// replica entered rotation, or zero when none did (holding was turned off
// or the balancer closes).
func (a *activator) releaseAll(at time.Time) {
	a.mu.Lock()
	q := a.queue
	a.queue, a.waking = nil, false
	a.mu.Unlock()
	for _, w := range q {
		w.released = at
		close(w.ready)
	}
}

// heldCount is the number of requests held now.
func (a *activator) heldCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.queue)
}

// retryAfterSeconds is the Retry-After of a 503 for a held request.
var retryAfterSeconds = strconv.Itoa(1)

// Load is what a balancer carries, for an autoscaler.
type Load struct {
	// InFlight are the tries in flight to replicas now; Held the requests
	// held now, waiting for a replica.
	InFlight int64 `json:"inFlight"`
	Held     int   `json:"held"`
	// Arrived counts requests since the balancer started.
	Arrived uint64 `json:"arrived"`
	// Busy is the request time carried since the balancer started: every
	// try's duration plus the time requests were held. Its growth over an
	// interval, divided by the interval, is the average concurrency.
	Busy time.Duration `json:"busyNs"`
	// Wakes counts the waits that asked for a replica; Refused the held
	// requests answered 503 (queue full, or no replica in time).
	Wakes   uint64 `json:"wakes"`
	Refused uint64 `json:"refused"`
}

// Load returns what the balancer carries now and has carried.
func (b *Balancer) Load() Load {
	l := Load{Arrived: b.arrived.Load(), Busy: time.Duration(b.busyNanos.Load())}
	b.mu.Lock()
	for _, h := range b.hosts {
		l.InFlight += h.inflight.Load()
	}
	b.mu.Unlock()
	if a := b.act.Load(); a != nil {
		l.Held = a.heldCount()
		l.Wakes = a.wakes.Load()
		l.Refused = a.refused.Load()
	}
	return l
}

// countArrival counts an arriving request: in the retry budget's window and in
// Load.
func (b *Balancer) countArrival(sec int64) {
	b.budget.request(sec)
	b.arrived.Add(1)
}

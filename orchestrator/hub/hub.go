// Package hub fans Flotilla's events out to subscribers such as the
// dashboard's websockets.
//
// Delivery rules:
//   - One goroutine owns the subscribers; Publish hands an event to it over
//     a buffered channel and never blocks. If that channel is full the event
//     is counted as lost and every subscriber is told to resync.
//   - Every event gets the next sequence number, so a subscriber sees events
//     in publish order with no gaps, or learns that it missed some.
//   - Each subscriber has a bounded buffer. A subscriber whose buffer is full
//     is dropped: its channel is closed and Dropped reports it. It is never
//     waited for, so one slow reader cannot slow the others or the
//     controller. A dropped subscriber comes back by subscribing again and
//     starting from a fresh snapshot.
//   - Close closes every subscriber's channel.
//
// The hub keeps the last few events so a new subscriber's snapshot can show
// recent history.
package hub

import (
	"sync"
	"sync/atomic"
	"time"
)

// Event kinds.
const (
	ReplicaCreated    = "replica.created"
	ReplicaStarted    = "replica.started"
	ReplicaReady      = "replica.ready"
	ReplicaUnready    = "replica.unready"   // failing readiness: out of rotation, kept
	ReplicaUnhealthy  = "replica.unhealthy" // failing liveness: replaced after a grace period
	ReplicaLive       = "replica.live"      // answers its liveness probe again
	ReplicaPaused     = "replica.paused"
	ReplicaUnpaused   = "replica.unpaused"
	ReplicaDied       = "replica.died"
	ReplicaRemoved    = "replica.removed"
	GroupCreated      = "group.created"
	GroupUpdated      = "group.updated"
	GroupScaled       = "group.scaled"
	GroupDeleted      = "group.deleted"
	GroupCrashLoop    = "group.crash-loop"
	BalancerEjected   = "balancer.ejected"
	BalancerRestored  = "balancer.restored"
	BalancerPolicy    = "balancer.policy"
	LoadStarted       = "load.started"
	LoadFinished      = "load.finished"
	ScenarioApplied   = "scenario.applied"
	FaultInjected     = "fault.injected"
	FaultReverted     = "fault.reverted"
	BusDeadLetter     = "bus.dead-letter"      // a consumer gave up on a message
	BusReplayed       = "bus.replayed"         // a dead letter was published again
	AutoscaleScaled   = "autoscale.scaled"     // the autoscaler chose a new count, with its reason
	AutoscaleWake     = "autoscale.wake"       // a request or a message woke a group at zero
	AutoscaleCold     = "autoscale.cold-start" // a woken group answered its first held request: the timeline
	AutoscalePool     = "autoscale.pool"       // a replica went into or out of the warm pool
	RolloutStarted    = "rollout.started"      // a template change began to reach the replicas
	RolloutStep       = "rollout.step"         // a canary step, a blue-green switch, a pause or resume
	RolloutComplete   = "rollout.complete"     // every replica runs the new revision
	RolloutFailed     = "rollout.failed"       // past its deadline or its error threshold
	RolloutRolledBack = "rollout.rolled-back"  // back to an earlier revision, by hand or automatically
	NodeChanged       = "node.changed"         // a node joined, left, or changed state or availability
	NodeAvailability  = "node.availability"    // a node was set active, paused or drained on request
)

// Event is one thing that happened, for people to read.
type Event struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Group   string    `json:"group,omitempty"`
	Replica string    `json:"replica,omitempty"`
	ID      string    `json:"id,omitempty"`
	Message string    `json:"message"`
}

// Options size the hub.
type Options struct {
	// Buffer is each subscriber's buffer, in events (default 256).
	Buffer int
	// History is how many recent events Recent returns (default 200).
	History int
}

// Hub is the event fan-out.
type Hub struct {
	opt     Options
	in      chan Event
	subs    chan *Subscription
	unsubs  chan *Subscription
	done    chan struct{}
	stopped chan struct{}

	seq         atomic.Uint64
	lost        atomic.Uint64
	dropped     atomic.Uint64
	subscribers atomic.Int64

	mu      sync.Mutex
	history []Event
}

// Subscription receives events on C until it is cancelled or dropped.
type Subscription struct {
	// C delivers events in order. It is closed when the subscriber is
	// dropped (it fell behind), cancelled, or the hub closes.
	C       <-chan Event
	c       chan Event
	dropped atomic.Bool
	hub     *Hub
	once    sync.Once
}

// Dropped reports whether the hub dropped this subscriber for falling behind.
func (s *Subscription) Dropped() bool { return s.dropped.Load() }

// Cancel ends the subscription; C is closed soon after.
func (s *Subscription) Cancel() {
	s.once.Do(func() {
		select {
		case s.hub.unsubs <- s:
		case <-s.hub.stopped:
		}
	})
}

// New starts a hub.
func New(opt Options) *Hub {
	if opt.Buffer <= 0 {
		opt.Buffer = 256
	}
	if opt.History <= 0 {
		opt.History = 200
	}
	h := &Hub{
		opt:     opt,
		in:      make(chan Event, 4096),
		subs:    make(chan *Subscription),
		unsubs:  make(chan *Subscription),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go h.loop()
	return h
}

// Publish sends e to every subscriber; it never blocks. Seq and Time are
// set here (Time only if zero).
func (h *Hub) Publish(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	select {
	case <-h.stopped:
		return
	default:
	}
	h.mu.Lock()
	e.Seq = h.seq.Add(1)
	h.history = append(h.history, e)
	if len(h.history) > h.opt.History {
		h.history = h.history[len(h.history)-h.opt.History:]
	}
	// Enqueue under the lock so the loop sees events in sequence order.
	select {
	case h.in <- e:
	default:
		h.lost.Add(1)
	}
	h.mu.Unlock()
}

// Subscribe returns a new subscription. Events published after it returns
// are delivered; use Recent and a snapshot of state for what came before.
func (h *Hub) Subscribe() *Subscription {
	c := make(chan Event, h.opt.Buffer)
	s := &Subscription{C: c, c: c, hub: h}
	select {
	case h.subs <- s:
	case <-h.stopped:
		close(c)
	}
	return s
}

// Recent returns up to History recent events, oldest first.
func (h *Hub) Recent() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.history...)
}

// Seq is the sequence number of the last published event.
func (h *Hub) Seq() uint64 { return h.seq.Load() }

// Stats are the hub's counters.
type Stats struct {
	Subscribers int    `json:"subscribers"`
	Dropped     uint64 `json:"dropped"` // subscribers dropped for falling behind
	Lost        uint64 `json:"lost"`    // events the hub itself could not take
}

// Stats returns the hub's counters; Subscribers is sampled by the loop.
func (h *Hub) Stats() Stats {
	return Stats{Subscribers: int(h.subscribers.Load()), Dropped: h.dropped.Load(), Lost: h.lost.Load()}
}

// Close stops the hub and closes every subscription.
func (h *Hub) Close() {
	select {
	case <-h.done:
		return
	default:
		close(h.done)
	}
	<-h.stopped
}

func (h *Hub) loop() {
	subs := map[*Subscription]bool{}
	var last uint64
	drop := func(s *Subscription) {
		s.dropped.Store(true)
		delete(subs, s)
		close(s.c)
		h.dropped.Add(1)
	}
	defer func() {
		for s := range subs {
			close(s.c)
		}
		h.subscribers.Store(0)
		close(h.stopped)
	}()
	for {
		select {
		case <-h.done:
			return
		case s := <-h.subs:
			subs[s] = true
		case s := <-h.unsubs:
			if subs[s] {
				delete(subs, s)
				close(s.c)
			}
		case e := <-h.in:
			if last != 0 && e.Seq != last+1 {
				// Events were lost on the way in: nobody's view is whole.
				for s := range subs {
					drop(s)
				}
			}
			last = e.Seq
			for s := range subs {
				select {
				case s.c <- e:
				default:
					drop(s)
				}
			}
		}
		h.subscribers.Store(int64(len(subs)))
	}
}

// Package consume is the subscriber side of the shop's bus: one service's
// pull loop on its durable consumer, and the idempotent processing that the
// loop and the synchronous POST /events share.
//
// The replicas of a service share its durable consumer (package access), so
// the server gives each message to one of them: competing consumers. A
// replica works on at most pullWindow (8) messages at once and asks for no
// more, so the rest wait in the stream, not in a replica that may be busy or
// about to die.
//
// Delivery is at least once. A message is acknowledged only once it was
// applied or found already applied. One that fails is negatively
// acknowledged with a growing delay (Backoff: 100 ms, doubling), so a
// failing message is retried a few times over a few seconds; after the
// consumer's MaxDeliver attempts the server gives up on it and publishes its
// max-deliveries advisory, which the bus keeps as a dead letter. A message
// whose ack never arrives (its replica was killed mid-work) is delivered
// again after the consumer's AckWait, to whichever replica asks.
//
// Idempotency is keyed on the event ID (header access.EventIDHeader), per
// service, in a Ledger. Processing an event that may have been applied (a
// redelivery, or one posted to /events) checks the ledger first (a duplicate
// is acknowledged and counted, never applied); every event then has the
// service's work done and is recorded in the ledger, atomically: only the
// replica whose record lands applies the event's effect, and one whose
// record finds the event there counts a duplicate. On the bus the ledger is the service's
// key-value bucket (access.AppliedBucket), shared by its replicas, because
// a redelivery may reach a replica other than the one that applied the
// event. A replica killed after its record landed and before its ack got
// through leaves a redelivery that every replica then counts as a
// duplicate.
package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/sample-services/bus/access"
)

// Event is one event to process, from the bus or from POST /events.
type Event struct {
	// ID is the event's stable ID, header access.EventIDHeader.
	ID      string
	Subject string
	Data    []byte
	// Delivery counts the bus's attempts at it, 1 for the first; 0 for an
	// event that did not come from the bus.
	Delivery uint64
}

// Handler does the work of one event and returns what applies its effect;
// apply runs only after the event is recorded as applied, so it runs once
// per event for the whole service. An error fails this attempt; a
// malformed event should wrap ErrBadEvent.
type Handler func(ctx context.Context, ev Event) (apply func(), err error)

// ErrBadEvent marks an event that can never be applied (a body that does
// not parse, a missing ID): POST /events answers 400; on the bus it is
// retried like any failure and ends as a dead letter, where a learner sees
// it.
var ErrBadEvent = errors.New("bad event")

// ErrPoisoned is the failure a poison fault injects.
var ErrPoisoned = errors.New("poisoned by an injected fault")

// Faults are the faults a subscriber can be given (package faults of the
// shop): both may be nil.
type Faults struct {
	// Poisoned reports whether ev must fail (a poison fault).
	Poisoned func(ev Event) bool
	// Delay is how long each event takes before it is processed (a
	// slow-consumer fault).
	Delay func() time.Duration
}

// Outcome is what processing one event did.
type Outcome int

// Outcomes of Process.
const (
	Applied Outcome = iota
	Duplicate
)

// Processor processes one service's events idempotently and counts what it
// did. Its methods are safe for concurrent use.
type Processor struct {
	service, replica string
	ledger           Ledger
	handle           Handler
	faults           Faults

	applied, duplicates, failed atomic.Uint64

	mu        sync.Mutex
	lastEvent string
	lastError string
}

// NewProcessor returns the processor of service's events in replica, which
// records applied events in ledger and does their work with handle.
func NewProcessor(service, replica string, ledger Ledger, handle Handler, faults Faults) *Processor {
	return &Processor{service: service, replica: replica, ledger: ledger, handle: handle, faults: faults}
}

// SetLedger replaces the ledger: a replica starts on its own memory and
// moves to the service's bucket once the bus answers.
func (p *Processor) SetLedger(l Ledger) {
	p.mu.Lock()
	p.ledger = l
	p.mu.Unlock()
}

func (p *Processor) currentLedger() Ledger {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ledger
}

// Process processes ev once: Duplicate if the service applied it already
// (acknowledge it), Applied if this call applied it, or an error if this
// attempt failed (try again later).
func (p *Processor) Process(ctx context.Context, ev Event) (Outcome, error) {
	out, err := p.process(ctx, ev)
	switch {
	case err != nil:
		p.failed.Add(1)
		p.mu.Lock()
		p.lastError = fmt.Sprintf("event %q: %v", ev.ID, err)
		p.mu.Unlock()
	case out == Duplicate:
		p.duplicates.Add(1)
	default:
		p.applied.Add(1)
		p.mu.Lock()
		p.lastEvent = ev.ID
		p.mu.Unlock()
	}
	return out, err
}

func (p *Processor) process(ctx context.Context, ev Event) (Outcome, error) {
	if ev.ID == "" {
		return 0, fmt.Errorf("%w: no event ID (header Flotilla-Event-Id)", ErrBadEvent)
	}
	if p.faults.Delay != nil {
		if d := p.faults.Delay(); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return 0, ctx.Err()
			}
		}
	}
	ledger := p.currentLedger()
	// A first delivery from the bus is almost never applied yet: it skips
	// the read and lets the record say so, saving a round trip per event.
	// The rare exception (a replay, or a publisher's repeat past the
	// stream's duplicate window) then does its work for nothing, but its
	// record fails and it is counted as a duplicate, never applied twice.
	if ev.Delivery != 1 {
		seen, err := ledger.Applied(ctx, ev.ID)
		if err != nil {
			return 0, fmt.Errorf("read the applied events: %w", err)
		}
		if seen {
			return Duplicate, nil
		}
	}
	if p.faults.Poisoned != nil && p.faults.Poisoned(ev) {
		return 0, ErrPoisoned
	}
	apply, err := p.handle(ctx, ev)
	if err != nil {
		return 0, err
	}
	switch err := ledger.Record(ctx, ev.ID, p.replica); {
	case errors.Is(err, ErrDuplicate):
		return Duplicate, nil // another replica applied it meanwhile
	case err != nil:
		return 0, fmt.Errorf("record the event as applied: %w", err)
	}
	if apply != nil {
		apply()
	}
	return Applied, nil
}

// Counts are a processor's figures, the core of GET /stats.
type Counts struct {
	Service string `json:"service"`
	Replica string `json:"replica"`
	// Version is the release the replica runs, when its service says.
	Version string `json:"version,omitempty"`
	// Applied, Duplicates and Failed count this replica's processing:
	// events applied, events found already applied (acknowledged, not
	// applied again) and failed attempts. Summed over a service's replicas,
	// Applied is the number of events the service applied.
	Applied     uint64 `json:"applied"`
	Duplicates  uint64 `json:"duplicates"`
	Failed      uint64 `json:"failed"`
	LastEventID string `json:"lastEventId"`
	LastError   string `json:"lastError,omitempty"`
	// Ledger is where applied events are recorded ("bucket applied_x" or
	// "memory"), and LedgerCount how many it holds: the events the whole
	// service applied, over every replica past and present; -1 if the
	// ledger did not answer.
	Ledger      string `json:"ledger"`
	LedgerCount int64  `json:"ledgerCount"`
}

// Counts returns the processor's figures.
func (p *Processor) Counts(ctx context.Context) Counts {
	p.mu.Lock()
	c := Counts{Service: p.service, Replica: p.replica, LastEventID: p.lastEvent, LastError: p.lastError, Ledger: p.ledger.String()}
	ledger := p.ledger
	p.mu.Unlock()
	c.Applied, c.Duplicates, c.Failed = p.applied.Load(), p.duplicates.Load(), p.failed.Load()
	c.LedgerCount = -1
	if n, err := ledger.Count(ctx); err == nil {
		c.LedgerCount = int64(n)
	}
	return c
}

// Backoff is the delay before the bus offers a failed message again, after
// its delivery-th attempt: 100 ms doubling, at most 5 s. With MaxDeliver 5
// a poison message is given up on about 3 s after it first arrived.
func Backoff(delivery uint64) time.Duration {
	if delivery < 1 {
		delivery = 1
	}
	if delivery > 7 {
		return 5 * time.Second
	}
	return min(100*time.Millisecond<<(delivery-1), 5*time.Second)
}

// Loop pulls one service's messages from its durable consumer and
// processes them.
type Loop struct {
	// Conn and JS are the service's connection to the bus.
	Conn *nats.Conn
	JS   jetstream.JetStream
	// Stream and Durable name the consumer.
	Stream, Durable string
	Processor       *Processor
	Log             *slog.Logger
	// Backoff overrides the package's Backoff, for tests.
	Backoff func(delivery uint64) time.Duration

	bound    atomic.Bool
	bindErr  atomic.Pointer[string]
	ackWait  atomic.Int64 // the consumer's AckWait, for the in-progress beats
	inFlight atomic.Int64
}

// Ready reports whether the loop can take messages: connected to the bus
// with its consumer bound; else why not.
func (l *Loop) Ready() (bool, string) {
	if l.Conn == nil {
		return false, "no connection to the bus"
	}
	if st := l.Conn.Status(); st != nats.CONNECTED {
		return false, "not connected to the bus (" + st.String() + ")"
	}
	if !l.bound.Load() {
		why := "consumer " + l.Stream + "/" + l.Durable + " not bound yet"
		if e := l.bindErr.Load(); e != nil {
			why += ": " + *e
		}
		return false, why
	}
	return true, ""
}

// Bound reports whether the consumer is bound.
func (l *Loop) Bound() bool { return l.bound.Load() }

// Run binds the consumer, retrying until it exists and the bus answers,
// then processes messages, pullWindow at a time, until ctx ends.
func (l *Loop) Run(ctx context.Context) error {
	if l.Log == nil {
		l.Log = slog.New(slog.DiscardHandler)
	}
	for wait := 100 * time.Millisecond; ctx.Err() == nil; wait = min(wait*2, 2*time.Second) {
		cons, err := l.bind(ctx)
		if err != nil {
			msg := err.Error()
			l.bindErr.Store(&msg)
			l.Log.Warn("bind consumer", "stream", l.Stream, "consumer", l.Durable, "err", err)
			sleep(ctx, wait)
			continue
		}
		wait = 100 * time.Millisecond
		l.bound.Store(true)
		err = l.pull(ctx, cons)
		l.bound.Store(false)
		if ctx.Err() != nil {
			break
		}
		msg := err.Error()
		l.bindErr.Store(&msg)
		l.Log.Warn("consumer lost; binding again", "consumer", l.Durable, "err", err)
		sleep(ctx, wait)
	}
	return ctx.Err()
}

func (l *Loop) bind(ctx context.Context) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cons, err := l.JS.Consumer(ctx, l.Stream, l.Durable)
	if err != nil {
		return nil, fmt.Errorf("consumer %s of %s: %w", l.Durable, l.Stream, err)
	}
	l.ackWait.Store(int64(cons.CachedInfo().Config.AckWait))
	return cons, nil
}

// pullWindow is how many messages one replica works on at once. One at a
// time, each message waits for the last one's ledger round trip and its
// ack: the bus then delivers a few thousand a second to a service. A
// window keeps that many in flight, each still acknowledged on its own, so
// a killed replica loses at most that many to the ack wait.
const pullWindow = 8

// pull takes messages until ctx ends or the consumer goes away, working on
// up to pullWindow of them at once.
func (l *Loop) pull(ctx context.Context, cons jetstream.Consumer) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(pullWindow))
	if err != nil {
		return err
	}
	defer it.Stop()
	sem := make(chan struct{}, pullWindow)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrBadRequest) {
				return err
			}
			l.Log.Debug("pull", "err", err)
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			l.handle(ctx, m)
		})
	}
}

// handle processes one message and acknowledges it, or asks for it again
// later. While it works it tells the server so every third of the ack wait,
// so a slow but living replica keeps its message.
func (l *Loop) handle(ctx context.Context, m jetstream.Msg) {
	l.inFlight.Add(1)
	defer l.inFlight.Add(-1)
	ev := Event{ID: m.Headers().Get(access.EventIDHeader), Subject: m.Subject(), Data: m.Data()}
	if md, err := m.Metadata(); err == nil {
		ev.Delivery = md.NumDelivered
	}
	stop := l.beat(m)
	_, err := l.Processor.Process(ctx, ev)
	stop()
	if err == nil {
		if err := m.Ack(); err != nil {
			l.Log.Warn("ack", "event", ev.ID, "err", err)
		}
		return
	}
	backoff := l.Backoff
	if backoff == nil {
		backoff = Backoff
	}
	l.Log.Info("event failed; asking for it again", "event", ev.ID, "delivery", ev.Delivery, "err", err)
	if err := m.NakWithDelay(backoff(ev.Delivery)); err != nil {
		l.Log.Warn("nak", "event", ev.ID, "err", err)
	}
}

// beat sends in-progress acks every third of the ack wait until stopped.
func (l *Loop) beat(m jetstream.Msg) (stop func()) {
	every := time.Duration(l.ackWait.Load()) / 3
	if every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

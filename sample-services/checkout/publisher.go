package checkout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/bus/client"
	"github.com/flotilla/flotilla/sample-services/orders"
)

// Bus is what the publisher needs of its connection to the bus
// (*client.Client).
type Bus interface {
	// PublishMsg publishes m with Nats-Msg-Id msgID and waits for the
	// stream's ack.
	PublishMsg(ctx context.Context, m *nats.Msg, msgID string) (*jetstream.PubAck, error)
	// Connected reports whether the connection is up now.
	Connected() bool
}

// Conn adapts a bus client to Bus.
type Conn struct{ *client.Client }

// Connected reports whether the client's connection is up.
func (c Conn) Connected() bool { return c.Conn.IsConnected() }

// PublisherOptions bound the publisher; zero fields take the defaults.
type PublisherOptions struct {
	// Timeout bounds the wait for one publish's ack; default 2s.
	Timeout time.Duration
	// OutboxSize bounds the messages waiting for the bus; default 10000
	// (two per order). A full outbox refuses checkouts (503) before
	// placing anything, so no placed order's events are thrown away for
	// lack of room.
	OutboxSize int
	// OutboxAge bounds how long a message waits for the bus; default 10
	// minutes. An older one is dropped, with an error in the log naming
	// the order: the time bound is where the outbox stops promising.
	OutboxAge time.Duration
	// RetryMax is the longest wait between two attempts at the outbox;
	// default 2s. The first waits 100ms, each next one twice as long.
	RetryMax time.Duration
}

func (o PublisherOptions) withDefaults() PublisherOptions {
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	if o.OutboxSize == 0 {
		o.OutboxSize = 10000
	}
	if o.OutboxAge == 0 {
		o.OutboxAge = 10 * time.Minute
	}
	if o.RetryMax == 0 {
		o.RetryMax = 2 * time.Second
	}
	return o
}

// ErrOutboxFull means the bus has been unreachable long enough to fill
// the outbox; it wraps ErrUnavailable.
var ErrOutboxFull = fmt.Errorf("%w: the bus is unreachable and the outbox of events waiting for it is full", ErrUnavailable)

// Publisher is the event-driven way (setting events=bus): each order is
// published to orders.placed (for notifications, inventory and analytics)
// and its job to orders.fulfill (for fulfillment), both with header
// Flotilla-Event-Id and Nats-Msg-Id set to the order's ID, and checkout
// waits only for the stream's ack, never for a subscriber.
//
// If the bus cannot be reached the order is still placed: its messages
// wait in an outbox in memory, bounded in size and age, and are published
// oldest first as soon as the bus answers again (tried at most RetryMax
// apart); while the outbox holds anything, new messages queue behind it,
// so an order's event never overtakes an earlier one that waits. (Orders
// placed at the same instant have no order among them to keep.) A retried message keeps its Nats-Msg-Id, so one whose first
// ack was lost is dropped by the stream as a duplicate (within the
// stream's window, 2 minutes; after that the subscribers' idempotency
// catches it). The outbox lives in this process: a replica killed while
// it holds messages loses them. That is the limit of an outbox in memory;
// a durable outbox would be written in the same transaction as the order.
type Publisher struct {
	bus Bus
	opt PublisherOptions
	log *slog.Logger

	mu     sync.Mutex
	outbox []pending // oldest first
	wake   chan struct{}

	published, duplicates, queued, dropped atomic.Int64
	lastErr                                atomic.Pointer[string]
}

// pending is one message waiting in the outbox.
type pending struct {
	msg     *nats.Msg
	id      string // event ID, Nats-Msg-Id
	queued  time.Time
	lastErr error
}

// NewPublisher publishes on bus; Run drains its outbox.
func NewPublisher(bus Bus, opt PublisherOptions, log *slog.Logger) *Publisher {
	if log == nil {
		log = slog.Default()
	}
	return &Publisher{bus: bus, opt: opt.withDefaults(), log: log, wake: make(chan struct{}, 1)}
}

// Admit refuses a checkout when the outbox has no room for an order's two
// messages.
func (p *Publisher) Admit() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.outbox)+2 > p.opt.OutboxSize {
		return ErrOutboxFull
	}
	return nil
}

// Placed publishes o's event and job. It fails only for what retrying
// cannot mend (a refused subject, an oversized message) or a full outbox.
func (p *Publisher) Placed(ctx context.Context, o orders.Order) error {
	event, err := json.Marshal(PlacedEvent(o))
	if err != nil {
		return err
	}
	job, err := json.Marshal(Job(o))
	if err != nil {
		return err
	}
	for _, m := range []*nats.Msg{message(access.SubjectOrderPlaced, o.ID, event), message(access.SubjectOrderFulfill, o.ID, job)} {
		if err := p.send(ctx, m, o.ID); err != nil {
			return fmt.Errorf("bus: %w", err)
		}
	}
	return nil
}

func message(subject, id string, body []byte) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Header.Set(HeaderEventID, id)
	m.Data = body
	return m
}

// send publishes m now if the bus is up and nothing waits before it, else
// puts it in the outbox.
func (p *Publisher) send(ctx context.Context, m *nats.Msg, id string) error {
	p.mu.Lock()
	behind := len(p.outbox) > 0
	p.mu.Unlock()
	if !behind && p.bus.Connected() {
		err := p.publish(ctx, m, id)
		if err == nil || permanent(err) {
			return err
		}
		return p.enqueue(pending{msg: m, id: id, queued: time.Now(), lastErr: err})
	}
	return p.enqueue(pending{msg: m, id: id, queued: time.Now(), lastErr: errors.New("the bus is not connected")})
}

func (p *Publisher) publish(ctx context.Context, m *nats.Msg, id string) error {
	ctx, cancel := context.WithTimeout(ctx, p.opt.Timeout)
	defer cancel()
	ack, err := p.bus.PublishMsg(ctx, m, id)
	if err != nil {
		msg := err.Error()
		p.lastErr.Store(&msg)
		return err
	}
	p.published.Add(1)
	if ack.Duplicate {
		p.duplicates.Add(1)
	}
	return nil
}

// permanent reports errors that no retry mends.
func permanent(err error) bool {
	return errors.Is(err, client.ErrForbidden) || errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject)
}

func (p *Publisher) enqueue(e pending) error {
	p.mu.Lock()
	if len(p.outbox) >= p.opt.OutboxSize {
		p.mu.Unlock()
		p.log.Error("event lost: the bus is unreachable and the outbox is full", "event", e.id, "subject", e.msg.Subject, "size", p.opt.OutboxSize)
		return ErrOutboxFull
	}
	p.outbox = append(p.outbox, e)
	n := len(p.outbox)
	p.mu.Unlock()
	p.queued.Add(1)
	if n == 1 {
		p.log.Warn("bus unreachable: events wait in the outbox and are retried; orders are still placed",
			"event", e.id, "subject", e.msg.Subject, "err", e.lastErr)
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run drains the outbox until ctx ends.
func (p *Publisher) Run(ctx context.Context) {
	wait := 100 * time.Millisecond
	for {
		if p.drain(ctx) {
			wait = 100 * time.Millisecond
			select {
			case <-ctx.Done():
				return
			case <-p.wake:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, p.opt.RetryMax)
	}
}

// drain publishes the outbox oldest first, dropping what is too old; it
// reports whether it emptied the outbox.
func (p *Publisher) drain(ctx context.Context) bool {
	sent := 0
	for {
		p.mu.Lock()
		if len(p.outbox) == 0 {
			p.mu.Unlock()
			if sent > 0 {
				p.log.Info("bus reachable again: the outbox is drained", "published", sent)
			}
			return true
		}
		e := p.outbox[0]
		p.mu.Unlock()

		if age := time.Since(e.queued); age > p.opt.OutboxAge {
			p.pop()
			p.dropped.Add(1)
			p.log.Error("event lost: it waited for the bus longer than the outbox keeps one",
				"event", e.id, "subject", e.msg.Subject, "waited", age.Round(time.Second), "lastErr", e.lastErr)
			continue
		}
		if !p.bus.Connected() {
			return false
		}
		err := p.publish(ctx, e.msg, e.id)
		switch {
		case err == nil:
			p.pop()
			sent++
		case permanent(err):
			p.pop()
			p.dropped.Add(1)
			p.log.Error("event lost: the bus refuses it", "event", e.id, "subject", e.msg.Subject, "err", err)
		default:
			p.mu.Lock()
			if len(p.outbox) > 0 {
				p.outbox[0].lastErr = err
			}
			p.mu.Unlock()
			return false
		}
	}
}

func (p *Publisher) pop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outbox[0] = pending{}
	p.outbox = p.outbox[1:]
}

// Flush tries to empty the outbox before ctx ends (a replica shutting
// down), and logs what it could not publish.
func (p *Publisher) Flush(ctx context.Context) {
	for !p.drain(ctx) {
		select {
		case <-ctx.Done():
			p.mu.Lock()
			n := len(p.outbox)
			p.mu.Unlock()
			p.log.Error("events lost: the replica stops with events the bus did not take", "lost", n)
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Health is nil while the bus is connected and the outbox empty, else
// says how it stands; checkout is ready either way (see shop's readiness).
func (p *Publisher) Health(context.Context) error {
	p.mu.Lock()
	n := len(p.outbox)
	p.mu.Unlock()
	switch {
	case !p.bus.Connected():
		return fmt.Errorf("not connected; %d events wait in the outbox", n)
	case n > 0:
		return fmt.Errorf("connected; %d events wait in the outbox", n)
	}
	return nil
}

// BusStats is GET /checkout/events in bus mode.
type BusStats struct {
	Mode      string `json:"mode"` // "bus"
	Connected bool   `json:"connected"`
	// Published counts messages the bus acked (two per order), Duplicates
	// those of them it had already (a retry whose first ack was lost).
	Published  int64 `json:"published"`
	Duplicates int64 `json:"duplicates"`
	// Queued counts messages that went through the outbox; Outbox is how
	// many wait there now; Dropped, those given up (too old or refused).
	Queued    int64  `json:"queued"`
	Outbox    int    `json:"outbox"`
	Dropped   int64  `json:"dropped"`
	LastError string `json:"lastError,omitempty"`
}

// Stats counts what was published, queued and lost.
func (p *Publisher) Stats() any {
	p.mu.Lock()
	n := len(p.outbox)
	p.mu.Unlock()
	st := BusStats{Mode: "bus", Connected: p.bus.Connected(), Published: p.published.Load(), Duplicates: p.duplicates.Load(),
		Queued: p.queued.Load(), Outbox: n, Dropped: p.dropped.Load()}
	if e := p.lastErr.Load(); e != nil {
		st.LastError = *e
	}
	return st
}

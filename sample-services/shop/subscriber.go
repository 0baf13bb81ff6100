package shop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flotilla/flotilla/sample-services/analytics"
	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/bus/client"
	"github.com/flotilla/flotilla/sample-services/bus/consume"
	"github.com/flotilla/flotilla/sample-services/fulfillment"
	"github.com/flotilla/flotilla/sample-services/inventory"
	"github.com/flotilla/flotilla/sample-services/notifications"
	"github.com/flotilla/flotilla/sample-services/receipt"
)

// subscribers are the roles that take the shop's events from the bus,
// each with its own durable consumer (package access).
var subscribers = access.Shop.Subscribers()

// Subscribers returns the subscriber roles, which take faults of their
// own (poison, slowMs) under their names.
func Subscribers() []string { return append([]string(nil), subscribers...) }

// feature is a subscriber's own part: its work on one event and its pages.
type feature interface {
	Handle(ctx context.Context, ev consume.Event) (func(), error)
	Register(mux *http.ServeMux)
}

func newFeature(role string) feature {
	switch role {
	case "notifications":
		return notifications.New()
	case "inventory":
		return inventory.New()
	case "analytics":
		return analytics.New()
	case "fulfillment":
		return fulfillment.New(0)
	}
	return nil
}

// statsFeature is a feature that adds figures of its own to GET /stats.
type statsFeature interface {
	Stats(consume.Stats) any
}

// service is the subscriber service of role, its events processed by f.
// Its processor remembers what it applied in the replica's memory until
// given a ledger on the bus.
func service(role string, f feature, cfg Config) *consume.Service {
	stream, c, _ := access.Shop.Subscription(role)
	subject := access.SubjectOrderPlaced
	if stream == "FULFILLMENT" {
		subject = access.SubjectOrderFulfill
	}
	var fs consume.Faults
	if in := cfg.Faults; in != nil {
		fs.Poisoned = func(ev consume.Event) bool { return in.Poisoned(role, ev.ID, ev.Delivery > 1) }
		fs.Delay = func() time.Duration { return in.Delay(role) }
	}
	svc := &consume.Service{Name: c.Durable, Stream: stream, Subject: subject, Version: cfg.Version,
		Processor: consume.NewProcessor(role, cfg.Replica, consume.NewMemory(), f.Handle, fs)}
	if sf, ok := f.(statsFeature); ok {
		svc.StatsBody = sf.Stats
	}
	return svc
}

// subscriber mounts a subscriber role on mux: its pages, GET /stats, POST
// /events, and, when the replica has a bus (NATS_URL), its pull loop,
// started in the background for the life of cfg.Context. It returns the
// service and the role's readiness: ready once connected to the bus with
// its consumer bound.
func subscriber(role string, f feature, cfg Config, mux *http.ServeMux) (*consume.Service, dependency) {
	svc := service(role, f, cfg)
	// Without a bus the replica still takes POST /events, remembering
	// what it applied in its own memory.
	if url := cfg.Getenv(access.URLEnv); url != "" {
		ledger := &pending{}
		why := "not connected yet"
		ledger.why.Store(&why)
		svc.Processor.SetLedger(ledger)
		svc.Loop = &consume.Loop{Stream: svc.Stream, Durable: svc.Name, Processor: svc.Processor, Log: cfg.Log}
		cl, err := client.Connect(url, cfg.Getenv(access.UserEnv), cfg.Getenv(access.PasswordEnv),
			nats.RetryOnFailedConnect(true), nats.ReconnectWait(500*time.Millisecond))
		if err != nil {
			msg := err.Error()
			ledger.why.Store(&msg)
		} else {
			svc.Loop.Conn, svc.Loop.JS = cl.Conn, cl.JS
			go runSubscriber(cfg.Context, cl, svc, ledger, cfg.Log)
		}
	}
	f.Register(mux)
	svc.Register(mux)
	return svc, dependency{name: "bus", check: func(context.Context) error {
		if ok, why := svc.Ready(); !ok {
			return errors.New(why)
		}
		return nil
	}}
}

// Triggers of the receipt function (its setting trigger).
const (
	TriggerBus  = "bus"
	TriggerHTTP = "http"
)

// receiptRole mounts the receipt function on mux. With trigger bus (the
// default) it is a subscriber of orders.placed like notifications, ready
// once its consumer is bound. With trigger http it needs nothing and is
// ready at once: orders come only over POST /receipt (and POST /events),
// remembered in the replica's memory. POST /receipt is served in both.
func receiptRole(cfg Config, mux *http.ServeMux) ([]dependency, error) {
	f := receipt.New(cfg.Replica)
	switch cfg.ReceiptTrigger {
	case "", TriggerBus:
		svc, dep := subscriber("receipt", f, cfg, mux)
		f.RegisterHTTP(mux, svc.Processor)
		return []dependency{dep}, nil
	case TriggerHTTP:
		svc := service("receipt", f, cfg)
		f.Register(mux)
		svc.Register(mux)
		f.RegisterHTTP(mux, svc.Processor)
		return nil, nil
	}
	return nil, fmt.Errorf("receipt trigger %q: want %s or %s", cfg.ReceiptTrigger, TriggerBus, TriggerHTTP)
}

// runSubscriber opens the service's bucket of applied events, retrying
// while the bus is away, then pulls until ctx ends.
func runSubscriber(ctx context.Context, cl *client.Client, svc *consume.Service, ledger *pending, log *slog.Logger) {
	defer cl.Close()
	bucket := access.AppliedBucket(svc.Name)
	for wait := 100 * time.Millisecond; ; wait = min(wait*2, 2*time.Second) {
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		b, err := consume.OpenBucket(octx, cl.JS, bucket)
		cancel()
		if err == nil {
			svc.Processor.SetLedger(b)
			break
		}
		msg := err.Error()
		ledger.why.Store(&msg)
		log.Warn("open the ledger", "bucket", bucket, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
	svc.Loop.Run(ctx)
}

// pending is the ledger of a replica whose bus has not answered yet: it
// refuses every event, since what was applied is recorded on the bus.
type pending struct{ why atomic.Pointer[string] }

func (p *pending) err() error {
	return fmt.Errorf("dependency bus unavailable: %s", *p.why.Load())
}
func (p *pending) Applied(context.Context, string) (bool, error) { return false, p.err() }
func (p *pending) Record(context.Context, string, string) error  { return p.err() }
func (p *pending) Count(context.Context) (uint64, error)         { return 0, p.err() }
func (p *pending) String() string                                { return "bus (unavailable)" }

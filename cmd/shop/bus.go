package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/bus/client"
	"github.com/flotilla/flotilla/sample-services/cart"
	"github.com/flotilla/flotilla/sample-services/checkout"
	"github.com/flotilla/flotilla/sample-services/shop"
)

// Settings a group chooses for its replicas, as environment variables
// (the catalogue's settings, orchestrator/spec).
const (
	// CheckoutEventsEnv is checkout's events: http (default) or bus.
	CheckoutEventsEnv = "CHECKOUT_EVENTS"
	// CartStoreEnv is the cart's store: memory (default) or bus.
	CartStoreEnv = "CART_STORE"
	// ReceiptTriggerEnv is the receipt function's trigger: bus (default)
	// or http.
	ReceiptTriggerEnv = "RECEIPT_TRIGGER"
)

// withBus sets in cfg what role's settings ask of the bus: checkout's
// publisher (events=bus) or the cart's store in the bucket (store=bus),
// connected as the replica's own bus user (NATS_URL, NATS_USER,
// NATS_PASSWORD, given by the controller). The connection is made in the
// background and kept for ever, so a replica starts, and checkout takes
// orders, before the bus answers. stop, run at shutdown, publishes what
// waits in checkout's outbox while its context lasts and closes the
// connection.
func withBus(ctx context.Context, role string, getenv func(string) string, cfg *shop.Config, log *slog.Logger) (stop func(context.Context), err error) {
	nothing := func(context.Context) {}
	switch role {
	case "checkout":
		switch v := getenv(CheckoutEventsEnv); v {
		case "", "http":
			return nothing, nil
		case "bus":
			c, err := connect(getenv, log)
			if err != nil {
				return nil, fmt.Errorf("%s=bus: %w", CheckoutEventsEnv, err)
			}
			p := checkout.NewPublisher(checkout.Conn{Client: c}, checkout.PublisherOptions{}, log)
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { p.Run(runCtx); close(done) }()
			cfg.CheckoutEvents = p
			log.Info("checkout publishes each order on the bus", "subjects", []string{access.SubjectOrderPlaced, access.SubjectOrderFulfill})
			return func(ctx context.Context) {
				cancel()
				<-done
				p.Flush(ctx)
				c.Close()
			}, nil
		default:
			return nil, fmt.Errorf("%s=%q: want http or bus", CheckoutEventsEnv, v)
		}
	case "cart":
		switch v := getenv(CartStoreEnv); v {
		case "", "memory":
			return nothing, nil
		case "bus":
			bucket := ""
			for _, b := range access.Shop.Buckets {
				if b.User == "cart" {
					bucket = b.Name
				}
			}
			c, err := connect(getenv, log)
			if err != nil {
				return nil, fmt.Errorf("%s=bus: %w", CartStoreEnv, err)
			}
			cfg.CartStore = cart.NewKVStore(c.JS, bucket)
			log.Info("carts live in the bus's key-value bucket", "bucket", bucket)
			return func(context.Context) { c.Close() }, nil
		default:
			return nil, fmt.Errorf("%s=%q: want memory or bus", CartStoreEnv, v)
		}
	}
	return nothing, nil
}

// connect connects to the bus as NATS_USER, retrying in the background if
// it is not there yet, and logs when the connection goes and comes back.
func connect(getenv func(string) string, log *slog.Logger) (*client.Client, error) {
	url, user := getenv(access.URLEnv), getenv(access.UserEnv)
	if url == "" || user == "" {
		return nil, fmt.Errorf("connect to the bus: %s and %s must be set (the controller sets them for a group of a bus user)", access.URLEnv, access.UserEnv)
	}
	return client.Connect(url, user, getenv(access.PasswordEnv),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(500*time.Millisecond),
		// A publish while disconnected fails at once rather than wait in
		// the client's buffer: checkout's outbox keeps it instead.
		nats.ReconnectBufSize(-1),
		nats.ConnectHandler(func(nc *nats.Conn) { log.Info("bus connected", "url", nc.ConnectedUrlRedacted()) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("bus disconnected; reconnecting", "err", err) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("bus reconnected", "url", nc.ConnectedUrlRedacted()) }),
	)
}

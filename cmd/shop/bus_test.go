package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/sample-services/cart"
	"github.com/flotilla/flotilla/sample-services/checkout"
	"github.com/flotilla/flotilla/sample-services/shop"
)

func TestWithBusSettings(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	for _, tt := range []struct {
		role    string
		env     map[string]string
		wantErr string
	}{
		{"checkout", map[string]string{"CHECKOUT_EVENTS": "smoke"}, `CHECKOUT_EVENTS="smoke": want http or bus`},
		{"cart", map[string]string{"CART_STORE": "disk"}, `CART_STORE="disk": want memory or bus`},
		{"checkout", map[string]string{"CHECKOUT_EVENTS": "bus"}, "NATS_URL and NATS_USER must be set"},
		{"cart", map[string]string{"CART_STORE": "bus", "NATS_URL": "nats://bus:4222"}, "NATS_URL and NATS_USER must be set"},
	} {
		var cfg shop.Config
		_, err := withBus(t.Context(), tt.role, func(k string) string { return tt.env[k] }, &cfg, quiet)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s %v: err = %v, want %q", tt.role, tt.env, err, tt.wantErr)
		}
	}

	// Defaults, and roles without settings, ask nothing of the bus.
	for _, role := range []string{"checkout", "cart", "monolith", "orders"} {
		var cfg shop.Config
		stop, err := withBus(t.Context(), role, func(string) string { return "" }, &cfg, quiet)
		if err != nil || cfg.CheckoutEvents != nil || cfg.CartStore != nil {
			t.Errorf("%s by default: err %v, cfg %+v", role, err, cfg)
		}
		stop(t.Context())
	}

	// With bus, the parts are made even before the bus answers (nothing
	// listens at the address): the connection is retried in the background.
	env := map[string]string{"CHECKOUT_EVENTS": "bus", "CART_STORE": "bus", "NATS_URL": "nats://127.0.0.1:1", "NATS_USER": "checkout", "NATS_PASSWORD": "x"}
	var cfg shop.Config
	stop, err := withBus(t.Context(), "checkout", func(k string) string { return env[k] }, &cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.CheckoutEvents.(*checkout.Publisher); !ok {
		t.Errorf("checkout events = %T, want the bus publisher", cfg.CheckoutEvents)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	start := time.Now()
	stop(ctx) // nothing waits: returns at once
	cancel()
	if time.Since(start) > 150*time.Millisecond {
		t.Errorf("stop took %s with an empty outbox", time.Since(start))
	}
	env["NATS_USER"] = "cart"
	stop, err = withBus(t.Context(), "cart", func(k string) string { return env[k] }, &cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer stop(t.Context())
	if _, ok := cfg.CartStore.(*cart.KVStore); !ok {
		t.Errorf("cart store = %T, want the bucket", cfg.CartStore)
	}
}

func TestSubscribersFromEnv(t *testing.T) {
	subs := subscribers(func(k string) string {
		if k == "INVENTORY_URL" {
			return "http://stock:9000"
		}
		return ""
	})
	if len(subs) != 3 || subs[0].URL != "http://notifications:8080" || subs[1].URL != "http://stock:9000" || subs[2].URL != "http://analytics:8080" {
		t.Errorf("subscribers = %+v", subs)
	}
	if checkout.DefaultSubscribers[1].URL != "http://inventory:8080" {
		t.Error("the defaults were changed")
	}
}

// Command shop runs Flotilla's sample shop in one role: the monolith, one
// feature service (catalog, deals, cart, orders, checkout), the gateway
// in front of the feature services, or a subscriber to the shop's events on
// the bus (notifications, inventory, analytics, fulfillment), which reads
// NATS_URL, NATS_USER and NATS_PASSWORD; a function (recommend, or receipt,
// a subscriber too); or, in a pod, the "pause" member that
// holds the pod's namespaces or the "agent" sidecar that polls the service.
//
// The role comes from flag --role or env FLOTILLA_ROLE (default monolith).
// Env PORT sets the port (default 8080), FLOTILLA_REPLICA the replica name
// (default the hostname), and CATALOG_URL, DEALS_URL, CART_URL, ORDERS_URL
// and CHECKOUT_URL where a role finds the services it calls (default
// http://<service>:8080).
//
// A group's settings come as env too: CHECKOUT_EVENTS (http or bus) for
// checkout, CART_STORE (memory or bus) for the cart; with bus, the replica
// connects to the bus with NATS_URL, NATS_USER and NATS_PASSWORD.
// RECEIPT_TRIGGER (bus or http) says whether the receipt function takes
// orders from its consumer on the bus or only over POST /receipt.
// NOTIFICATIONS_URL, INVENTORY_URL and ANALYTICS_URL say where checkout
// finds its subscribers in http mode.
//
// Env FLOTILLA_VERSION (v1, v2 or v3; default v1) sets the release the
// replica runs, and FLOTILLA_FLAW (errors, unready or crash; default errors)
// how v3, the bad release, goes wrong; FLOTILLA_FLAW_AFTER (a duration,
// default 8s) how long v3 with flaw crash lives. Unknown values stop the
// shop before it starts (package version).
//
// Env ADMIN_PORT (default 9090) sets a second port that serves only the
// fault API of package faults, for the controller. It is kept off the shop's
// port so that the balancer and clients, which reach only PORT, never reach
// it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/flotilla/flotilla/sample-services/checkout"
	"github.com/flotilla/flotilla/sample-services/faults"
	"github.com/flotilla/flotilla/sample-services/privs"
	"github.com/flotilla/flotilla/sample-services/shop"
	"github.com/flotilla/flotilla/sample-services/version"
)

func main() {
	// What the engine runtime sets on the container, set here as well: a
	// Swarm task's container cannot be given it (package privs).
	if err := privs.NoNewPrivileges(); err != nil {
		fmt.Fprintln(os.Stderr, "shop: warning:", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "shop:", err)
		os.Exit(1)
	}
}

// shutdownTimeout bounds how long requests in flight may finish after a
// signal; Docker's default grace before SIGKILL is 10s.
const shutdownTimeout = 5 * time.Second

// run serves the shop until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("shop", flag.ContinueOnError)
	flags.SetOutput(stderr)
	role := flags.String("role", envOr("FLOTILLA_ROLE", "monolith"), "one of the shop's roles (env FLOTILLA_ROLE)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flags.Args())
	}

	switch *role {
	case rolePause:
		return pause(ctx)
	case roleAgent:
		return agent(ctx, stdout, agentPeriod)
	}

	// Checked before anything connects, so a bad release setting stops
	// the replica at once with a clear message.
	ver, flaw := os.Getenv(version.Env), os.Getenv(version.FlawEnv)
	if err := version.Check(ver, flaw); err != nil {
		return err
	}
	crashAfter, err := durationEnv(FlawAfterEnv, shop.DefaultCrashAfter)
	if err != nil {
		return err
	}

	// receipt is both a subscriber and a function: named once.
	injector := faults.New(slices.Compact(slices.Sorted(slices.Values(slices.Concat(shop.Features(), shop.Subscribers(), shop.Functions()))))...)
	log := slog.New(slog.NewTextHandler(stdout, nil))
	cfg := shop.Config{
		Context:     ctx,
		Log:         log,
		Replica:     os.Getenv("FLOTILLA_REPLICA"),
		Version:     ver,
		Flaw:        flaw,
		CrashAfter:  crashAfter,
		CatalogURL:  os.Getenv("CATALOG_URL"),
		DealsURL:    os.Getenv("DEALS_URL"),
		CartURL:     os.Getenv("CART_URL"),
		OrdersURL:   os.Getenv("ORDERS_URL"),
		CheckoutURL: os.Getenv("CHECKOUT_URL"),
		Faults:      injector,
		// Checked by shop.Handler, which knows the triggers.
		ReceiptTrigger: os.Getenv(ReceiptTriggerEnv),
	}
	if cfg.Replica == "" {
		cfg.Replica, _ = os.Hostname()
	}
	cfg.Subscribers = subscribers(os.Getenv)
	stopBus, err := withBus(ctx, *role, os.Getenv, &cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		stopBus(ctx)
	}()
	h, err := shop.Handler(*role, cfg)
	if err != nil {
		return err
	}

	// Listen first, so the start line shows the real addresses even for
	// port 0. Both bind every interface: in a container, the controller
	// reaches the admin port over the project's network.
	ln, err := net.Listen("tcp", ":"+envOr("PORT", "8080"))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	adminLn, err := net.Listen("tcp", ":"+envOr("ADMIN_PORT", "9090"))
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen admin: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	v, f := version.Resolve(ver, flaw)
	admin := &http.Server{Handler: versionHeader(v, injector.Admin()), ReadHeaderTimeout: 5 * time.Second}
	log.Info("shop started",
		"role", *role, "replica", cfg.Replica, "addr", ln.Addr().String(), "admin", adminLn.Addr().String(),
		"version", v, "release", version.Describe(v, f))

	served := make(chan error, 2)
	go func() { served <- srv.Serve(ln) }()
	go func() { served <- admin.Serve(adminLn) }()
	select {
	case err := <-served:
		srv.Close()
		admin.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := errors.Join(srv.Shutdown(ctx), admin.Shutdown(ctx)); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	for range 2 {
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
	return nil
}

// subscribers are checkout's subscribers in http mode, each at
// <NAME>_URL if set.
func subscribers(getenv func(string) string) []checkout.Subscriber {
	subs := slices.Clone(checkout.DefaultSubscribers)
	for i, s := range subs {
		if u := getenv(strings.ToUpper(s.Name) + "_URL"); u != "" {
			subs[i].URL = u
		}
	}
	return subs
}

// FlawAfterEnv sets how long v3 with flaw crash lives, e.g. "8s".
const FlawAfterEnv = "FLOTILLA_FLAW_AFTER"

// durationEnv returns env key as a duration, or def if it is unset or empty.
func durationEnv(key string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(key)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s %q: want a positive duration such as 8s", key, v)
	}
	return d, nil
}

// versionHeader names version v on the admin port's replies too, which no
// flaw touches: the controller's fault API keeps working on a bad release.
func versionHeader(v string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(version.Header, v)
		next.ServeHTTP(w, r)
	})
}

// envOr returns env key, or def if it is unset or empty.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

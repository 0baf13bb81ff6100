// Command shop runs Flotilla's sample shop in one role: the monolith, one
// feature service (catalog, deals, cart, orders, checkout), or the gateway
// in front of the feature services; or, in a pod, the "pause" member that
// holds the pod's namespaces or the "agent" sidecar that polls the service.
//
// The role comes from flag --role or env FLOTILLA_ROLE (default monolith).
// Env PORT sets the port (default 8080), FLOTILLA_REPLICA the replica name
// (default the hostname), and CATALOG_URL, DEALS_URL, CART_URL, ORDERS_URL
// and CHECKOUT_URL where a role finds the services it calls (default
// http://<service>:8080).
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
	"syscall"
	"time"

	"github.com/flotilla/flotilla/sample-services/faults"
	"github.com/flotilla/flotilla/sample-services/shop"
)

func main() {
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

	injector := faults.New(shop.Features()...)
	cfg := shop.Config{
		Replica:     os.Getenv("FLOTILLA_REPLICA"),
		CatalogURL:  os.Getenv("CATALOG_URL"),
		DealsURL:    os.Getenv("DEALS_URL"),
		CartURL:     os.Getenv("CART_URL"),
		OrdersURL:   os.Getenv("ORDERS_URL"),
		CheckoutURL: os.Getenv("CHECKOUT_URL"),
		Faults:      injector,
	}
	if cfg.Replica == "" {
		cfg.Replica, _ = os.Hostname()
	}
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
	admin := &http.Server{Handler: injector.Admin(), ReadHeaderTimeout: 5 * time.Second}
	slog.New(slog.NewTextHandler(stdout, nil)).Info("shop started",
		"role", *role, "replica", cfg.Replica, "addr", ln.Addr().String(), "admin", adminLn.Addr().String())

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

// envOr returns env key, or def if it is unset or empty.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

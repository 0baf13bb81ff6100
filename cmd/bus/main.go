// Command bus runs the shop's message bus: a NATS server with JetStream
// (package bus), its clients on port 4222 and its monitoring on 8222, and
// the replica's probes (GET /healthz, GET /readyz) on PORT (default 8080).
//
// Env FLOTILLA_BUS_SECRET (required) derives every user's password;
// BUS_STORE_DIR (default /data) holds JetStream's files and is meant to be
// a volume. Nothing secret is in the image: the controller passes the
// secret when it creates the container. Unless GOMEMLIMIT is set, the Go
// runtime keeps under three quarters of the container's memory limit.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flotilla/flotilla/sample-services/bus"
	"github.com/flotilla/flotilla/sample-services/privs"
)

// memoryLimit is the soft memory limit the Go runtime should keep under:
// three quarters of the container's (cgroup v2 memory.max), so the
// collector works harder before the engine kills the bus for memory; 0
// when GOMEMLIMIT decides, or there is no limit to read.
func memoryLimit(readFile func(string) ([]byte, error), getenv func(string) string) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return 0
	}
	b, err := readFile("/sys/fs/cgroup/memory.max")
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 { // "max": no limit
		return 0
	}
	return n / 4 * 3
}

func main() {
	// What the engine runtime sets on the container, set here as well: a
	// Swarm task's container cannot be given it (package privs).
	if err := privs.NoNewPrivileges(); err != nil {
		fmt.Fprintln(os.Stderr, "bus: warning:", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bus:", err)
		os.Exit(1)
	}
}

// run serves the bus until ctx is done, then shuts it down, flushing the
// store.
func run(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("replica", getenv("FLOTILLA_REPLICA"))
	cfg, err := bus.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	if limit := memoryLimit(os.ReadFile, getenv); limit > 0 {
		debug.SetMemoryLimit(limit)
		log.Info("soft memory limit", "bytes", limit)
	}
	port := getenv("PORT")
	if port == "" {
		port = "8080"
	}
	// The probes' port listens first, so the controller sees the replica
	// answer (not ready) while JetStream restores its store.
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return err
	}
	b, err := bus.New(cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: b.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	started := make(chan error, 1)
	go func() { started <- b.Start(ctx) }()

	select {
	case <-ctx.Done():
	case err = <-errc:
	case err = <-started:
		if err == nil {
			select {
			case <-ctx.Done():
			case err = <-errc:
			}
		}
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	b.Shutdown()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

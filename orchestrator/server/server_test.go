package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/server"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// serve runs the whole controller, as `flotilla serve` does, on a fresh
// instance against the real engine, with its own project and images, all
// removed at the end. It returns the API's address.
func serve(t *testing.T, timeouts api.Timeouts) string {
	t.Helper()
	return serveConfig(t, server.Config{Timeouts: timeouts, NoVM: true}, io.Discard)
}

// serveConfig is serve with cfg's Timeouts and NoVM, printing to stdout.
func serveConfig(t *testing.T, cfg server.Config, stdout io.Writer) string {
	t.Helper()
	ctl := dockertest.NewController(t)
	opts := ctl.Options
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Serve(ctx, server.Config{
			Addr: addr, StateDir: ctl.StateDir, MaxReplicas: spec.DefaultMaxReplicas, Project: opts.Project,
			ImageRepository: opts.Project + "-", ImageLabels: map[string]string{ctl.ImageLabelKey: ctl.ImageLabelValue},
			Timeouts: cfg.Timeouts, NoVM: cfg.NoVM,
		}, stdout, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller: %v", err)
		}
	})
	c := &api.Client{Addr: addr}
	dockertest.Poll(t, 3*time.Minute, "controller answers", func() error {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("controller stopped: %v", err)
		default:
		}
		return c.Healthz(context.Background())
	})
	return addr
}

func TestIntegrationServe(t *testing.T) {
	timeouts := api.Timeouts{ReadHeader: 500 * time.Millisecond, Body: 500 * time.Millisecond, Write: 500 * time.Millisecond}
	addr := serve(t, timeouts)
	_, port, _ := net.SplitHostPort(addr)
	c := &api.Client{Addr: addr}
	ctx := context.Background()

	t.Run("a balancer on the API's port is refused", func(t *testing.T) {
		p, _ := strconv.Atoi(port)
		_, _, err := c.PutGroup(ctx, spec.Group{Name: "clash", Service: "monolith", Replicas: 1, Balancer: spec.Balancer{Policy: spec.PolicyRoundRobin, Port: p}})
		var ae *api.APIError
		if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Field != "balancer.port" {
			t.Fatalf("PUT with the API's port: %v", err)
		}
		if _, err := c.Group(ctx, "clash"); err == nil {
			t.Errorf("the refused group exists")
		}
	})

	t.Run("a trickled body is cut", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "PUT /api/v1/groups/slow HTTP/1.1\r\nHost: "+addr+"\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{")
		go func() {
			for range 39 {
				time.Sleep(200 * time.Millisecond)
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}()
		start := time.Now()
		conn.SetReadDeadline(start.Add(10 * time.Second))
		got, err := io.ReadAll(conn)
		if errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > timeouts.Body+2*time.Second {
			t.Fatalf("the connection was held %v (read %q, %v)", time.Since(start), got, err)
		}
		if !strings.HasPrefix(string(got), "HTTP/1.1 408 ") {
			t.Errorf("a trickled body got %q, want 408", got)
		}
	})

	t.Run("the stream outlives the timeouts", func(t *testing.T) {
		conn, _, err := websocketDial(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		for time.Since(start) < 4*timeouts.Write {
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := conn.ReadMessage(); err != nil {
				t.Fatalf("the stream ended after %v: %v", time.Since(start), err)
			}
		}
	})
}

func websocketDial(addr string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	return d.Dial("ws://"+addr+"/api/v1/stream", nil)
}

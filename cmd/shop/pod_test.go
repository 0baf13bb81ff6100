package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer the agent writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAgentPollsTheServiceOnLocalhost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusTeapot)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	t.Setenv("PORT", strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	t.Setenv("FLOTILLA_REPLICA", "web-1")

	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- agent(ctx, &out, 20*time.Millisecond) }()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(out.String(), "\n") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("agent: %v", err)
	}
	first, _, _ := strings.Cut(out.String(), "\n")
	if !strings.HasPrefix(first, "agent replica=web-1 healthz=418 ms=") || strings.Contains(first, "processes=-1") {
		t.Fatalf("agent printed %q, want the replica, the service's answer and a process count", first)
	}

	srv.Close()
	if err := agent(ctxDone(), &out, time.Hour); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "healthz=unreachable") {
		t.Fatalf("a closed service reads %q, want healthz=unreachable", out.String())
	}
}

func ctxDone() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestCountProcesses(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"1", "42", "self", "net"} {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "7"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if n := countProcesses(dir); n != 2 {
		t.Errorf("countProcesses = %d, want 2 (numeric directories only)", n)
	}
	if n := countProcesses(filepath.Join(dir, "missing")); n != -1 {
		t.Errorf("countProcesses of a missing dir = %d, want -1", n)
	}
}

func TestPauseReturnsOnStop(t *testing.T) {
	if err := run(ctxDone(), []string{"--role", "pause"}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatalf("pause on a stopped context: %v", err)
	}
}

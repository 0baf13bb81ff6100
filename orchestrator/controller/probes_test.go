package controller

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/health"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

func TestProbeHealth(t *testing.T) {
	for _, tt := range []struct {
		st             health.Status
		health, reason string
	}{
		{health.Status{Verdict: health.Starting, Live: health.Starting}, HealthStarting, ""},
		{health.Status{Verdict: health.Starting, Live: health.Live, Reason: "dependency catalog unavailable"}, HealthStarting, "dependency catalog unavailable"},
		{health.Status{Verdict: health.Ready, Live: health.Live}, HealthReady, ""},
		// A dependency down: out of rotation, with the reason, but not unhealthy.
		{health.Status{Verdict: health.Unready, Live: health.Live, Reason: "dependency catalog unavailable"}, HealthUnready, "dependency catalog unavailable"},
		// Not live outranks any readiness verdict: it is the one that replaces.
		{health.Status{Verdict: health.Ready, Live: health.NotLive, LiveReason: "connection refused"}, HealthUnhealthy, "connection refused"},
		{health.Status{Verdict: health.Unready, Live: health.NotLive, Reason: "x", LiveReason: "no answer within 1s"}, HealthUnhealthy, "no answer within 1s"},
	} {
		h, reason := probeHealth(tt.st)
		if h != tt.health || reason != tt.reason {
			t.Errorf("probeHealth(%+v) = %q, %q; want %q, %q", tt.st, h, reason, tt.health, tt.reason)
		}
	}
}

func TestProbeTargets(t *testing.T) {
	g := spec.Group{Name: "cart", Service: "cart", Replicas: 3, Probe: spec.Probe{PeriodMs: 200, TimeoutMs: 100}, Liveness: spec.Probe{PeriodMs: 2000, FailureThreshold: 5}}
	reps := []replica.Replica{
		{ID: "a", Group: "cart", Name: "cart-1", Index: 1, State: replica.StateRunning, Address: "127.0.0.1:4001"},
		{ID: "b", Group: "cart", Name: "cart-2", Index: 2, State: replica.StateExited, Address: "127.0.0.1:4002"},
		{ID: "c", Group: "cart", Name: "cart-3", Index: 3, State: replica.StateRunning},
	}
	got := probeTargets("cart", MakePlan(PlanInput{Group: "cart", Desired: &g, Actual: reps, Now: time.Now()}))
	if len(got) != 1 {
		t.Fatalf("targets %+v, want only the running replica with an address", got)
	}
	tg := got[0]
	if tg.URL != "http://127.0.0.1:4001/readyz" || tg.LiveURL != "http://127.0.0.1:4001/healthz" {
		t.Errorf("urls %q, %q", tg.URL, tg.LiveURL)
	}
	if tg.Config.Interval != 200*time.Millisecond || tg.Config.Timeout != 100*time.Millisecond {
		t.Errorf("readiness config %+v", tg.Config)
	}
	if tg.Liveness.Interval != 2*time.Second || tg.Liveness.FailureThreshold != 5 {
		t.Errorf("liveness config %+v", tg.Liveness)
	}
}

// A replica that fails readiness is kept however long it fails; one that
// fails liveness is replaced once the grace period is over.
func TestOnlyLivenessReplaces(t *testing.T) {
	var depDown, hung atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz" && hung.Load():
			w.WriteHeader(http.StatusInternalServerError)
		case r.URL.Path == "/readyz" && depDown.Load():
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"status":"unavailable","failing":["catalog"]}`))
		}
	}))
	defer srv.Close()

	rt := newFakeRuntime()
	const grace = 200 * time.Millisecond
	c := New(Options{Runtime: rt, Store: &memStore{groups: map[string]spec.Group{}}, Images: map[string]string{"shop": "flotilla-shop:test"},
		Resync: 50 * time.Millisecond, UnhealthyGrace: grace})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	fast := spec.Probe{PeriodMs: 100, TimeoutMs: 50, FailureThreshold: 2}
	if _, _, err := c.PutGroup(ctx, spec.Group{Name: "cart", Service: "cart", Replicas: 1, Balancer: spec.Balancer{Policy: spec.PolicyNone}, Probe: fast, Liveness: fast}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "1 replica", func() bool { return rt.names() == "cart-1=running" }, rt.names)
	// The fake engine publishes no port; point the replica at the server.
	rt.mu.Lock()
	var id string
	for _, r := range rt.byID {
		r.Address, id = strings.TrimPrefix(srv.URL, "http://"), r.ID
	}
	rt.mu.Unlock()
	replica := func() ReplicaStatus {
		st, _ := c.Group("cart")
		if len(st.Replicas) != 1 {
			return ReplicaStatus{}
		}
		return st.Replicas[0]
	}
	describe := func() string { return rt.names() + " " + replica().Health + " " + replica().Reason }
	eventually(t, "ready", func() bool { return replica().Health == HealthReady }, describe)

	depDown.Store(true)
	eventually(t, "unready naming the catalog", func() bool {
		r := replica()
		return r.Health == HealthUnready && r.Reason == "dependency catalog unavailable"
	}, describe)
	// Ten grace periods, with a resync every 50 ms: a controller that
	// replaced on readiness would have done so many times over.
	for end := time.Now().Add(10 * grace); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if r := replica(); r.ID != id || r.Health != HealthUnready {
			t.Fatalf("a replica failing only readiness became %s %s (%s)", r.ID, r.Health, r.Reason)
		}
	}

	hung.Store(true)
	eventually(t, "unhealthy", func() bool { return replica().Health == HealthUnhealthy }, describe)
	eventually(t, "replaced", func() bool {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		_, still := rt.byID[id]
		return !still && rt.creates == 2
	}, describe)
}

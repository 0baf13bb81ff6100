package controller

import (
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/health"
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
	g := spec.Group{Name: "cart", Service: "cart", Probe: spec.Probe{PeriodMs: 200, TimeoutMs: 100}, Liveness: spec.Probe{PeriodMs: 2000, FailureThreshold: 5}}
	reps := []docker.Replica{
		{ID: "a", Group: "cart", Name: "cart-1", State: docker.StateRunning, Address: "127.0.0.1:4001"},
		{ID: "b", Group: "cart", Name: "cart-2", State: docker.StateExited, Address: "127.0.0.1:4002"},
		{ID: "c", Group: "cart", Name: "cart-3", State: docker.StateRunning},
	}
	got := probeTargets(g, reps)
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

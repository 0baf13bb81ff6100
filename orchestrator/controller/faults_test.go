package controller

import (
	"context"
	"errors"
	"testing"

	"github.com/flotilla/flotilla/orchestrator/spec"
)

func TestFaultValidation(t *testing.T) {
	rt := newFakeRuntime()
	c := startController(t, rt, &memStore{groups: map[string]spec.Group{}})
	ctx := context.Background()
	if _, _, err := c.PutGroup(ctx, spec.Group{Name: "web", Service: "monolith", Replicas: 2, Balancer: spec.Balancer{Policy: spec.PolicyNone}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "2 replicas", func() bool { return rt.names() == "web-1=running web-2=running" }, rt.names)

	invalid := []FaultSpec{
		{},
		{Kind: "explode", Group: "web"},
		{Kind: FaultKill},
		{Kind: FaultCrashFeature, Group: "web"},
		{Kind: FaultCrashFeature, Group: "web", Feature: "payments"},
		{Kind: FaultLatency, Group: "web", LatencyMs: 0},
		{Kind: FaultLatency, Group: "web", LatencyMs: 60000},
		{Kind: FaultErrors, Group: "web", ErrorRate: 0},
		{Kind: FaultErrors, Group: "web", ErrorRate: 1.5},
		{Kind: FaultKill, Group: "web", Feature: "deals"},
		{Kind: FaultPause, Group: "web", LatencyMs: 5},
		{Kind: FaultLatency, Group: "web", LatencyMs: 5, ErrorRate: 0.5},
	}
	for _, s := range invalid {
		if _, err := c.InjectFault(ctx, s); !errors.Is(err, ErrInvalidFault) {
			t.Errorf("InjectFault(%+v) = %v, want ErrInvalidFault", s, err)
		}
	}
	for _, s := range []FaultSpec{
		{Kind: FaultKill, Group: "nope"},
		{Kind: FaultPause, Group: "web", Replica: "web-9"},
		{Kind: FaultPause, Group: "web", Replica: "other-1"},
	} {
		if _, err := c.InjectFault(ctx, s); !errors.Is(err, ErrNotFound) {
			t.Errorf("InjectFault(%+v) = %v, want ErrNotFound", s, err)
		}
	}
	if n := len(c.Faults()); n != 0 {
		t.Fatalf("%d faults recorded from refused requests", n)
	}
	if _, err := c.RevertFault(ctx, "f-nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RevertFault of an unknown id = %v, want ErrNotFound", err)
	}
}

package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flotilla/flotilla/orchestrator/spec"
)

func TestMetricsFollowGroups(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	rt := newFakeRuntime()
	c := New(Options{Runtime: rt, Store: &memStore{groups: map[string]spec.Group{}}, Images: map[string]string{"shop": "img"}, Metrics: reg, Resync: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	if _, _, err := c.PutGroup(ctx, spec.Group{Name: "web", Service: "monolith", Replicas: 2, Balancer: spec.Balancer{Policy: spec.PolicyNone}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "2 replicas", func() bool { return rt.names() == "web-1=running web-2=running" }, rt.names)

	want := `
# HELP flotilla_group_desired_replicas Replicas a group should have.
# TYPE flotilla_group_desired_replicas gauge
flotilla_group_desired_replicas{group="web",service="monolith"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "flotilla_group_desired_replicas"); err != nil {
		t.Fatal(err)
	}
	// Both replicas report exactly one health each.
	n, err := testutil.GatherAndCount(reg, "flotilla_replica_health")
	if err != nil || n != 2*len(healths) {
		t.Fatalf("flotilla_replica_health series = %d, %v; want %d", n, err, 2*len(healths))
	}
	if got := testutil.ToFloat64(c.metrics.reconciles.WithLabelValues("ok")); got < 1 {
		t.Fatalf("reconciles ok = %v, want at least 1", got)
	}
}

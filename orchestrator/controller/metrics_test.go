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

// groupFigures collects the autoscale and rollout series of one status.
type groupFigures struct{ g GroupStatus }

func (f groupFigures) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAutoWant, descAutoConcurrency, descAutoPending, descAutoPanic, descAutoHeld, descAutoPool, descAutoPoolMem, descAutoStarts,
		descRollout, descRolloutNew, descRolloutNewReady, descRolloutShare, descRolloutErrors} {
		ch <- d
	}
}

func (f groupFigures) Collect(ch chan<- prometheus.Metric) {
	autoscaleMetrics(ch, f.g.Name, f.g.Autoscale)
	rolloutMetrics(ch, f.g.Name, f.g.Rollout)
}

// TestAutoscaleAndRolloutMetrics: an autoscaled group in a canary's first
// step shows the autoscaler's choice, its pool and its request counts, and
// the rollout's status (one series set to 1), replicas, share and error
// rates.
func TestAutoscaleAndRolloutMetrics(t *testing.T) {
	g := GroupStatus{Name: "shop",
		Autoscale: &AutoscaleStatus{Want: 3, Panicking: true, Concurrency: 12.5, Held: 2, Pool: []string{"shop-4"}, PoolMemBytes: 3 << 20,
			Starts: Starts{Cold: 1, Pooled: 2, Warm: 40, Held: 5, Failed: 1}},
		Rollout: &RolloutStatus{Revision: 4, Status: RolloutProgressing, New: 1, NewReady: 1, Share: 10, ErrorRates: map[string]float64{"v1": 0, "v3": 0.3}},
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(groupFigures{g})
	want := `
# HELP flotilla_autoscale_want_replicas Serving replicas the autoscaler chose for a group.
# TYPE flotilla_autoscale_want_replicas gauge
flotilla_autoscale_want_replicas{group="shop"} 3
# HELP flotilla_autoscale_panicking 1 while the autoscaler of a group is in its panic mode.
# TYPE flotilla_autoscale_panicking gauge
flotilla_autoscale_panicking{group="shop"} 1
# HELP flotilla_autoscale_pool_replicas Paused replicas in a group's warm pool.
# TYPE flotilla_autoscale_pool_replicas gauge
flotilla_autoscale_pool_replicas{group="shop"} 1
# HELP flotilla_rollout_new_ready_replicas Replicas of a group's latest rollout's new revision that are ready.
# TYPE flotilla_rollout_new_ready_replicas gauge
flotilla_rollout_new_ready_replicas{group="shop"} 1
# HELP flotilla_rollout_traffic_share_ratio Share of a group's traffic the latest rollout's new revision gets.
# TYPE flotilla_rollout_traffic_share_ratio gauge
flotilla_rollout_traffic_share_ratio{group="shop"} 0.1
`
	names := []string{"flotilla_autoscale_want_replicas", "flotilla_autoscale_panicking", "flotilla_autoscale_pool_replicas", "flotilla_rollout_new_ready_replicas", "flotilla_rollout_traffic_share_ratio"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() != "group" {
					key += "," + l.GetName() + "=" + l.GetValue()
				}
			}
			values[key] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	for key, want := range map[string]float64{
		"flotilla_autoscale_requests_total,how=warm":            40,
		"flotilla_autoscale_requests_total,how=cold":            1,
		"flotilla_autoscale_requests_total,how=failed":          1,
		"flotilla_rollout_status,revision=4,status=progressing": 1,
		"flotilla_rollout_status,revision=4,status=rolled-back": 0,
		"flotilla_rollout_error_rate_ratio,version=v3":          0.3,
		"flotilla_autoscale_pool_memory_bytes":                  3 << 20,
	} {
		if got, ok := values[key]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", key, got, ok, want)
		}
	}
	if n, _ := testutil.GatherAndCount(reg, "flotilla_rollout_status"); n != len(rolloutStatuses) {
		t.Errorf("%d rollout status series, want one per status (%d)", n, len(rolloutStatuses))
	}
}

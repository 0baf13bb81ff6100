package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/bus/bustest"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// TestIntegrationTriggeredFunction: receipt sleeps at zero while its
// queue is empty, wakes when orders wait on its consumer, scales out with
// the backlog (bounded by max), renders every order once, and sleeps again
// once the queue has been empty for idleAfter.
func TestIntegrationTriggeredFunction(t *testing.T) {
	h := start(t, func(o *controller.Options) { o.BusSecret = bustest.Secret })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, g := range []spec.Group{
		{Name: "bus", Service: "bus", Replicas: 1, Balancer: spec.Balancer{Policy: spec.PolicyNone}},
		{Name: "receipt", Service: "receipt", Autoscale: &spec.Autoscale{Max: 2, Trigger: "orders.placed", TargetConcurrency: 5, IdleAfter: "5s"}},
	} {
		if _, _, err := h.ctrl.PutGroup(ctx, g); err != nil {
			t.Fatalf("put group %s: %v", g.Name, err)
		}
	}
	addr := bustest.Addr(t, h.busReplica(""), spec.BusClientPort)
	checkout := bustest.Connect(t, addr, "checkout")
	time.Sleep(2 * time.Second) // the controller reads the empty queue
	if st, _ := h.ctrl.Group("receipt"); len(st.Replicas) != 0 {
		t.Fatalf("receipt runs with an empty queue: %+v", st.Replicas)
	}

	bustest.PublishOrders(t, ctx, checkout, 1, 12)
	most := 0
	dockertest.Poll(t, 90*time.Second, "every order rendered once", func() error {
		st, _ := h.ctrl.Group("receipt")
		most = max(most, len(st.Replicas))
		if len(st.Replicas) > 2 {
			t.Fatalf("receipt went over its max: %d replicas", len(st.Replicas))
		}
		if n := bustest.LedgerCount(h.t, h.ctrl, "receipt"); n != 12 {
			return fmt.Errorf("%d of 12 orders rendered, %d replicas", n, len(st.Replicas))
		}
		return nil
	})
	if most != 2 {
		t.Errorf("12 orders at 5 a replica scaled receipt to %d replicas at most, want its max of 2", most)
	}
	dockertest.Poll(t, 60*time.Second, "asleep again once the queue is empty", func() error {
		st, _ := h.ctrl.Group("receipt")
		if len(st.Replicas) != 0 || st.Autoscale.Want != 0 {
			return fmt.Errorf("%d replicas, want %d", len(st.Replicas), st.Autoscale.Want)
		}
		return nil
	})
	st, _ := h.ctrl.Group("receipt")
	modes := map[string]bool{}
	for _, d := range st.Autoscale.Decisions {
		modes[d.Mode] = true
	}
	if !modes["wake"] || !modes["idle"] {
		t.Fatalf("decisions %+v: want a wake and an idle", st.Autoscale.Decisions)
	}
}

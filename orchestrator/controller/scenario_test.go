package controller

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/sample-services/scenarios"
)

func TestApplyScenarioTouchesOnlyWhatChanges(t *testing.T) {
	all, err := spec.LoadScenarios(scenarios.Files(), spec.DefaultMaxReplicas)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]spec.Scenario{}
	for _, sc := range all {
		byName[sc.Name] = sc
	}
	rt := newFakeRuntime()
	st := &memStore{groups: map[string]spec.Group{}}
	c := startController(t, rt, st)
	ctx := context.Background()

	res, err := c.ApplyScenario(ctx, byName["scaled-no-lb"])
	if err != nil || strings.Join(res.Created, ",") != "shop" {
		t.Fatalf("apply scaled-no-lb = %+v, %v", res, err)
	}
	eventually(t, "3 replicas", func() bool { return rt.names() == "shop-1=running shop-2=running shop-3=running" }, rt.names)
	rt.mu.Lock()
	creates := rt.creates
	rt.mu.Unlock()

	// Stage 3 only adds a balancer: the replicas stay.
	res, err = c.ApplyScenario(ctx, byName["scaled-lb"])
	if err != nil || strings.Join(res.Updated, ",") != "shop" || len(res.Created)+len(res.Deleted) != 0 {
		t.Fatalf("apply scaled-lb = %+v, %v", res, err)
	}
	eventually(t, "a balancer", func() bool { g, _ := c.Group("shop"); return g.Endpoint != "" }, func() string { g, _ := c.Group("shop"); return g.Status })
	rt.mu.Lock()
	if rt.creates != creates {
		t.Fatalf("switching to a balancer recreated replicas: %d creates, want %d", rt.creates, creates)
	}
	rt.mu.Unlock()

	res, err = c.ApplyScenario(ctx, byName["microservices"])
	if err != nil || strings.Join(res.Deleted, ",") != "shop" || len(res.Created) != 6 {
		t.Fatalf("apply microservices = %+v, %v", res, err)
	}
	eventually(t, "one replica per service", func() bool {
		return rt.names() == "cart-1=running catalog-1=running checkout-1=running deals-1=running gateway-1=running orders-1=running"
	}, rt.names)
	if c.Scenario() != "microservices" || st.scenario != "microservices" {
		t.Fatalf("current scenario %q, stored %q", c.Scenario(), st.scenario)
	}

	res, err = c.ApplyScenario(ctx, byName["microservices"])
	if err != nil || len(res.Unchanged) != 6 || len(res.Created)+len(res.Updated)+len(res.Deleted) != 0 {
		t.Fatalf("re-applying = %+v, %v; want all unchanged", res, err)
	}
}

func TestApplyScenarioValidatesFirst(t *testing.T) {
	rt := newFakeRuntime()
	c := startController(t, rt, &memStore{groups: map[string]spec.Group{}})
	ctx := context.Background()
	if _, _, err := c.PutGroup(ctx, spec.Group{Name: "keep", Service: "cart", Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	bad := spec.Scenario{Name: "bad", Groups: []spec.Group{{Name: "a", Service: "cart", Replicas: 1}, {Name: "b", Service: "nginx", Replicas: 1}}}
	if _, err := c.ApplyScenario(ctx, bad); !errors.Is(err, spec.ErrInvalid) {
		t.Fatalf("ApplyScenario = %v, want ErrInvalid", err)
	}
	if gs := c.Groups(); len(gs) != 1 || gs[0].Name != "keep" {
		t.Fatalf("a refused scenario changed the groups: %+v", gs)
	}
}

package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/load"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// balanced starts a controller with a group of n monolith replicas behind
// a balancer and waits until every replica is in rotation.
func balanced(t *testing.T, n int, policy string) (*harness, controller.GroupStatus) {
	t.Helper()
	h := start(t)
	g := spec.Group{Name: "web", Service: "monolith", Replicas: n, Balancer: spec.Balancer{Policy: policy}}
	if _, _, err := h.ctrl.PutGroup(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	h.converge("web", running("web", n), n)
	var st controller.GroupStatus
	dockertest.Poll(t, 30*time.Second, "every replica in rotation", func() error {
		st, _ = h.ctrl.Group("web")
		if st.Endpoint == "" {
			return fmt.Errorf("no endpoint")
		}
		for _, r := range st.Replicas {
			if r.Traffic == nil || r.Traffic.State != "ready" || r.Upstream == "" {
				return fmt.Errorf("%s not in rotation: %+v", r.Name, r.Traffic)
			}
		}
		return nil
	})
	return h, st
}

// loadFor runs the load generator at the group's endpoint; during is called
// once, after warm, while the load runs.
func loadFor(t *testing.T, s load.Spec, warm time.Duration, during func()) load.Report {
	t.Helper()
	run, err := load.Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(run.Stop)
	select {
	case <-time.After(warm):
	case <-run.Done():
		t.Fatal("load ended before the fault")
	}
	during()
	select {
	case <-run.Done():
	case <-time.After(s.Duration + 30*time.Second):
		t.Fatal("load run did not end")
	}
	rep := run.Report()
	t.Logf("load: sent %d, ok %d, failed %d %v, by replica %v, p50 %.2fms p99 %.2fms",
		rep.Sent, rep.Succeeded, rep.Failed, rep.Errors, rep.ByReplica, rep.LatencyMs.P50, rep.LatencyMs.P99)
	return rep
}

func TestIntegrationBalancerSpreadsAndSurvivesKill(t *testing.T) {
	h, st := balanced(t, 3, spec.PolicyRoundRobin)
	victim := st.Replicas[1]
	rep := loadFor(t, load.Spec{Target: st.Endpoint, Rate: 200, Concurrency: 32, Duration: 6 * time.Second, Paths: []string{"/catalog", "/deals"}},
		2*time.Second, func() {
			if err := h.drv.Kill(context.Background(), victim.ID, "SIGKILL"); err != nil {
				t.Fatal(err)
			}
		})
	if rep.Failed != 0 {
		t.Fatalf("%d of %d GETs failed across a killed replica; want 0", rep.Failed, rep.Sent)
	}
	if rep.Sent < 1000 {
		t.Fatalf("only %d requests sent; the load did not run", rep.Sent)
	}
	for _, r := range []string{"web-1", "web-2", "web-3"} {
		if rep.ByReplica[r] < 100 {
			t.Errorf("replica %s served %d requests: traffic did not spread (%v)", r, rep.ByReplica[r], rep.ByReplica)
		}
	}
}

func TestIntegrationPausedReplicaIsEjected(t *testing.T) {
	h, st := balanced(t, 3, spec.PolicyRoundRobin)
	victim := st.Replicas[0]
	var paused time.Time
	var ejectedAfter time.Duration
	rep := loadFor(t, load.Spec{Target: st.Endpoint, Rate: 200, Concurrency: 32, Duration: 6 * time.Second},
		2*time.Second, func() {
			paused = time.Now()
			if err := h.drv.Pause(context.Background(), victim.ID); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { h.drv.Unpause(context.Background(), victim.ID) })
			dockertest.Poll(t, 3*time.Second, "paused replica leaves rotation", func() error {
				gs, _ := h.ctrl.Group("web")
				for _, r := range gs.Replicas {
					if r.ID == victim.ID && r.Traffic != nil && r.Traffic.State == "ready" {
						return fmt.Errorf("%s still in rotation", r.Name)
					}
				}
				return nil
			})
			ejectedAfter = time.Since(paused)
		})
	t.Logf("paused replica out of rotation after %s", ejectedAfter.Round(time.Millisecond))
	if ejectedAfter > 3*time.Second {
		t.Errorf("ejection took %s, want within 3s", ejectedAfter)
	}
	if rep.Failed != 0 {
		t.Fatalf("%d of %d GETs failed across a paused replica; want 0", rep.Failed, rep.Sent)
	}
	gs, _ := h.ctrl.Group("web")
	for _, r := range gs.Replicas {
		if r.ID == victim.ID && r.Health != controller.HealthPaused {
			t.Errorf("%s health is %q, want paused", r.Name, r.Health)
		}
	}
}

func TestIntegrationScaleDownUnderLoadDrains(t *testing.T) {
	h, st := balanced(t, 3, spec.PolicyLeastConnections)
	rep := loadFor(t, load.Spec{Target: st.Endpoint, Rate: 200, Concurrency: 32, Duration: 6 * time.Second, Paths: []string{"/catalog", "/deals"}},
		2*time.Second, func() {
			if _, err := h.ctrl.Scale(context.Background(), "web", 1); err != nil {
				t.Fatal(err)
			}
		})
	if rep.Failed != 0 {
		t.Fatalf("%d of %d requests failed while scaling 3 -> 1; want 0", rep.Failed, rep.Sent)
	}
	h.converge("web", running("web", 1), 1)
}

// TestIntegrationPostIsNotRetried sends POSTs without an Idempotency-Key
// while a replica freezes: requests caught on it time out and fail, and
// none is sent a second time, so the shop holds no more orders than
// requests were sent.
func TestIntegrationPostIsNotRetried(t *testing.T) {
	h, st := balanced(t, 3, spec.PolicyRoundRobin)
	victim := st.Replicas[2]
	body := `{"items":[{"productId":"tea-mug","name":"Tea mug","priceCents":1200,"quantity":1}]}`
	rep := loadFor(t, load.Spec{Target: st.Endpoint, Rate: 400, Concurrency: 64, Duration: 4 * time.Second,
		Method: http.MethodPost, Paths: []string{"/orders"}, Body: body, Shoppers: 8},
		time.Second, func() {
			if err := h.drv.Pause(context.Background(), victim.ID); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond) // let caught requests reach the try timeout
			if err := h.drv.Unpause(context.Background(), victim.ID); err != nil {
				t.Fatal(err)
			}
		})
	total := 0
	dockertest.Poll(t, 10*time.Second, "count orders on every replica", func() error {
		total = 0
		gs, _ := h.ctrl.Group("web")
		for _, r := range gs.Replicas {
			n, err := countOrders(r.Address)
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	t.Logf("orders held by the replicas: %d; POSTs sent %d, succeeded %d", total, rep.Sent, rep.Succeeded)
	if int64(total) > rep.Sent {
		t.Fatalf("%d orders from %d POSTs: a POST without Idempotency-Key was sent twice", total, rep.Sent)
	}
	if int64(total) < rep.Succeeded {
		t.Fatalf("%d orders but %d POSTs succeeded: orders were lost", total, rep.Succeeded)
	}
}

func countOrders(addr string) (int, error) {
	resp, err := http.Get("http://" + addr + "/orders")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var orders []json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&orders); err != nil {
		return 0, err
	}
	return len(orders), nil
}

func TestIntegrationPolicySwitchLive(t *testing.T) {
	h, st := balanced(t, 3, spec.PolicyRoundRobin)
	// Sticky: each shopper lands on one replica, so a shopper's cart is whole.
	g := spec.Group{Name: "web", Service: "monolith", Replicas: 3, Balancer: spec.Balancer{Policy: spec.PolicySticky}}
	if _, _, err := h.ctrl.PutGroup(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	dockertest.Poll(t, 10*time.Second, "policy switched", func() error {
		gs, _ := h.ctrl.Group("web")
		if gs.Balancer.Policy != spec.PolicySticky || gs.Endpoint != st.Endpoint {
			return fmt.Errorf("balancer %+v at %s", gs.Balancer, gs.Endpoint)
		}
		return nil
	})
	seen := map[string]string{}
	for i := range 60 {
		shopper := fmt.Sprintf("s-%d", i%6)
		req, _ := http.NewRequest(http.MethodGet, "http://"+st.Endpoint+"/cart", nil)
		req.Header.Set("X-Shopper", shopper)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		served := resp.Header.Get("X-Flotilla-Replica")
		if prev, ok := seen[shopper]; ok && prev != served {
			t.Fatalf("sticky: shopper %s moved from %s to %s", shopper, prev, served)
		}
		seen[shopper] = served
	}
	replicas := map[string]bool{}
	for _, r := range seen {
		replicas[r] = true
	}
	if len(replicas) < 2 {
		t.Errorf("6 shoppers all pinned to %v: sticky does not spread", replicas)
	}
	if !strings.HasPrefix(st.Endpoint, "127.0.0.1:") {
		t.Errorf("endpoint %q is not on 127.0.0.1", st.Endpoint)
	}
}

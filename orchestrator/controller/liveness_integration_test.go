package controller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/images/imagestest"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/orchestrator/store"
	"github.com/flotilla/flotilla/sample-services/shopper"
)

// startGrace is start with a short grace period before a replica that is
// not live is replaced, so that a replacement would come soon after an
// outage begins, and its absence means something.
func startGrace(t *testing.T, grace time.Duration) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the Docker engine; skipped in -short mode")
	}
	drv := dockertest.New(t)
	refs := imagestest.Images(t)
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctrl := controller.New(controller.Options{Runtime: drv, Store: st, Images: refs, StopTimeout: 2 * time.Second, UnhealthyGrace: grace})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller Run: %v", err)
		}
	})
	return &harness{t: t, drv: drv, ctrl: ctrl}
}

// inRotation reports whether every replica of group is ready and in its
// balancer's rotation, with want replicas.
func inRotation(c *controller.Controller, group string, want int) error {
	st, err := c.Group(group)
	if err != nil {
		return err
	}
	if st.Status != controller.StatusConverged || st.Ready != want || len(st.Replicas) != want {
		return fmt.Errorf("group %s: %d/%d ready, status %s %s", group, st.Ready, want, st.Status, st.Message)
	}
	for _, r := range st.Replicas {
		if r.Traffic == nil || r.Traffic.State != "ready" {
			return fmt.Errorf("%s not in rotation: %+v", r.Name, r.Traffic)
		}
	}
	return nil
}

// cartCall sends one request to a cart replica's own address as shopper who.
func cartCall(ctx context.Context, method, addr, who, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+"/cart"+map[bool]string{true: "/items"}[body != ""], strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set(shopper.Header, who)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), nil
}

// A dependency going away takes its dependents out of rotation with the
// reason shown, and nothing more: they are never replaced, and what they
// hold in memory is still there when it comes back.
func TestIntegrationDependencyOutageKeepsDependents(t *testing.T) {
	const grace = 2 * time.Second
	h := startGrace(t, grace)
	ctx := context.Background()
	fast := spec.Probe{PeriodMs: 250, TimeoutMs: 200, FailureThreshold: 2}
	if _, _, err := h.ctrl.PutGroup(ctx, spec.Group{Name: "catalog", Service: "catalog", Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.ctrl.PutGroup(ctx, spec.Group{Name: "cart", Service: "cart", Replicas: 2, Probe: fast, Liveness: fast}); err != nil {
		t.Fatal(err)
	}
	dockertest.Poll(t, 90*time.Second, "catalog and cart ready and in rotation", func() error {
		if err := inRotation(h.ctrl, "catalog", 1); err != nil {
			return err
		}
		return inRotation(h.ctrl, "cart", 2)
	})

	// One cart on each replica, in its memory, put there while the
	// catalog is up to price it.
	before, _ := h.ctrl.Group("cart")
	ids := map[string]string{}
	for _, r := range before.Replicas {
		ids[r.Name] = r.ID
		code, body, err := cartCall(ctx, http.MethodPost, r.Address, "keeper-"+r.Name, `{"productId":"tea-mug","quantity":2}`)
		if err != nil || code != http.StatusOK {
			t.Fatalf("add to the cart on %s: %d %s %v", r.Name, code, body, err)
		}
	}

	// The unchanged check holds at every look during and after the outage.
	unchanged := func(st controller.GroupStatus) error {
		if len(st.Replicas) != len(ids) {
			return fmt.Errorf("cart has %d replicas, want %d", len(st.Replicas), len(ids))
		}
		for _, r := range st.Replicas {
			if ids[r.Name] != r.ID || r.Restarts != 0 || r.State != "running" {
				t.Fatalf("%s was replaced or restarted during a dependency's outage: id %.12s (was %.12s), restarts %d, state %s, health %s (%s)",
					r.Name, r.ID, ids[r.Name], r.Restarts, r.State, r.Health, r.Reason)
			}
			if r.Health == controller.HealthUnhealthy {
				t.Fatalf("%s is unhealthy, to be replaced, for a dependency's outage: %s", r.Name, r.Reason)
			}
		}
		return nil
	}

	if _, err := h.ctrl.Scale(ctx, "catalog", 0); err != nil {
		t.Fatal(err)
	}
	dockertest.Poll(t, 30*time.Second, "both carts unready, out of rotation, naming the catalog", func() error {
		st, err := h.ctrl.Group("cart")
		if err != nil {
			return err
		}
		unchanged(st)
		for _, r := range st.Replicas {
			if r.Health != controller.HealthUnready || r.Reason != "dependency catalog unavailable" {
				return fmt.Errorf("%s: health %s, reason %q", r.Name, r.Health, r.Reason)
			}
			if r.Traffic != nil && r.Traffic.State == "ready" {
				return fmt.Errorf("%s unready but still in rotation", r.Name)
			}
		}
		if st.Ready != 0 {
			return fmt.Errorf("%d carts ready", st.Ready)
		}
		if st.Status != controller.StatusDegraded || !strings.Contains(st.Message, "dependency catalog unavailable") {
			return fmt.Errorf("cart status %s (%q), want degraded naming the catalog", st.Status, st.Message)
		}
		return nil
	})

	// Long enough for a replica failing either probe to have been replaced
	// (failures to turn a verdict, plus the grace, plus a reconcile), every
	// look must find the same replicas still unready.
	hold := grace + 2*time.Duration(fast.FailureThreshold*fast.PeriodMs)*time.Millisecond + 5*time.Second
	for end := time.Now().Add(hold); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		st, err := h.ctrl.Group("cart")
		if err != nil {
			t.Fatal(err)
		}
		unchanged(st)
		for _, r := range st.Replicas {
			if r.Health != controller.HealthUnready {
				t.Fatalf("%s is %s during the outage, want unready", r.Name, r.Health)
			}
		}
	}

	if _, err := h.ctrl.Scale(ctx, "catalog", 1); err != nil {
		t.Fatal(err)
	}
	dockertest.Poll(t, 60*time.Second, "carts ready and in rotation again once the catalog is back", func() error {
		st, err := h.ctrl.Group("cart")
		if err != nil {
			return err
		}
		unchanged(st)
		for _, r := range st.Replicas {
			if r.Reason != "" {
				return fmt.Errorf("%s still says %q", r.Name, r.Reason)
			}
		}
		return inRotation(h.ctrl, "cart", 2)
	})

	for _, r := range before.Replicas {
		code, body, err := cartCall(ctx, http.MethodGet, r.Address, "keeper-"+r.Name, "")
		if err != nil || code != http.StatusOK {
			t.Fatalf("get the cart on %s: %d %s %v", r.Name, code, body, err)
		}
		var c struct {
			Items []struct {
				ProductID string `json:"productId"`
				Quantity  int    `json:"quantity"`
			} `json:"items"`
		}
		if err := json.Unmarshal([]byte(body), &c); err != nil {
			t.Fatalf("cart on %s: %v: %s", r.Name, err, body)
		}
		if len(c.Items) != 1 || c.Items[0].ProductID != "tea-mug" || c.Items[0].Quantity != 2 {
			t.Errorf("the cart held by %s before the outage came back as %s", r.Name, body)
		}
	}
}

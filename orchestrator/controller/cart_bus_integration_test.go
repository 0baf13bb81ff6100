package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/bus/bustest"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// shopCall is one request to a balancer's endpoint as shopper, returning
// the status, the replica that answered and the body.
func shopCall(ctx context.Context, method, url, shopper, body string) (int, string, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", nil, err
	}
	req.Header.Set("X-Shopper", shopper)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Flotilla-Replica"), b, err
}

// With setting store=bus, a cart group's replicas keep carts in the bus's
// key-value bucket: under round-robin over two replicas every cart comes
// back complete, whichever replica made each line, and after one replica
// is killed the other serves the carts it never saw being made.
func TestIntegrationCartsInTheBusBucket(t *testing.T) {
	h := start(t, func(o *controller.Options) { o.BusSecret = bustest.Secret })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	fast := spec.Probe{PeriodMs: 250, TimeoutMs: 200}
	for _, g := range []spec.Group{
		{Name: "bus", Service: "bus", Replicas: 1, Balancer: spec.Balancer{Policy: spec.PolicyNone}, Probe: fast},
		{Name: "catalog", Service: "catalog", Replicas: 1, Balancer: spec.Balancer{Policy: spec.PolicyNone}, Probe: fast},
		{Name: "cart", Service: "cart", Replicas: 2, Settings: map[string]string{"store": "bus"},
			Balancer: spec.Balancer{Policy: spec.PolicyRoundRobin}, Probe: fast},
	} {
		if _, _, err := h.ctrl.PutGroup(ctx, g); err != nil {
			t.Fatalf("put group %s: %v", g.Name, err)
		}
	}
	endpoint := balancerURL(t, h, "cart", 2)

	products := []string{"tea-mug", "notebook", "wool-socks"}
	const shoppers = 20
	madeBy := fill(t, ctx, endpoint, shoppers, products)
	if madeBy["cart-1"] == 0 || madeBy["cart-2"] == 0 {
		t.Fatalf("lines added by replica: %v; want both replicas to have made some", madeBy)
	}
	n, by := complete(t, ctx, endpoint, shoppers, len(products))
	t.Logf("store=bus, round-robin over two replicas: %d of %d carts complete; lines made by %v, read from %v", n, shoppers, madeBy, by)
	if n != shoppers || by["cart-1"] == 0 || by["cart-2"] == 0 {
		t.Errorf("%d of %d carts complete, read from %v; want all, from both replicas", n, shoppers, by)
	}

	// The same with carts in each replica's memory (the default): the
	// lesson the bucket fixes.
	if _, _, err := h.ctrl.PutGroup(ctx, spec.Group{Name: "memcart", Service: "cart", Replicas: 2,
		Balancer: spec.Balancer{Policy: spec.PolicyRoundRobin}, Probe: fast}); err != nil {
		t.Fatal(err)
	}
	mem := balancerURL(t, h, "memcart", 2)
	fill(t, ctx, mem, shoppers, products)
	if n, by := complete(t, ctx, mem, shoppers, len(products)); n == shoppers {
		t.Errorf("store=memory: %d of %d carts complete (read from %v); round-robin over two memories should split them", n, shoppers, by)
	} else {
		t.Logf("store=memory, the same: %d of %d carts complete", n, shoppers)
	}

	// Kill cart-1: the carts it made are still whole, served by cart-2
	// (and by the replacement, once it is ready).
	st, _ := h.ctrl.Group("cart")
	var victim string
	for _, r := range st.Replicas {
		if r.Name == "cart-1" {
			victim = r.ID
		}
	}
	if err := h.drv.Kill(ctx, victim, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	dockertest.Poll(t, 10*time.Second, "the killed replica out of rotation", func() error {
		st, _ := h.ctrl.Group("cart")
		for _, r := range st.Replicas {
			if r.ID == victim && r.Traffic != nil && r.Traffic.State == "ready" {
				return fmt.Errorf("%s still in rotation", r.Name)
			}
		}
		return nil
	})
	n, by = complete(t, ctx, endpoint, shoppers, len(products))
	t.Logf("after cart-1 was killed: %d of %d carts complete, read from %v", n, shoppers, by)
	if n != shoppers {
		t.Errorf("after the kill %d of %d carts complete; want all", n, shoppers)
	}
	if by["cart-2"] == 0 {
		t.Errorf("after the kill carts were read from %v; want cart-2 to serve them", by)
	}
}

// balancerURL waits until group has n ready replicas in its balancer's
// rotation, and returns the balancer's URL.
func balancerURL(t *testing.T, h *harness, group string, n int) string {
	t.Helper()
	var endpoint string
	dockertest.Poll(t, 120*time.Second, group+": every replica in rotation", func() error {
		st, err := h.ctrl.Group(group)
		if err != nil {
			return err
		}
		if st.Ready != n || st.Endpoint == "" {
			var reps []string
			for _, r := range st.Replicas {
				reps = append(reps, fmt.Sprintf("%s %s/%s %s", r.Name, r.State, r.Health, r.Reason))
			}
			return fmt.Errorf("%s: %d ready, status %s %s; replicas %v", group, st.Ready, st.Status, st.Message, reps)
		}
		for _, r := range st.Replicas {
			if r.Traffic == nil || r.Traffic.State != "ready" {
				return fmt.Errorf("%s not in rotation", r.Name)
			}
		}
		endpoint = "http://" + st.Endpoint
		return nil
	})
	return endpoint
}

// fill has each shopper add each product, one request each, and counts
// the requests each replica answered.
func fill(t *testing.T, ctx context.Context, endpoint string, shoppers int, products []string) map[string]int {
	t.Helper()
	by := map[string]int{}
	for i := range shoppers {
		who := fmt.Sprintf("shopper-%d", i)
		for _, p := range products {
			code, rep, body, err := shopCall(ctx, "POST", endpoint+"/cart/items", who, `{"productId":"`+p+`","quantity":1}`)
			if err != nil || code != http.StatusOK {
				t.Fatalf("%s adds %s: %d %s %v", who, p, code, body, err)
			}
			by[rep]++
		}
	}
	return by
}

// complete counts the carts that come back with all their lines, and
// which replica answered.
func complete(t *testing.T, ctx context.Context, endpoint string, shoppers, lines int) (int, map[string]int) {
	t.Helper()
	n, by := 0, map[string]int{}
	for i := range shoppers {
		who := fmt.Sprintf("shopper-%d", i)
		code, rep, body, err := shopCall(ctx, "GET", endpoint+"/cart", who, "")
		if err != nil || code != http.StatusOK {
			t.Errorf("GET %s's cart: %d %s %v", who, code, body, err)
			continue
		}
		by[rep]++
		var c struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(body, &c); err != nil {
			t.Fatal(err)
		}
		if len(c.Items) == lines {
			n++
		}
	}
	return n, by
}

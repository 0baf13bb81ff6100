package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/sample-services/shopper"
)

// dependents are the clusters stage's groups that need the catalog to be
// ready: the gateway requires it, deals and cart call it.
var dependents = []string{"deals", "cart", "gateway"}

// outageHold is how long the catalog stays away once its dependents are
// unready: well past the 10 s a replica may fail its liveness probe before
// it is replaced, so that a controller restarting on readiness would have.
const outageHold = 20 * time.Second

// dependencyOutage scales the catalog to 0 and back under the journeys of
// load run id, and checks that its dependents only leave rotation: never
// replaced, their carts kept.
func dependencyOutage(ctx context.Context, r *run, id string) error {
	cat, err := r.group(ctx, "catalog")
	if err != nil {
		return err
	}
	before := map[string]controller.ReplicaStatus{}
	for _, g := range dependents {
		st, err := r.group(ctx, g)
		if err != nil {
			return err
		}
		for _, rep := range st.Replicas {
			before[rep.Name] = rep
		}
	}
	carts, err := r.group(ctx, "cart")
	if err != nil {
		return err
	}
	r.say("A resilience lesson: what an outage of a dependency does, with liveness apart from readiness.")
	r.say("Each cart replica keeps carts in its memory. Putting 2 tea mugs in one cart on each, at its own address:")
	for _, rep := range carts.Replicas {
		if _, err := cartRequest(ctx, http.MethodPost, rep.Address, keeper(rep.Name), `{"productId":"tea-mug","quantity":2}`); err != nil {
			return fmt.Errorf("fill a cart on %s: %w", rep.Name, err)
		}
		r.say("  shopper %s now has 2 tea mugs in the cart held by %s", keeper(rep.Name), rep.Name)
	}

	r.say("Scaling catalog from %d to 0: the catalog is gone, as in an outage.", cat.Desired)
	r.look("deals, cart and gateway tiles turn amber, unready, each saying \"dependency catalog unavailable\"; they leave rotation, and their Restarts stay 0.")
	if _, err := r.api.Scale(ctx, "catalog", 0); err != nil {
		return err
	}
	var unready []string
	err = waitFor(ctx, 45*time.Second, func() (bool, error) {
		unready = unready[:0]
		all := true
		for _, g := range dependents {
			st, err := r.group(ctx, g)
			if err != nil {
				return false, err
			}
			for _, rep := range st.Replicas {
				if rep.Health == controller.HealthUnready && strings.Contains(rep.Reason, "catalog") {
					unready = append(unready, rep.Name)
				} else {
					all = false
				}
			}
		}
		return all, nil
	})
	r.check(err == nil, "every dependent replica is unready and names the catalog: %v", unready)
	st, err := r.group(ctx, "cart")
	if err != nil {
		return err
	}
	for _, rep := range st.Replicas {
		r.say("  %s: %s, %q, traffic %s", rep.Name, rep.Health, rep.Reason, trafficState(rep))
	}
	chk, err := r.group(ctx, "checkout")
	if err != nil {
		return err
	}
	r.check(chk.Ready == chk.Desired, "checkout stays ready (%d/%d): it needs cart's process to answer, not cart's own dependencies, so the outage does not cascade", chk.Ready, chk.Desired)

	r.say("Waiting %s with the catalog away, long past the 10 s grace after which a replica that is not live gets replaced.", outageHold)
	r.say("Probing readiness as liveness, the controller would now restart every cart and lose the carts; the replacements could not become ready either.")
	replaced := map[string]bool{}
	watchEnd := time.Now().Add(outageHold)
	for time.Now().Before(watchEnd) {
		for _, name := range changedReplicas(ctx, r, before) {
			replaced[name] = true
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
	w, _, err := r.measure(ctx, id, 2*time.Second)
	if err != nil {
		return err
	}
	r.say("Meanwhile the shop, whose gateway requires the catalog, is down: %s.", w.summary())

	r.say("Scaling catalog back to %d.", cat.Desired)
	r.look("the catalog replicas come up, then the amber tiles turn green again, on their own.")
	if _, err := r.api.Scale(ctx, "catalog", cat.Desired); err != nil {
		return err
	}
	if err := r.converged(ctx, 2*time.Minute); err != nil {
		return err
	}
	for _, name := range changedReplicas(ctx, r, before) {
		replaced[name] = true
	}
	r.check(len(replaced) == 0, "no dependent was replaced or restarted through the outage (%d replicas watched; replaced: %v)", len(before), sortedKeys(replaced))

	kept := 0
	for _, rep := range carts.Replicas {
		body, err := cartRequest(ctx, http.MethodGet, rep.Address, keeper(rep.Name), "")
		if err != nil {
			r.say("  the cart of %s on %s: %v", keeper(rep.Name), rep.Name, err)
			continue
		}
		var c struct {
			Items []struct {
				ProductID string `json:"productId"`
				Quantity  int    `json:"quantity"`
			} `json:"items"`
		}
		if json.Unmarshal(body, &c) == nil && len(c.Items) == 1 && c.Items[0].ProductID == "tea-mug" && c.Items[0].Quantity == 2 {
			kept++
		}
	}
	r.check(kept == len(carts.Replicas), "the carts made before the outage are still there: %d of %d", kept, len(carts.Replicas))
	w, _, err = r.measure(ctx, id, 4*time.Second)
	if err != nil {
		return err
	}
	browse, _ := w.rate("browse")
	deals, _ := w.rate("deals")
	r.check(browse >= 0.99 && deals >= 0.99, "the shop serves again, with no restart: %s", w.summary())
	return nil
}

func keeper(replica string) string { return "keeper-of-" + replica }

func trafficState(rep controller.ReplicaStatus) string {
	if rep.Traffic == nil {
		return "out of rotation" // the balancer keeps no figures for it
	}
	if rep.Traffic.State == "ready" {
		return "in rotation"
	}
	return "out of rotation"
}

// changedReplicas lists the replicas of before that are gone, run another
// container, or were restarted since.
func changedReplicas(ctx context.Context, r *run, before map[string]controller.ReplicaStatus) []string {
	now := map[string]controller.ReplicaStatus{}
	for _, g := range dependents {
		st, err := r.group(ctx, g)
		if err != nil {
			continue // a failed look is no evidence either way
		}
		for _, rep := range st.Replicas {
			now[rep.Name] = rep
		}
	}
	var out []string
	for name, was := range before {
		if rep, ok := now[name]; !ok || rep.ID != was.ID || rep.Restarts != was.Restarts || rep.State != "running" {
			out = append(out, name)
		}
	}
	return out
}

// cartRequest sends one request to a cart replica's own 127.0.0.1 address
// as shopper who, and returns the body of a 200.
func cartRequest(ctx context.Context, method, addr, who, body string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	path := "/cart"
	if body != "" {
		path = "/cart/items"
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set(shopper.Header, who)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s answered %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return b, nil
}

package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/faults"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

func journeys(group string, shoppers int) map[string]any {
	return map[string]any{"group": group, "journey": true, "rate": 60, "shoppers": shoppers, "duration": "3m", "concurrency": 32}
}

func monolith(ctx context.Context, r *run) error {
	if err := r.scenario(ctx, "monolith"); err != nil {
		return err
	}
	r.say("The whole shop runs in one container, group shop. 10 shoppers start walking through it:")
	r.say("browse the catalog, view deals, add to the cart, look at the cart, check out.")
	id, before, err := r.journeysBefore(ctx, "shop")
	if err != nil {
		return err
	}
	r.say("Now a bug in the smallest feature: the next request to /deals panics and kills the process.")
	r.look("the shop-1 tile turns dead, the event log says it died, and every journey step goes red.")
	w, f, err := r.crashDeals(ctx, id, "shop")
	if err != nil {
		return err
	}
	browse, _ := w.rate("browse")
	deals, _ := w.rate("deals")
	r.check(deals < 0.5, "view deals fails (%.0f%% ok)", deals*100)
	r.check(browse < 0.9, "browsing the catalog fails too, though it never touches deals (%.0f%% ok)", browse*100)
	// Few shoppers get as far as checkout while the shop is down, and those
	// who do found it up a moment ago: what the fault costs is the orders
	// that never happen, so compare completed checkouts per second.
	was, now := before.perSecond("checkout"), w.perSecond("checkout")
	r.check(now < was/2, "checkouts collapse too: %.1f a second, against %.1f before the fault", now, was)
	r.check(w.journeyRate() < 0.5, "most journeys fail: one feature took the whole shop down (%.0f%% succeed)", w.journeyRate()*100)
	st, err := r.group(ctx, "shop")
	if err != nil {
		return err
	}
	restarts := 0
	for _, rep := range st.Replicas {
		restarts += rep.Restarts
	}
	r.check(restarts > 0, "the controller replaced the dead monolith (%d restarts), but every replacement has the same bug", restarts)

	r.say("Reverting the fault: the next replacement comes up clean.")
	if err := r.revert(ctx, f.ID); err != nil {
		return err
	}
	if err := r.converged(ctx, 2*time.Minute); err != nil {
		return err
	}
	w, _, err = r.measure(ctx, id, 4*time.Second)
	if err != nil {
		return err
	}
	r.check(w.journeyRate() >= 0.9, "journeys succeed again once the bug is gone (%.0f%%)", w.journeyRate()*100)
	return nil
}

// journeysBefore starts 10 shoppers' journeys on group and checks that they
// succeed before anything is broken. It returns the load run's id and what
// its journeys went through.
func (r *run) journeysBefore(ctx context.Context, group string) (string, window, error) {
	id, err := r.startLoad(ctx, journeys(group, 10))
	if err != nil {
		return "", window{}, err
	}
	w, _, err := r.measure(ctx, id, 4*time.Second)
	if err != nil {
		return "", w, err
	}
	r.say("Before the fault: %s.", w.summary())
	r.check(w.journeyRate() >= 0.99, "shoppers complete their journeys before the fault (%.0f%%)", w.journeyRate()*100)
	return id, w, nil
}

// crashDeals makes the next deals request on group's replicas panic, and
// returns what the journeys of load run id went through in the 6 s after.
func (r *run) crashDeals(ctx context.Context, id, group string) (window, faults.Fault, error) {
	f, err := r.inject(ctx, faults.Spec{Kind: faults.CrashFeature, Group: group, Feature: "deals"})
	if err != nil {
		return window{}, f, err
	}
	w, _, err := r.measure(ctx, id, 6*time.Second)
	if err != nil {
		return w, f, err
	}
	r.say("After the fault: %s.", w.summary())
	return w, f, nil
}

func pct(rate float64, ran bool) string {
	if !ran {
		return "no shopper got that far"
	}
	return fmt.Sprintf("%.0f%% ok", rate*100)
}

func scaling(ctx context.Context, r *run) error {
	if err := r.scenario(ctx, "scaled-no-lb"); err != nil {
		return err
	}
	r.say("Three copies of the monolith, and no load balancer: each client must pick one replica's own address.")
	r.say("9 shoppers, each pinned to one replica, three per replica.")
	id, err := r.startLoad(ctx, journeys("shop", 9))
	if err != nil {
		return err
	}
	if _, _, err := r.measure(ctx, id, 3*time.Second); err != nil {
		return err
	}
	st, err := r.group(ctx, "shop")
	if err != nil {
		return err
	}
	victim := st.Replicas[1]
	r.say("Killing %s (at %s).", victim.Name, victim.Address)
	r.look("%s dies and comes back at a new address; its shoppers keep knocking on the old one.", victim.Name)
	if _, err := r.inject(ctx, faults.Spec{Kind: faults.Kill, Group: "shop", Replica: victim.Name}); err != nil {
		return err
	}
	w, _, err := r.measure(ctx, id, 5*time.Second)
	if err != nil {
		return err
	}
	for _, t := range sortedKeys(w.byTarget) {
		c := w.byTarget[t]
		r.say("  shoppers of %s: %d ok, %d failed", t, c[0], c[1])
	}
	dead := w.byTarget[victim.Address]
	r.check(dead[1] > 0 && dead[0] == 0, "the shoppers pinned to %s fail (%d failed, %d ok)", victim.Name, dead[1], dead[0])
	others := true
	for t, c := range w.byTarget {
		if t != victim.Address && (c[1] > 0 || c[0] == 0) {
			others = false
		}
	}
	r.check(others, "the shoppers of the other replicas carry on untouched")
	r.stopLoads()
	r.loads = nil

	r.say("")
	r.say("Stage 3: the same replicas behind the controller's load balancer, at one stable address.")
	if err := r.scenario(ctx, "scaled-lb"); err != nil {
		return err
	}
	st, err = r.group(ctx, "shop")
	if err != nil {
		return err
	}
	r.say("The balancer listens on %s. Sending 150 GETs a second at it, and shopper journeys.", st.Endpoint)
	gets, err := r.startLoad(ctx, map[string]any{"group": "shop", "rate": 150, "duration": "3m", "paths": []string{"/catalog", "/deals"}, "concurrency": 32})
	if err != nil {
		return err
	}
	jid, err := r.startLoad(ctx, journeys("shop", 12))
	if err != nil {
		return err
	}
	w, rep, err := r.measure(ctx, jid, 5*time.Second)
	if err != nil {
		return err
	}
	r.say("Round-robin sends each request to the next replica, and carts live in each replica's memory:")
	r.check(w.completeRate() < 0.9, "carts come back incomplete under round-robin (%.0f%% complete)", w.completeRate()*100)
	r.look("the request share spreads evenly over the three tiles: %v.", rep.ByReplica)

	victim = st.Replicas[2]
	r.say("Killing %s under load.", victim.Name)
	g0, err := r.report(ctx, gets)
	if err != nil {
		return err
	}
	if _, err := r.inject(ctx, faults.Spec{Kind: faults.Kill, Group: "shop", Replica: victim.Name}); err != nil {
		return err
	}
	if err := sleep(ctx, 4*time.Second); err != nil {
		return err
	}
	g1, err := r.report(ctx, gets)
	if err != nil {
		return err
	}
	failed, sent := g1.Failed-g0.Failed, g1.Sent-g0.Sent
	r.check(sent > 300 && failed == 0, "no GET failed across the kill (%d sent, %d failed): the balancer took it out of rotation and retried", sent, failed)

	r.say("Switching the balancer to sticky: each shopper stays on one replica, and so does its cart.")
	st, err = r.group(ctx, "shop")
	if err != nil {
		return err
	}
	if _, _, err := r.api.PutGroup(ctx, specOf(st, spec.PolicySticky)); err != nil {
		return err
	}
	// Journeys begun under round-robin may have put items on another
	// replica; let them end before judging sticky's carts.
	if err := sleep(ctx, 3*time.Second); err != nil {
		return err
	}
	w, _, err = r.measure(ctx, jid, 5*time.Second)
	if err != nil {
		return err
	}
	r.check(w.completeRate() >= 0.99, "with sticky, carts are complete (%.0f%%)", w.completeRate()*100)

	r.say("But every replica still holds every feature. A crash in deals:")
	r.look("one replica after another dies as the balancer hands it a /deals request.")
	f, err := r.inject(ctx, faults.Spec{Kind: faults.CrashFeature, Group: "shop", Feature: "deals"})
	if err != nil {
		return err
	}
	w, _, err = r.measure(ctx, jid, 6*time.Second)
	if err != nil {
		return err
	}
	r.say("After the fault: %s.", w.summary())
	browse, _ := w.rate("browse")
	r.check(browse < 0.9, "browsing fails too: a balancer does not contain a bad feature (%.0f%% ok)", browse*100)
	return r.revert(ctx, f.ID)
}

func microservices(ctx context.Context, r *run) error {
	if err := r.scenario(ctx, "microservices"); err != nil {
		return err
	}
	r.say("Each feature is now its own service; the gateway routes each path to the service of that name.")
	id, _, err := r.journeysBefore(ctx, "gateway")
	if err != nil {
		return err
	}
	r.say("The same bug as in stage 1: the next request to deals panics.")
	r.look("only the deals tile dies; catalog, cart, orders and checkout stay green.")
	w, f, err := r.crashDeals(ctx, id, "deals")
	if err != nil {
		return err
	}
	deals, _ := w.rate("deals")
	browse, _ := w.rate("browse")
	checkout, ran := w.rate("checkout")
	r.check(deals < 0.5, "view deals fails (%.0f%% ok)", deals*100)
	r.check(browse >= 0.99, "browsing is untouched (%.0f%% ok)", browse*100)
	r.check(ran && checkout >= 0.99, "checkout stays up (%s)", pct(checkout, ran))
	return r.revert(ctx, f.ID)
}

func clusters(ctx context.Context, r *run) error {
	if err := r.scenario(ctx, "clusters"); err != nil {
		return err
	}
	r.say("Each service is a group of several replicas; the gateway finds them by name through Docker's DNS.")
	id, err := r.startLoad(ctx, journeys("gateway", 12))
	if err != nil {
		return err
	}
	w, _, err := r.measure(ctx, id, 4*time.Second)
	if err != nil {
		return err
	}
	r.say("Serving: %s.", w.summary())
	r.look("traffic spreads inside each service's group.")
	var catalogs []string
	for _, name := range sortedKeys(w.replicas) {
		if len(name) > 8 && name[:8] == "catalog-" && w.replicas[name] > 0 {
			catalogs = append(catalogs, name)
		}
	}
	r.check(len(catalogs) >= 2, "catalog requests spread over its replicas: %v", catalogs)

	r.say("Scaling catalog from 3 to 4: only catalog grows, and the gateway discovers the new replica by DNS.")
	if _, err := r.api.Scale(ctx, "catalog", 4); err != nil {
		return err
	}
	if err := r.converged(ctx, 2*time.Minute); err != nil {
		return err
	}
	found := waitFor(ctx, 20*time.Second, func() (bool, error) {
		rep, err := r.report(ctx, id)
		return rep.ByReplica["catalog-4"] > 0, err
	})
	r.check(found == nil, "catalog-4 serves requests routed by the gateway")

	st, err := r.group(ctx, "deals")
	if err != nil {
		return err
	}
	victim := st.Replicas[0]
	r.say("Killing %s: its group heals on its own.", victim.Name)
	if _, err := r.inject(ctx, faults.Spec{Kind: faults.Kill, Group: "deals", Replica: victim.Name}); err != nil {
		return err
	}
	healed := waitFor(ctx, time.Minute, func() (bool, error) {
		st, err := r.group(ctx, "deals")
		if err != nil {
			return false, err
		}
		for _, rep := range st.Replicas {
			if rep.Name == victim.Name && rep.ID != victim.ID && rep.Health == controller.HealthReady {
				return true, nil
			}
		}
		return false, nil
	})
	r.check(healed == nil, "%s was replaced and is ready again", victim.Name)
	w, _, err = r.measure(ctx, id, 4*time.Second)
	if err != nil {
		return err
	}
	browse, _ := w.rate("browse")
	r.check(browse >= 0.99, "the rest of the shop did not notice (browse %.0f%% ok)", browse*100)
	r.say("Carts: with two cart replicas keeping carts in memory, %.0f%% of carts came back complete.", w.completeRate()*100)

	r.say("")
	return dependencyOutage(ctx, r, id)
}

// specOf is a group's spec as the controller reports it, with another
// balancer policy.
func specOf(g controller.GroupStatus, policy string) spec.Group {
	return spec.Group{Name: g.Name, Service: g.Service, Replicas: g.Desired, Resources: g.Resources,
		Balancer: spec.Balancer{Policy: policy, Port: g.Balancer.Port}, Probe: g.Probe, Liveness: g.Liveness,
		Isolation: g.Isolation, Settings: g.Settings}
}

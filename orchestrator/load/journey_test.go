package load_test

import (
	"encoding/json"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/load"
	"github.com/flotilla/flotilla/sample-services/shop"
)

// monolith serves the real shop, every feature in one handler with its own
// in-memory carts, as replica name.
func monolith(t *testing.T, name string, override map[string]http.HandlerFunc) *server {
	t.Helper()
	h, err := shop.Handler("monolith", shop.Config{Replica: name})
	if err != nil {
		t.Fatal(err)
	}
	return newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if o := override[r.Method+" "+r.URL.Path]; o != nil {
			w.Header().Set(load.ReplicaHeader, name)
			o(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// roundRobin is a tiny balancer on 127.0.0.1 that sends each request to the
// next backend in turn, as the controller's balancer does by default.
func roundRobin(t *testing.T, backends ...*server) *server {
	t.Helper()
	var next atomic.Uint64
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		b := backends[(next.Add(1)-1)%uint64(len(backends))]
		pr.Out.URL.Scheme, pr.Out.URL.Host = "http", b.addr()
	}}
	return newServer(t, proxy.ServeHTTP)
}

// journeyRun runs s as a journey run and checks what holds for every one.
func journeyRun(t *testing.T, s load.Spec) load.Report {
	t.Helper()
	s.Journey = true
	rep := run(t, s, 4*time.Second)
	if rep.Journeys == nil || rep.Steps == nil {
		t.Fatalf("journey report without journeys or steps: %+v", rep)
	}
	st := rep.Steps
	all := []load.StepCounts{st.Browse, st.Deals, st.Add, st.Cart.StepCounts, st.Checkout}
	var ok, failed int64
	for _, c := range all {
		ok += c.OK
		failed += c.Failed
	}
	// Every request is one step: the request counters are the steps'.
	if ok != rep.Succeeded || failed != rep.Failed || rep.Sent != rep.Succeeded+rep.Failed+rep.Canceled {
		t.Errorf("steps ok %d, failed %d; report sent %d, succeeded %d, failed %d, canceled %d",
			ok, failed, rep.Sent, rep.Succeeded, rep.Failed, rep.Canceled)
	}
	// A journey ends at its first failed step other than deals, or at checkout.
	if st.Checkout.OK+failed-st.Deals.Failed != rep.Journeys.Succeeded+rep.Journeys.Failed {
		t.Errorf("checkouts %d + failed steps %d, want journeys ended %+v", st.Checkout.OK, failed, rep.Journeys)
	}
	if rep.Journeys.Started < rep.Journeys.Succeeded+rep.Journeys.Failed || rep.Journeys.Started != st.Browse.OK+st.Browse.Failed {
		t.Errorf("journeys %+v, browse %+v", rep.Journeys, st.Browse)
	}
	if st.Cart.Incomplete > st.Cart.OK {
		t.Errorf("cart %+v: more incomplete than ok", st.Cart)
	}
	var byShopper int64
	for _, c := range rep.ByShopper {
		byShopper += c.Sent
	}
	if len(rep.ByShopper) != rep.Spec.Shoppers || byShopper != rep.Sent {
		t.Errorf("by shopper %v, want %d shoppers sending %d", rep.ByShopper, rep.Spec.Shoppers, rep.Sent)
	}
	return rep
}

func TestJourneyOnOneMonolith(t *testing.T) {
	t.Parallel()
	srv := monolith(t, "mono", nil)
	rep := journeyRun(t, load.Spec{Target: srv.addr(), Rate: 100, Duration: time.Second})

	if rep.Spec.Shoppers != load.DefaultJourneyShoppers || !rep.Spec.Journey || len(rep.Spec.Paths) != 0 || rep.Spec.Method != "" {
		t.Errorf("spec %+v, want a journey of %d shoppers without paths or method", rep.Spec, load.DefaultJourneyShoppers)
	}
	if rep.Sent < 90 || rep.Sent > 110 || rep.Failed != 0 || rep.Succeeded != rep.Sent || srv.hits.Load() != rep.Sent {
		t.Errorf("sent %d, succeeded %d, failed %d, server saw %d; want about 100, all succeeded", rep.Sent, rep.Succeeded, rep.Failed, srv.hits.Load())
	}
	st := rep.Steps
	for name, c := range map[string]load.StepCounts{"browse": st.Browse, "deals": st.Deals, "add": st.Add, "cart": st.Cart.StepCounts, "checkout": st.Checkout} {
		if c.OK < 10 || c.Failed != 0 || c.SuccessRate != 1 || c.Errors != nil {
			t.Errorf("step %s = %+v, want at least 10 ok, none failed", name, c)
		}
	}
	if st.Cart.Incomplete != 0 || st.Cart.CompleteRate != 1.0 {
		t.Errorf("cart %+v, want every cart complete", st.Cart)
	}
	if j := rep.Journeys; j.Succeeded < 10 || j.Failed != 0 || j.SuccessRate != 1 || j.Succeeded != st.Checkout.OK {
		t.Errorf("journeys %+v, want at least 10, all succeeded", j)
	}
	if rep.ByReplica["mono"] != rep.Sent || rep.Status[201] != st.Checkout.OK || rep.LatencyMs.Count != rep.Sent {
		t.Errorf("by replica %v, status %v, latency %+v", rep.ByReplica, rep.Status, rep.LatencyMs)
	}

	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"journey":true`, `"shoppers":10`, `"journeys":{"started":`, `"succeeded":`, `"steps":{"browse":{"ok":`,
		`"deals":{"ok":`, `"add":{"ok":`, `"checkout":{"ok":`, `"cart":{"ok":`, `"incomplete":0,"completeRate":1`, `"successRate":1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
}

func TestJourneyBehindRoundRobinFindsIncompleteCarts(t *testing.T) {
	t.Parallel()
	a, b := monolith(t, "mono-a", nil), monolith(t, "mono-b", nil)
	lb := roundRobin(t, a, b)
	rep := journeyRun(t, load.Spec{Target: lb.addr(), Rate: 100, Duration: time.Second})

	st := rep.Steps
	if st.Browse.OK < 10 || st.Browse.Failed != 0 || st.Browse.SuccessRate != 1 {
		t.Errorf("browse %+v, want 100%% ok: every replica has the catalog", st.Browse)
	}
	if st.Deals.Failed != 0 || st.Add.Failed != 0 || st.Cart.Failed != 0 {
		t.Errorf("deals %+v, add %+v, cart %+v; want none failed", st.Deals, st.Add, st.Cart)
	}
	// Each replica keeps its own carts: about half the time the cart is
	// read from the other replica than the one the item went to.
	if st.Cart.Incomplete == 0 || st.Cart.CompleteRate > 0.9 {
		t.Errorf("cart %+v, want incomplete carts behind round robin", st.Cart)
	}
	if j := rep.Journeys; j.Failed == 0 || j.SuccessRate > 0.9 {
		t.Errorf("journeys %+v, want a success rate well below 100%%", j)
	}
	// Checkout fails only when it lands where the cart is empty: 409.
	if st.Checkout.Failed != st.Checkout.Errors[load.KindStatus4xx] || rep.Failed != rep.Errors[load.KindStatus4xx] {
		t.Errorf("checkout %+v, errors %v; want only 409s", st.Checkout, rep.Errors)
	}
	if rep.ByReplica["mono-a"] < 20 || rep.ByReplica["mono-b"] < 20 {
		t.Errorf("by replica %v, want traffic spread over both", rep.ByReplica)
	}
}

func TestJourneyShoppersArePinnedToTheirTarget(t *testing.T) {
	t.Parallel()
	// Stage 2: no balancer, each shopper keeps to its own replica, so its
	// cart is always where it left it.
	a, b := monolith(t, "mono-a", nil), monolith(t, "mono-b", nil)
	rep := journeyRun(t, load.Spec{Targets: []string{a.addr(), b.addr()}, Shoppers: 4, Rate: 200, MaxRequests: 120, Duration: time.Second})

	if rep.Sent != 120 || rep.Failed != 0 || rep.Steps.Cart.CompleteRate != 1 || rep.Journeys.SuccessRate != 1 || rep.Journeys.Succeeded < 10 {
		t.Errorf("report %+v, journeys %+v, cart %+v; want every journey to succeed", rep, rep.Journeys, rep.Steps.Cart)
	}
	s := rep.ByShopper
	if ta := rep.ByTarget[a.addr()]; ta.Sent != s["s-0"].Sent+s["s-2"].Sent || a.hits.Load() != ta.Sent || rep.ByReplica["mono-a"] != ta.Sent {
		t.Errorf("target a %+v, shoppers %v, server saw %d", ta, s, a.hits.Load())
	}
	if tb := rep.ByTarget[b.addr()]; tb.Sent != s["s-1"].Sent+s["s-3"].Sent || b.hits.Load() != tb.Sent || rep.ByReplica["mono-b"] != tb.Sent {
		t.Errorf("target b %+v, shoppers %v, server saw %d", tb, s, b.hits.Load())
	}
}

func TestJourneyWithFailingDeals(t *testing.T) {
	t.Parallel()
	srv := monolith(t, "mono", map[string]http.HandlerFunc{
		"GET /deals": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "deals crashed", http.StatusInternalServerError)
		},
	})
	rep := journeyRun(t, load.Spec{Target: srv.addr(), Rate: 100, Duration: time.Second})

	st := rep.Steps
	// About 25 journeys start in the second; a busy machine starts fewer,
	// so the floors only ask for enough of them to judge by.
	if st.Browse.OK < 10 || st.Browse.Failed != 0 || st.Browse.SuccessRate != 1 {
		t.Errorf("browse %+v, want all ok", st.Browse)
	}
	if st.Deals.OK != 0 || st.Deals.Failed < 10 || st.Deals.SuccessRate != 0 || st.Deals.Errors[load.KindStatus5xx] != st.Deals.Failed {
		t.Errorf("deals %+v, want every one failed with 5xx", st.Deals)
	}
	// The shoppers go on without deals: the cart and checkout still work,
	// so the blast radius of the broken feature is deals alone.
	if st.Add.OK < 10 || st.Add.Failed != 0 || st.Checkout.OK < 5 || st.Checkout.Failed != 0 {
		t.Errorf("add %+v, checkout %+v; want shoppers to carry on past a failed deals page", st.Add, st.Checkout)
	}
	if j := rep.Journeys; j.Succeeded != 0 || j.Failed != st.Checkout.OK || j.SuccessRate != 0 {
		t.Errorf("journeys %+v, want every finished one failed (deals was missing)", j)
	}
	if rep.Errors[load.KindStatus5xx] != rep.Failed || len(rep.Errors) != 1 || rep.Status[500] != rep.Failed || rep.Failed != st.Deals.Failed {
		t.Errorf("errors %v, status %v, failed %d", rep.Errors, rep.Status, rep.Failed)
	}
}

func TestJourneyWithLostItemsAndEmptyCheckout(t *testing.T) {
	t.Parallel()
	// The cart says yes to each item but keeps none: the cart step comes
	// back incomplete and checkout answers 409, cart is empty.
	srv := monolith(t, "mono", map[string]http.HandlerFunc{
		"POST /cart/items": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"shopper":"x","items":[],"totalCents":0}`))
		},
	})
	rep := journeyRun(t, load.Spec{Target: srv.addr(), Shoppers: 2, Rate: 300, MaxRequests: 100, Duration: time.Second})

	st := rep.Steps
	if st.Cart.OK < 10 || st.Cart.Incomplete != st.Cart.OK || st.Cart.CompleteRate != 0 || st.Cart.SuccessRate != 1 {
		t.Errorf("cart %+v, want every cart ok but incomplete", st.Cart)
	}
	if st.Checkout.OK != 0 || st.Checkout.Failed < 10 || st.Checkout.Errors[load.KindStatus4xx] != st.Checkout.Failed {
		t.Errorf("checkout %+v, want every one failed with 409", st.Checkout)
	}
	if rep.Status[http.StatusConflict] != st.Checkout.Failed {
		t.Errorf("status %v, want %d × 409", rep.Status, st.Checkout.Failed)
	}
	if j := rep.Journeys; j.Succeeded != 0 || j.Failed != st.Checkout.Failed {
		t.Errorf("journeys %+v, want every one failed at checkout", j)
	}
}

func TestJourneyRejectsABadCatalog(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{"empty": `[]`, "not json": `<html>`, "no ids": `[{"name":"mug"}]`} {
		t.Run(name, func(t *testing.T) {
			srv := monolith(t, "mono", map[string]http.HandlerFunc{
				"GET /catalog": func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) },
			})
			rep := journeyRun(t, load.Spec{Target: srv.addr(), Rate: 500, MaxRequests: 10, Duration: time.Second})
			st := rep.Steps
			if st.Browse.OK != 0 || st.Browse.Failed != 10 || st.Browse.Errors[load.KindBadReply] != 10 || rep.Errors[load.KindBadReply] != 10 {
				t.Errorf("browse %+v, errors %v; want 10 bad replies", st.Browse, rep.Errors)
			}
			if rep.Status[200] != 10 || rep.Journeys.Failed != 10 || rep.Journeys.Started != 10 {
				t.Errorf("status %v, journeys %+v", rep.Status, rep.Journeys)
			}
		})
	}
}

func TestPathRunHasNoJourneyReport(t *testing.T) {
	srv := newServer(t, nil)
	rep := run(t, load.Spec{Target: srv.addr(), Rate: 500, MaxRequests: 3, Duration: time.Second}, 2*time.Second)
	b, _ := json.Marshal(rep)
	if rep.Journeys != nil || rep.Steps != nil || strings.Contains(string(b), "journey") || strings.Contains(string(b), "steps") {
		t.Errorf("a run of paths reports journeys: %s", b)
	}
}

func TestJourneyStopLeavesStepsUncounted(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := monolith(t, "mono", map[string]http.HandlerFunc{
		"GET /deals": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		},
	})
	t.Cleanup(func() { close(release) })
	r, err := load.Start(t.Context(), load.Spec{Target: srv.addr(), Journey: true, Shoppers: 3, Rate: 100, Duration: time.Minute, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // each shopper browses, then waits on deals
	r.Stop()
	select {
	case <-r.Done():
	case <-time.After(time.Second):
		t.Fatal("run did not end within 1s of Stop")
	}
	rep := r.Report()
	st := rep.Steps
	if rep.State != load.StateStopped || rep.Canceled != 3 || rep.Failed != 0 || st.Deals.OK+st.Deals.Failed != 0 {
		t.Errorf("report %+v, deals %+v; want the 3 deals steps cut off, none failed", rep, st.Deals)
	}
	if st.Browse.OK != 3 || rep.Journeys.Started != 3 || rep.Journeys.Failed != 0 || rep.Dropped < 10 {
		t.Errorf("browse %+v, journeys %+v, dropped %d; want 3 journeys begun, the other ticks dropped", st.Browse, rep.Journeys, rep.Dropped)
	}
}

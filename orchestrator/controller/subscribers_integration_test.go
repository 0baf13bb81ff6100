package controller_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/bus"
	"github.com/flotilla/flotilla/orchestrator/bus/bustest"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/faults"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/bus/client"
	"github.com/flotilla/flotilla/sample-services/bus/consume"
)

// TestIntegrationSubscriberPausedLosesNothing: of two notifications
// replicas sharing their durable consumer, one is paused (frozen with the
// pull it had asked for). A short pause: the other takes what the stream
// offers meanwhile, the paused one applies what it held when it wakes.
// A pause past the consumer's ack wait (30s): the message the paused
// replica held comes back to the other one, and when the paused one wakes
// it finds that event applied and counts a duplicate. Every order is
// applied once, none is lost, none applied twice. (A paused replica is
// never replaced by the controller: only a running one failing its
// liveness probe is; so the message is redelivered by the bus, not by a
// replacement.)
func TestIntegrationSubscriberPausedLosesNothing(t *testing.T) {
	h := start(t, func(o *controller.Options) { o.BusSecret = bustest.Secret })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	begun := time.Now()
	fast := spec.Probe{PeriodMs: 250, TimeoutMs: 200}
	for _, g := range []spec.Group{
		{Name: "bus", Service: "bus", Replicas: 1, Balancer: spec.Balancer{Policy: spec.PolicyNone}, Probe: fast},
		{Name: "notifications", Service: "notifications", Replicas: 2, Probe: fast},
	} {
		if _, _, err := h.ctrl.PutGroup(ctx, g); err != nil {
			t.Fatalf("put group %s: %v", g.Name, err)
		}
	}
	addr := bustest.Addr(t, h.busReplica(""), spec.BusClientPort)
	st := bustest.ReadyGroup(h.t, h.ctrl, "notifications", 2)
	checkout := bustest.Connect(t, addr, "checkout")
	mon := bustest.Connect(t, addr, access.Monitor)
	cons, err := mon.JS.Consumer(ctx, "ORDERS", "notifications")
	if err != nil {
		t.Fatal(err)
	}
	info := func() *jetstream.ConsumerInfo {
		t.Helper()
		i, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	var victim controller.ReplicaStatus
	for _, r := range st.Replicas {
		if r.Name == "notifications-2" {
			victim = r
		}
	}
	t.Cleanup(func() { h.drv.Unpause(context.Background(), victim.ID) })
	ledgerIs := func(n int64, within time.Duration) {
		t.Helper()
		dockertest.Poll(t, within, fmt.Sprintf("%d orders in the ledger", n), func() error {
			if got := bustest.LedgerCount(h.t, h.ctrl, "notifications"); got != n {
				return fmt.Errorf("the ledger holds %d", got)
			}
			return nil
		})
	}
	// Both replicas wait on a pull, so the one paused next holds what the
	// bus gives it.
	bothPulling := func() {
		t.Helper()
		dockertest.Poll(t, 20*time.Second, "both replicas pulling", func() error {
			if i := info(); i.NumWaiting < 2 || i.NumAckPending != 0 {
				return fmt.Errorf("%d pulls waiting, %d unacked", i.NumWaiting, i.NumAckPending)
			}
			return nil
		})
	}
	// held waits until the stream has given out every order (to the
	// paused replica or the other) and says how many the paused one holds.
	// The other replica works on several at once: what is unacknowledged
	// is the paused one's once the figure holds still.
	held := func() int {
		t.Helper()
		n := -1
		dockertest.Poll(t, 20*time.Second, "every order delivered, and the other replica done", func() error {
			i := info()
			if i.NumPending != 0 {
				return fmt.Errorf("%d orders not delivered yet", i.NumPending)
			}
			if i.NumAckPending != n {
				n = i.NumAckPending
				time.Sleep(500 * time.Millisecond)
				return fmt.Errorf("%d unacknowledged, still changing", n)
			}
			return nil
		})
		return n
	}

	bustest.PublishOrders(t, ctx, checkout, 1, 10)
	ledgerIs(10, 30*time.Second)
	t.Logf("ready and 10 orders applied after %s", time.Since(begun).Round(100*time.Millisecond))

	// A short pause.
	bothPulling()
	if err := h.drv.Pause(ctx, victim.ID); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	bustest.PublishOrders(t, ctx, checkout, 11, 30)
	shortHeld := held()
	if got := bustest.LedgerCount(h.t, h.ctrl, "notifications"); got != int64(30-shortHeld) {
		t.Errorf("while notifications-2 is paused holding %d: the ledger holds %d, want the other %d applied by notifications-1", shortHeld, got, 30-shortHeld)
	}
	if err := h.drv.Unpause(ctx, victim.ID); err != nil {
		t.Fatal(err)
	}
	ledgerIs(30, 20*time.Second)
	t.Logf("short pause: notifications-2 held %d order(s) and applied them on waking, %s after the pause", shortHeld, time.Since(paused).Round(100*time.Millisecond))

	// A pause past the ack wait.
	bothPulling()
	if err := h.drv.Pause(ctx, victim.ID); err != nil {
		t.Fatal(err)
	}
	paused = time.Now()
	bustest.PublishOrders(t, ctx, checkout, 31, 50)
	longHeld := held()
	t.Logf("long pause: notifications-2 holds %d order(s)", longHeld)
	ackWait := info().Config.AckWait
	ledgerIs(50, ackWait+20*time.Second)
	redelivered := time.Since(paused)
	if longHeld > 0 && redelivered < ackWait-time.Second {
		t.Errorf("every order applied %s after the pause, before the ack wait (%s): who applied the held one?", redelivered, ackWait)
	}
	// The ledger says who applied each order and when: the held ones by
	// notifications-1, once the ack wait had passed.
	ledger, err := bustest.Connect(t, addr, "notifications").JS.KeyValue(ctx, access.AppliedBucket("notifications"))
	if err != nil {
		t.Fatal(err)
	}
	var late []string
	for i := 31; i <= 50; i++ {
		id := fmt.Sprintf("order-%03d", i)
		e, err := ledger.Get(ctx, id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		var rec struct {
			Replica string    `json:"replica"`
			At      time.Time `json:"at"`
		}
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			t.Fatalf("%s: ledger record %s: %v", id, e.Value(), err)
		}
		if rec.Replica != "notifications-1" {
			t.Errorf("%s applied by %s while notifications-2 was paused", id, rec.Replica)
		}
		if rec.At.After(paused.Add(ackWait - time.Second)) {
			late = append(late, id)
		}
	}
	if len(late) != longHeld {
		t.Errorf("orders applied after the ack wait: %v; want the %d the paused replica held", late, longHeld)
	}
	if err := h.drv.Unpause(ctx, victim.ID); err != nil {
		t.Fatal(err)
	}
	// Awake, notifications-2 gets to the message it held, finds it applied
	// and acknowledges it as a duplicate.
	var stats map[string]consume.Stats
	dockertest.Poll(t, 20*time.Second, "the woken replica settles", func() error {
		stats = bustest.Stats(h.t, h.ctrl, "notifications")
		if len(stats) != 2 {
			return fmt.Errorf("%d replicas answer", len(stats))
		}
		if d := stats["notifications-2"].Duplicates; d != uint64(longHeld) {
			return fmt.Errorf("notifications-2 counted %d duplicates", d)
		}
		if i := info(); i.NumAckPending != 0 || i.NumPending != 0 {
			return fmt.Errorf("consumer: %d unacked, %d pending", i.NumAckPending, i.NumPending)
		}
		return nil
	})
	var applied, duplicates, failed uint64
	for _, s := range stats {
		applied += s.Applied
		duplicates += s.Duplicates
		failed += s.Failed
	}
	if applied != 50 || failed != 0 || duplicates != uint64(longHeld) {
		t.Errorf("applied %d, duplicates %d, failed %d; want each of 50 orders applied once, %d duplicate(s)", applied, duplicates, failed, longHeld)
	}
	if got := bustest.LedgerCount(h.t, h.ctrl, "notifications"); got != 50 {
		t.Errorf("the ledger holds %d, want 50", got)
	}
	if i := info(); i.AckFloor.Stream != 50 {
		t.Errorf("ack floor %d, want all 50 acknowledged", i.AckFloor.Stream)
	}
	if gs, _ := h.ctrl.Group("notifications"); !slices.ContainsFunc(gs.Replicas, func(r controller.ReplicaStatus) bool { return r.ID == victim.ID }) {
		t.Errorf("the paused replica was replaced")
	}
	t.Logf("long pause: %v redelivered to notifications-1, every order applied %s after the pause (ack wait %s); notifications-1 applied %d, notifications-2 %d and %d duplicate(s); whole test %s",
		late, redelivered.Round(100*time.Millisecond), ackWait, stats["notifications-1"].Applied, stats["notifications-2"].Applied, duplicates, time.Since(begun).Round(100*time.Millisecond))
}

// TestIntegrationSlowConsumerDoesNotSlowCheckout: notifications slowed to
// 400 ms per event. Checkout with events=http calls it in line and takes
// the 400 ms on every order; checkout with events=bus answers in a few
// milliseconds (p99 under half the slowness over 100 orders) while
// notifications falls behind, and once the fault is
// reverted the backlog drains, every order applied once.
func TestIntegrationSlowConsumerDoesNotSlowCheckout(t *testing.T) {
	h := start(t, func(o *controller.Options) { o.BusSecret = bustest.Secret })
	inj := faults.New(faults.Options{Controller: h.ctrl, Runtime: h.drv})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	begun := time.Now()
	fast := spec.Probe{PeriodMs: 250, TimeoutMs: 200}
	none, rr := spec.Balancer{Policy: spec.PolicyNone}, spec.Balancer{Policy: spec.PolicyRoundRobin}
	for _, g := range []spec.Group{
		{Name: "bus", Service: "bus", Replicas: 1, Balancer: none, Probe: fast},
		{Name: "catalog", Service: "catalog", Replicas: 1, Balancer: none, Probe: fast},
		{Name: "orders", Service: "orders", Replicas: 1, Balancer: none, Probe: fast},
		{Name: "cart", Service: "cart", Replicas: 1, Balancer: rr, Probe: fast},
		{Name: "checkout", Service: "checkout", Replicas: 1, Settings: map[string]string{"events": "bus"}, Balancer: rr, Probe: fast},
		{Name: "httpcheckout", Service: "checkout", Replicas: 1, Settings: map[string]string{"events": "http"}, Balancer: rr, Probe: fast},
		{Name: "notifications", Service: "notifications", Replicas: 1, Probe: fast},
	} {
		if _, _, err := h.ctrl.PutGroup(ctx, g); err != nil {
			t.Fatalf("put group %s: %v", g.Name, err)
		}
	}
	h.busReplica("")
	cartURL := balancerURL(t, h, "cart", 1)
	busCheckout := balancerURL(t, h, "checkout", 1)
	httpCheckout := balancerURL(t, h, "httpcheckout", 1)
	bustest.ReadyGroup(h.t, h.ctrl, "notifications", 1)
	dockertest.Poll(t, 30*time.Second, "checkout connected to the bus", func() error {
		if st := eventsOf(t, ctx, busCheckout); !st.Connected {
			return fmt.Errorf("events: %+v", st)
		}
		return nil
	})
	// A first order each way, unslowed: names resolved, connections made.
	order(t, ctx, cartURL, httpCheckout, "warm-http")
	order(t, ctx, cartURL, busCheckout, "warm-bus")
	dockertest.Poll(t, 20*time.Second, "the first orders applied", func() error {
		if n := bustest.LedgerCount(h.t, h.ctrl, "notifications"); n != 2 {
			return fmt.Errorf("the ledger holds %d", n)
		}
		return nil
	})
	t.Logf("shop ready after %s", time.Since(begun).Round(100*time.Millisecond))

	const slowMs = 400
	f, err := inj.InjectFault(ctx, faults.Spec{Kind: faults.SlowConsumer, Group: "notifications", LatencyMs: slowMs})
	if err != nil {
		t.Fatal(err)
	}
	reverted := false
	t.Cleanup(func() {
		if !reverted {
			inj.RevertFault(context.Background(), f.ID)
		}
	})

	// In line: every checkout waits for the slow subscriber.
	const viaHTTP = 5
	var httpTook []time.Duration
	for i := range viaHTTP {
		httpTook = append(httpTook, order(t, ctx, cartURL, httpCheckout, "http-"+strconv.Itoa(i)))
	}
	slices.Sort(httpTook)
	if httpTook[0] < slowMs*time.Millisecond {
		t.Errorf("with events=http a checkout took %s, less than the subscriber's %d ms: it did not wait for it", httpTook[0], slowMs)
	}

	// Through the bus: checkout does not wait.
	const viaBus = 100
	var busTook []time.Duration
	for i := range viaBus {
		busTook = append(busTook, order(t, ctx, cartURL, busCheckout, "bus-"+strconv.Itoa(i)))
	}
	lag := int64(2+viaHTTP+viaBus) - bustest.LedgerCount(h.t, h.ctrl, "notifications")
	slices.Sort(busTook)
	p50, p99 := busTook[len(busTook)/2], busTook[(len(busTook)*99+99)/100-1]
	t.Logf("slow consumer %d ms: checkout events=http min %s max %s; events=bus p50 %s p99 %s max %s over %d; notifications %d orders behind",
		slowMs, httpTook[0].Round(time.Millisecond), httpTook[len(httpTook)-1].Round(time.Millisecond),
		p50.Round(100*time.Microsecond), p99.Round(100*time.Microsecond), busTook[len(busTook)-1].Round(100*time.Microsecond), viaBus, lag)
	if p99 >= slowMs/2*time.Millisecond {
		t.Errorf("with events=bus checkout p99 is %s (slowest %v); want it far below the subscriber's %d ms", p99, busTook[len(busTook)-3:], slowMs)
	}
	if lag < viaBus/2 {
		t.Errorf("notifications is %d orders behind after %d checkouts at %d ms each; want it to fall behind", lag, viaBus, slowMs)
	}
	if st := eventsOf(t, ctx, busCheckout); st.Published != 2*(viaBus+1) || st.Outbox != 0 {
		t.Errorf("checkout events: %+v, want %d messages published, none waiting", st, 2*(viaBus+1))
	}

	// Reverted: the backlog drains, every order applied once.
	if _, err := inj.RevertFault(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	reverted = true
	drained := time.Now()
	const all = 2 + viaHTTP + viaBus
	dockertest.Poll(t, 30*time.Second, "the backlog drained", func() error {
		if n := bustest.LedgerCount(h.t, h.ctrl, "notifications"); n != all {
			return fmt.Errorf("the ledger holds %d", n)
		}
		return nil
	})
	var applied, duplicates uint64
	for _, s := range bustest.Stats(h.t, h.ctrl, "notifications") {
		applied += s.Applied
		duplicates += s.Duplicates
	}
	if applied != all || duplicates != 0 {
		t.Errorf("notifications applied %d with %d duplicates; want each of %d orders once", applied, duplicates, all)
	}
	t.Logf("backlog drained %s after the revert; whole test %s", time.Since(drained).Round(100*time.Millisecond), time.Since(begun).Round(100*time.Millisecond))
}

// TestIntegrationBusRefusesBadInput: on the real bus a publish to a subject
// the user may not publish (one no stream knows) is refused at once with
// ErrForbidden naming it; a message over the server's max payload is
// refused saying so; through the API a replay of a dead letter that does
// not exist is 404 with a JSON error.
func TestIntegrationBusRefusesBadInput(t *testing.T) {
	h := start(t, func(o *controller.Options) { o.BusSecret = bustest.Secret })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, _, err := h.ctrl.PutGroup(ctx, spec.Group{Name: "bus", Service: "bus", Replicas: 1,
		Balancer: spec.Balancer{Policy: spec.PolicyNone}, Probe: spec.Probe{PeriodMs: 250, TimeoutMs: 200}}); err != nil {
		t.Fatal(err)
	}
	addr := bustest.Addr(t, h.busReplica(""), spec.BusClientPort)
	checkout := bustest.Connect(t, addr, "checkout")

	start := time.Now()
	_, forbidden := checkout.Publish(ctx, "orders.cancelled", []byte(`{"orderId":"o-1"}`), "o-1")
	if err := forbidden; !errors.Is(err, client.ErrForbidden) || !strings.Contains(err.Error(), `"orders.cancelled"`) {
		t.Errorf("checkout publishes orders.cancelled: err = %v; want ErrForbidden naming the subject", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the refusal took %s; want it at once", took)
	}

	limit := checkout.Conn.MaxPayload()
	if limit <= 0 || limit > 8<<20 {
		t.Fatalf("the server announces a max payload of %d", limit)
	}
	_, oversized := checkout.Publish(ctx, access.SubjectOrderPlaced, make([]byte, limit+1), "big")
	if err := oversized; !errors.Is(err, nats.ErrMaxPayload) || !strings.Contains(err.Error(), "maximum payload exceeded") {
		t.Errorf("a %d-byte order: err = %v; want ErrMaxPayload", limit+1, err)
	}
	// Nothing of either reached the stream; a fitting order still does.
	if ack, err := checkout.Publish(ctx, access.SubjectOrderPlaced, []byte(`{"orderId":"o-2"}`), "o-2"); err != nil || ack.Sequence != 1 {
		t.Errorf("an order after the refusals: ack %+v, err %v; want sequence 1", ack, err)
	}

	handler, err := api.New(api.Options{Controller: h.ctrl, Bus: h.ctrl})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/api/v1/bus/deadletters/424242/replay", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e api.ErrorResponse
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, "no such dead letter") {
		t.Errorf("replay of dead letter 424242 = %d %s %s; want 404 JSON saying there is no such dead letter", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	t.Logf("refusals: %v; %v; replay of a missing dead letter: %d %s", forbidden, oversized, resp.StatusCode, e.Error)
}

// apiCall is one request to the API's handler, its status and body.
func apiCall(t *testing.T, url, method string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q, want JSON", method, url, ct)
	}
	return resp.StatusCode, body
}

// TestIntegrationDeadLetterLandsAndReplays: inventory poisoned for one
// message fails an order on every attempt; after MaxDeliver it is a dead
// letter, shown by GET /api/v1/bus with its consumer, attempts and reason,
// while notifications applied the same order. The fault reverted, a replay
// through the API publishes it again: inventory applies it, notifications
// counts a duplicate and does not apply it twice, the dead letter is gone,
// and a second replay of it is 404.
func TestIntegrationDeadLetterLandsAndReplays(t *testing.T) {
	h := start(t, func(o *controller.Options) { o.BusSecret = bustest.Secret })
	inj := faults.New(faults.Options{Controller: h.ctrl, Runtime: h.drv})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	begun := time.Now()
	fast := spec.Probe{PeriodMs: 250, TimeoutMs: 200}
	for _, g := range []spec.Group{
		{Name: "bus", Service: "bus", Replicas: 1, Balancer: spec.Balancer{Policy: spec.PolicyNone}, Probe: fast},
		{Name: "notifications", Service: "notifications", Replicas: 1, Probe: fast},
		{Name: "inventory", Service: "inventory", Replicas: 1, Probe: fast},
	} {
		if _, _, err := h.ctrl.PutGroup(ctx, g); err != nil {
			t.Fatalf("put group %s: %v", g.Name, err)
		}
	}
	addr := bustest.Addr(t, h.busReplica(""), spec.BusClientPort)
	bustest.ReadyGroup(h.t, h.ctrl, "notifications", 1)
	bustest.ReadyGroup(h.t, h.ctrl, "inventory", 1)
	checkout := bustest.Connect(t, addr, "checkout")
	handler, err := api.New(api.Options{Controller: h.ctrl, Bus: h.ctrl})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	defer srv.Close()

	poison, err := inj.InjectFault(ctx, faults.Spec{Kind: faults.Poison, Group: "inventory", Messages: 1})
	if err != nil {
		t.Fatal(err)
	}
	reverted := false
	t.Cleanup(func() {
		if !reverted {
			inj.RevertFault(context.Background(), poison.ID)
		}
	})
	bustest.PublishOrders(t, ctx, checkout, 1, 1)
	poisoned := time.Now()
	var dead bus.DeadLetter
	dockertest.Poll(t, 30*time.Second, "a dead letter shown by the API", func() error {
		code, body := apiCall(t, srv.URL+"/api/v1/bus", "GET")
		var st bus.Status
		if err := json.Unmarshal(body, &st); err != nil || code != http.StatusOK {
			return fmt.Errorf("GET /api/v1/bus = %d %s", code, body)
		}
		if len(st.Dead) != 1 {
			return fmt.Errorf("%d dead letters (%s)", len(st.Dead), st.Error)
		}
		dead = st.Dead[0]
		return nil
	})
	t.Logf("dead letter %s after the publish: %+v", time.Since(poisoned).Round(100*time.Millisecond), dead)
	if dead.Stream != "ORDERS" || dead.StreamSeq != 1 || dead.Consumer != "inventory" || dead.EventID != "order-001" ||
		dead.Deliveries != 5 || dead.Subject != access.SubjectOrderPlaced || dead.Reason == "" {
		t.Errorf("dead letter %+v; want ORDERS seq 1, order-001, inventory's, after 5 deliveries, with a reason", dead)
	}
	inv, notif := bustest.Stats(h.t, h.ctrl, "inventory")["inventory-1"], bustest.Stats(h.t, h.ctrl, "notifications")["notifications-1"]
	if inv.Failed != 5 || inv.Applied != 0 || notif.Applied != 1 {
		t.Errorf("before the replay inventory %+v, notifications %+v; want 5 failed attempts and the order applied by notifications only", inv.Counts, notif.Counts)
	}

	if _, err := inj.RevertFault(ctx, poison.ID); err != nil {
		t.Fatal(err)
	}
	reverted = true
	seq := strconv.FormatUint(dead.Seq, 10)
	code, body := apiCall(t, srv.URL+"/api/v1/bus/deadletters/"+seq+"/replay", "POST")
	var res bus.ReplayResult
	if err := json.Unmarshal(body, &res); err != nil || code != http.StatusOK {
		t.Fatalf("replay of dead letter %s = %d %s", seq, code, body)
	}
	if res.MsgID != "order-001.replay."+seq || res.Subject != access.SubjectOrderPlaced || res.Replayed.EventID != "order-001" {
		t.Errorf("replay result %+v; want order-001 published again to %s as order-001.replay.%s", res, access.SubjectOrderPlaced, seq)
	}
	dockertest.Poll(t, 20*time.Second, "the replay applied by inventory, a duplicate to notifications", func() error {
		inv, notif = bustest.Stats(h.t, h.ctrl, "inventory")["inventory-1"], bustest.Stats(h.t, h.ctrl, "notifications")["notifications-1"]
		if inv.Applied != 1 || notif.Duplicates != 1 {
			return fmt.Errorf("inventory applied %d, notifications counted %d duplicates", inv.Applied, notif.Duplicates)
		}
		return nil
	})
	if notif.Applied != 1 || inv.LedgerCount != 1 || notif.LedgerCount != 1 || inv.LastEventID != "order-001" {
		t.Errorf("after the replay inventory %+v, notifications %+v; want order-001 applied once by each", inv.Counts, notif.Counts)
	}
	if st := h.ctrl.BusStatus(); len(st.Dead) != 0 {
		t.Errorf("dead letters after the replay: %+v", st.Dead)
	}
	code, body = apiCall(t, srv.URL+"/api/v1/bus/deadletters/"+seq+"/replay", "POST")
	var e api.ErrorResponse
	if code != http.StatusNotFound || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, "no such dead letter") {
		t.Errorf("a second replay of %s = %d %s; want 404 JSON", seq, code, body)
	}
	t.Logf("replayed as %s; inventory applied it, notifications counted a duplicate; whole test %s", res.MsgID, time.Since(begun).Round(100*time.Millisecond))
}

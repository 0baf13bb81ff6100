package faults_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/orchestrator/bus/bustest"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/faults"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/bus/client"
	"github.com/flotilla/flotilla/sample-services/bus/consume"
)

// TestIntegrationSubscribers runs the bus and a notifications group of two
// through the controller: the orders checkout publishes are split between
// the replicas and each applied once; one replica killed mid-stream loses
// nothing and applies nothing twice; a poison fault sends its event to the
// dead letters after its attempts, and after the fault is reverted the
// consumer goes on.
func TestIntegrationSubscribers(t *testing.T) {
	h := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fast := spec.Probe{PeriodMs: 250, TimeoutMs: 200}
	if _, _, err := h.ctrl.PutGroup(ctx, spec.Group{Name: "bus", Service: "bus", Replicas: 1, Balancer: spec.Balancer{Policy: spec.PolicyNone}, Probe: fast}); err != nil {
		t.Fatal(err)
	}
	bustest.ReadyGroup(t, h.ctrl, "bus", 1)
	if _, _, err := h.ctrl.PutGroup(ctx, spec.Group{Name: "notifications", Service: "notifications", Replicas: 2, Probe: fast}); err != nil {
		t.Fatal(err)
	}
	bustest.ReadyGroup(t, h.ctrl, "notifications", 2) // ready = connected, consumer bound
	checkout := h.connectAs(t, "checkout")
	mine := h.connectAs(t, "notifications")
	ledger, err := mine.JS.KeyValue(ctx, access.AppliedBucket("notifications"))
	if err != nil {
		t.Fatal(err)
	}

	// 30 orders: split between the two replicas, each applied once.
	bustest.PublishOrders(t, ctx, checkout, 1, 30)
	var before map[string]consume.Stats
	dockertest.Poll(t, 30*time.Second, "30 orders applied", func() error {
		before = bustest.Stats(t, h.ctrl, "notifications")
		var sum uint64
		for _, s := range before {
			sum += s.Applied
		}
		if len(before) != 2 || sum != 30 {
			return fmt.Errorf("applied %d over %d replicas", sum, len(before))
		}
		return nil
	})
	for name, s := range before {
		if s.Applied == 0 || s.Duplicates != 0 || s.Failed != 0 || s.Ledger != "bucket applied_notifications" {
			t.Errorf("%s: %+v; want a share of the orders, nothing else", name, s)
		}
	}
	t.Logf("30 orders: notifications-1 applied %d, notifications-2 %d", before["notifications-1"].Applied, before["notifications-2"].Applied)

	// 30 more, and notifications-2 is killed while they are being taken.
	st, _ := h.ctrl.Group("notifications")
	var victim controller.ReplicaStatus
	for _, r := range st.Replicas {
		if r.Name == "notifications-2" {
			victim = r
		}
	}
	bustest.PublishOrders(t, ctx, checkout, 31, 45)
	if err := h.drv.Kill(ctx, victim.ID, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	killed := time.Now() // its records are older; its replacement's newer
	bustest.PublishOrders(t, ctx, checkout, 46, 60)

	// Every order is applied in the end (a message the dead replica held
	// comes back after the consumer's ack wait, 30s).
	const n = 60
	dockertest.Poll(t, 90*time.Second, "60 orders in the ledger", func() error {
		keys, err := ledger.ListKeys(ctx)
		if err != nil {
			return err
		}
		count := 0
		for range keys.Keys() {
			count++
		}
		if count != n {
			return fmt.Errorf("%d orders applied", count)
		}
		return nil
	})
	// Who applied what: the ledger says which replica applied each order,
	// and when; the dead replica's share is what it recorded before the
	// kill. With the survivors' own counts it adds up to every order once.
	var byDead uint64
	for i := 1; i <= n; i++ {
		e, err := ledger.Get(ctx, fmt.Sprintf("order-%03d", i))
		if err != nil {
			t.Fatalf("order-%03d: %v", i, err)
		}
		var rec struct {
			Replica string    `json:"replica"`
			At      time.Time `json:"at"`
		}
		json.Unmarshal(e.Value(), &rec)
		if rec.Replica == "notifications-2" && rec.At.Before(killed) {
			byDead++
		}
	}
	bustest.ReadyGroup(t, h.ctrl, "notifications", 2)
	var applied, duplicates uint64
	after := bustest.Stats(t, h.ctrl, "notifications")
	for _, s := range after {
		applied += s.Applied
		duplicates += s.Duplicates
	}
	if applied+byDead != n {
		t.Errorf("the survivors applied %d and the dead replica %d: %d, want every order once (%d)", applied, byDead, applied+byDead, n)
	}
	mon := h.connectAs(t, access.Monitor)
	cons, err := mon.JS.Consumer(ctx, "ORDERS", "notifications")
	if err != nil {
		t.Fatal(err)
	}
	if info := cons.CachedInfo(); info.NumPending != 0 || info.NumAckPending != 0 || info.AckFloor.Stream != n {
		t.Errorf("consumer: pending %d, ack pending %d, ack floor %d; want all %d acknowledged", info.NumPending, info.NumAckPending, info.AckFloor.Stream, n)
	}
	t.Logf("kill mid-stream: the dead replica applied %d, the survivors %d, %d duplicates acknowledged", byDead, applied, duplicates)

	// Poison: refused on a group that subscribes to nothing.
	if _, err := h.inj.InjectFault(ctx, faults.Spec{Kind: faults.Poison, Group: "bus", Messages: 1}); !errors.Is(err, faults.ErrInvalid) {
		t.Errorf("poison on the bus group: %v, want ErrInvalid", err)
	}
	f, err := h.inj.InjectFault(ctx, faults.Spec{Kind: faults.Poison, Group: "notifications", Messages: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Replicas) != 2 {
		t.Errorf("poison applied to %v, want both replicas", f.Replicas)
	}
	bustest.PublishOrders(t, ctx, checkout, n+1, n+1)
	dead, err := mon.JS.Stream(ctx, access.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	dockertest.Poll(t, 30*time.Second, "a dead letter", func() error {
		info, err := dead.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != 1 {
			return fmt.Errorf("%d dead letters", info.State.Msgs)
		}
		return nil
	})
	raw, err := dead.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var adv struct {
		Stream     string `json:"stream"`
		Consumer   string `json:"consumer"`
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries uint64 `json:"deliveries"`
	}
	json.Unmarshal(raw.Data, &adv)
	if adv.Stream != "ORDERS" || adv.Consumer != "notifications" || adv.StreamSeq != n+1 || adv.Deliveries != 5 {
		t.Errorf("dead letter %s, want ORDERS/notifications seq %d after 5 deliveries", raw.Data, n+1)
	}
	var failed uint64
	for _, s := range bustest.Stats(t, h.ctrl, "notifications") {
		failed += s.Failed
	}
	if failed != 5 {
		t.Errorf("%d failed attempts, want 5 (MaxDeliver)", failed)
	}

	// Reverted: the next order goes through.
	revertAll(t, h, f)
	bustest.PublishOrders(t, ctx, checkout, n+2, n+2)
	dockertest.Poll(t, 20*time.Second, "the next order applied", func() error {
		if _, err := ledger.Get(ctx, fmt.Sprintf("order-%03d", n+2)); err != nil {
			return err
		}
		return nil
	})
	if _, err := ledger.Get(ctx, fmt.Sprintf("order-%03d", n+1)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("the poisoned order is in the ledger (%v): it was applied", err)
	}

	// A slow consumer and a poison together: each reverts alone.
	slow, err := h.inj.InjectFault(ctx, faults.Spec{Kind: faults.SlowConsumer, Group: "notifications", LatencyMs: 50})
	if err != nil {
		t.Fatal(err)
	}
	poison, err := h.inj.InjectFault(ctx, faults.Spec{Kind: faults.Poison, Group: "notifications", Messages: 3})
	if err != nil {
		t.Fatal(err)
	}
	st, _ = h.ctrl.Group("notifications")
	table := func() string {
		b, _ := json.Marshal(adminFaults(t, st.Replicas[0], h))
		return string(b)
	}
	if got := table(); got != `{"notifications":{"poison":3,"slowMs":50}}` {
		t.Errorf("fault port with both = %s", got)
	}
	if _, err := h.inj.RevertFault(ctx, poison.ID); err != nil {
		t.Fatal(err)
	}
	if got := table(); got != `{"notifications":{"slowMs":50}}` {
		t.Errorf("fault port after the poison's revert = %s, want the slow consumer left", got)
	}
	revertAll(t, h, slow)
	if got := table(); got != `{}` {
		t.Errorf("fault port after both reverts = %s", got)
	}
}

// TestIntegrationFulfillmentWorkerKilledMidJob: two fulfillment workers
// share the work queue; one is killed while it ships; its job comes back
// after the ack wait to a worker that ships it, and every job is shipped
// once.
func TestIntegrationFulfillmentWorkerKilledMidJob(t *testing.T) {
	h := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fast := spec.Probe{PeriodMs: 250, TimeoutMs: 200}
	if _, _, err := h.ctrl.PutGroup(ctx, spec.Group{Name: "bus", Service: "bus", Replicas: 1, Balancer: spec.Balancer{Policy: spec.PolicyNone}, Probe: fast}); err != nil {
		t.Fatal(err)
	}
	bustest.ReadyGroup(t, h.ctrl, "bus", 1)
	if _, _, err := h.ctrl.PutGroup(ctx, spec.Group{Name: "fulfillment", Service: "fulfillment", Replicas: 2, Probe: fast}); err != nil {
		t.Fatal(err)
	}
	st := bustest.ReadyGroup(t, h.ctrl, "fulfillment", 2)
	checkout := h.connectAs(t, "checkout")
	mine := h.connectAs(t, "fulfillment")
	ledger, err := mine.JS.KeyValue(ctx, access.AppliedBucket("fulfillment"))
	if err != nil {
		t.Fatal(err)
	}

	const n = 16 // 200 ms each, two workers: about 1.6 s of work
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("job-%02d", i)
		body, _ := json.Marshal(consume.Job{OrderID: id, Items: []consume.OrderItem{{ProductID: "tea-mug", Quantity: 1, PriceCents: 1200}}})
		m := &nats.Msg{Subject: access.SubjectOrderFulfill, Data: body, Header: nats.Header{access.EventIDHeader: {id}}}
		if _, err := checkout.JS.PublishMsg(ctx, m, jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}
	var victim controller.ReplicaStatus
	for _, r := range st.Replicas {
		if r.Name == "fulfillment-2" {
			victim = r
		}
	}
	// Kill it once it has shipped a couple: it is busy with the next.
	dockertest.Poll(t, 20*time.Second, "fulfillment-2 at work", func() error {
		if s := bustest.Stats(t, h.ctrl, "fulfillment")["fulfillment-2"]; s.Applied < 2 {
			return fmt.Errorf("fulfillment-2 shipped %d", s.Applied)
		}
		return nil
	})
	if err := h.drv.Kill(ctx, victim.ID, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()

	mon := h.connectAs(t, access.Monitor)
	queue, err := mon.JS.Stream(ctx, "FULFILLMENT")
	if err != nil {
		t.Fatal(err)
	}
	dockertest.Poll(t, 60*time.Second, "every job shipped", func() error {
		info, err := queue.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != 0 {
			return fmt.Errorf("%d jobs left in the queue", info.State.Msgs)
		}
		return nil
	})
	t.Logf("the queue was empty %s after the kill (ack wait 10s)", time.Since(killed).Round(100*time.Millisecond))

	var byDead uint64
	for i := 1; i <= n; i++ {
		e, err := ledger.Get(ctx, fmt.Sprintf("job-%02d", i))
		if err != nil {
			t.Fatalf("job-%02d is not recorded as shipped: %v", i, err)
		}
		var rec struct {
			Replica string    `json:"replica"`
			At      time.Time `json:"at"`
		}
		json.Unmarshal(e.Value(), &rec)
		if rec.Replica == "fulfillment-2" && rec.At.Before(killed) {
			byDead++
		}
	}
	bustest.ReadyGroup(t, h.ctrl, "fulfillment", 2)
	var applied uint64
	for name, s := range bustest.Stats(t, h.ctrl, "fulfillment") {
		applied += s.Applied
		resp, err := quick.Get("http://" + addressOf(t, h, "fulfillment", name) + "/done")
		if err != nil {
			t.Fatal(err)
		}
		var done struct{ Count uint64 }
		json.NewDecoder(resp.Body).Decode(&done)
		resp.Body.Close()
		if done.Count != s.Applied {
			t.Errorf("%s: /done counts %d, /stats applied %d", name, done.Count, s.Applied)
		}
	}
	if applied+byDead != n {
		t.Errorf("shipped %d by the survivors and %d by the dead worker, want each of %d jobs once", applied, byDead, n)
	}
}

// addressOf is where replica name of group answers on 127.0.0.1.
func addressOf(t *testing.T, h *harness, group, name string) string {
	t.Helper()
	st, err := h.ctrl.Group(group)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range st.Replicas {
		if r.Name == name {
			return r.Address
		}
	}
	t.Fatalf("no replica %s", name)
	return ""
}

// connectAs connects to the bus of group bus on the project network as
// user; t skips if this host cannot reach that network.
func (h *harness) connectAs(t *testing.T, user string) *client.Client {
	t.Helper()
	st, err := h.ctrl.Group("bus")
	if err != nil {
		t.Fatal(err)
	}
	reps, err := h.drv.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		if r.ID == st.Replicas[0].ID {
			return bustest.Connect(t, bustest.Addr(t, r, spec.BusClientPort), user)
		}
	}
	t.Fatalf("the bus replica %s is not listed", st.Replicas[0].Name)
	return nil
}

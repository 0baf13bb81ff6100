package controller_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/orchestrator/bus/bustest"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/bus/client"
)

// busReplica waits until group bus has one ready replica other than
// notID, and returns it as the runtime lists it.
func (h *harness) busReplica(notID string) replica.Replica {
	h.t.Helper()
	var got replica.Replica
	dockertest.Poll(h.t, 90*time.Second, "bus ready", func() error {
		st, err := h.ctrl.Group("bus")
		if err != nil {
			return err
		}
		if st.Ready != 1 || st.Status != controller.StatusConverged || len(st.Replicas) != 1 || st.Replicas[0].ID == notID {
			return fmt.Errorf("group bus: %d ready, status %s %s", st.Ready, st.Status, st.Message)
		}
		reps, err := h.drv.List(context.Background())
		if err != nil {
			return err
		}
		for _, r := range reps {
			if r.ID == st.Replicas[0].ID && r.NetworkAddress != "" {
				got = r
				return nil
			}
		}
		return errors.New("the ready replica is not listed with a network address")
	})
	return got
}

// The bus runs as a group of one through the controller: it becomes
// ready, takes acknowledged messages, is killed, is healed by the
// controller, and the new container finds every acknowledged message in
// the volume the first one wrote; Down removes the volume.
func TestIntegrationBusSurvivesAKill(t *testing.T) {
	h := start(t, func(o *controller.Options) { o.BusSecret = bustest.Secret })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	fast := spec.Probe{PeriodMs: 250, TimeoutMs: 200}
	if _, _, err := h.ctrl.PutGroup(ctx, spec.Group{Name: "bus", Service: "bus", Replicas: 1, Balancer: spec.Balancer{Policy: spec.PolicyNone}, Probe: fast}); err != nil {
		t.Fatal(err)
	}
	first := h.busReplica("")
	if err := h.drv.AuditPolicy(ctx, first.ID); err != nil {
		t.Errorf("the bus breaks the policy: %v", err)
	}
	addr := bustest.Addr(t, first, spec.BusClientPort)

	// Twenty orders, each acknowledged by the stream; the repeat of one is
	// dropped as a duplicate.
	checkout := bustest.Connect(t, addr, "checkout")
	const orders = 20
	for i := 1; i <= orders; i++ {
		id := "order-" + strconv.Itoa(i)
		ack, err := checkout.Publish(ctx, access.SubjectOrderPlaced, []byte(`{"id":"`+id+`"}`), id)
		if err != nil || ack.Sequence != uint64(i) {
			t.Fatalf("publish %s: ack %+v, err %v", id, ack, err)
		}
	}
	if ack, err := checkout.Publish(ctx, access.SubjectOrderPlaced, []byte(`{"id":"order-1"}`), "order-1"); err != nil || !ack.Duplicate {
		t.Errorf("a repeated order: ack %+v, err %v; want a duplicate", ack, err)
	}
	// The bus refuses what checkout may not publish, saying so.
	if _, err := checkout.Publish(ctx, "orders.cancelled", []byte(`{}`), ""); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("checkout publishes orders.cancelled: err = %v, want ErrForbidden", err)
	}
	checkout.Close()

	// The controller reads the bus itself, as its monitor user, on the
	// project network.
	busUp := func(what string) {
		dockertest.Poll(t, 30*time.Second, what, func() error {
			st := h.ctrl.BusStatus()
			if !st.Up {
				return errors.New(st.Error)
			}
			for _, s := range st.Streams {
				if s.Name == "ORDERS" && s.LastSeq == orders && len(s.Consumers) == 4 && s.Consumers[0].Pending == orders {
					return nil
				}
			}
			return fmt.Errorf("the reading shows %+v", st.Streams)
		})
	}
	busUp("the controller reads the bus")

	// NATS's monitoring answers on the project network.
	mon := bustest.Addr(t, first, spec.BusMonitorPort)
	var jsz struct {
		Streams  int    `json:"streams"`
		Messages uint64 `json:"messages"`
	}
	resp, err := http.Get("http://" + mon + "/jsz")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&jsz)
	resp.Body.Close()
	if err != nil || jsz.Streams != 9 || jsz.Messages != orders {
		t.Errorf("/jsz: %+v (%v); want 9 streams (ORDERS, FULFILLMENT, DEADLETTERS and six buckets) and %d messages", jsz, err, orders)
	}

	// Killed: the controller replaces it, on the same volume.
	if err := h.drv.Kill(ctx, first.ID, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	second := h.busReplica(first.ID)
	if second.Name != "bus-1" {
		t.Errorf("the replacement is %s, want bus-1 again", second.Name)
	}
	if err := h.drv.AuditPolicy(ctx, second.ID); err != nil {
		t.Errorf("the replacement breaks the policy: %v", err)
	}

	// The controller follows the bus to its new address.
	busUp("the controller reads the replacement")

	monitor := bustest.Connect(t, bustest.Addr(t, second, spec.BusClientPort), access.Monitor)
	s, err := monitor.JS.Stream(ctx, "ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != orders || info.State.LastSeq != orders {
		t.Errorf("after the kill ORDERS holds %d messages (last %d), want all %d acknowledged", info.State.Msgs, info.State.LastSeq, orders)
	}
	for _, name := range []string{"notifications", "inventory", "analytics"} {
		c, err := monitor.JS.Consumer(ctx, "ORDERS", name)
		if err != nil {
			t.Fatalf("consumer %s: %v", name, err)
		}
		if p := c.CachedInfo().NumPending; p != orders {
			t.Errorf("consumer %s has %d pending, want %d", name, p, orders)
		}
	}
	// The monitor reads, and may not consume: the bus refuses its pull.
	analytics, err := monitor.JS.Consumer(ctx, "ORDERS", "analytics")
	if err != nil {
		t.Fatal(err)
	}
	batch, err := analytics.Fetch(1, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for range batch.Messages() {
		got++
	}
	if last := monitor.Conn.LastError(); got != 0 || !errors.Is(last, nats.ErrPermissionViolation) || !strings.Contains(last.Error(), "MSG.NEXT.ORDERS.analytics") {
		t.Errorf("the monitor fetched %d messages from analytics' consumer; last error %v, want a permissions violation", got, last)
	}

	vols, err := h.drv.Volumes(ctx)
	if err != nil || !slices.Equal(vols, []string{h.drv.VolumeName("bus", 1)}) {
		t.Errorf("volumes = %v (%v), want the bus's one", vols, err)
	}
	if err := h.ctrl.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if vols, err := h.drv.Volumes(ctx); err != nil || len(vols) != 0 {
		t.Errorf("after down: volumes %v (%v), want none", vols, err)
	}
	dockertest.Poll(t, 10*time.Second, "no bus to read", func() error {
		if st := h.ctrl.BusStatus(); st.Up || !strings.Contains(st.Error, "no bus runs") {
			return fmt.Errorf("after down the reading is %+v", st)
		}
		return nil
	})
}

package controller

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flotilla/flotilla/orchestrator/bus"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/spec"
	broker "github.com/flotilla/flotilla/sample-services/bus"
	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/bus/client"
)

type recordEvents struct {
	mu     sync.Mutex
	events []hub.Event
}

func (r *recordEvents) Publish(e hub.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recordEvents) of(kind string) []hub.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []hub.Event
	for _, e := range r.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// TestControllerReadsTheBus runs the shop's broker in the test, on a free
// port of 127.0.0.1 standing for the bus replica's address on the project
// network, and a controller whose bus group's replica is there.
func TestControllerReadsTheBus(t *testing.T) {
	const secret = "a-test-secret-of-enough-length"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := broker.New(broker.Config{Host: "127.0.0.1", ClientPort: -1, StoreDir: t.TempDir(), Secret: secret, Topology: access.Shop}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(b.ClientURL())
	port, _ := strconv.Atoi(u.Port())

	rt := newFakeRuntime()
	rt.busAddr = net.JoinHostPort("127.0.0.1", "8080")
	reg := prometheus.NewPedanticRegistry()
	events := &recordEvents{}
	c := New(Options{Runtime: rt, Store: &memStore{groups: map[string]spec.Group{}}, Images: map[string]string{"shop": "img", "bus": "bus-img"},
		Resync: time.Hour, BusSecret: secret, Metrics: reg, Events: events, DataPath: DataPathNetwork})
	c.busPort = port
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	// No bus group: a reason, and a replay is refused as unavailable.
	eventually(t, "a reading without a bus", func() bool { return strings.Contains(c.BusStatus().Error, "no bus runs") }, func() string { return c.BusStatus().Error })
	if _, err := c.ReplayDeadLetter(ctx, 1); !errors.Is(err, bus.ErrUnavailable) {
		t.Errorf("replay without a bus: %v", err)
	}

	for _, g := range []spec.Group{
		{Name: spec.BusService, Service: spec.BusService, Replicas: 1, Balancer: spec.Balancer{Policy: spec.PolicyNone}},
		{Name: "front", Service: "monolith", Replicas: 1, Balancer: spec.Balancer{Policy: spec.PolicyNone}},
	} {
		if _, _, err := c.PutGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the bus read", func() bool { return c.BusStatus().Up }, func() string { return c.BusStatus().Error })
	if _, groups, _ := c.busTarget(); groups["monolith"] != "front" {
		t.Errorf("subscriber groups by service: %v", groups)
	}

	// Two orders; notifications gives up on the first.
	pw := func(user string) string { p, _ := access.Password(secret, user); return p }
	checkout, err := client.Connect(b.ClientURL(), "checkout", pw("checkout"), nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	defer checkout.Close()
	for _, id := range []string{"o-1", "o-2"} {
		m := nats.NewMsg(access.SubjectOrderPlaced)
		m.Header.Set(bus.EventIDHeader, id)
		m.Data = []byte(`{"order":"` + id + `"}`)
		if _, err := checkout.JS.PublishMsg(ctx, m, jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}
	notif, err := client.Connect(b.ClientURL(), "notifications", pw("notifications"), nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	defer notif.Close()
	cons, err := notif.JS.Consumer(ctx, "ORDERS", "notifications")
	if err != nil {
		t.Fatal(err)
	}
	naks, acked := 0, false
	for i := 0; i < 12 && (naks < 5 || !acked); i++ {
		m, err := cons.Next(jetstream.FetchMaxWait(3 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if md, _ := m.Metadata(); md.Sequence.Stream == 1 {
			m.Nak()
			naks++
		} else {
			m.DoubleAck(ctx)
			acked = true
		}
	}
	// The server gives up on o-1 when it would deliver it a sixth time.
	if m, err := cons.Next(jetstream.FetchMaxWait(500 * time.Millisecond)); err == nil {
		t.Fatalf("a sixth delivery of %s", m.Data())
	}
	eventually(t, "a dead letter", func() bool { return len(c.BusStatus().Dead) == 1 }, func() string { return c.BusStatus().Error })
	d := c.BusStatus().Dead[0]
	if d.EventID != "o-1" || d.Consumer != "notifications" {
		t.Errorf("dead letter %+v", d)
	}
	eventually(t, "the dead letter announced", func() bool { return len(events.of(hub.BusDeadLetter)) == 1 }, func() string { return "" })
	if e := events.of(hub.BusDeadLetter)[0]; !strings.Contains(e.Message, "notifications gave up on orders.placed o-1") {
		t.Errorf("event %q", e.Message)
	}

	want := `
# HELP flotilla_bus_consumer_lag Messages of a stream not yet delivered to a consumer.
# TYPE flotilla_bus_consumer_lag gauge
flotilla_bus_consumer_lag{consumer="analytics",stream="ORDERS"} 2
flotilla_bus_consumer_lag{consumer="fulfillment",stream="FULFILLMENT"} 0
flotilla_bus_consumer_lag{consumer="inventory",stream="ORDERS"} 2
flotilla_bus_consumer_lag{consumer="notifications",stream="ORDERS"} 0
flotilla_bus_consumer_lag{consumer="receipt",stream="ORDERS"} 2
# HELP flotilla_bus_dead_letters Dead letters waiting for a replay: messages a consumer gave up on after MaxDeliver attempts.
# TYPE flotilla_bus_dead_letters gauge
flotilla_bus_dead_letters{consumer="analytics",stream="ORDERS"} 0
flotilla_bus_dead_letters{consumer="fulfillment",stream="FULFILLMENT"} 0
flotilla_bus_dead_letters{consumer="inventory",stream="ORDERS"} 0
flotilla_bus_dead_letters{consumer="notifications",stream="ORDERS"} 1
flotilla_bus_dead_letters{consumer="receipt",stream="ORDERS"} 0
# HELP flotilla_bus_published_total Messages ever published to a stream (its last sequence).
# TYPE flotilla_bus_published_total counter
flotilla_bus_published_total{stream="FULFILLMENT"} 0
flotilla_bus_published_total{stream="ORDERS"} 2
# HELP flotilla_bus_up 1 if the controller read the bus at its last reading.
# TYPE flotilla_bus_up gauge
flotilla_bus_up 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "flotilla_bus_consumer_lag", "flotilla_bus_dead_letters", "flotilla_bus_published_total", "flotilla_bus_up"); err != nil {
		t.Error(err)
	}
	if got, _ := testutil.GatherAndCount(reg, "flotilla_bus_delivered_total", "flotilla_bus_acked_total", "flotilla_bus_redelivered", "flotilla_bus_ack_pending"); got != 5*4 {
		t.Errorf("%d series of delivered, acked, redelivered and ack pending; want 5 each", got)
	}

	res, err := c.ReplayDeadLetter(ctx, d.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if res.MsgID != bus.ReplayMsgID("o-1", d.Seq) {
		t.Errorf("replayed as %q", res.MsgID)
	}
	if st := c.BusStatus(); len(st.Dead) != 0 {
		t.Errorf("dead letters right after the replay: %+v", st.Dead)
	}
	if !slices.ContainsFunc(events.of(hub.BusReplayed), func(e hub.Event) bool { return e.ID == strconv.FormatUint(d.Seq, 10) }) {
		t.Error("no event of the replay")
	}
	if _, err := c.ReplayDeadLetter(ctx, d.Seq); !errors.Is(err, bus.ErrNotFound) {
		t.Errorf("a second replay: %v, want not found", err)
	}

	// The bus goes: the reading says so.
	b.Shutdown()
	eventually(t, "the bus down", func() bool { return !c.BusStatus().Up && c.BusStatus().Error != "" }, func() string { return c.BusStatus().Error })
	if got := testutil.ToFloat64(busCollector{c}); got != 0 {
		t.Errorf("flotilla_bus_up = %v with the bus down", got)
	}
}

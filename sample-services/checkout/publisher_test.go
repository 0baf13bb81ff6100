package checkout_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/sample-services/bus"
	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/bus/client"
	"github.com/flotilla/flotilla/sample-services/checkout"
	"github.com/flotilla/flotilla/sample-services/orders"
)

const secret = "a-test-secret-of-enough-length"

// startBus runs the shop's bus on 127.0.0.1:port (-1: a free one) over store.
func startBus(t *testing.T, port int, store string) *bus.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.New(bus.Config{Host: "127.0.0.1", ClientPort: port, StoreDir: store, Secret: secret, Topology: access.Shop},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return b
}

// connect connects as user to url, as a replica does: retrying in the
// background if the bus is not there yet.
func connect(t *testing.T, url, user string) *client.Client {
	t.Helper()
	pw, err := access.Password(secret, user)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Connect(url, user, pw, nats.RetryOnFailedConnect(true), nats.ReconnectWait(50*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// streamMsg reads message seq of stream, as the controller's monitor user.
func streamMsg(t *testing.T, url, stream string, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mon := connect(t, url, access.Monitor)
	s, err := mon.JS.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		t.Fatalf("message %d of %s: %v", seq, stream, err)
	}
	return m
}

func streamCount(t *testing.T, url, stream string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mon := connect(t, url, access.Monitor)
	s, err := mon.JS.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func runPublisher(t *testing.T, c *client.Client, opt checkout.PublisherOptions) *checkout.Publisher {
	p := checkout.NewPublisher(checkout.Conn{Client: c}, opt, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPublisherPublishesOrderAndJob(t *testing.T) {
	b := startBus(t, -1, t.TempDir())
	c := connect(t, b.ClientURL(), "checkout")
	waitFor(t, "checkout is connected", c.Conn.IsConnected)
	p := runPublisher(t, c, checkout.PublisherOptions{})

	crt, o := aliceCart(), &fakeOrders{}
	rec := post(t, checkout.NewWithEvents(crt, o, p), "alice")
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d, want 201: %s", rec.Code, rec.Body)
	}
	if len(crt.cleared) != 1 {
		t.Errorf("cart not emptied")
	}

	m := streamMsg(t, b.ClientURL(), "ORDERS", 1)
	if m.Subject != access.SubjectOrderPlaced || m.Header.Get(checkout.HeaderEventID) != "o-1" || m.Header.Get(jetstream.MsgIDHeader) != "o-1" {
		t.Errorf("ORDERS #1: subject %s, headers %v; want orders.placed with event id and Nats-Msg-Id o-1", m.Subject, m.Header)
	}
	var ev checkout.OrderPlaced
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.OrderID != "o-1" || ev.Shopper != "alice" || len(ev.Items) != 1 || ev.Items[0] != (checkout.EventItem{ProductID: "tea-mug", Quantity: 2, PriceCents: 1200}) {
		t.Errorf("event %+v", ev)
	}
	// The body has exactly the contract's fields.
	var fields map[string]json.RawMessage
	json.Unmarshal(m.Data, &fields)
	for _, k := range []string{"orderId", "shopper", "items", "totalCents", "placedAt"} {
		if _, ok := fields[k]; !ok || len(fields) != 5 {
			t.Errorf("event body %s: want exactly orderId, shopper, items, totalCents, placedAt", m.Data)
			break
		}
	}

	j := streamMsg(t, b.ClientURL(), "FULFILLMENT", 1)
	var job checkout.FulfillJob
	if err := json.Unmarshal(j.Data, &job); err != nil {
		t.Fatal(err)
	}
	if j.Header.Get(checkout.HeaderEventID) != "o-1" || j.Header.Get(jetstream.MsgIDHeader) != "o-1" || job.OrderID != "o-1" || len(job.Items) != 1 {
		t.Errorf("FULFILLMENT #1: headers %v, job %+v", j.Header, job)
	}

	// The same order published again is dropped by both streams.
	if err := p.Placed(context.Background(), o.created[0]); err != nil {
		t.Fatal(err)
	}
	if n, f := streamCount(t, b.ClientURL(), "ORDERS"), streamCount(t, b.ClientURL(), "FULFILLMENT"); n != 1 || f != 1 {
		t.Errorf("after a repeated publish: ORDERS %d, FULFILLMENT %d; want 1 and 1", n, f)
	}
	st := p.Stats().(checkout.BusStats)
	if st.Published != 4 || st.Duplicates != 2 || st.Outbox != 0 || !st.Connected {
		t.Errorf("stats %+v, want 4 published of which 2 duplicates", st)
	}
	if err := p.Health(context.Background()); err != nil {
		t.Errorf("health: %v", err)
	}
}

// freePort is a port of 127.0.0.1 nothing listens on.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// With the bus away, orders are still placed at once; their events wait
// in the outbox and are published, in order, when the bus comes.
func TestPublisherOutboxWhileTheBusIsAway(t *testing.T) {
	port := freePort(t)
	url := "nats://127.0.0.1:" + itoa(port)
	c := connect(t, url, "checkout")
	p := runPublisher(t, c, checkout.PublisherOptions{OutboxSize: 6})

	var placed []orders.Order
	for i := range 3 {
		crt := aliceCart()
		svc := checkout.NewWithEvents(crt, &numberedOrders{n: i + 1}, p)
		start := time.Now()
		rec := post(t, svc, "alice")
		if rec.Code != http.StatusCreated || time.Since(start) > time.Second {
			t.Fatalf("checkout %d with the bus away: %d after %s, want 201 at once: %s", i, rec.Code, time.Since(start), rec.Body)
		}
		var o orders.Order
		json.Unmarshal(rec.Body.Bytes(), &o)
		placed = append(placed, o)
	}
	st := p.Stats().(checkout.BusStats)
	if st.Outbox != 6 || st.Published != 0 || st.Connected {
		t.Errorf("stats %+v, want 6 messages in the outbox", st)
	}
	if err := p.Health(context.Background()); err == nil || !strings.Contains(err.Error(), "6 events wait") {
		t.Errorf("health = %v, want it to count the waiting events", err)
	}
	// The outbox is full: the next checkout is refused before anything is placed.
	full := &numberedOrders{n: 9}
	rec := post(t, checkout.NewWithEvents(aliceCart(), full, p), "alice")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(errorOf(t, rec), "outbox") || full.calls != 0 {
		t.Errorf("full outbox: %d %s, %d orders placed; want 503 and none", rec.Code, rec.Body, full.calls)
	}

	store := t.TempDir()
	b := startBus(t, port, store)
	waitFor(t, "the outbox drains", func() bool { return p.Stats().(checkout.BusStats).Outbox == 0 })
	for i, o := range placed {
		m := streamMsg(t, b.ClientURL(), "ORDERS", uint64(i+1))
		if m.Header.Get(checkout.HeaderEventID) != o.ID {
			t.Errorf("ORDERS #%d is %s, want %s: events out of order", i+1, m.Header.Get(checkout.HeaderEventID), o.ID)
		}
	}
	if n := streamCount(t, b.ClientURL(), "FULFILLMENT"); n != 3 {
		t.Errorf("FULFILLMENT holds %d jobs, want 3", n)
	}
	if st := p.Stats().(checkout.BusStats); st.Published != 6 || st.Queued != 6 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}

	// The bus goes away again, then comes back on its store.
	b.Shutdown()
	waitFor(t, "checkout sees the bus gone", func() bool { return !c.Conn.IsConnected() })
	rec = post(t, checkout.NewWithEvents(aliceCart(), &numberedOrders{n: 4}, p), "alice")
	if rec.Code != http.StatusCreated {
		t.Fatalf("checkout with the bus killed: %d %s", rec.Code, rec.Body)
	}
	b2 := startBus(t, port, store)
	waitFor(t, "the outbox drains again", func() bool { return p.Stats().(checkout.BusStats).Outbox == 0 })
	if m := streamMsg(t, b2.ClientURL(), "ORDERS", 4); m.Header.Get(checkout.HeaderEventID) != "o-4" {
		t.Errorf("after the restart ORDERS #4 is %v", m.Header)
	}
}

// An event that waited longer than the outbox keeps one is dropped, and
// counted.
func TestPublisherOutboxDropsOldEvents(t *testing.T) {
	port := freePort(t)
	c := connect(t, "nats://127.0.0.1:"+itoa(port), "checkout")
	p := runPublisher(t, c, checkout.PublisherOptions{OutboxAge: 100 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	if rec := post(t, checkout.NewWithEvents(aliceCart(), &numberedOrders{n: 1}, p), "alice"); rec.Code != http.StatusCreated {
		t.Fatal(rec.Code)
	}
	time.Sleep(200 * time.Millisecond)
	startBus(t, port, t.TempDir())
	waitFor(t, "the old events are dropped", func() bool { return p.Stats().(checkout.BusStats).Dropped == 2 })
	if st := p.Stats().(checkout.BusStats); st.Published != 0 || st.Outbox != 0 {
		t.Errorf("stats %+v, want both dropped, none published", st)
	}
}

// numberedOrders places order o-<n>.
type numberedOrders struct{ n, calls int }

func (f *numberedOrders) Create(_ context.Context, who string, items []orders.Item) (orders.Order, error) {
	f.calls++
	return orders.Order{ID: "o-" + itoa(f.n), Shopper: who, Items: items, TotalCents: 2400, PlacedAt: time.Now().UTC()}, nil
}

func itoa(n int) string { return strconv.Itoa(n) }

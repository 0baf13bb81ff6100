package consume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/sample-services/bus"
	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/bus/client"
)

const testSecret = "a-test-secret-of-enough-length"

// testTopology is the shop's, with ack waits of a second, so a message
// whose ack never comes is delivered again within a test's patience.
func testTopology() access.Topology {
	t := access.Shop
	t.Streams = slices.Clone(t.Streams)
	for i, s := range t.Streams {
		s.Consumers = slices.Clone(s.Consumers)
		for j := range s.Consumers {
			s.Consumers[j].AckWait = time.Second
		}
		t.Streams[i] = s
	}
	return t
}

// startBus runs the bus, configured as in a container, on free ports.
func startBus(t testing.TB) *bus.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.New(bus.Config{Host: "127.0.0.1", ClientPort: -1, StoreDir: t.TempDir(), Secret: testSecret, Topology: testTopology()},
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

func connect(t testing.TB, b *bus.Broker, user string) *client.Client {
	t.Helper()
	pw, err := access.Password(testSecret, user)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Connect(b.ClientURL(), user, pw, nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// publish publishes an event as checkout does: its ID as header and as
// Nats-Msg-Id (msgID, if not empty, replaces the latter, as a replay does).
func publish(t *testing.T, c *client.Client, subject, id, msgID string, body any) {
	t.Helper()
	data, _ := json.Marshal(body)
	if msgID == "" {
		msgID = id
	}
	m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	m.Header.Set(access.EventIDHeader, id)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.JS.PublishMsg(ctx, m, jetstream.WithMsgID(msgID)); err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
}

func order(id string) Order {
	return Order{OrderID: id, Shopper: "alice", TotalCents: 300, PlacedAt: time.Now(),
		Items: []OrderItem{{ProductID: "apple", Quantity: 3, PriceCents: 100}}}
}

// replica is one subscriber replica in the test: its own connection, its
// ledger the service's bucket, its loop running until the test ends.
type replica struct {
	c       *client.Client
	loop    *Loop
	p       *Processor
	effects atomic.Int64 // how many times an effect was applied here
	cancel  context.CancelFunc
	done    chan struct{}
}

func startReplica(t testing.TB, b *bus.Broker, service, name string, handle Handler, faults Faults) *replica {
	t.Helper()
	c := connect(t, b, service)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ledger, err := OpenBucket(ctx, c.JS, access.AppliedBucket(service))
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{c: c, done: make(chan struct{})}
	if handle == nil {
		handle = func(_ context.Context, ev Event) (func(), error) {
			if _, err := DecodeOrder(ev); err != nil {
				return nil, err
			}
			return func() { r.effects.Add(1) }, nil
		}
	}
	stream, _, _ := access.Shop.Subscription(service)
	r.p = NewProcessor(service, name, ledger, handle, faults)
	r.loop = &Loop{Conn: c.Conn, JS: c.JS, Stream: stream, Durable: service, Processor: r.p}
	runCtx, stop := context.WithCancel(context.Background())
	r.cancel = stop
	go func() { defer close(r.done); r.loop.Run(runCtx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *replica) stop() {
	r.cancel()
	<-r.done
}

// eventually polls cond until it holds or 30s pass (a loaded machine
// is slow; a stuck consumer is stuck for longer).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("not within 30s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func counts(r *replica) Counts { return r.p.Counts(context.Background()) }

// TestCompetingConsumers: two replicas sharing a durable consumer split
// the messages; each is applied once, by one of them.
func TestCompetingConsumers(t *testing.T) {
	b := startBus(t)
	a := startReplica(t, b, "notifications", "notifications-1", nil, Faults{})
	c := startReplica(t, b, "notifications", "notifications-2", nil, Faults{})
	eventually(t, "both replicas bound", func() bool { return a.loop.Bound() && c.loop.Bound() })
	if ok, why := a.loop.Ready(); !ok {
		t.Fatalf("a bound replica is not ready: %s", why)
	}

	checkout := connect(t, b, "checkout")
	const n = 60
	for i := range n {
		publish(t, checkout, access.SubjectOrderPlaced, fmt.Sprintf("o-%d", i), "", order(fmt.Sprintf("o-%d", i)))
	}
	eventually(t, "every order applied", func() bool { return counts(a).Applied+counts(c).Applied == n })
	ca, cc := counts(a), counts(c)
	if ca.Applied == 0 || cc.Applied == 0 {
		t.Errorf("applied %d and %d: the replicas did not share the work", ca.Applied, cc.Applied)
	}
	if a.effects.Load()+c.effects.Load() != n || ca.Duplicates+cc.Duplicates != 0 || ca.Failed+cc.Failed != 0 {
		t.Errorf("effects %d+%d, duplicates %d, failed %d; want %d effects and nothing else",
			a.effects.Load(), c.effects.Load(), ca.Duplicates+cc.Duplicates, ca.Failed+cc.Failed, n)
	}
	if ca.LedgerCount != n || ca.Ledger != "bucket applied_notifications" {
		t.Errorf("the ledger %q holds %d events, want %d", ca.Ledger, ca.LedgerCount, n)
	}
	t.Logf("split %d/%d", ca.Applied, cc.Applied)

	// Another service's consumer has every order too (fanout).
	inv := startReplica(t, b, "inventory", "inventory-1", nil, Faults{})
	eventually(t, "inventory has every order", func() bool { return counts(inv).Applied == n })
}

// TestFailedMessageBacksOffThenDeadLetters: a message that always fails is
// offered again with growing delays, MaxDeliver times in all; then the
// server's max-deliveries advisory lands in the DEADLETTERS stream, the
// message is offered no more, and the next one goes through.
func TestFailedMessageBacksOffThenDeadLetters(t *testing.T) {
	b := startBus(t)
	admin := connect(t, b, access.Admin)
	advisories := make(chan *nats.Msg, 10)
	sub, err := admin.Conn.ChanSubscribe(access.SubjectMaxDeliveries+".ORDERS.analytics", advisories)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	var mu sync.Mutex
	var attempts []time.Time
	var deliveries []uint64
	poisoned := func(ev Event) bool {
		if ev.ID != "o-bad" {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, time.Now())
		deliveries = append(deliveries, ev.Delivery)
		return true
	}
	r := startReplica(t, b, "analytics", "analytics-1", nil, Faults{Poisoned: poisoned})
	checkout := connect(t, b, "checkout")
	start := time.Now()
	publish(t, checkout, access.SubjectOrderPlaced, "o-bad", "", order("o-bad"))

	var adv struct {
		Stream     string `json:"stream"`
		Consumer   string `json:"consumer"`
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries uint64 `json:"deliveries"`
	}
	select {
	case m := <-advisories:
		if err := json.Unmarshal(m.Data, &adv); err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no max-deliveries advisory within 15s")
	}
	took := time.Since(start)
	if adv.Stream != "ORDERS" || adv.Consumer != "analytics" || adv.StreamSeq != 1 || adv.Deliveries != 5 {
		t.Errorf("advisory = %+v, want ORDERS/analytics seq 1 after 5 deliveries", adv)
	}
	time.Sleep(500 * time.Millisecond) // long enough for a sixth attempt, if one came
	mu.Lock()
	if !slices.Equal(deliveries, []uint64{1, 2, 3, 4, 5}) {
		t.Errorf("attempts numbered %v, want 1 to 5 (MaxDeliver)", deliveries)
	}
	for i := 1; i < len(attempts); i++ {
		gap, want := attempts[i].Sub(attempts[i-1]), Backoff(uint64(i))
		if gap < want-20*time.Millisecond || gap > want+time.Second {
			t.Errorf("attempt %d came %s after the one before, want about %s (backoff)", i+1, gap, want)
		}
	}
	mu.Unlock()
	t.Logf("dead-lettered after %s", took)
	if c := counts(r); c.Failed != 5 || c.Applied != 0 || !strings.Contains(c.LastError, "poison") {
		t.Errorf("counts = %+v, want 5 failed attempts, the last error saying poison", c)
	}

	// The bus kept the advisory as a dead letter.
	mon := connect(t, b, access.Monitor)
	eventually(t, "a dead letter in DEADLETTERS", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := mon.JS.Stream(ctx, access.DeadLetterStream)
		return err == nil && s.CachedInfo().State.Msgs == 1
	})

	// The consumer moved on.
	publish(t, checkout, access.SubjectOrderPlaced, "o-good", "", order("o-good"))
	eventually(t, "the next order applied", func() bool { return counts(r).Applied == 1 })
}

// TestDuplicateNotAppliedTwice: a replay (a new Nats-Msg-Id, the same event
// ID) and a redelivery are acknowledged as duplicates, never applied again,
// whichever replica gets them; POST /events shares the same ledger.
func TestDuplicateNotAppliedTwice(t *testing.T) {
	b := startBus(t)
	a := startReplica(t, b, "inventory", "inventory-1", nil, Faults{})
	checkout := connect(t, b, "checkout")
	publish(t, checkout, access.SubjectOrderPlaced, "o-1", "", order("o-1"))
	eventually(t, "o-1 applied", func() bool { return counts(a).Applied == 1 })

	// Another replica gets the replay: it is a duplicate there too.
	a.stop()
	c := startReplica(t, b, "inventory", "inventory-2", nil, Faults{})
	publish(t, checkout, access.SubjectOrderPlaced, "o-1", "o-1.replay.1", order("o-1"))
	eventually(t, "the replay counted", func() bool { return counts(c).Duplicates == 1 })
	if a.effects.Load()+c.effects.Load() != 1 || counts(c).Applied != 0 {
		t.Errorf("o-1's effect was applied %d times, want once", a.effects.Load()+c.effects.Load())
	}

	// Over HTTP, the same event is a duplicate; a new one is applied.
	svc := &Service{Name: "inventory", Stream: "ORDERS", Subject: access.SubjectOrderPlaced, Processor: c.p, Loop: c.loop}
	mux := http.NewServeMux()
	svc.Register(mux)
	post := func(id, subject, body string) (int, string) {
		req := httptest.NewRequest("POST", "/events", strings.NewReader(body))
		if id != "" {
			req.Header.Set(access.EventIDHeader, id)
		}
		req.Header.Set(SubjectHeader, subject)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	body, _ := json.Marshal(order("o-1"))
	if code, reply := post("o-1", access.SubjectOrderPlaced, string(body)); code != 200 || reply != `{"applied":false,"duplicate":true}` {
		t.Errorf("POST /events o-1 again = %d %s", code, reply)
	}
	body2, _ := json.Marshal(order("o-2"))
	if code, reply := post("o-2", access.SubjectOrderPlaced, string(body2)); code != 200 || reply != `{"applied":true,"duplicate":false}` {
		t.Errorf("POST /events o-2 = %d %s", code, reply)
	}
	for _, bad := range []struct{ id, subject, body, want string }{
		{"", access.SubjectOrderPlaced, string(body), "Flotilla-Event-Id"},
		{"o-3", "orders.cancelled", string(body), "takes only"},
		{"o-3", access.SubjectOrderPlaced, `{"orderId":`, "does not parse"},
		{"o-3", access.SubjectOrderPlaced, `{"orderId":"o-3","items":[]}`, "needs an orderId and items"},
	} {
		if code, reply := post(bad.id, bad.subject, bad.body); code != 400 || !strings.Contains(reply, bad.want) {
			t.Errorf("POST /events %q %q %s = %d %s, want 400 saying %q", bad.id, bad.subject, bad.body, code, reply, bad.want)
		}
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/stats", nil))
	var st Stats
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Applied != 1 || st.Duplicates != 2 || st.LastEventID != "o-2" || st.LedgerCount != 2 || !st.Consumer.Bound || st.Consumer.Durable != "inventory" {
		t.Errorf("GET /stats = %s", rec.Body)
	}
}

// TestLedgerRace: replicas that process one event at once apply it once.
func TestLedgerRace(t *testing.T) {
	b := startBus(t)
	c := connect(t, b, "analytics")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ledger, err := OpenBucket(ctx, c.JS, access.AppliedBucket("analytics"))
	if err != nil {
		t.Fatal(err)
	}
	var effects atomic.Int64
	handle := func(context.Context, Event) (func(), error) { return func() { effects.Add(1) }, nil }
	ps := []*Processor{
		NewProcessor("analytics", "analytics-1", ledger, handle, Faults{}),
		NewProcessor("analytics", "analytics-2", ledger, handle, Faults{}),
		NewProcessor("analytics", "analytics-3", ledger, handle, Faults{}),
	}
	var wg sync.WaitGroup
	outcomes := make([]Outcome, len(ps))
	for i, p := range ps {
		wg.Go(func() {
			var err error
			if outcomes[i], err = p.Process(ctx, Event{ID: "o-race", Subject: access.SubjectOrderPlaced}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if effects.Load() != 1 || slices.Index(outcomes, Applied) < 0 {
		t.Errorf("outcomes %v, effects %d: want one applied, the rest duplicates", outcomes, effects.Load())
	}
	// Another service's bucket is out of reach.
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	if _, err := OpenBucket(short, c.JS, access.AppliedBucket("notifications")); err == nil {
		t.Error("analytics opened notifications' bucket")
	}
}

// TestSlowConsumer: a slow-consumer fault delays every event; a replica
// slower than the ack wait keeps its message (in-progress beats), so it is
// not delivered again.
func TestSlowConsumer(t *testing.T) {
	b := startBus(t)
	var delay atomic.Int64
	delay.Store(int64(1500 * time.Millisecond)) // longer than the 1s ack wait
	r := startReplica(t, b, "notifications", "notifications-1", nil, Faults{Delay: func() time.Duration { return time.Duration(delay.Load()) }})
	checkout := connect(t, b, "checkout")
	start := time.Now()
	publish(t, checkout, access.SubjectOrderPlaced, "o-slow", "", order("o-slow"))
	eventually(t, "the slow event applied", func() bool { return counts(r).Applied == 1 })
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("applied after %s, want the 1.5s delay", took)
	}
	time.Sleep(300 * time.Millisecond)
	mon := connect(t, b, access.Monitor)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := mon.JS.Consumer(ctx, "ORDERS", "notifications")
	if err != nil {
		t.Fatal(err)
	}
	if info := cons.CachedInfo(); info.NumRedelivered != 0 || counts(r).Duplicates != 0 {
		t.Errorf("redelivered %d, duplicates %d: a slow replica lost its message", info.NumRedelivered, counts(r).Duplicates)
	}

	delay.Store(int64(100 * time.Millisecond))
	start = time.Now()
	for i := range 5 {
		publish(t, checkout, access.SubjectOrderPlaced, fmt.Sprintf("o-%d", i), "", order(fmt.Sprintf("o-%d", i)))
	}
	eventually(t, "five more applied", func() bool { return counts(r).Applied == 6 })
	// A replica works on pullWindow events at once: each still waits its
	// 100 ms, but not for the others.
	if took := time.Since(start); took < 100*time.Millisecond || took > 450*time.Millisecond {
		t.Errorf("5 events at 100ms each took %s, want about 100ms: at once, not one after another", took)
	}
}

// TestKilledWorkerJobRedelivered: a fulfillment worker that dies mid-job
// never acknowledges it; after the ack wait another worker ships it, once.
func TestKilledWorkerJobRedelivered(t *testing.T) {
	b := startBus(t)
	started := make(chan struct{}, 1)
	var shipped atomic.Int64
	slowShip := func(ctx context.Context, ev Event) (func(), error) {
		started <- struct{}{}
		select {
		case <-time.After(10 * time.Second):
		case <-ctx.Done():
		}
		return nil, errors.New("the worker died")
	}
	doomed := startReplica(t, b, "fulfillment", "fulfillment-1", slowShip, Faults{})
	checkout := connect(t, b, "checkout")
	publish(t, checkout, access.SubjectOrderFulfill, "o-job", "", Job{OrderID: "o-job", Items: order("").Items})
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the job never started")
	}
	killed := time.Now()
	doomed.c.Conn.Close() // as a SIGKILL would: no ack, no nak
	doomed.stop()

	ship := func(context.Context, Event) (func(), error) { return func() { shipped.Add(1) }, nil }
	other := startReplica(t, b, "fulfillment", "fulfillment-2", ship, Faults{})
	eventually(t, "the job shipped by the other worker", func() bool { return shipped.Load() == 1 })
	if wait := time.Since(killed); wait < 900*time.Millisecond {
		t.Errorf("redelivered %s after the kill, before the 1s ack wait", wait)
	}
	if c := counts(other); c.Applied != 1 || c.Duplicates != 0 {
		t.Errorf("counts %+v", c)
	}
	// The work queue is empty: the job is gone once acknowledged.
	mon := connect(t, b, access.Monitor)
	eventually(t, "FULFILLMENT empty", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := mon.JS.Stream(ctx, "FULFILLMENT")
		return err == nil && s.CachedInfo().State.Msgs == 0
	})
}

func TestBackoff(t *testing.T) {
	for d, want := range map[uint64]time.Duration{0: 100 * time.Millisecond, 1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 7: 5 * time.Second, 60: 5 * time.Second} {
		if got := Backoff(d); got != want {
			t.Errorf("Backoff(%d) = %s, want %s", d, got, want)
		}
	}
}

// TestProcessReadsTheLedgerOnlyWhenItMayHaveApplied: a first delivery
// skips the ledger's read and lets the record find a duplicate; a
// redelivery or a posted event is looked up first and not worked on again.
// Either way the effect is applied once.
func TestProcessReadsTheLedgerOnlyWhenItMayHaveApplied(t *testing.T) {
	var worked, effects int
	handle := func(context.Context, Event) (func(), error) { worked++; return func() { effects++ }, nil }
	p := NewProcessor("analytics", "analytics-1", NewMemory(), handle, Faults{})
	ctx := context.Background()
	for _, step := range []struct {
		delivery    uint64
		want        Outcome
		worked, eff int
	}{
		{1, Applied, 1, 1},   // first delivery: worked on, recorded, applied
		{1, Duplicate, 2, 1}, // a replay, delivered once: worked on, the record finds it
		{2, Duplicate, 2, 1}, // a redelivery: found by the read, not worked on
		{0, Duplicate, 2, 1}, // POST /events: the same
	} {
		got, err := p.Process(ctx, Event{ID: "o-1", Subject: access.SubjectOrderPlaced, Delivery: step.delivery})
		if err != nil || got != step.want || worked != step.worked || effects != step.eff {
			t.Fatalf("delivery %d: outcome %v (err %v), worked %d, effects %d; want %v, %d, %d",
				step.delivery, got, err, worked, effects, step.want, step.worked, step.eff)
		}
	}
	if c := p.Counts(ctx); c.Applied != 1 || c.Duplicates != 3 {
		t.Errorf("counts %+v, want 1 applied and 3 duplicates", c)
	}
}

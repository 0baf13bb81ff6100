package bus

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	broker "github.com/flotilla/flotilla/sample-services/bus"
	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/bus/client"
)

const testSecret = "a-test-secret-of-enough-length"

// startBus runs the shop's broker, as the bus replica does, on a free port
// of 127.0.0.1.
func startBus(t *testing.T) *broker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.New(broker.Config{Host: "127.0.0.1", ClientPort: -1, StoreDir: t.TempDir(), Secret: testSecret, Topology: access.Shop},
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

func connectAs(t *testing.T, b *broker.Broker, user string) *client.Client {
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

// publish publishes an event as the shop's checkout does: its ID as
// Nats-Msg-Id and in the Flotilla-Event-Id header.
func publish(t *testing.T, c *client.Client, subject, eventID, body string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m := nats.NewMsg(subject)
	m.Header.Set(EventIDHeader, eventID)
	m.Header.Set("Content-Type", "application/json")
	m.Data = []byte(body)
	if _, err := c.JS.PublishMsg(ctx, m, jetstream.WithMsgID(eventID)); err != nil {
		t.Fatalf("publish %s: %v", eventID, err)
	}
}

// next takes one message of a subscriber's durable consumer.
func next(t *testing.T, c *client.Client, stream string) jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := c.JS.Consumer(ctx, stream, c.User)
	if err != nil {
		t.Fatal(err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(3 * time.Second))
	if err != nil {
		t.Fatalf("%s: next message of %s: %v", c.User, stream, err)
	}
	return m
}

func consumer(t *testing.T, st Status, stream, name string) Consumer {
	t.Helper()
	for _, s := range st.Streams {
		if s.Name != stream {
			continue
		}
		for _, c := range s.Consumers {
			if c.Name == name {
				return c
			}
		}
	}
	t.Fatalf("no consumer %s of %s in %+v", name, stream, st)
	return Consumer{}
}

func stream(t *testing.T, st Status, name string) Stream {
	t.Helper()
	for _, s := range st.Streams {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no stream %s in %+v", name, st)
	return Stream{}
}

// waitDead reads until n dead letters show.
func waitDead(t *testing.T, r *Reader, url string, n int) Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := r.Read(context.Background(), url, nil)
		if len(st.Dead) == n || time.Now().After(deadline) {
			if len(st.Dead) != n {
				t.Fatalf("%d dead letters, want %d: %+v", len(st.Dead), n, st)
			}
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestReadFigures(t *testing.T) {
	b := startBus(t)
	url := b.ClientURL()
	r := NewReader(testSecret)
	defer r.Close()
	groups := map[string]string{"inventory": "inventory", "notifications": "notify"}

	st := r.Read(context.Background(), url, groups)
	if !st.Up || st.Error != "" {
		t.Fatalf("an idle bus: %+v", st)
	}
	var names []string
	for _, s := range st.Streams {
		names = append(names, s.Name)
	}
	// The event streams only: the bucket's stream and the dead letters are
	// not among them.
	if strings.Join(names, ",") != "FULFILLMENT,ORDERS" {
		t.Fatalf("streams %v, want FULFILLMENT,ORDERS", names)
	}
	if f := stream(t, st, "FULFILLMENT"); !f.WorkQueue || len(f.Consumers) != 1 || f.Consumers[0].MaxDeliver != 5 {
		t.Errorf("FULFILLMENT: %+v", f)
	}
	if len(st.Dead) != 0 {
		t.Errorf("dead letters on an idle bus: %+v", st.Dead)
	}

	checkout := connectAs(t, b, "checkout")
	for _, id := range []string{"o-1", "o-2", "o-3"} {
		publish(t, checkout, access.SubjectOrderPlaced, id, `{"order":"`+id+`"}`)
	}
	inv := connectAs(t, b, "inventory")
	for i := 0; i < 3; i++ {
		m := next(t, inv, "ORDERS")
		if i < 2 {
			if err := m.DoubleAck(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(200 * time.Millisecond)
	st = r.Read(context.Background(), url, groups)
	if !st.Up {
		t.Fatalf("bus: %+v", st)
	}
	o := stream(t, st, "ORDERS")
	if o.Messages != 3 || o.FirstSeq != 1 || o.LastSeq != 3 || o.Bytes == 0 {
		t.Errorf("ORDERS: %+v, want 3 messages, seq 1 to 3", o)
	}
	if o.PublishedPerSec <= 0 {
		t.Errorf("ORDERS published %v/s after 3 publishes", o.PublishedPerSec)
	}
	i := consumer(t, st, "ORDERS", "inventory")
	if i.Group != "inventory" || i.Delivered != 3 || i.AckFloor != 2 || i.AckPending != 1 || i.Pending != 0 || i.Redelivered != 0 {
		t.Errorf("inventory: %+v; want delivered 3, ack floor 2, 1 ack pending, none pending", i)
	}
	if i.AckedPerSec <= 0 {
		t.Errorf("inventory acked %v/s after two acks", i.AckedPerSec)
	}
	n := consumer(t, st, "ORDERS", "notifications")
	if n.Group != "notify" || n.Pending != 3 || n.Delivered != 0 || n.AckPending != 0 {
		t.Errorf("notifications: %+v; want 3 pending (its lag), none delivered", n)
	}
	if a := consumer(t, st, "ORDERS", "analytics"); a.Group != "" || a.Pending != 3 {
		t.Errorf("analytics, whose group does not run: %+v", a)
	}

	// Nothing new: the rates fall to zero.
	st = r.Read(context.Background(), url, groups)
	if o := stream(t, st, "ORDERS"); o.PublishedPerSec != 0 {
		t.Errorf("ORDERS published %v/s with nothing published", o.PublishedPerSec)
	}
}

func TestDeadLetterAndReplay(t *testing.T) {
	b := startBus(t)
	url := b.ClientURL()
	r := NewReader(testSecret)
	defer r.Close()

	checkout := connectAs(t, b, "checkout")
	publish(t, checkout, access.SubjectOrderPlaced, "o-7", `{"order":"o-7","total":42}`)
	publish(t, checkout, access.SubjectOrderPlaced, "o-8", `{"order":"o-8"}`)

	// notifications fails o-7 on every attempt, up to MaxDeliver.
	notif := connectAs(t, b, "notifications")
	for i := 1; i <= 5; i++ {
		m := next(t, notif, "ORDERS")
		md, _ := m.Metadata()
		if md.Sequence.Stream != 1 || md.NumDelivered != uint64(i) {
			t.Fatalf("attempt %d got seq %d, delivery %d", i, md.Sequence.Stream, md.NumDelivered)
		}
		if err := m.Nak(); err != nil {
			t.Fatal(err)
		}
	}
	// Then it moves on to o-8, which it takes.
	m := next(t, notif, "ORDERS")
	if md, _ := m.Metadata(); md.Sequence.Stream != 2 {
		t.Fatalf("after giving up on seq 1, got seq %d", md.Sequence.Stream)
	}
	if err := m.DoubleAck(context.Background()); err != nil {
		t.Fatal(err)
	}

	st := waitDead(t, r, url, 1)
	d := st.Dead[0]
	if d.Stream != "ORDERS" || d.StreamSeq != 1 || d.Consumer != "notifications" || d.Deliveries != 5 ||
		d.Subject != access.SubjectOrderPlaced || d.EventID != "o-7" || d.Data != `{"order":"o-7","total":42}` ||
		d.Reason != "delivered 5 times without an ack" || d.Seq == 0 || d.Time.IsZero() {
		t.Errorf("dead letter: %+v", d)
	}
	if c := consumer(t, st, "ORDERS", "notifications"); c.AckPending != 0 || c.Pending != 0 {
		t.Errorf("notifications after giving up: %+v", c)
	}

	// Replay: the same body and headers, as a new message the stream
	// does not drop as a repeat of o-7.
	res, err := r.Replay(context.Background(), url, d.Seq)
	if err != nil {
		t.Fatal(err)
	}
	wantID := "o-7.replay." + itoa(d.Seq)
	if res.MsgID != wantID || res.Subject != access.SubjectOrderPlaced || res.Replayed.EventID != "o-7" {
		t.Errorf("replay: %+v, want msg ID %s", res, wantID)
	}
	again := next(t, notif, "ORDERS")
	md, _ := again.Metadata()
	if md.Sequence.Stream != 3 || string(again.Data()) != `{"order":"o-7","total":42}` ||
		again.Headers().Get(EventIDHeader) != "o-7" || again.Headers().Get("Content-Type") != "application/json" ||
		again.Headers().Get(jetstream.MsgIDHeader) != wantID {
		t.Errorf("replayed message: seq %d, %q, headers %v", md.Sequence.Stream, again.Data(), again.Headers())
	}
	again.DoubleAck(context.Background())
	st = waitDead(t, r, url, 0)
	if o := stream(t, st, "ORDERS"); o.LastSeq != 3 {
		t.Errorf("ORDERS after the replay: %+v", o)
	}

	// Replayed once: a second replay finds nothing; nor does an unknown
	// sequence.
	for _, seq := range []uint64{d.Seq, 999} {
		if _, err := r.Replay(context.Background(), url, seq); !errors.Is(err, ErrNotFound) {
			t.Errorf("replay of %d: err = %v, want ErrNotFound", seq, err)
		}
	}
}

func TestWorkQueueDeadLetterReplay(t *testing.T) {
	b := startBus(t)
	url := b.ClientURL()
	r := NewReader(testSecret)
	defer r.Close()
	checkout := connectAs(t, b, "checkout")
	publish(t, checkout, access.SubjectOrderFulfill, "o-9", `{"order":"o-9"}`)
	worker := connectAs(t, b, "fulfillment")
	for i := 0; i < 5; i++ {
		if err := next(t, worker, "FULFILLMENT").Nak(); err != nil {
			t.Fatal(err)
		}
	}
	// The server gives up when it would deliver the job a sixth time: to
	// the worker's next pull, which then waits in vain.
	cons, err := worker.JS.Consumer(context.Background(), "FULFILLMENT", "fulfillment")
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		t.Errorf("a sixth delivery: %s", m.Data())
	}
	st := waitDead(t, r, url, 1)
	if f := stream(t, st, "FULFILLMENT"); f.Messages != 1 {
		t.Errorf("the work queue keeps the job given up on: %+v", f)
	}
	if _, err := r.Replay(context.Background(), url, st.Dead[0].Seq); err != nil {
		t.Fatal(err)
	}
	// The job is in the queue once, as the replay: the stale original went.
	st = waitDead(t, r, url, 0)
	if f := stream(t, st, "FULFILLMENT"); f.Messages != 1 || f.FirstSeq != 2 {
		t.Errorf("the work queue after the replay: %+v, want only the replay (seq 2)", f)
	}
	m := next(t, worker, "FULFILLMENT")
	if m.Headers().Get(EventIDHeader) != "o-9" {
		t.Errorf("the worker got %v", m.Headers())
	}
}

func TestBusDown(t *testing.T) {
	r := NewReader(testSecret)
	defer r.Close()
	// Nothing listens there: an answer, quickly, not an error.
	start := time.Now()
	st := r.Read(context.Background(), "nats://127.0.0.1:1", nil)
	if st.Up || st.Error == "" || st.Streams == nil || st.Dead == nil || time.Since(start) > Timeout+time.Second {
		t.Errorf("no bus: %+v after %s", st, time.Since(start))
	}
	if _, err := r.Replay(context.Background(), "nats://127.0.0.1:1", 1); !errors.Is(err, ErrUnavailable) {
		t.Errorf("replay with no bus: %v, want ErrUnavailable", err)
	}

	// A bus that goes away after a reading.
	b := startBus(t)
	url := b.ClientURL()
	if st := r.Read(context.Background(), url, nil); !st.Up {
		t.Fatalf("bus: %+v", st)
	}
	b.Shutdown()
	start = time.Now()
	st = r.Read(context.Background(), url, nil)
	if st.Up || st.Error == "" || time.Since(start) > Timeout+time.Second {
		t.Errorf("the bus gone: %+v after %s", st, time.Since(start))
	}
	if _, err := r.Replay(context.Background(), url, 1); !errors.Is(err, ErrUnavailable) {
		t.Errorf("replay with the bus gone: %v, want ErrUnavailable", err)
	}
}

func TestMonitorIsReadOnly(t *testing.T) {
	// The reader reads as monitor, which may not change the bus: a check
	// that the reading needs no more than the monitor's rights.
	u, ok := access.Shop.Lookup(access.Monitor)
	if !ok {
		t.Fatal("no monitor user")
	}
	for _, subj := range []string{"$JS.API.STREAM.INFO." + DeadLetterStream, "$JS.API.STREAM.MSG.GET." + DeadLetterStream, "$JS.API.STREAM.LIST", "$JS.API.CONSUMER.LIST.ORDERS"} {
		if !u.MayPublish(subj) {
			t.Errorf("monitor may not %s, which a reading needs", subj)
		}
	}
	for _, subj := range []string{"$JS.API.STREAM.MSG.DELETE." + DeadLetterStream, access.SubjectOrderPlaced} {
		if u.MayPublish(subj) {
			t.Errorf("monitor may %s", subj)
		}
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// TestOddDeadLetters: a dead letter with the subscriber's reason shows it;
// one that is no advisory, or names a message that is gone, is shown and
// cannot be replayed.
func TestOddDeadLetters(t *testing.T) {
	b := startBus(t)
	url := b.ClientURL()
	r := NewReader(testSecret)
	defer r.Close()
	admin := connectAs(t, b, access.Admin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	subj := access.SubjectMaxDeliveries + ".ORDERS.inventory"
	for _, body := range []string{
		`{"stream":"ORDERS","consumer":"inventory","stream_seq":40,"deliveries":5,"reason":"out of stock"}`,
		`not json`,
	} {
		if _, err := admin.JS.Publish(ctx, subj, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	st := waitDead(t, r, url, 2)
	gone, garbage := st.Dead[1], st.Dead[0] // newest first
	if gone.Reason != "out of stock (after 5 deliveries); the message is no longer in stream ORDERS" || gone.Subject != "" {
		t.Errorf("dead letter of a message gone: %+v", gone)
	}
	if !strings.Contains(garbage.Reason, "not a max-deliveries advisory") {
		t.Errorf("a dead letter that is no advisory: %+v", garbage)
	}
	for _, d := range st.Dead {
		if _, err := r.Replay(ctx, url, d.Seq); !errors.Is(err, ErrNotFound) {
			t.Errorf("replay of %+v: %v, want ErrNotFound", d, err)
		}
	}
	if st := r.Read(ctx, url, nil); len(st.Dead) != 2 {
		t.Errorf("a refused replay deleted a dead letter: %+v", st.Dead)
	}
}

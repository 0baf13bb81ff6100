package shop_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/sample-services/bus"
	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/bus/client"
	"github.com/flotilla/flotilla/sample-services/receipt"
	"github.com/flotilla/flotilla/sample-services/recommend"
	"github.com/flotilla/flotilla/sample-services/shop"
)

// TestRecommendRole: the function needs nothing, so it is ready at once.
func TestRecommendRole(t *testing.T) {
	srv := serve(t, "recommend", shop.Config{Replica: "recommend-1"})
	var rb readyBody
	call(t, "GET", srv.URL+"/readyz", "", "").decode(t, 200, &rb)
	if rb.Status != "ready" || len(rb.Dependencies) != 0 {
		t.Errorf("/readyz = %+v", rb)
	}
	var rep recommend.Reply
	r := call(t, "GET", srv.URL+"/recommend?product=notebook", "", "")
	r.decode(t, 200, &rep)
	if rep.Product.ID != "notebook" || len(rep.Recommendations) != recommend.Count || rep.Replica != "recommend-1" || r.replica != "recommend-1" {
		t.Errorf("GET /recommend = %+v (replica header %q)", rep, r.replica)
	}
	if r := call(t, "GET", srv.URL+"/recommend/teapot", "", ""); r.code != 404 {
		t.Errorf("unknown product = %d %s", r.code, r.body)
	}
	if r := call(t, "GET", srv.URL+"/catalog", "", ""); r.code != 404 {
		t.Errorf("the function serves the catalog: %d", r.code)
	}
}

// TestReceiptTriggerHTTP: with trigger http the function ignores the bus,
// is ready at once and answers POST /receipt with the receipt.
func TestReceiptTriggerHTTP(t *testing.T) {
	env := func(k string) string {
		if k == access.URLEnv {
			return "nats://127.0.0.1:1" // nothing listens: never used
		}
		return ""
	}
	srv := serve(t, "receipt", shop.Config{Replica: "receipt-1", ReceiptTrigger: shop.TriggerHTTP, Getenv: env})
	var rb readyBody
	call(t, "GET", srv.URL+"/readyz", "", "").decode(t, 200, &rb)
	var rec receipt.Receipt
	call(t, "POST", srv.URL+"/receipt", "", orderJSON("o-1")).decode(t, 201, &rec)
	if rec.OrderID != "o-1" || rec.Replica != "receipt-1" || !strings.Contains(rec.Text, "alice") {
		t.Errorf("POST /receipt = %+v", rec)
	}
	call(t, "POST", srv.URL+"/receipt", "", orderJSON("o-1")).decode(t, 200, &rec)
	var st receipt.Stats
	call(t, "GET", srv.URL+"/stats", "", "").decode(t, 200, &st)
	if st.Received != 2 || st.Rendered != 1 || st.Duplicates != 1 || st.Ledger != "memory" || st.Consumer.Bound {
		t.Errorf("GET /stats = %+v", st)
	}

	if _, err := shop.Handler("receipt", shop.Config{ReceiptTrigger: "cron"}); err == nil || !strings.Contains(err.Error(), `"cron"`) {
		t.Errorf("trigger cron: %v", err)
	}
}

// TestReceiptRoleWakesAndSleeps: orders wait on the bus while no receipt
// replica runs; the first replica takes them at once, recognising a
// repeat; once it is stopped, the next orders wait again, and a new
// replica takes them: nothing is lost, nothing rendered twice.
func TestReceiptRoleWakesAndSleeps(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.New(bus.Config{Host: "127.0.0.1", ClientPort: -1, StoreDir: t.TempDir(), Secret: busSecret, Topology: access.Shop}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pw, _ := access.Password(busSecret, "checkout")
	checkout, err := client.Connect(b.ClientURL(), "checkout", pw, nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	defer checkout.Close()
	publish := func(ids ...string) {
		t.Helper()
		for _, id := range ids {
			m := &nats.Msg{Subject: access.SubjectOrderPlaced, Data: []byte(orderJSON(id)), Header: nats.Header{access.EventIDHeader: {id}}}
			// A fresh message ID each time: the repeat reaches the
			// consumer, as a redelivery would.
			if _, err := checkout.JS.PublishMsg(ctx, m, jetstream.WithMsgID(id+time.Now().Format(".150405.000000000"))); err != nil {
				t.Fatal(err)
			}
		}
	}
	pwr, _ := access.Password(busSecret, "receipt")
	self, err := client.Connect(b.ClientURL(), "receipt", pwr, nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	info := func() *jetstream.ConsumerInfo {
		t.Helper()
		c, err := self.JS.Consumer(ctx, "ORDERS", "receipt")
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	waiting := func() (pending uint64, ackPending int) {
		t.Helper()
		i := info()
		return i.NumPending, i.NumAckPending
	}

	publish("o-1", "o-2", "o-1")
	if n, _ := waiting(); n != 3 {
		t.Fatalf("%d orders wait for receipt, want 3", n)
	}

	// start runs a replica until its stop; wait returns its figures once
	// it received n.
	start := func(name string) (url string, stop func()) {
		runCtx, stop := context.WithCancel(context.Background())
		t.Cleanup(stop)
		srv := serve(t, "receipt", shop.Config{Replica: name, Context: runCtx, Getenv: busEnv(t, b, "receipt"), ReadyCache: time.Millisecond})
		return srv.URL, stop
	}
	wait := func(url string, n uint64) receipt.Stats {
		t.Helper()
		var st receipt.Stats
		for deadline := time.Now().Add(10 * time.Second); st.Received < n; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("stats of %s after 10s: %+v", url, st)
			}
			call(t, "GET", url+"/stats", "", "").decode(t, 200, &st)
		}
		return st
	}
	drained := func() {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			p, ack := waiting()
			if p == 0 && ack == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 5s, %d pending and %d unacknowledged", p, ack)
			}
		}
	}

	first, stopFirst := start("receipt-1")
	st := wait(first, 3)
	if st.Rendered != 2 || st.Duplicates != 1 || st.Ledger != "bucket applied_receipt" || !st.Consumer.Bound || st.Consumer.Durable != "receipt" {
		t.Errorf("receipt-1 /stats = %+v, want 2 rendered and the repeat of o-1 a duplicate", st)
	}
	var rb readyBody
	call(t, "GET", first+"/readyz", "", "").decode(t, 200, &rb)
	var list receipt.List
	call(t, "GET", first+"/receipts", "", "").decode(t, 200, &list)
	if list.Count != 2 || orderIDs(list) != "o-1,o-2" || list.Latest[0].Replica != "receipt-1" {
		t.Errorf("GET /receipts = %+v", list)
	}
	drained()

	// Scaled to zero: the stopped replica leaves no pull request behind,
	// so the next orders wait for the consumer.
	stopFirst()
	for deadline := time.Now().Add(5 * time.Second); info().NumWaiting != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("5s after receipt-1 stopped, %d pull requests wait", info().NumWaiting)
		}
	}
	publish("o-3", "o-4", "o-2")
	if n, _ := waiting(); n != 3 {
		t.Fatalf("%d orders wait with no replica, want 3", n)
	}
	second, _ := start("receipt-2")
	st = wait(second, 3)
	if st.Rendered != 2 || st.Duplicates != 1 {
		t.Errorf("receipt-2 /stats = %+v, want o-3 and o-4 rendered, o-2 a duplicate of receipt-1's", st)
	}
	call(t, "GET", second+"/receipts", "", "").decode(t, 200, &list)
	if list.Count != 2 || orderIDs(list) != "o-3,o-4" {
		t.Errorf("receipt-2 GET /receipts = %+v", list)
	}
	drained()
}

// orderIDs lists the orders of the receipts, sorted: a replica works on
// several at once, so they are kept in any order.
func orderIDs(l receipt.List) string {
	var ids []string
	for _, r := range l.Latest {
		ids = append(ids, r.OrderID)
	}
	slices.Sort(ids)
	return strings.Join(ids, ",")
}

package shop_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/sample-services/bus"
	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/bus/client"
	"github.com/flotilla/flotilla/sample-services/bus/consume"
	"github.com/flotilla/flotilla/sample-services/faults"
	"github.com/flotilla/flotilla/sample-services/notifications"
	"github.com/flotilla/flotilla/sample-services/shop"
)

const busSecret = "a-test-secret-of-enough-length"

// busEnv is what the controller gives a replica of user for bus b.
func busEnv(t *testing.T, b *bus.Broker, user string) func(string) string {
	pw, err := access.Password(busSecret, user)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{access.URLEnv: b.ClientURL(), access.UserEnv: user, access.PasswordEnv: pw}
	return func(k string) string { return env[k] }
}

func orderJSON(id string) string {
	return `{"orderId":"` + id + `","shopper":"alice","items":[{"productId":"tea-mug","quantity":2,"priceCents":1200}],"totalCents":2400,"placedAt":"2026-01-01T00:00:00Z"}`
}

func postEvent(t *testing.T, url, id, body string) reply {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", url+"/events", strings.NewReader(body))
	req.Header.Set(access.EventIDHeader, id)
	req.Header.Set(consume.SubjectHeader, access.SubjectOrderPlaced)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{code: resp.StatusCode, body: got}
}

// TestSubscriberRole: a notifications replica is ready once its consumer is
// bound, applies what checkout publishes, answers POST /events on the same
// ledger, and fails a poisoned event with a 503.
func TestSubscriberRole(t *testing.T) {
	// Without a bus: not ready, saying so; POST /events still works.
	alone := serve(t, "notifications", shop.Config{Getenv: func(string) string { return "" }})
	var rb readyBody
	call(t, "GET", alone.URL+"/readyz", "", "").decode(t, 503, &rb)
	if len(rb.Failing) != 1 || rb.Failing[0] != "bus" || !strings.Contains(rb.Error, "no bus configured") {
		t.Errorf("/readyz without a bus = %+v", rb)
	}
	if r := postEvent(t, alone.URL, "o-1", orderJSON("o-1")); r.code != 200 || !strings.Contains(string(r.body), `"applied":true`) {
		t.Errorf("POST /events without a bus = %d %s", r.code, r.body)
	}

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
	inj := faults.New(shop.Subscribers()...)
	runCtx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	srv := serve(t, "notifications", shop.Config{Replica: "notifications-1", Context: runCtx, Getenv: busEnv(t, b, "notifications"), Faults: inj, ReadyCache: time.Millisecond})
	deadline := time.Now().Add(10 * time.Second)
	for call(t, "GET", srv.URL+"/readyz", "", "").code != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 10s: %s", call(t, "GET", srv.URL+"/readyz", "", "").body)
		}
		time.Sleep(20 * time.Millisecond)
	}

	pw, _ := access.Password(busSecret, "checkout")
	checkout, err := client.Connect(b.ClientURL(), "checkout", pw, nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	defer checkout.Close()
	for _, id := range []string{"o-1", "o-2", "o-1"} {
		m := &nats.Msg{Subject: access.SubjectOrderPlaced, Data: []byte(orderJSON(id)), Header: nats.Header{access.EventIDHeader: {id}}}
		if _, err := checkout.JS.PublishMsg(ctx, m, jetstream.WithMsgID(id+time.Now().Format(".150405.000000000"))); err != nil {
			t.Fatal(err)
		}
	}
	var st consume.Stats
	for deadline := time.Now().Add(10 * time.Second); st.Applied+st.Duplicates < 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stats after 10s: %+v", st)
		}
		call(t, "GET", srv.URL+"/stats", "", "").decode(t, 200, &st)
	}
	if st.Applied != 2 || st.Duplicates != 1 || st.Ledger != "bucket applied_notifications" || !st.Consumer.Bound || st.Replica != "notifications-1" {
		t.Errorf("GET /stats = %+v, want 2 applied and the repeat of o-1 a duplicate", st)
	}
	var sent notifications.Sent
	call(t, "GET", srv.URL+"/sent", "", "").decode(t, 200, &sent)
	// The replica works on several messages at once: the two e-mails may
	// be sent in either order.
	var mails []string
	for _, m := range sent.Latest {
		mails = append(mails, m.Message)
	}
	all := strings.Join(mails, "\n")
	if sent.Count != 2 || !strings.Contains(all, "would e-mail shopper alice about order o-1") || !strings.Contains(all, "about order o-2") {
		t.Errorf("GET /sent = %+v, want one e-mail for o-1 and one for o-2", sent)
	}

	// POST /events shares the bus's ledger: o-2 is a duplicate here too.
	if r := postEvent(t, srv.URL, "o-2", orderJSON("o-2")); r.code != 200 || strings.TrimSpace(string(r.body)) != `{"applied":false,"duplicate":true}` {
		t.Errorf("POST /events o-2 = %d %s, want a duplicate", r.code, r.body)
	}
	// A poison fault fails the next event with a 503, and again on retry.
	adminPut(t, inj, "notifications", `{"poison":1}`)
	for range 2 {
		if r := postEvent(t, srv.URL, "o-3", orderJSON("o-3")); r.code != 503 || !strings.Contains(string(r.body), "poison") {
			t.Errorf("POST /events under poison = %d %s, want 503", r.code, r.body)
		}
	}
	if r := postEvent(t, srv.URL, "o-4", orderJSON("o-4")); r.code != 200 {
		t.Errorf("POST /events after the poison's count = %d %s", r.code, r.body)
	}
	if r := call(t, "GET", srv.URL+"/diag", "", ""); r.code != 200 {
		t.Errorf("GET /diag = %d %s", r.code, r.body)
	}
}

func adminPut(t *testing.T, inj *faults.Injector, feature, body string) {
	t.Helper()
	rec := httptest.NewRecorder()
	inj.Admin().ServeHTTP(rec, httptest.NewRequest("PUT", "/faults/"+feature, strings.NewReader(body)))
	if rec.Code != 200 {
		t.Fatalf("PUT /faults/%s = %d %s", feature, rec.Code, rec.Body)
	}
}

package checkout_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flotilla/flotilla/sample-services/checkout"
)

// subscriber records the events POSTed to it and answers with status.
type subscriber struct {
	srv    *httptest.Server
	status int

	mu     sync.Mutex
	got    []checkout.OrderPlaced
	header []http.Header
}

func newSubscriber(t *testing.T, status int) *subscriber {
	s := &subscriber{status: status}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/events" {
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var ev checkout.OrderPlaced
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.got, s.header = append(s.got, ev), append(s.header, r.Header.Clone())
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.status)
		if s.status == http.StatusOK {
			io.WriteString(w, `{"applied":true,"duplicate":false}`)
		} else {
			io.WriteString(w, `{"error":"poisoned: failing the next 1 messages"}`)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// dns plays DNS: names in known resolve, others are unknown.
func dns(known ...string) func(context.Context, string) error {
	return func(_ context.Context, host string) error {
		for _, k := range known {
			if k == host {
				return nil
			}
		}
		return &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
}

func httpEvents(subs []checkout.Subscriber, resolve func(context.Context, string) error) *checkout.HTTPEvents {
	return checkout.NewHTTPEvents(subs, &http.Client{Timeout: 2 * time.Second}, resolve, nil)
}

func TestHTTPEventsTellsEverySubscriber(t *testing.T) {
	n, i, a := newSubscriber(t, 200), newSubscriber(t, 200), newSubscriber(t, 200)
	ev := httpEvents([]checkout.Subscriber{{"notifications", n.srv.URL}, {"inventory", i.srv.URL}, {"analytics", a.srv.URL}}, dns())
	c, o := aliceCart(), &fakeOrders{}
	rec := post(t, checkout.NewWithEvents(c, o, ev), "alice")
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d, want 201: %s", rec.Code, rec.Body)
	}
	for name, s := range map[string]*subscriber{"notifications": n, "inventory": i, "analytics": a} {
		if len(s.got) != 1 {
			t.Fatalf("%s got %d events, want 1", name, len(s.got))
		}
		want := checkout.OrderPlaced{OrderID: "o-1", Shopper: "alice", Items: []checkout.EventItem{{ProductID: "tea-mug", Quantity: 2, PriceCents: 1200}}, TotalCents: 1}
		got := s.got[0]
		if got.OrderID != want.OrderID || got.Shopper != want.Shopper || len(got.Items) != 1 || got.Items[0] != want.Items[0] || got.TotalCents != 1 {
			t.Errorf("%s got %+v, want %+v", name, got, want)
		}
		if h := s.header[0]; h.Get(checkout.HeaderEventID) != "o-1" || h.Get(checkout.HeaderSubject) != "orders.placed" || h.Get("Content-Type") != "application/json" {
			t.Errorf("%s got headers %v", name, h)
		}
	}
	st := ev.Stats().(checkout.HTTPStats)
	if st.Subscribers["inventory"].Told != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestHTTPEventsFailingSubscriberIs502(t *testing.T) {
	n, i, a := newSubscriber(t, 200), newSubscriber(t, http.StatusServiceUnavailable), newSubscriber(t, 200)
	ev := httpEvents([]checkout.Subscriber{{"notifications", n.srv.URL}, {"inventory", i.srv.URL}, {"analytics", a.srv.URL}}, dns())
	c, o := aliceCart(), &fakeOrders{}
	rec := post(t, checkout.NewWithEvents(c, o, ev), "alice")
	if rec.Code != http.StatusBadGateway {
		t.Fatalf("status %d, want 502: %s", rec.Code, rec.Body)
	}
	msg := errorOf(t, rec)
	if !strings.Contains(msg, "order o-1 placed, but") || !strings.Contains(msg, "inventory") || !strings.Contains(msg, "poisoned") ||
		strings.Contains(msg, "notifications") {
		t.Errorf("error %q should name inventory, and only it, and say the order stands", msg)
	}
	// The order stands, so its cart is emptied; the others were told.
	if len(o.created) != 1 || len(c.cleared) != 1 || len(n.got) != 1 || len(a.got) != 1 {
		t.Errorf("created %d, cleared %v, notifications %d, analytics %d", len(o.created), c.cleared, len(n.got), len(a.got))
	}
}

func TestHTTPEventsSlowSubscriberSlowsCheckout(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		w.Write([]byte(`{"applied":true}`))
	}))
	defer slow.Close()
	ev := httpEvents([]checkout.Subscriber{{"analytics", slow.URL}}, dns())
	start := time.Now()
	rec := post(t, checkout.NewWithEvents(aliceCart(), &fakeOrders{}, ev), "alice")
	if rec.Code != http.StatusCreated || time.Since(start) < 300*time.Millisecond {
		t.Errorf("status %d after %s, want 201 after the subscriber's 300ms", rec.Code, time.Since(start))
	}
}

// A subscriber DNS does not know is not deployed: skipped, and checkout
// works as before events. One DNS knows that does not answer fails it.
func TestHTTPEventsSkipsUndeployedSubscribers(t *testing.T) {
	n := newSubscriber(t, 200)
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedAddr := strings.TrimPrefix(refused.URL, "http://")
	refused.Close()
	_, port, _ := net.SplitHostPort(refusedAddr)

	ev := httpEvents([]checkout.Subscriber{
		{"notifications", n.srv.URL},
		{"inventory", "http://inventory:8080"},
		{"analytics", "http://analytics:8080"},
	}, dns())
	c, o := aliceCart(), &fakeOrders{}
	for range 3 {
		c.carts = aliceCart().carts
		if rec := post(t, checkout.NewWithEvents(c, o, ev), "alice"); rec.Code != http.StatusCreated {
			t.Fatalf("status %d, want 201 with inventory and analytics not deployed: %s", rec.Code, rec.Body)
		}
	}
	st := ev.Stats().(checkout.HTTPStats)
	if st.Subscribers["inventory"].Skipped != 3 || st.Subscribers["analytics"].Skipped != 3 || st.Subscribers["notifications"].Told != 3 {
		t.Errorf("stats %+v, want inventory and analytics skipped 3 times, notifications told 3", st)
	}

	// Deployed (DNS knows it) but not answering: the checkout fails.
	down := httpEvents([]checkout.Subscriber{{"notifications", n.srv.URL}, {"inventory", "http://localhost:" + port}}, dns("localhost"))
	rec := post(t, checkout.NewWithEvents(aliceCart(), &fakeOrders{}, down), "alice")
	if rec.Code != http.StatusBadGateway || !strings.Contains(errorOf(t, rec), "inventory") {
		t.Errorf("inventory deployed but down: status %d %s, want 502 naming it", rec.Code, rec.Body)
	}
}

func TestCheckoutWithoutEventsHasNoEventsPage(t *testing.T) {
	mux := http.NewServeMux()
	checkout.New(aliceCart(), &fakeOrders{}).Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/checkout/events", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /checkout/events = %d, want 404", rec.Code)
	}
}

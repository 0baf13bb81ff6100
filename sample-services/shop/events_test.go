package shop_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flotilla/flotilla/sample-services/cart"
	"github.com/flotilla/flotilla/sample-services/checkout"
	"github.com/flotilla/flotilla/sample-services/orders"
	"github.com/flotilla/flotilla/sample-services/shop"
)

// The checkout role tells its subscribers of an order over HTTP by
// default; one not deployed is skipped.
func TestCheckoutRoleTellsSubscribersOverHTTP(t *testing.T) {
	var told atomic.Int32
	var eventID atomic.Value
	notif := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		told.Add(1)
		eventID.Store(r.Header.Get(checkout.HeaderEventID))
		w.Write([]byte(`{"applied":true,"duplicate":false}`))
	}))
	defer notif.Close()
	cat := serve(t, "catalog", shop.Config{})
	ord := serve(t, "orders", shop.Config{})
	crt := serve(t, "cart", shop.Config{CatalogURL: cat.URL})
	chk := serve(t, "checkout", shop.Config{CartURL: crt.URL, OrdersURL: ord.URL, Subscribers: []checkout.Subscriber{
		{Name: "notifications", URL: notif.URL},
		{Name: "inventory", URL: "http://inventory.invalid:8080"}, // no such name: not deployed
	}})

	call(t, "POST", crt.URL+"/cart/items", "alice", `{"productId":"tea-mug","quantity":1}`)
	var o orders.Order
	call(t, "POST", chk.URL+"/checkout", "alice", "").decode(t, http.StatusCreated, &o)
	if told.Load() != 1 || eventID.Load() != o.ID {
		t.Errorf("notifications told %d times, event %v; want once, of %s", told.Load(), eventID.Load(), o.ID)
	}
	var st checkout.HTTPStats
	call(t, "GET", chk.URL+"/checkout/events", "", "").decode(t, http.StatusOK, &st)
	if st.Mode != "http" || st.Subscribers["notifications"].Told != 1 || st.Subscribers["inventory"].Skipped != 1 {
		t.Errorf("GET /checkout/events = %+v", st)
	}
}

// fakeBus stands for a bus part of a role, healthy or not.
type fakeBus struct{ err atomic.Pointer[error] }

func (f *fakeBus) Health(context.Context) error {
	if e := f.err.Load(); e != nil {
		return *e
	}
	return nil
}

func (f *fakeBus) down(err error) { f.err.Store(&err) }

// busEvents is a checkout publisher that only reports its health.
type busEvents struct{ fakeBus }

func (*busEvents) Placed(context.Context, orders.Order) error { return nil }
func (*busEvents) Admit() error                               { return nil }
func (*busEvents) Stats() any                                 { return map[string]string{"mode": "bus"} }

// busStore is a cart store that keeps carts in memory and reports a
// bus's health.
type busStore struct {
	fakeBus
	*cart.MemoryStore
}

// Checkout on the bus stays ready without it (its outbox keeps the
// events) and shows how the bus is; the cart on the bus needs it.
func TestReadyzWithTheBus(t *testing.T) {
	deps := serve(t, "orders", shop.Config{}) // answers /healthz for cart, orders and catalog alike
	ev := &busEvents{}
	chk := serve(t, "checkout", shop.Config{CartURL: deps.URL, OrdersURL: deps.URL, CheckoutEvents: ev, ReadyCache: time.Nanosecond})
	st := &busStore{MemoryStore: cart.NewMemoryStore()}
	crt := serve(t, "cart", shop.Config{CatalogURL: deps.URL, CartStore: st, ReadyCache: time.Nanosecond})

	var b readyBody
	call(t, "GET", chk.URL+"/readyz", "", "").decode(t, 200, &b)
	if b.Dependencies["bus"] != "ok" {
		t.Errorf("checkout, bus up: %+v", b)
	}
	b = readyBody{}
	call(t, "GET", crt.URL+"/readyz", "", "").decode(t, 200, &b)
	if b.Dependencies["bus"] != "ok" {
		t.Errorf("cart, bus up: %+v", b)
	}

	ev.down(errors.New("not connected; 4 events wait in the outbox"))
	st.down(errors.New("cart store: not connected to the bus"))
	b = readyBody{}
	call(t, "GET", chk.URL+"/readyz", "", "").decode(t, 200, &b)
	if b.Status != "ready" || b.Dependencies["bus"] != "not connected; 4 events wait in the outbox" {
		t.Errorf("checkout, bus down: %+v, want ready, showing the outbox", b)
	}
	b = readyBody{}
	call(t, "GET", crt.URL+"/readyz", "", "").decode(t, 503, &b)
	if len(b.Failing) != 1 || b.Failing[0] != "bus" {
		t.Errorf("cart, bus down: %+v, want unavailable for the bus", b)
	}
}

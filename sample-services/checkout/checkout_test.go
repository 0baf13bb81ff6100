package checkout_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/sample-services/cart"
	"github.com/flotilla/flotilla/sample-services/checkout"
	"github.com/flotilla/flotilla/sample-services/orders"
)

// fakeCart holds one cart per shopper and records Clear calls.
type fakeCart struct {
	carts    map[string]cart.Cart
	getErr   error
	clearErr error
	cleared  []string
}

func (f *fakeCart) Get(_ context.Context, who string) (cart.Cart, error) {
	if f.getErr != nil {
		return cart.Cart{}, f.getErr
	}
	return f.carts[who], nil
}

func (f *fakeCart) Clear(_ context.Context, who string) error {
	if f.clearErr != nil {
		return f.clearErr
	}
	f.cleared = append(f.cleared, who)
	delete(f.carts, who)
	return nil
}

// fakeOrders records the orders it is asked to create.
type fakeOrders struct {
	created []orders.Order
	err     error
}

func (f *fakeOrders) Create(_ context.Context, who string, items []orders.Item) (orders.Order, error) {
	if f.err != nil {
		return orders.Order{}, f.err
	}
	o := orders.Order{ID: "o-1", Shopper: who, Items: items, TotalCents: 1}
	f.created = append(f.created, o)
	return o, nil
}

func post(t *testing.T, s *checkout.Service, shopper string) *httptest.ResponseRecorder {
	t.Helper()
	mux := http.NewServeMux()
	s.Register(mux)
	req := httptest.NewRequest(http.MethodPost, "/checkout", nil)
	if shopper != "" {
		req.Header.Set("X-Shopper", shopper)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec
}

func errorOf(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
		t.Fatalf("want a JSON error, got %q", rec.Body)
	}
	return e.Error
}

func aliceCart() *fakeCart {
	return &fakeCart{carts: map[string]cart.Cart{"alice": {
		Shopper: "alice",
		Items:   []cart.Item{{ProductID: "tea-mug", Name: "Tea mug", PriceCents: 1200, Quantity: 2}},
	}}}
}

func TestCheckout(t *testing.T) {
	c, o := aliceCart(), &fakeOrders{}
	rec := post(t, checkout.New(c, o), "alice")
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d, want 201: %s", rec.Code, rec.Body)
	}
	var got orders.Order
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != "o-1" || rec.Header().Get("Location") != "/orders/o-1" {
		t.Errorf("reply %+v, Location %q", got, rec.Header().Get("Location"))
	}
	if len(o.created) != 1 {
		t.Fatalf("%d orders created, want 1", len(o.created))
	}
	wantItem := orders.Item{ProductID: "tea-mug", Name: "Tea mug", PriceCents: 1200, Quantity: 2}
	if o.created[0].Shopper != "alice" || len(o.created[0].Items) != 1 || o.created[0].Items[0] != wantItem {
		t.Errorf("created %+v, want alice's tea mugs", o.created[0])
	}
	if len(c.cleared) != 1 || c.cleared[0] != "alice" {
		t.Errorf("cleared %v, want [alice]", c.cleared)
	}
}

func TestEmptyCartIs409(t *testing.T) {
	o := &fakeOrders{}
	rec := post(t, checkout.New(aliceCart(), o), "bob")
	if rec.Code != http.StatusConflict {
		t.Errorf("status %d, want 409", rec.Code)
	}
	if msg := errorOf(t, rec); msg != "cart is empty" {
		t.Errorf("error %q", msg)
	}
	if len(o.created) != 0 {
		t.Errorf("an empty cart created orders: %+v", o.created)
	}
}

func TestNoShopperIs400(t *testing.T) {
	rec := post(t, checkout.New(aliceCart(), &fakeOrders{}), "")
	if rec.Code != http.StatusBadRequest {
		t.Errorf("status %d, want 400", rec.Code)
	}
	errorOf(t, rec)
}

func TestDependencyFailuresAre502(t *testing.T) {
	down := errors.New("connection refused")
	tests := []struct {
		name   string
		cart   *fakeCart
		orders *fakeOrders
	}{
		{"cart down", &fakeCart{getErr: down}, &fakeOrders{}},
		{"orders down", aliceCart(), &fakeOrders{err: down}},
		{"clear fails", &fakeCart{carts: aliceCart().carts, clearErr: down}, &fakeOrders{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := post(t, checkout.New(tt.cart, tt.orders), "alice")
			if rec.Code != http.StatusBadGateway {
				t.Errorf("status %d, want 502", rec.Code)
			}
			if msg := errorOf(t, rec); !strings.Contains(msg, "connection refused") {
				t.Errorf("error %q does not say what failed", msg)
			}
		})
	}
	if len(tests[1].cart.cleared) != 0 {
		t.Error("the cart was emptied although no order was placed")
	}
}

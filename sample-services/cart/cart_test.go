package cart_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/sample-services/cart"
	"github.com/flotilla/flotilla/sample-services/catalog"
	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
)

func newMux() *http.ServeMux {
	mux := http.NewServeMux()
	cart.New(catalog.New()).Register(mux)
	return mux
}

// do sends one request to h as shopper (none if empty) and returns the reply.
func do(t *testing.T, h http.Handler, method, path, shopper, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if shopper != "" {
		req.Header.Set("X-Shopper", shopper)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decodeCart(t *testing.T, rec *httptest.ResponseRecorder) cart.Cart {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", rec.Code, rec.Body)
	}
	var c cart.Cart
	if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func errorOf(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
		t.Fatalf("want a JSON error, got %q", rec.Body)
	}
	return e.Error
}

func TestEmptyCart(t *testing.T) {
	rec := do(t, newMux(), "GET", "/cart", "alice", "")
	if got := rec.Body.String(); got != `{"shopper":"alice","items":[],"totalCents":0}`+"\n" {
		t.Errorf("empty cart = %s", got)
	}
}

func TestAddListRemove(t *testing.T) {
	mux := newMux()
	decodeCart(t, do(t, mux, "POST", "/cart/items", "alice", `{"productId":"tea-mug","quantity":2}`))
	c := decodeCart(t, do(t, mux, "POST", "/cart/items", "alice", `{"productId":"notebook","quantity":1}`))
	if len(c.Items) != 2 || c.TotalCents != 2*1200+650 {
		t.Fatalf("after two adds: %+v", c)
	}

	// Adding a product again adds to its quantity.
	c = decodeCart(t, do(t, mux, "POST", "/cart/items", "alice", `{"productId":"tea-mug","quantity":1}`))
	want := cart.Item{ProductID: "tea-mug", Name: "Tea mug", PriceCents: 1200, Quantity: 3}
	if c.Items[0] != want {
		t.Errorf("first item = %+v, want %+v", c.Items[0], want)
	}

	// Carts are per shopper.
	if other := decodeCart(t, do(t, mux, "GET", "/cart", "bob", "")); len(other.Items) != 0 {
		t.Errorf("bob sees alice's items: %+v", other)
	}

	c = decodeCart(t, do(t, mux, "DELETE", "/cart/items/tea-mug", "alice", ""))
	if len(c.Items) != 1 || c.Items[0].ProductID != "notebook" || c.TotalCents != 650 {
		t.Errorf("after removing tea-mug: %+v", c)
	}
	if c = decodeCart(t, do(t, mux, "GET", "/cart", "alice", "")); len(c.Items) != 1 {
		t.Errorf("GET /cart after remove: %+v", c)
	}

	c = decodeCart(t, do(t, mux, "DELETE", "/cart", "alice", ""))
	if len(c.Items) != 0 || c.TotalCents != 0 {
		t.Errorf("after DELETE /cart: %+v", c)
	}
}

func TestShopperFromCookie(t *testing.T) {
	mux := newMux()
	req := httptest.NewRequest("POST", "/cart/items", strings.NewReader(`{"productId":"tea-mug","quantity":1}`))
	req.AddCookie(&http.Cookie{Name: "shopper", Value: "carol"})
	mux.ServeHTTP(httptest.NewRecorder(), req)

	c := decodeCart(t, do(t, mux, "GET", "/cart", "carol", ""))
	if c.Shopper != "carol" || len(c.Items) != 1 {
		t.Errorf("cookie shopper's cart seen by header: %+v", c)
	}
}

func TestBadRequests(t *testing.T) {
	tests := []struct {
		name, method, path, shopper, body string
		code                              int
		errHas                            string
	}{
		{"no shopper on get", "GET", "/cart", "", "", 400, "X-Shopper"},
		{"no shopper on add", "POST", "/cart/items", "", `{"productId":"tea-mug","quantity":1}`, 400, "X-Shopper"},
		{"no shopper on clear", "DELETE", "/cart", "", "", 400, "X-Shopper"},
		{"unknown product", "POST", "/cart/items", "alice", `{"productId":"unicorn","quantity":1}`, 404, "no product unicorn"},
		{"zero quantity", "POST", "/cart/items", "alice", `{"productId":"tea-mug","quantity":0}`, 400, "quantity"},
		{"negative quantity", "POST", "/cart/items", "alice", `{"productId":"tea-mug","quantity":-3}`, 400, "quantity"},
		{"too many", "POST", "/cart/items", "alice", `{"productId":"tea-mug","quantity":100}`, 400, "quantity"},
		{"no product id", "POST", "/cart/items", "alice", `{"quantity":1}`, 400, "productId"},
		{"unknown field", "POST", "/cart/items", "alice", `{"productId":"tea-mug","quantity":1,"price":1}`, 400, `unknown field "price"`},
		{"not json", "POST", "/cart/items", "alice", `tea-mug please`, 400, "bad body"},
		{"empty body", "POST", "/cart/items", "alice", ``, 400, "empty"},
		{"two values", "POST", "/cart/items", "alice", `{"productId":"tea-mug","quantity":1}{}`, 400, "single JSON value"},
		{"huge body", "POST", "/cart/items", "alice", `{"productId":"` + strings.Repeat("x", httpjson.MaxBodyBytes) + `"}`, 413, "larger"},
		{"remove missing", "DELETE", "/cart/items/tea-mug", "alice", "", 404, "no product tea-mug in cart"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, newMux(), tt.method, tt.path, tt.shopper, tt.body)
			if rec.Code != tt.code {
				t.Errorf("status %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if msg := errorOf(t, rec); !strings.Contains(msg, tt.errHas) {
				t.Errorf("error %q does not mention %q", msg, tt.errHas)
			}
		})
	}
}

func TestQuantityCapAcrossAdds(t *testing.T) {
	s := cart.New(catalog.New())
	if _, err := s.Add(t.Context(), "alice", "tea-mug", 60); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(t.Context(), "alice", "tea-mug", 40); !errors.Is(err, cart.ErrQuantity) {
		t.Errorf("going over %d: error %v, want ErrQuantity", cart.MaxQuantity, err)
	}
	c, _ := s.Get(t.Context(), "alice")
	if c.Items[0].Quantity != 60 {
		t.Errorf("a refused add changed the cart: %+v", c)
	}
}

func TestClient(t *testing.T) {
	s := cart.New(catalog.New())
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if _, err := s.Add(t.Context(), "alice", "desk-lamp", 1); err != nil {
		t.Fatal(err)
	}

	c := cart.NewClient(srv.URL, srv.Client())
	got, err := c.Get(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.Shopper != "alice" || len(got.Items) != 1 || got.Items[0].ProductID != "desk-lamp" {
		t.Errorf("Get over HTTP = %+v", got)
	}
	if err := c.Clear(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.Get(t.Context(), "alice"); len(after.Items) != 0 {
		t.Errorf("Clear over HTTP left %+v", after)
	}

	srv.Close()
	if _, err := c.Get(t.Context(), "alice"); err == nil {
		t.Error("Get from a closed server: no error")
	}
}

func TestConcurrentAdds(t *testing.T) {
	s := cart.New(catalog.New())
	const n = 40
	done := make(chan error, n)
	for range n {
		go func() {
			_, err := s.Add(t.Context(), "alice", "tea-mug", 1)
			done <- err
		}()
	}
	for range n {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	c, _ := s.Get(t.Context(), "alice")
	if len(c.Items) != 1 || c.Items[0].Quantity != n {
		t.Errorf("after %d concurrent adds: %+v", n, c)
	}
}

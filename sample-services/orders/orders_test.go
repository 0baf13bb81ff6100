package orders_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/sample-services/orders"
)

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

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder, code int) T {
	t.Helper()
	if rec.Code != code {
		t.Fatalf("status %d, want %d: %s", rec.Code, code, rec.Body)
	}
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func newMux() *http.ServeMux {
	mux := http.NewServeMux()
	orders.New().Register(mux)
	return mux
}

const twoMugs = `{"items":[{"productId":"tea-mug","name":"Tea mug","priceCents":1200,"quantity":2}]}`

func TestCreateGetList(t *testing.T) {
	mux := newMux()
	rec := do(t, mux, "POST", "/orders", "alice", twoMugs)
	o := decode[orders.Order](t, rec, http.StatusCreated)
	if !strings.HasPrefix(o.ID, "o-") || o.Shopper != "alice" || o.TotalCents != 2400 || len(o.Items) != 1 || o.PlacedAt.IsZero() {
		t.Errorf("created %+v", o)
	}
	if loc := rec.Header().Get("Location"); loc != "/orders/"+o.ID {
		t.Errorf("Location %q, want /orders/%s", loc, o.ID)
	}

	got := decode[orders.Order](t, do(t, mux, "GET", "/orders/"+o.ID, "", ""), http.StatusOK)
	if got.ID != o.ID || got.TotalCents != o.TotalCents {
		t.Errorf("GET /orders/%s = %+v, want %+v", o.ID, got, o)
	}

	decode[orders.Order](t, do(t, mux, "POST", "/orders", "bob", twoMugs), http.StatusCreated)

	all := decode[[]orders.Order](t, do(t, mux, "GET", "/orders", "", ""), http.StatusOK)
	if len(all) != 2 {
		t.Errorf("GET /orders without shopper: %d orders, want 2", len(all))
	}
	mine := decode[[]orders.Order](t, do(t, mux, "GET", "/orders", "alice", ""), http.StatusOK)
	if len(mine) != 1 || mine[0].ID != o.ID {
		t.Errorf("alice's orders = %+v, want only %s", mine, o.ID)
	}
	none := decode[[]orders.Order](t, do(t, mux, "GET", "/orders", "dave", ""), http.StatusOK)
	if none == nil || len(none) != 0 {
		t.Errorf("dave's orders = %#v, want []", none)
	}
}

func TestIDsAreUnique(t *testing.T) {
	s := orders.New()
	seen := map[string]bool{}
	for range 100 {
		o, err := s.Create(t.Context(), "alice", []orders.Item{{ProductID: "p", Quantity: 1}})
		if err != nil {
			t.Fatal(err)
		}
		if seen[o.ID] {
			t.Fatalf("id %s handed out twice", o.ID)
		}
		seen[o.ID] = true
	}
}

func TestBadRequests(t *testing.T) {
	tests := []struct {
		name, method, path, shopper, body string
		code                              int
		errHas                            string
	}{
		{"unknown order", "GET", "/orders/o-nope", "", "", 404, "no order o-nope"},
		{"no shopper", "POST", "/orders", "", twoMugs, 400, "X-Shopper"},
		{"no items", "POST", "/orders", "alice", `{"items":[]}`, 400, "no items"},
		{"zero quantity", "POST", "/orders", "alice", `{"items":[{"productId":"tea-mug","quantity":0}]}`, 400, "invalid order"},
		{"negative price", "POST", "/orders", "alice", `{"items":[{"productId":"tea-mug","quantity":1,"priceCents":-5}]}`, 400, "invalid order"},
		{"no product id", "POST", "/orders", "alice", `{"items":[{"quantity":1}]}`, 400, "invalid order"},
		{"unknown field", "POST", "/orders", "alice", `{"items":[],"total":5}`, 400, `unknown field "total"`},
		{"shopper too long", "GET", "/orders", strings.Repeat("a", 65), "", 400, "longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, newMux(), tt.method, tt.path, tt.shopper, tt.body)
			e := decode[struct{ Error string }](t, rec, tt.code)
			if !strings.Contains(e.Error, tt.errHas) {
				t.Errorf("error %q does not mention %q", e.Error, tt.errHas)
			}
		})
	}
}

func TestClient(t *testing.T) {
	s := orders.New()
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := orders.NewClient(srv.URL, srv.Client())

	o, err := c.Create(t.Context(), "alice", []orders.Item{{ProductID: "notebook", Name: "Dotted notebook", PriceCents: 650, Quantity: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if o.Shopper != "alice" || o.TotalCents != 1950 {
		t.Errorf("Create over HTTP = %+v", o)
	}
	if stored, err := s.Get(t.Context(), o.ID); err != nil || stored.ID != o.ID {
		t.Errorf("order not stored on the server: %+v, %v", stored, err)
	}

	if _, err := c.Create(t.Context(), "alice", nil); !errors.Is(err, orders.ErrInvalid) {
		t.Errorf("Create with no items over HTTP: error %v, want ErrInvalid", err)
	}
}

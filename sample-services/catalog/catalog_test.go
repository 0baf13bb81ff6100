package catalog_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/flotilla/flotilla/sample-services/catalog"
)

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	catalog.New().Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, out any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q, want application/json", url, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: decode: %v", url, err)
	}
	return resp.StatusCode
}

func TestListProducts(t *testing.T) {
	srv := newServer(t)
	var products []catalog.Product
	if code := get(t, srv.URL+"/catalog", &products); code != http.StatusOK {
		t.Fatalf("status %d, want 200", code)
	}
	if len(products) != 6 {
		t.Fatalf("got %d products, want 6", len(products))
	}
	seen := map[string]bool{}
	for _, p := range products {
		if p.ID == "" || p.Name == "" || p.PriceCents <= 0 {
			t.Errorf("incomplete product %+v", p)
		}
		if seen[p.ID] {
			t.Errorf("duplicate id %q", p.ID)
		}
		seen[p.ID] = true
	}
}

func TestGetProduct(t *testing.T) {
	srv := newServer(t)
	var p catalog.Product
	if code := get(t, srv.URL+"/catalog/tea-mug", &p); code != http.StatusOK {
		t.Fatalf("status %d, want 200", code)
	}
	want := catalog.Product{ID: "tea-mug", Name: "Tea mug", PriceCents: 1200}
	if p != want {
		t.Errorf("got %+v, want %+v", p, want)
	}
}

func TestGetUnknownProductIs404JSON(t *testing.T) {
	srv := newServer(t)
	var e struct{ Error string }
	if code := get(t, srv.URL+"/catalog/unicorn", &e); code != http.StatusNotFound {
		t.Fatalf("status %d, want 404", code)
	}
	if e.Error != "no product unicorn" {
		t.Errorf("error %q, want %q", e.Error, "no product unicorn")
	}
}

func TestWrongMethodIsRejected(t *testing.T) {
	srv := newServer(t)
	resp, err := http.Post(srv.URL+"/catalog", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /catalog: status %d, want 405", resp.StatusCode)
	}
}

func TestProductsAreCopies(t *testing.T) {
	s := catalog.New()
	ps, _ := s.Products(t.Context())
	ps[0].PriceCents = 1
	again, _ := s.Products(t.Context())
	if again[0].PriceCents == 1 {
		t.Error("changing a returned product changed the catalog")
	}
}

func TestClient(t *testing.T) {
	srv := newServer(t)
	c := catalog.NewClient(srv.URL+"/", srv.Client())

	products, err := c.Products(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := catalog.New().Products(t.Context())
	if len(products) != len(want) || products[0] != want[0] {
		t.Errorf("Products over HTTP = %+v, want %+v", products, want)
	}

	p, err := c.Product(t.Context(), "desk-lamp")
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "desk-lamp" || p.PriceCents != 3900 {
		t.Errorf("Product(desk-lamp) = %+v", p)
	}

	if _, err := c.Product(t.Context(), "unicorn"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("Product(unicorn) error = %v, want ErrNotFound", err)
	}
}

func TestClientReportsUnreachableCatalog(t *testing.T) {
	srv := newServer(t)
	srv.Close()
	c := catalog.NewClient(srv.URL, srv.Client())
	_, err := c.Products(t.Context())
	if err == nil {
		t.Fatal("Products from a closed server: no error")
	}
	if errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("unreachable catalog reported as not found: %v", err)
	}
}

package deals_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/sample-services/catalog"
	"github.com/flotilla/flotilla/sample-services/deals"
)

// fakeCatalog returns fixed products, or err.
type fakeCatalog struct {
	products []catalog.Product
	err      error
}

func (f fakeCatalog) Products(context.Context) ([]catalog.Product, error) {
	return f.products, f.err
}

func serve(t *testing.T, cat deals.Catalog) *httptest.ResponseRecorder {
	t.Helper()
	mux := http.NewServeMux()
	deals.New(cat).Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/deals", nil))
	return rec
}

func TestListDeals(t *testing.T) {
	cat := fakeCatalog{products: []catalog.Product{
		{ID: "desk-lamp", Name: "Desk lamp", PriceCents: 3900},
		{ID: "tea-mug", Name: "Tea mug", PriceCents: 1200}, // no discount
		{ID: "wool-socks", Name: "Wool socks", PriceCents: 900},
	}}
	rec := serve(t, cat)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", rec.Code, rec.Body)
	}
	var got []deals.Deal
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := []deals.Deal{
		{Product: cat.products[0], PercentOff: 25, PriceCents: 2925},
		{Product: cat.products[2], PercentOff: 20, PriceCents: 720},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("deal %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestDealsOfTheRealCatalog(t *testing.T) {
	ds, err := deals.New(catalog.New()).Deals(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) == 0 {
		t.Fatal("the seeded catalog has no deals")
	}
	for _, d := range ds {
		if d.PriceCents >= d.Product.PriceCents || d.PriceCents <= 0 {
			t.Errorf("deal %+v is not a discount", d)
		}
	}
}

func TestNoProductsIsEmptyList(t *testing.T) {
	rec := serve(t, fakeCatalog{})
	if rec.Code != http.StatusOK || rec.Body.String() != "[]\n" {
		t.Errorf("got %d %q, want 200 []", rec.Code, rec.Body)
	}
}

func TestCatalogFailureIs502(t *testing.T) {
	rec := serve(t, fakeCatalog{err: errors.New("catalog: connection refused")})
	if rec.Code != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", rec.Code)
	}
	var e struct{ Error string }
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error != "catalog: connection refused" {
		t.Errorf("body %q, want the catalog's error as JSON", rec.Body)
	}
}

func TestV1IsTheBareList(t *testing.T) {
	for _, v := range []string{"", "v1"} {
		mux := http.NewServeMux()
		deals.NewVersion(catalog.New(), v).Register(mux)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/deals", nil))
		old := serve(t, catalog.New())
		if rec.Body.String() != old.Body.String() {
			t.Errorf("version %q: body %s, want v1's %s", v, rec.Body, old.Body)
		}
	}
}

func TestV2NamesItselfAndAddsDeals(t *testing.T) {
	mux := http.NewServeMux()
	deals.NewVersion(catalog.New(), "v2").Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/deals", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var page deals.Page
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatalf("body %s: %v", rec.Body, err)
	}
	if page.Version != "v2" || page.Title != "Deals v2" {
		t.Errorf("version %q, title %q; want v2, Deals v2", page.Version, page.Title)
	}
	v1, err := deals.New(catalog.New()).Deals(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Deals) != len(v1)+2 {
		t.Fatalf("v2 has %d deals, want v1's %d and 2 more: %+v", len(page.Deals), len(v1), page.Deals)
	}
	var added []string
	for _, d := range page.Deals {
		if d.PriceCents >= d.Product.PriceCents || d.Product.Name == "" {
			t.Errorf("deal %+v is not a discounted catalog product", d)
		}
		if d.New {
			added = append(added, d.Product.ID)
		}
	}
	if want := []string{"tea-mug", "water-bottle"}; strings.Join(added, ",") != strings.Join(want, ",") {
		t.Errorf("new deals %v, want %v", added, want)
	}
}

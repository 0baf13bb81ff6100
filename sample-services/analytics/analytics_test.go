package analytics

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/flotilla/flotilla/sample-services/bus/consume"
)

func TestRevenue(t *testing.T) {
	s := New()
	for _, o := range []string{
		`{"orderId":"o-1","totalCents":1100,"items":[{"productId":"tea-mug","quantity":2,"priceCents":300},{"productId":"kettle","quantity":1,"priceCents":500}]}`,
		`{"orderId":"o-2","totalCents":300,"items":[{"productId":"tea-mug","quantity":1,"priceCents":300}]}`,
	} {
		apply, err := s.Handle(context.Background(), consume.Event{ID: "x", Data: []byte(o)})
		if err != nil {
			t.Fatal(err)
		}
		apply()
	}
	mux := http.NewServeMux()
	s.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/revenue", nil))
	var r Revenue
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Orders != 2 || r.Cents != 1400 || r.Products["tea-mug"] != (Product{Orders: 2, Units: 3, Cents: 900}) || r.Products["kettle"] != (Product{Orders: 1, Units: 1, Cents: 500}) {
		t.Errorf("GET /revenue = %s", rec.Body)
	}
}

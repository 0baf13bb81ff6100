package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/flotilla/flotilla/sample-services/bus/consume"
)

func TestReservations(t *testing.T) {
	s := New()
	orders := []string{
		`{"orderId":"o-1","items":[{"productId":"tea-mug","quantity":600,"priceCents":5},{"productId":"kettle","quantity":1,"priceCents":50}]}`,
		`{"orderId":"o-2","items":[{"productId":"tea-mug","quantity":500,"priceCents":5}]}`,
	}
	for _, o := range orders {
		apply, err := s.Handle(context.Background(), consume.Event{ID: "x", Data: []byte(o)})
		if err != nil {
			t.Fatal(err)
		}
		apply()
	}
	mux := http.NewServeMux()
	s.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/stock", nil))
	var st Stock
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Orders != 2 || st.Products["tea-mug"] != (Level{Reserved: 1100, Available: 0, Backordered: 100}) || st.Products["kettle"] != (Level{Reserved: 1, Available: Initial - 1}) {
		t.Errorf("GET /stock = %s", rec.Body)
	}
	if _, err := s.Handle(context.Background(), consume.Event{ID: "x", Data: []byte(`{"orderId":"o","items":[{"productId":"a","quantity":0}]}`)}); !errors.Is(err, consume.ErrBadEvent) {
		t.Errorf("a quantity of 0: %v", err)
	}
}

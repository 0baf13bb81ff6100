package notifications

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/sample-services/bus/consume"
)

func event(id string) consume.Event {
	return consume.Event{ID: id, Data: []byte(`{"orderId":"` + id + `","shopper":"bob","items":[{"productId":"tea-mug","quantity":2,"priceCents":500}],"totalCents":1000}`)}
}

func TestNotices(t *testing.T) {
	s := New()
	for i := range Keep + 5 {
		apply, err := s.Handle(context.Background(), event(fmt.Sprintf("o-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && s.Sent().Count != 0 {
			t.Fatal("a notice was recorded before it was applied")
		}
		apply()
	}
	mux := http.NewServeMux()
	s.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/sent", nil))
	var got Sent
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Count != Keep+5 || len(got.Latest) != Keep || got.Latest[Keep-1].OrderID != fmt.Sprintf("o-%d", Keep+4) ||
		got.Latest[0].Message != "would e-mail shopper bob about order o-5 (1 items, 1000 cents)" {
		t.Errorf("GET /sent = count %d, %d latest, first %+v", got.Count, len(got.Latest), got.Latest[0])
	}
	if _, err := s.Handle(context.Background(), consume.Event{ID: "x", Data: []byte(`{"orderId":"x"}`)}); !errors.Is(err, consume.ErrBadEvent) || !strings.Contains(err.Error(), "items") {
		t.Errorf("an order without items: %v", err)
	}
}

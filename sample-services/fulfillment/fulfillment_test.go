package fulfillment

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/flotilla/flotilla/sample-services/bus/consume"
)

func TestShipping(t *testing.T) {
	s := New(50 * time.Millisecond)
	job := consume.Event{ID: "o-1", Data: []byte(`{"orderId":"o-1","items":[{"productId":"tea-mug","quantity":2,"priceCents":300},{"productId":"kettle","quantity":1,"priceCents":500}]}`)}
	start := time.Now()
	apply, err := s.Handle(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("shipping took %s, want the 50ms it takes", took)
	}
	if s.Done().Count != 0 {
		t.Error("done before it was applied")
	}
	apply()
	mux := http.NewServeMux()
	s.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/done", nil))
	var d Done
	if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if d.Count != 1 || len(d.Latest) != 1 || d.Latest[0].OrderID != "o-1" || d.Latest[0].Units != 3 {
		t.Errorf("GET /done = %s", rec.Body)
	}

	// A worker stopped mid-job gives it up, undone.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := New(time.Second).Handle(ctx, job); err == nil {
		t.Error("a job cut short was shipped")
	}
}

package receipt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/sample-services/bus/consume"
)

func order(id string) string {
	return `{"orderId":"` + id + `","shopper":"bob","items":[{"productId":"tea-mug","quantity":2,"priceCents":1200},{"productId":"notebook","quantity":1,"priceCents":650}],"totalCents":3050,"placedAt":"2026-01-01T10:00:00Z"}`
}

func TestRender(t *testing.T) {
	o, err := consume.DecodeOrder(consume.Event{Data: []byte(order("o-1"))})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 10, 0, 1, 0, time.UTC)
	r := Render(o, "receipt-1", at)
	want := "Receipt for order o-1\nShopper: bob\n" +
		"  2 x tea-mug               12.00      24.00\n" +
		"  1 x notebook               6.50       6.50\n" +
		"Total                                   30.50\n"
	if r.Text != want {
		t.Errorf("text =\n%s\nwant\n%s", r.Text, want)
	}
	if len(r.Lines) != 2 || r.Lines[0].AmountCents != 2400 || r.TotalCents != 3050 || r.Replica != "receipt-1" || !r.RenderedAt.Equal(at) || r.PlacedAt.IsZero() {
		t.Errorf("receipt = %+v", r)
	}
	if money(-5) != "-0.05" || money(100) != "1.00" {
		t.Errorf("money: %s %s", money(-5), money(100))
	}
}

func TestKeepsTheLatest(t *testing.T) {
	s := New("receipt-1")
	for i := range Keep + 5 {
		apply, err := s.Handle(context.Background(), consume.Event{ID: "x", Data: []byte(order(fmt.Sprintf("o-%d", i)))})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && s.List().Count != 0 {
			t.Fatal("a receipt was kept before it was applied")
		}
		apply()
	}
	mux := http.NewServeMux()
	s.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/receipts", nil))
	var got List
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Count != Keep+5 || len(got.Latest) != Keep || got.Latest[0].OrderID != "o-5" || got.Latest[Keep-1].OrderID != fmt.Sprintf("o-%d", Keep+4) {
		t.Errorf("GET /receipts = count %d, %d latest, first %q", got.Count, len(got.Latest), got.Latest[0].OrderID)
	}
	if _, ok := s.Find("o-4"); ok {
		t.Error("o-4, dropped from the latest, is found")
	}
	if _, err := s.Handle(context.Background(), consume.Event{ID: "x", Data: []byte(`{"orderId":"x"}`)}); !errors.Is(err, consume.ErrBadEvent) {
		t.Errorf("an order without items: %v", err)
	}
}

// TestPostReceipt is the trigger http: POST /receipt renders once per
// order and answers the receipt; GET /stats counts what came.
func TestPostReceipt(t *testing.T) {
	s := New("receipt-1")
	poison := false
	p := consume.NewProcessor("receipt", "receipt-1", consume.NewMemory(), s.Handle,
		consume.Faults{Poisoned: func(consume.Event) bool { return poison }})
	svc := &consume.Service{Name: "receipt", Stream: "ORDERS", Subject: "orders.placed", Processor: p, StatsBody: s.Stats}
	mux := http.NewServeMux()
	s.Register(mux)
	svc.Register(mux)
	s.RegisterHTTP(mux, p)
	post := func(body string) (int, Receipt, string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("POST", "/receipt", strings.NewReader(body)))
		var r Receipt
		json.Unmarshal(rec.Body.Bytes(), &r)
		return rec.Code, r, rec.Body.String()
	}

	code, first, body := post(order("o-1"))
	if code != 201 || first.OrderID != "o-1" || !strings.Contains(first.Text, "Receipt for order o-1") {
		t.Fatalf("POST /receipt = %d %s", code, body)
	}
	code, again, body := post(order("o-1"))
	if code != 200 || again.Text != first.Text || !again.RenderedAt.Equal(first.RenderedAt) {
		t.Errorf("the repeat = %d %s, want 200 and the first receipt", code, body)
	}
	for _, bad := range []string{`{"orderId":"o-2"}`, `not json`, `{"orderId":"","items":[{"productId":"a","quantity":1}]}`} {
		if code, _, body := post(bad); code != 400 || !strings.Contains(body, "bad event") {
			t.Errorf("POST /receipt %s = %d %s, want 400", bad, code, body)
		}
	}
	poison = true
	if code, _, body := post(order("o-3")); code != 503 || !strings.Contains(body, "poisoned") {
		t.Errorf("poisoned: %d %s, want 503", code, body)
	}

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/stats", nil))
	var st Stats
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	// The bad bodies never reached the processor: 3 came, 1 rendered, 1
	// repeat, 1 failed.
	if st.Received != 3 || st.Rendered != 1 || st.Duplicates != 1 || st.Applied != 1 || st.Failed != 1 || st.Service != "receipt" || st.Consumer.Durable != "receipt" {
		t.Errorf("GET /stats = %s", rec.Body.String())
	}
}

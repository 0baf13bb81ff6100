// Package receipt is the shop's function the bus wakes: for each placed
// order it renders a receipt, a few lines of text a shopper could be sent,
// and keeps the latest in memory. It holds nothing that must outlive a
// replica, so the controller may stop every replica while no order waits
// and start one when orders.placed has some for its consumer.
//
// Its events come through package consume: from its durable consumer on
// the bus (trigger bus), each acknowledged only once its receipt is
// rendered, so a replica stopped mid-queue loses nothing; or over HTTP
// (trigger http), where POST /receipt takes an order and answers its
// receipt. Both are idempotent on the order's ID.
//
// It serves GET /receipts: the number this replica rendered and the
// latest Keep of them.
package receipt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/bus/consume"
	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
)

// Keep is how many of the latest receipts GET /receipts lists.
const Keep = 100

// Receipt is one rendered receipt.
type Receipt struct {
	OrderID    string    `json:"orderId"`
	Shopper    string    `json:"shopper"`
	Lines      []Line    `json:"lines"`
	TotalCents int64     `json:"totalCents"`
	PlacedAt   time.Time `json:"placedAt"`
	RenderedAt time.Time `json:"renderedAt"`
	// Replica names the replica that rendered it.
	Replica string `json:"replica"`
	// Text is the receipt as the shopper would read it.
	Text string `json:"text"`
}

// Line is one line of a receipt.
type Line struct {
	ProductID   string `json:"productId"`
	Quantity    int    `json:"quantity"`
	PriceCents  int64  `json:"priceCents"`
	AmountCents int64  `json:"amountCents"`
}

// Render makes the receipt of o, rendered by replica at at.
func Render(o consume.Order, replica string, at time.Time) Receipt {
	r := Receipt{OrderID: o.OrderID, Shopper: o.Shopper, TotalCents: o.TotalCents, PlacedAt: o.PlacedAt, RenderedAt: at, Replica: replica}
	var b strings.Builder
	fmt.Fprintf(&b, "Receipt for order %s\nShopper: %s\n", o.OrderID, o.Shopper)
	for _, it := range o.Items {
		l := Line{ProductID: it.ProductID, Quantity: it.Quantity, PriceCents: it.PriceCents, AmountCents: int64(it.Quantity) * it.PriceCents}
		r.Lines = append(r.Lines, l)
		fmt.Fprintf(&b, "%3d x %-16s %10s %10s\n", l.Quantity, l.ProductID, money(l.PriceCents), money(l.AmountCents))
	}
	fmt.Fprintf(&b, "Total %39s\n", money(o.TotalCents))
	r.Text = b.String()
	return r
}

// money writes cents as units and hundredths: 1250 is "12.50".
func money(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}

// List is the body of GET /receipts.
type List struct {
	Count  int       `json:"count"`
	Latest []Receipt `json:"latest"`
}

// Stats is the body of its GET /stats: the subscriber's figures and the
// function's own.
type Stats struct {
	consume.Stats
	// Received counts the orders that reached this replica, repeats and
	// failed attempts included; Rendered the receipts it rendered.
	// Duplicates (of consume.Stats) are the repeats it recognised and
	// did not render again.
	Received uint64 `json:"received"`
	Rendered uint64 `json:"rendered"`
}

// Service renders receipts and keeps the latest in memory.
type Service struct {
	replica string
	now     func() time.Time

	mu       sync.Mutex
	rendered uint64
	latest   []Receipt // the last Keep, oldest first
}

// New returns the function of replica, which has rendered nothing.
func New(replica string) *Service { return &Service{replica: replica, now: time.Now} }

// Handle is the consume.Handler of orders.placed: it renders the order's
// receipt, which is kept once the order is recorded as applied.
func (s *Service) Handle(_ context.Context, ev consume.Event) (func(), error) {
	o, err := consume.DecodeOrder(ev)
	if err != nil {
		return nil, err
	}
	r := Render(o, s.replica, s.now().UTC())
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.rendered++
		s.latest = append(s.latest, r)
		if len(s.latest) > Keep {
			s.latest = append(s.latest[:0:0], s.latest[len(s.latest)-Keep:]...)
		}
	}, nil
}

// Find returns the receipt of order id, if it is among the latest.
func (s *Service) Find(id string) (Receipt, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.latest) - 1; i >= 0; i-- {
		if s.latest[i].OrderID == id {
			return s.latest[i], true
		}
	}
	return Receipt{}, false
}

// List returns what this replica rendered.
func (s *Service) List() List {
	s.mu.Lock()
	defer s.mu.Unlock()
	return List{Count: int(s.rendered), Latest: append([]Receipt{}, s.latest...)}
}

// Stats adds the function's figures to the subscriber's: the body of GET
// /stats (consume.Service.StatsBody).
func (s *Service) Stats(st consume.Stats) any {
	s.mu.Lock()
	rendered := s.rendered
	s.mu.Unlock()
	return Stats{Stats: st, Received: st.Applied + st.Duplicates + st.Failed, Rendered: rendered}
}

// Register mounts GET /receipts.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /receipts", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, s.List())
	})
}

// RegisterHTTP mounts POST /receipt, the trigger http: the body is an order
// as checkout publishes it, processed by p like a message of
// orders.placed, keyed on its orderId. It answers 201 with the receipt it
// rendered, 200 with the same receipt for an order it rendered before, 400
// for an order that can never be rendered, 503 when processing failed.
func (s *Service) RegisterHTTP(mux *http.ServeMux, p *consume.Processor) {
	mux.HandleFunc("POST /receipt", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpjson.MaxBodyBytes))
		if err != nil {
			httpjson.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the order is over %d bytes", httpjson.MaxBodyBytes))
			return
		}
		ev := consume.Event{Subject: access.SubjectOrderPlaced, Data: body}
		o, err := consume.DecodeOrder(ev)
		if err != nil {
			httpjson.Error(w, http.StatusBadRequest, err.Error())
			return
		}
		ev.ID = o.OrderID
		out, err := p.Process(r.Context(), ev)
		switch {
		case errors.Is(err, consume.ErrBadEvent):
			httpjson.Error(w, http.StatusBadRequest, err.Error())
			return
		case err != nil:
			httpjson.Error(w, http.StatusServiceUnavailable, "receipt failed the order: "+err.Error())
			return
		}
		status := http.StatusCreated
		if out == consume.Duplicate {
			status = http.StatusOK
		}
		rec, ok := s.Find(o.OrderID)
		if !ok {
			// Rendered long ago, or by another replica: render it again
			// to answer, without keeping it twice.
			rec = Render(o, s.replica, s.now().UTC())
		}
		httpjson.Write(w, status, rec)
	})
}

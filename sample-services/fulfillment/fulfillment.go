// Package fulfillment is the shop's worker that ships orders: it takes jobs
// from the FULFILLMENT work queue, one at a time, and each takes a while
// (ShipTime). A worker killed mid-job never acknowledges it, so the bus
// gives the job to another worker after the consumer's ack wait; a job is
// marked done only once it is recorded as applied, so none is done twice.
//
// It serves GET /done: the jobs this replica shipped. Jobs reach it through
// package consume.
package fulfillment

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/flotilla/flotilla/sample-services/bus/consume"
	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
)

// ShipTime is how long shipping one order takes.
const ShipTime = 200 * time.Millisecond

// Keep is how many of the latest shipments GET /done lists.
const Keep = 100

// Shipment is one job done.
type Shipment struct {
	OrderID string    `json:"orderId"`
	Units   int       `json:"units"`
	At      time.Time `json:"at"`
}

// Done is the body of GET /done.
type Done struct {
	Count  int        `json:"count"`
	Latest []Shipment `json:"latest"`
}

// Service ships orders.
type Service struct {
	ship time.Duration

	mu     sync.Mutex
	count  int
	latest []Shipment
}

// New returns a worker whose every job takes ship (ShipTime if zero).
func New(ship time.Duration) *Service {
	if ship == 0 {
		ship = ShipTime
	}
	return &Service{ship: ship}
}

// Handle is the consume.Handler of orders.fulfill: it ships, which takes
// its time, and is done once applied.
func (s *Service) Handle(ctx context.Context, ev consume.Event) (func(), error) {
	j, err := consume.DecodeJob(ev)
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(s.ship)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	units := 0
	for _, it := range j.Items {
		units += it.Quantity
	}
	sh := Shipment{OrderID: j.OrderID, Units: units, At: time.Now().UTC()}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.count++
		s.latest = append(s.latest, sh)
		if len(s.latest) > Keep {
			s.latest = append(s.latest[:0:0], s.latest[len(s.latest)-Keep:]...)
		}
	}, nil
}

// Done returns what this replica shipped.
func (s *Service) Done() Done {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Done{Count: s.count, Latest: append([]Shipment{}, s.latest...)}
}

// Register mounts GET /done.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /done", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, s.Done())
	})
}

// Package inventory is the shop's subscriber that reserves stock for each
// order. Every product starts with Initial units; an order reserves its
// quantities. Stock never refuses an order (a placed order is a fact): a
// product reserved past its stock shows as backordered.
//
// It serves GET /stock: this replica's reservations per product. Events
// reach it through package consume.
package inventory

import (
	"context"
	"net/http"
	"sync"

	"github.com/flotilla/flotilla/sample-services/bus/consume"
	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
)

// Initial is every product's stock before any reservation.
const Initial = 1000

// Level is one product's stock.
type Level struct {
	Reserved    int `json:"reserved"`
	Available   int `json:"available"`
	Backordered int `json:"backordered,omitempty"`
}

// Stock is the body of GET /stock.
type Stock struct {
	Orders   int              `json:"orders"`
	Products map[string]Level `json:"products"`
}

// Service keeps reservations in memory.
type Service struct {
	mu       sync.Mutex
	orders   int
	reserved map[string]int
}

// New returns a service with nothing reserved.
func New() *Service { return &Service{reserved: map[string]int{}} }

// Handle is the consume.Handler of orders.placed.
func (s *Service) Handle(_ context.Context, ev consume.Event) (func(), error) {
	o, err := consume.DecodeOrder(ev)
	if err != nil {
		return nil, err
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.orders++
		for _, it := range o.Items {
			s.reserved[it.ProductID] += it.Quantity
		}
	}, nil
}

// Stock returns this replica's reservations.
func (s *Service) Stock() Stock {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stock{Orders: s.orders, Products: map[string]Level{}}
	for p, n := range s.reserved {
		st.Products[p] = Level{Reserved: n, Available: max(Initial-n, 0), Backordered: max(n-Initial, 0)}
	}
	return st
}

// Register mounts GET /stock.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /stock", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, s.Stock())
	})
}

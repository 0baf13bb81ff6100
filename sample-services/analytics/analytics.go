// Package analytics is the shop's subscriber that counts revenue: orders,
// units and cents in total and per product.
//
// It serves GET /revenue: this replica's figures. Events reach it through
// package consume.
package analytics

import (
	"context"
	"net/http"
	"sync"

	"github.com/flotilla/flotilla/sample-services/bus/consume"
	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
)

// Product is one product's figures.
type Product struct {
	Orders int   `json:"orders"`
	Units  int   `json:"units"`
	Cents  int64 `json:"cents"`
}

// Revenue is the body of GET /revenue.
type Revenue struct {
	Orders   int                `json:"orders"`
	Cents    int64              `json:"cents"`
	Products map[string]Product `json:"products"`
}

// Service keeps its figures in memory.
type Service struct {
	mu  sync.Mutex
	rev Revenue
}

// New returns a service that has counted nothing.
func New() *Service { return &Service{rev: Revenue{Products: map[string]Product{}}} }

// Handle is the consume.Handler of orders.placed.
func (s *Service) Handle(_ context.Context, ev consume.Event) (func(), error) {
	o, err := consume.DecodeOrder(ev)
	if err != nil {
		return nil, err
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.rev.Orders++
		s.rev.Cents += o.TotalCents
		for _, it := range o.Items {
			p := s.rev.Products[it.ProductID]
			p.Orders++
			p.Units += it.Quantity
			p.Cents += int64(it.Quantity) * it.PriceCents
			s.rev.Products[it.ProductID] = p
		}
	}, nil
}

// Revenue returns this replica's figures.
func (s *Service) Revenue() Revenue {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.rev
	out.Products = make(map[string]Product, len(s.rev.Products))
	for k, v := range s.rev.Products {
		out.Products[k] = v
	}
	return out
}

// Register mounts GET /revenue.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /revenue", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, s.Revenue())
	})
}

// Package deals is the shop's offers page: some catalog products at a
// discount. It owns only the discounts; names and prices come from the
// catalog, which it reaches through the Catalog interface.
package deals

import (
	"context"
	"net/http"

	"github.com/flotilla/flotilla/sample-services/catalog"
	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
)

// Catalog is what deals needs from the catalog.
type Catalog interface {
	// Products returns every product for sale, in catalog order.
	Products(ctx context.Context) ([]catalog.Product, error)
}

// Deal is a product with its discounted price.
type Deal struct {
	Product    catalog.Product `json:"product"`
	PercentOff int64           `json:"percentOff"`
	PriceCents int64           `json:"priceCents"` // after the discount
}

// discounts is percent off by product id. Products not in the catalog are
// skipped, so the two can change independently.
var discounts = map[string]int64{
	"wool-socks": 20,
	"notebook":   10,
	"desk-lamp":  25,
}

// Service lists deals. It needs no lock: its discounts never change.
type Service struct {
	catalog Catalog
}

// New returns the deals of the products in cat.
func New(cat Catalog) *Service {
	return &Service{catalog: cat}
}

// Deals returns the current deals, in catalog order.
func (s *Service) Deals(ctx context.Context) ([]Deal, error) {
	products, err := s.catalog.Products(ctx)
	if err != nil {
		return nil, err
	}
	deals := []Deal{}
	for _, p := range products {
		off, ok := discounts[p.ID]
		if !ok {
			continue
		}
		deals = append(deals, Deal{
			Product:    p,
			PercentOff: off,
			PriceCents: p.PriceCents * (100 - off) / 100,
		})
	}
	return deals, nil
}

// Register mounts the deals' route on mux:
//
//	GET /deals  every deal
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /deals", s.handleList)
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	deals, err := s.Deals(r.Context())
	if err != nil {
		httpjson.Error(w, http.StatusBadGateway, err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, deals)
}

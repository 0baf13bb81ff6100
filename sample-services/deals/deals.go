// Package deals is the shop's offers page: some catalog products at a
// discount. It owns only the discounts; names and prices come from the
// catalog, which it reaches through the Catalog interface.
//
// From v2 on (package version), the page names the release that made it and
// offers more deals, so a learner watching a rollout sees which version
// answered.
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
	// New marks a deal that the version brought, absent from v1.
	New bool `json:"new,omitempty"`
}

// Page is the body of GET /deals from v2 on: the deals under a title that
// names the version. v1 answers the bare list, as it always has.
type Page struct {
	Version string `json:"version"`
	Title   string `json:"title"` // "Deals v2"
	Deals   []Deal `json:"deals"`
}

// discounts is percent off by product id. Products not in the catalog are
// skipped, so the two can change independently.
var discounts = map[string]int64{
	"wool-socks": 20,
	"notebook":   10,
	"desk-lamp":  25,
}

// newDiscounts are the deals v2 and later add to discounts.
var newDiscounts = map[string]int64{
	"tea-mug":      15,
	"water-bottle": 30,
}

// Service lists deals. It needs no lock: its discounts never change.
type Service struct {
	catalog Catalog
	version string // "" for v1
}

// New returns the deals of the products in cat, as v1 offers them.
func New(cat Catalog) *Service {
	return &Service{catalog: cat}
}

// NewVersion returns the deals of the products in cat as version v offers
// them: v1 (or "") as New, later versions with more deals and a Page.
func NewVersion(cat Catalog, v string) *Service {
	if v == "v1" {
		v = ""
	}
	return &Service{catalog: cat, version: v}
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
		isNew := false
		if !ok && s.version != "" {
			off, ok = newDiscounts[p.ID]
			isNew = ok
		}
		if !ok {
			continue
		}
		deals = append(deals, Deal{
			Product:    p,
			PercentOff: off,
			PriceCents: p.PriceCents * (100 - off) / 100,
			New:        isNew,
		})
	}
	return deals, nil
}

// Register mounts the deals' route on mux:
//
//	GET /deals  every deal: a list in v1, a Page from v2 on
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /deals", s.handleList)
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	deals, err := s.Deals(r.Context())
	if err != nil {
		httpjson.Error(w, http.StatusBadGateway, err.Error())
		return
	}
	if s.version != "" {
		httpjson.Write(w, http.StatusOK, Page{Version: s.version, Title: "Deals " + s.version, Deals: deals})
		return
	}
	httpjson.Write(w, http.StatusOK, deals)
}

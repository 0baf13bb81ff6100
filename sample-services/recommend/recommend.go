// Package recommend is the shop's HTTP function: given a product, it
// suggests others a shopper may like. It keeps no state and calls nothing
// over the network (it reads the catalog built into the binary), so a new
// replica answers as soon as it listens: what a cold start measures is the
// platform's work, not the function's.
package recommend

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/flotilla/flotilla/sample-services/catalog"
	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
)

// Count is how many products a recommendation lists.
const Count = 3

// Catalog is what it reads of the catalog: met by *catalog.Service.
type Catalog interface {
	Products(ctx context.Context) ([]catalog.Product, error)
}

// Reply is the body of GET /recommend.
type Reply struct {
	Product         catalog.Product   `json:"product"`
	Recommendations []catalog.Product `json:"recommendations"`
	// Replica names the replica that answered, so a learner sees a
	// function scale out.
	Replica string `json:"replica"`
}

// Service recommends from a catalog.
type Service struct {
	cat     Catalog
	replica string
}

// New returns the function of replica over cat.
func New(cat Catalog, replica string) *Service {
	return &Service{cat: cat, replica: replica}
}

// Recommend returns the product id and the Count other products closest to
// it in price, the cheaper first on a tie; catalog.ErrNotFound if there is
// no such product.
func (s *Service) Recommend(ctx context.Context, id string) (Reply, error) {
	all, err := s.cat.Products(ctx)
	if err != nil {
		return Reply{}, err
	}
	i := slices.IndexFunc(all, func(p catalog.Product) bool { return p.ID == id })
	if i < 0 {
		return Reply{}, catalog.ErrNotFound
	}
	p := all[i]
	others := slices.Delete(slices.Clone(all), i, i+1)
	slices.SortStableFunc(others, func(a, b catalog.Product) int {
		return cmp.Or(cmp.Compare(distance(a, p), distance(b, p)), cmp.Compare(a.PriceCents, b.PriceCents), cmp.Compare(a.ID, b.ID))
	})
	return Reply{Product: p, Recommendations: others[:min(Count, len(others))], Replica: s.replica}, nil
}

func distance(a, b catalog.Product) int64 {
	if d := a.PriceCents - b.PriceCents; d > 0 {
		return d
	}
	return b.PriceCents - a.PriceCents
}

// Register mounts the function's routes on mux:
//
//	GET /recommend?product=ID  recommendations for product ID
//	GET /recommend/{id}        the same
//
// An unknown product is 404, a missing one 400, both {"error": "..."}.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /recommend", func(w http.ResponseWriter, r *http.Request) {
		s.answer(w, r, r.URL.Query().Get("product"))
	})
	mux.HandleFunc("GET /recommend/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.answer(w, r, r.PathValue("id"))
	})
}

func (s *Service) answer(w http.ResponseWriter, r *http.Request, id string) {
	if id == "" {
		httpjson.Error(w, http.StatusBadRequest, "which product? ask GET /recommend?product=ID or GET /recommend/ID")
		return
	}
	rep, err := s.Recommend(r.Context(), id)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, "no product "+id)
	case err != nil:
		httpjson.Error(w, http.StatusBadGateway, "read the catalog: "+err.Error())
	default:
		httpjson.Write(w, http.StatusOK, rep)
	}
}

// Package catalog is the shop's product list: what can be bought and at what
// price. Other features read it through their own small interfaces, met
// either by *Service in the same process or by *Client over HTTP.
package catalog

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
)

// ErrNotFound means no product has the asked id.
var ErrNotFound = errors.New("product not found")

// Product is one thing for sale.
type Product struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"priceCents"`
}

// seed is the shop's stock. It is the same in every replica, so any replica
// of the catalog can answer for any other.
var seed = []Product{
	{ID: "tea-mug", Name: "Tea mug", PriceCents: 1200},
	{ID: "canvas-bag", Name: "Canvas bag", PriceCents: 1500},
	{ID: "wool-socks", Name: "Wool socks", PriceCents: 900},
	{ID: "notebook", Name: "Dotted notebook", PriceCents: 650},
	{ID: "water-bottle", Name: "Water bottle", PriceCents: 1800},
	{ID: "desk-lamp", Name: "Desk lamp", PriceCents: 3900},
}

// Service holds the products. It needs no lock: the products never change
// after New, and readers only get copies.
type Service struct {
	products []Product
}

// New returns a catalog stocked with the shop's products.
func New() *Service {
	return &Service{products: slices.Clone(seed)}
}

// Products returns every product, in catalog order.
func (s *Service) Products(ctx context.Context) ([]Product, error) {
	return slices.Clone(s.products), nil
}

// Product returns the product with id, or ErrNotFound.
func (s *Service) Product(ctx context.Context, id string) (Product, error) {
	i := slices.IndexFunc(s.products, func(p Product) bool { return p.ID == id })
	if i < 0 {
		return Product{}, ErrNotFound
	}
	return s.products[i], nil
}

// Register mounts the catalog's routes on mux:
//
//	GET /catalog       every product
//	GET /catalog/{id}  one product, or 404
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /catalog", s.handleList)
	mux.HandleFunc("GET /catalog/{id}", s.handleGet)
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	products, _ := s.Products(r.Context()) // never fails in process
	httpjson.Write(w, http.StatusOK, products)
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p, err := s.Product(r.Context(), id)
	if err != nil {
		httpjson.Error(w, http.StatusNotFound, "no product "+id)
		return
	}
	httpjson.Write(w, http.StatusOK, p)
}

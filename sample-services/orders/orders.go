// Package orders keeps the orders the shop has taken. Checkout creates them;
// shoppers list and read them. Orders live in memory, so each replica of the
// orders service has its own, and only the most recent are kept.
package orders

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
	"github.com/flotilla/flotilla/sample-services/shopper"
)

// maxKept bounds memory: load generators place orders without end.
const maxKept = 1000

var (
	// ErrNotFound means no order has the asked id.
	ErrNotFound = errors.New("order not found")
	// ErrInvalid means an order that cannot be placed.
	ErrInvalid = errors.New("invalid order")
)

// Item is one line of an order, priced when the order was placed.
type Item struct {
	ProductID  string `json:"productId"`
	Name       string `json:"name"`
	PriceCents int64  `json:"priceCents"`
	Quantity   int    `json:"quantity"`
}

// Order is a placed order. It never changes once created.
type Order struct {
	ID         string    `json:"id"`
	Shopper    string    `json:"shopper"`
	Items      []Item    `json:"items"`
	TotalCents int64     `json:"totalCents"`
	PlacedAt   time.Time `json:"placedAt"`
}

// Service holds the placed orders.
type Service struct {
	mu     sync.Mutex
	orders []Order // oldest first
}

// New returns a service with no orders.
func New() *Service {
	return &Service{}
}

// Create places an order of items for the shopper and returns it. It returns
// an error wrapping ErrInvalid if there are no items or an item is malformed.
func (s *Service) Create(ctx context.Context, who string, items []Item) (Order, error) {
	if who == "" {
		return Order{}, fmt.Errorf("%w: no shopper", ErrInvalid)
	}
	if len(items) == 0 {
		return Order{}, fmt.Errorf("%w: no items", ErrInvalid)
	}
	o := Order{ID: newID(), Shopper: who, Items: slices.Clone(items), PlacedAt: time.Now().UTC()}
	for _, it := range items {
		if it.ProductID == "" || it.Quantity < 1 || it.PriceCents < 0 {
			return Order{}, fmt.Errorf("%w: item %+v needs a productId, a quantity of 1 or more and a price of 0 or more", ErrInvalid, it)
		}
		o.TotalCents += it.PriceCents * int64(it.Quantity)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.orders = append(s.orders, o)
	if len(s.orders) > maxKept {
		s.orders = s.orders[len(s.orders)-maxKept:]
	}
	return o, nil
}

// List returns the orders of the shopper, or of every shopper if who is
// empty, oldest first.
func (s *Service) List(ctx context.Context, who string) ([]Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := []Order{}
	for _, o := range s.orders {
		if who == "" || o.Shopper == who {
			list = append(list, o)
		}
	}
	return list, nil
}

// Get returns the order with id, or ErrNotFound.
func (s *Service) Get(ctx context.Context, id string) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.orders, func(o Order) bool { return o.ID == id })
	if i < 0 {
		return Order{}, ErrNotFound
	}
	return s.orders[i], nil
}

// newID returns a random order id. Random rather than counted, so that
// replicas of the orders service never hand out the same id.
func newID() string {
	b := make([]byte, 6)
	rand.Read(b) // never fails
	return "o-" + hex.EncodeToString(b)
}

// Register mounts the orders' routes on mux:
//
//	GET  /orders       the shopper's orders if a shopper is named, else all
//	POST /orders       place {"items": [...]} for the named shopper (checkout does)
//	GET  /orders/{id}  one order, or 404
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /orders", s.handleList)
	mux.HandleFunc("POST /orders", s.handleCreate)
	mux.HandleFunc("GET /orders/{id}", s.handleGet)
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	who, err := shopper.FromRequest(r)
	if err != nil && !errors.Is(err, shopper.ErrMissing) {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	list, _ := s.List(r.Context(), who) // never fails
	httpjson.Write(w, http.StatusOK, list)
}

// createRequest is the body of POST /orders.
type createRequest struct {
	Items []Item `json:"items"`
}

func (s *Service) handleCreate(w http.ResponseWriter, r *http.Request) {
	who, err := shopper.FromRequest(r)
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	var in createRequest
	if err := httpjson.Decode(w, r, &in); err != nil {
		return
	}
	o, err := s.Create(r.Context(), who, in.Items)
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Location", "/orders/"+o.ID)
	httpjson.Write(w, http.StatusCreated, o)
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	o, err := s.Get(r.Context(), id)
	if err != nil {
		httpjson.Error(w, http.StatusNotFound, "no order "+id)
		return
	}
	httpjson.Write(w, http.StatusOK, o)
}

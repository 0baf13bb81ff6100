// Package cart keeps each shopper's cart: which products, how many of each,
// at what price. It checks products against the catalog, which it reaches
// through the Catalog interface.
//
// Carts live in a Store a group chooses (setting store): in memory
// (MemoryStore, the default), so each replica of the cart service has its
// own and a shopper sent to another replica finds another cart; or in the
// bus's key-value bucket carts (KVStore), shared by every replica, so a
// cart is whole whichever replica answers and outlives the one that made it.
package cart

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/flotilla/flotilla/sample-services/catalog"
	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
	"github.com/flotilla/flotilla/sample-services/shopper"
)

// MaxQuantity is the most of one product a cart may hold.
const MaxQuantity = 99

var (
	// ErrQuantity means a quantity outside 1..MaxQuantity.
	ErrQuantity = fmt.Errorf("quantity must be between 1 and %d", MaxQuantity)
	// ErrNotInCart means the product to remove is not in the cart.
	ErrNotInCart = errors.New("product not in cart")
)

// Catalog is what the cart needs from the catalog.
type Catalog interface {
	// Product returns the product with id, or an error wrapping
	// catalog.ErrNotFound if there is none.
	Product(ctx context.Context, id string) (catalog.Product, error)
}

// Item is one line of a cart. Name and price are copied from the catalog
// when the item is added.
type Item struct {
	ProductID  string `json:"productId"`
	Name       string `json:"name"`
	PriceCents int64  `json:"priceCents"`
	Quantity   int    `json:"quantity"`
}

// Cart is one shopper's cart.
type Cart struct {
	Shopper    string `json:"shopper"`
	Items      []Item `json:"items"`
	TotalCents int64  `json:"totalCents"`
}

// Service holds every shopper's cart.
type Service struct {
	catalog Catalog
	store   Store
}

// New returns a service with no carts, kept in memory, checking products
// against cat.
func New(cat Catalog) *Service {
	return NewWithStore(cat, NewMemoryStore())
}

// NewWithStore returns a service keeping carts in st.
func NewWithStore(cat Catalog, st Store) *Service {
	return &Service{catalog: cat, store: st}
}

// Get returns the shopper's cart; a shopper with no cart has an empty one.
func (s *Service) Get(ctx context.Context, shopper string) (Cart, error) {
	items, err := s.store.Items(ctx, shopper)
	if err != nil {
		return Cart{}, err
	}
	return cartOf(shopper, items), nil
}

// Add puts quantity of a product in the shopper's cart, on top of any
// already there, and returns the cart.
func (s *Service) Add(ctx context.Context, shopper, productID string, quantity int) (Cart, error) {
	if quantity < 1 || quantity > MaxQuantity {
		return Cart{}, ErrQuantity
	}
	// Ask the catalog before changing the cart: it may be a slow network call.
	p, err := s.catalog.Product(ctx, productID)
	if err != nil {
		return Cart{}, err
	}
	items, err := s.store.Change(ctx, shopper, func(items []Item) ([]Item, error) {
		i := slices.IndexFunc(items, func(it Item) bool { return it.ProductID == productID })
		if i < 0 {
			items = append(items, Item{ProductID: p.ID})
			i = len(items) - 1
		}
		if items[i].Quantity+quantity > MaxQuantity {
			return nil, ErrQuantity
		}
		items[i].Name, items[i].PriceCents = p.Name, p.PriceCents
		items[i].Quantity += quantity
		return items, nil
	})
	if err != nil {
		return Cart{}, err
	}
	return cartOf(shopper, items), nil
}

// Remove takes a product out of the shopper's cart and returns the cart, or
// ErrNotInCart.
func (s *Service) Remove(ctx context.Context, shopper, productID string) (Cart, error) {
	items, err := s.store.Change(ctx, shopper, func(items []Item) ([]Item, error) {
		i := slices.IndexFunc(items, func(it Item) bool { return it.ProductID == productID })
		if i < 0 {
			return nil, ErrNotInCart
		}
		return slices.Delete(items, i, i+1), nil
	})
	if err != nil {
		return Cart{}, err
	}
	return cartOf(shopper, items), nil
}

// Clear empties the shopper's cart.
func (s *Service) Clear(ctx context.Context, shopper string) error {
	return s.store.Clear(ctx, shopper)
}

// cartOf is the shopper's cart of items.
func cartOf(shopper string, items []Item) Cart {
	c := Cart{Shopper: shopper, Items: items}
	if c.Items == nil {
		c.Items = []Item{} // JSON [] rather than null
	}
	for _, it := range c.Items {
		c.TotalCents += it.PriceCents * int64(it.Quantity)
	}
	return c
}

// Register mounts the cart's routes on mux. Every route needs a shopper
// (see package shopper) and answers with the shopper's cart:
//
//	GET    /cart                   the cart
//	POST   /cart/items             add {"productId": "...", "quantity": n}
//	DELETE /cart/items/{productId} remove a product
//	DELETE /cart                   empty the cart (used by checkout)
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /cart", s.handleGet)
	mux.HandleFunc("POST /cart/items", s.handleAdd)
	mux.HandleFunc("DELETE /cart/items/{productId}", s.handleRemove)
	mux.HandleFunc("DELETE /cart", s.handleClear)
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) {
	who, err := shopper.FromRequest(r)
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	c, err := s.Get(r.Context(), who)
	if err != nil { // the store could not be reached
		httpjson.Error(w, http.StatusBadGateway, err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, c)
}

// addRequest is the body of POST /cart/items.
type addRequest struct {
	ProductID string `json:"productId"`
	Quantity  int    `json:"quantity"`
}

func (s *Service) handleAdd(w http.ResponseWriter, r *http.Request) {
	who, err := shopper.FromRequest(r)
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	var in addRequest
	if err := httpjson.Decode(w, r, &in); err != nil {
		return
	}
	if in.ProductID == "" {
		httpjson.Error(w, http.StatusBadRequest, "productId is required")
		return
	}
	c, err := s.Add(r.Context(), who, in.ProductID, in.Quantity)
	switch {
	case errors.Is(err, ErrQuantity):
		httpjson.Error(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, catalog.ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, "no product "+in.ProductID)
	case err != nil: // the catalog or the store could not be reached
		httpjson.Error(w, http.StatusBadGateway, err.Error())
	default:
		httpjson.Write(w, http.StatusOK, c)
	}
}

func (s *Service) handleRemove(w http.ResponseWriter, r *http.Request) {
	who, err := shopper.FromRequest(r)
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	id := r.PathValue("productId")
	c, err := s.Remove(r.Context(), who, id)
	switch {
	case errors.Is(err, ErrNotInCart):
		httpjson.Error(w, http.StatusNotFound, "no product "+id+" in cart")
		return
	case err != nil:
		httpjson.Error(w, http.StatusBadGateway, err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, c)
}

func (s *Service) handleClear(w http.ResponseWriter, r *http.Request) {
	who, err := shopper.FromRequest(r)
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.Clear(r.Context(), who); err != nil {
		httpjson.Error(w, http.StatusBadGateway, err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, cartOf(who, nil))
}

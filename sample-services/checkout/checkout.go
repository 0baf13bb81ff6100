// Package checkout turns a shopper's cart into an order. It holds no state
// of its own: it reads the cart, places the order and empties the cart,
// through the Cart and Orders interfaces.
//
// The three steps are not one transaction. If emptying the cart fails after
// the order is placed, the order stands and the cart keeps its items; an item
// added between reading and emptying the cart is lost. Across services this
// is the data consistency problem that sagas and outboxes exist to solve.
package checkout

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/flotilla/flotilla/sample-services/cart"
	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
	"github.com/flotilla/flotilla/sample-services/orders"
	"github.com/flotilla/flotilla/sample-services/shopper"
)

// ErrEmptyCart means there is nothing to check out.
var ErrEmptyCart = errors.New("cart is empty")

// Cart is what checkout needs from the cart.
type Cart interface {
	// Get returns the shopper's cart; a shopper with no cart has an empty one.
	Get(ctx context.Context, shopper string) (cart.Cart, error)
	// Clear empties the shopper's cart.
	Clear(ctx context.Context, shopper string) error
}

// Orders is what checkout needs from the orders.
type Orders interface {
	// Create places an order of items for the shopper and returns it.
	Create(ctx context.Context, shopper string, items []orders.Item) (orders.Order, error)
}

// Service checks carts out.
type Service struct {
	cart   Cart
	orders Orders
}

// New returns a checkout that reads carts from c and places orders in o.
func New(c Cart, o Orders) *Service {
	return &Service{cart: c, orders: o}
}

// Checkout places an order of the shopper's cart, empties the cart and
// returns the order. It returns ErrEmptyCart if there is nothing to order.
func (s *Service) Checkout(ctx context.Context, who string) (orders.Order, error) {
	c, err := s.cart.Get(ctx, who)
	if err != nil {
		return orders.Order{}, err
	}
	if len(c.Items) == 0 {
		return orders.Order{}, ErrEmptyCart
	}
	items := make([]orders.Item, len(c.Items))
	for i, it := range c.Items {
		items[i] = orders.Item{ProductID: it.ProductID, Name: it.Name, PriceCents: it.PriceCents, Quantity: it.Quantity}
	}
	o, err := s.orders.Create(ctx, who, items)
	if err != nil {
		return orders.Order{}, err
	}
	if err := s.cart.Clear(ctx, who); err != nil {
		return orders.Order{}, fmt.Errorf("order %s placed, but: %w", o.ID, err)
	}
	return o, nil
}

// Register mounts checkout's route on mux:
//
//	POST /checkout  order the named shopper's cart; answers 201 with the order
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /checkout", s.handleCheckout)
}

func (s *Service) handleCheckout(w http.ResponseWriter, r *http.Request) {
	who, err := shopper.FromRequest(r)
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	o, err := s.Checkout(r.Context(), who)
	switch {
	case errors.Is(err, ErrEmptyCart):
		httpjson.Error(w, http.StatusConflict, err.Error())
	case err != nil: // the cart or the orders could not be reached
		httpjson.Error(w, http.StatusBadGateway, err.Error())
	default:
		w.Header().Set("Location", "/orders/"+o.ID)
		httpjson.Write(w, http.StatusCreated, o)
	}
}

// Package checkout turns a shopper's cart into an order. It holds no state
// of its own: it reads the cart, places the order and empties the cart,
// through the Cart and Orders interfaces.
//
// The steps are not one transaction. If emptying the cart fails after the
// order is placed, the order stands and the cart keeps its items; an item
// added between reading and emptying the cart is lost. Across services this
// is the data consistency problem that sagas and outboxes exist to solve.
//
// Once the order is placed, checkout tells the rest of the shop through
// Events, in one of two ways a group chooses (setting events): HTTPEvents
// calls notifications, inventory and analytics in line and waits for them,
// so any of them failing fails the checkout and any of them slow slows it;
// Publisher publishes orders.placed and orders.fulfill on the bus and waits
// only for the bus's ack, with an outbox in memory for when the bus is
// away. The monolith tells no one.
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
	events Events // nil: nobody is told
}

// New returns a checkout that reads carts from c and places orders in o.
func New(c Cart, o Orders) *Service {
	return &Service{cart: c, orders: o}
}

// NewWithEvents is New that also tells e of every order placed.
func NewWithEvents(c Cart, o Orders, e Events) *Service {
	return &Service{cart: c, orders: o, events: e}
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
	if s.events != nil {
		if err := s.events.Admit(); err != nil {
			return orders.Order{}, err
		}
	}
	o, err := s.orders.Create(ctx, who, items)
	if err != nil {
		return orders.Order{}, err
	}
	// The order stands whatever follows, so its cart is emptied even if
	// telling of it failed.
	var told error
	if s.events != nil {
		told = s.events.Placed(ctx, o)
	}
	if err := errors.Join(told, s.cart.Clear(ctx, who)); err != nil {
		return orders.Order{}, &PlacedError{OrderID: o.ID, Err: err}
	}
	return o, nil
}

// PlacedError is a failure after the order was placed: the order stands.
type PlacedError struct {
	OrderID string
	Err     error
}

func (e *PlacedError) Error() string {
	return fmt.Sprintf("order %s placed, but: %v", e.OrderID, e.Err)
}

func (e *PlacedError) Unwrap() error { return e.Err }

// Register mounts checkout's route on mux:
//
//	POST /checkout        order the named shopper's cart; answers 201 with the order
//	GET  /checkout/events how orders are told of, with counts (404 when nobody is)
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /checkout", s.handleCheckout)
	mux.HandleFunc("GET /checkout/events", s.handleEvents)
}

func (s *Service) handleEvents(w http.ResponseWriter, r *http.Request) {
	if s.events == nil {
		httpjson.Error(w, http.StatusNotFound, "this checkout tells no one of its orders")
		return
	}
	httpjson.Write(w, http.StatusOK, s.events.Stats())
}

func (s *Service) handleCheckout(w http.ResponseWriter, r *http.Request) {
	who, err := shopper.FromRequest(r)
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	o, err := s.Checkout(r.Context(), who)
	var placed *PlacedError
	switch {
	case errors.As(err, &placed): // the order stands; something after it failed
		httpjson.Error(w, http.StatusBadGateway, err.Error())
	case errors.Is(err, ErrEmptyCart):
		httpjson.Error(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrUnavailable): // nothing was placed; try later
		w.Header().Set("Retry-After", "5")
		httpjson.Error(w, http.StatusServiceUnavailable, err.Error())
	case err != nil: // the cart, the orders or a subscriber could not be reached
		httpjson.Error(w, http.StatusBadGateway, err.Error())
	default:
		w.Header().Set("Location", "/orders/"+o.ID)
		httpjson.Write(w, http.StatusCreated, o)
	}
}

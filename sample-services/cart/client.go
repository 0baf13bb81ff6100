package cart

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
	"github.com/flotilla/flotilla/sample-services/shopper"
)

// Client reaches a cart service over HTTP, naming the shopper in the
// X-Shopper header. It offers the methods checkout needs, with the same
// signatures as *Service.
type Client struct {
	baseURL string
	http    *http.Client
}

// NewClient returns a client for the cart service at baseURL, such as
// "http://cart:8080". hc should carry a timeout.
func NewClient(baseURL string, hc *http.Client) *Client {
	return &Client{baseURL: strings.TrimRight(baseURL, "/"), http: hc}
}

// Get returns the shopper's cart.
func (c *Client) Get(ctx context.Context, who string) (Cart, error) {
	var cart Cart
	if err := c.do(ctx, http.MethodGet, who, &cart); err != nil {
		return Cart{}, fmt.Errorf("cart: get cart of %q: %w", who, err)
	}
	return cart, nil
}

// Clear empties the shopper's cart.
func (c *Client) Clear(ctx context.Context, who string) error {
	if err := c.do(ctx, http.MethodDelete, who, nil); err != nil {
		return fmt.Errorf("cart: clear cart of %q: %w", who, err)
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, who string, out any) error {
	req, err := httpjson.NewRequest(ctx, method, c.baseURL+"/cart", nil)
	if err != nil {
		return err
	}
	req.Header.Set(shopper.Header, who)
	return httpjson.Do(c.http, req, out)
}

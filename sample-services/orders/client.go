package orders

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
	"github.com/flotilla/flotilla/sample-services/shopper"
)

// Client reaches an orders service over HTTP, naming the shopper in the
// X-Shopper header. It offers the method checkout needs, with the same
// signature as *Service.
type Client struct {
	baseURL string
	http    *http.Client
}

// NewClient returns a client for the orders service at baseURL, such as
// "http://orders:8080". hc should carry a timeout.
func NewClient(baseURL string, hc *http.Client) *Client {
	return &Client{baseURL: strings.TrimRight(baseURL, "/"), http: hc}
}

// Create places an order of items for the shopper. A rejected order comes
// back as an error wrapping ErrInvalid.
func (c *Client) Create(ctx context.Context, who string, items []Item) (Order, error) {
	req, err := httpjson.NewRequest(ctx, http.MethodPost, c.baseURL+"/orders", createRequest{Items: items})
	if err != nil {
		return Order{}, err
	}
	req.Header.Set(shopper.Header, who)
	var o Order
	err = httpjson.Do(c.http, req, &o)
	switch {
	case httpjson.HasStatus(err, http.StatusBadRequest):
		return Order{}, fmt.Errorf("orders: %w: %w", ErrInvalid, err)
	case err != nil:
		return Order{}, fmt.Errorf("orders: create order for %q: %w", who, err)
	}
	return o, nil
}

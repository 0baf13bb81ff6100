package catalog

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
)

// Client reads a catalog service over HTTP. It offers the same methods as
// *Service, so a feature cannot tell whether its catalog is in process or
// across the network.
type Client struct {
	baseURL string
	http    *http.Client
}

// NewClient returns a client for the catalog at baseURL, such as
// "http://catalog:8080". hc should carry a timeout.
func NewClient(baseURL string, hc *http.Client) *Client {
	return &Client{baseURL: strings.TrimRight(baseURL, "/"), http: hc}
}

// Products returns every product.
func (c *Client) Products(ctx context.Context) ([]Product, error) {
	req, err := httpjson.NewRequest(ctx, http.MethodGet, c.baseURL+"/catalog", nil)
	if err != nil {
		return nil, err
	}
	var products []Product
	if err := httpjson.Do(c.http, req, &products); err != nil {
		return nil, fmt.Errorf("catalog: list products: %w", err)
	}
	return products, nil
}

// Product returns the product with id, or an error wrapping ErrNotFound.
func (c *Client) Product(ctx context.Context, id string) (Product, error) {
	req, err := httpjson.NewRequest(ctx, http.MethodGet, c.baseURL+"/catalog/"+url.PathEscape(id), nil)
	if err != nil {
		return Product{}, err
	}
	var p Product
	err = httpjson.Do(c.http, req, &p)
	switch {
	case httpjson.HasStatus(err, http.StatusNotFound):
		return Product{}, fmt.Errorf("catalog: %w: %q", ErrNotFound, id)
	case err != nil:
		return Product{}, fmt.Errorf("catalog: get product %q: %w", id, err)
	}
	return p, nil
}

// Package shop wires the shop's features into a deployment. The same
// features run in every role; only how they reach each other differs. The
// monolith mounts all five and they call each other in process; each other
// role mounts one feature and reaches the rest over HTTP by service name.
package shop

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/flotilla/flotilla/sample-services/cart"
	"github.com/flotilla/flotilla/sample-services/catalog"
	"github.com/flotilla/flotilla/sample-services/checkout"
	"github.com/flotilla/flotilla/sample-services/deals"
	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
	"github.com/flotilla/flotilla/sample-services/orders"
)

// ReplicaHeader is set on every reply to the name of the replica that made
// it, so a learner can see which copy answered.
const ReplicaHeader = "X-Flotilla-Replica"

// roles are the deployments Handler knows, the monolith first.
var roles = []string{"monolith", "catalog", "deals", "cart", "orders", "checkout"}

// Roles returns the valid roles.
func Roles() []string { return slices.Clone(roles) }

// Default addresses of the services a feature role calls; Docker's DNS on the
// project's network resolves the service names.
const (
	DefaultCatalogURL = "http://catalog:8080"
	DefaultCartURL    = "http://cart:8080"
	DefaultOrdersURL  = "http://orders:8080"
)

// Config says how a role reaches the rest of the shop. The zero Config is
// usable: every empty field takes its default.
type Config struct {
	Replica string // for ReplicaHeader; default the hostname

	CatalogURL string // default DefaultCatalogURL
	CartURL    string // default DefaultCartURL
	OrdersURL  string // default DefaultOrdersURL

	CallTimeout  time.Duration // per call to another service; default 2s
	ProbeTimeout time.Duration // per readiness probe of a dependency; default 500ms
	ReadyCache   time.Duration // how long a readiness result is reused; default 1s
}

func (c Config) withDefaults() Config {
	if c.Replica == "" {
		c.Replica, _ = os.Hostname()
	}
	setDefault(&c.CatalogURL, DefaultCatalogURL)
	setDefault(&c.CartURL, DefaultCartURL)
	setDefault(&c.OrdersURL, DefaultOrdersURL)
	setDefault(&c.CallTimeout, 2*time.Second)
	setDefault(&c.ProbeTimeout, 500*time.Millisecond)
	setDefault(&c.ReadyCache, time.Second)
	return c
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Handler returns the HTTP handler of one role. Every role answers
// GET /healthz and GET /readyz, and its features under /catalog, /deals,
// /cart, /orders and /checkout; other paths are 404.
func Handler(role string, cfg Config) (http.Handler, error) {
	cfg = cfg.withDefaults()

	// Feature roles call each other for every request; keep more idle
	// connections per service than the default 2, so that load does not
	// open and close a connection per call.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	calls := &http.Client{Transport: transport, Timeout: cfg.CallTimeout}

	mux := http.NewServeMux()
	var deps []dependency
	switch role {
	case "monolith":
		cat, ord := catalog.New(), orders.New()
		crt := cart.New(cat)
		cat.Register(mux)
		deals.New(cat).Register(mux)
		crt.Register(mux)
		ord.Register(mux)
		checkout.New(crt, ord).Register(mux)
	case "catalog":
		catalog.New().Register(mux)
	case "deals":
		deals.New(catalog.NewClient(cfg.CatalogURL, calls)).Register(mux)
		deps = []dependency{{"catalog", cfg.CatalogURL}}
	case "cart":
		cart.New(catalog.NewClient(cfg.CatalogURL, calls)).Register(mux)
		deps = []dependency{{"catalog", cfg.CatalogURL}}
	case "orders":
		orders.New().Register(mux)
	case "checkout":
		checkout.New(cart.NewClient(cfg.CartURL, calls), orders.NewClient(cfg.OrdersURL, calls)).Register(mux)
		deps = []dependency{{"cart", cfg.CartURL}, {"orders", cfg.OrdersURL}}
	default:
		return nil, fmt.Errorf("unknown role %q: want one of %s", role, strings.Join(roles, ", "))
	}

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	probes := &http.Client{Transport: transport, Timeout: cfg.ProbeTimeout}
	mux.Handle("GET /readyz", newReadiness(deps, probes, cfg.ReadyCache))

	return withReplica(cfg.Replica, mux), nil
}

// withReplica names the replica on every reply of next, errors included.
func withReplica(replica string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(ReplicaHeader, replica)
		next.ServeHTTP(w, r)
	})
}

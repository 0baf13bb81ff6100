// Package shop wires the shop's features into a deployment. The same
// features run in every role; only how they reach each other differs. The
// monolith mounts all five and they call each other in process; each feature
// role mounts one feature and reaches the rest over HTTP by service name;
// the gateway mounts none and routes every feature's paths to its service.
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
	"github.com/flotilla/flotilla/sample-services/faults"
	"github.com/flotilla/flotilla/sample-services/gateway"
	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
	"github.com/flotilla/flotilla/sample-services/orders"
)

const (
	// ReplicaHeader is set on every reply to the name of the replica that
	// made it, so a learner can see which copy answered. Through the
	// gateway, it names the replica of the service behind it.
	ReplicaHeader = "X-Flotilla-Replica"
	// GatewayHeader names the gateway replica a reply passed through.
	GatewayHeader = "X-Flotilla-Gateway"
)

// features are the shop's features, each also a role of its own.
var features = []string{"catalog", "deals", "cart", "orders", "checkout"}

// roles are the deployments Handler knows, the monolith first.
var roles = slices.Concat([]string{"monolith"}, features, []string{"gateway"})

// Roles returns the valid roles.
func Roles() []string { return slices.Clone(roles) }

// Features returns the shop's features, the names faults are set for.
func Features() []string { return slices.Clone(features) }

// Default addresses of the services a feature role calls; Docker's DNS on the
// project's network resolves the service names.
const (
	DefaultCatalogURL  = "http://catalog:8080"
	DefaultDealsURL    = "http://deals:8080"
	DefaultCartURL     = "http://cart:8080"
	DefaultOrdersURL   = "http://orders:8080"
	DefaultCheckoutURL = "http://checkout:8080"
)

// Config says how a role reaches the rest of the shop. The zero Config is
// usable: every empty field takes its default.
type Config struct {
	Replica string // for ReplicaHeader; default the hostname

	CatalogURL  string // default DefaultCatalogURL
	DealsURL    string // default DefaultDealsURL; only the gateway calls deals
	CartURL     string // default DefaultCartURL
	OrdersURL   string // default DefaultOrdersURL
	CheckoutURL string // default DefaultCheckoutURL; only the gateway calls checkout

	// Faults, if not nil, are applied to the role's requests; serve
	// Faults.Admin() on a port of its own.
	Faults *faults.Injector
	// GatewayDial is how the gateway connects to a service; default a
	// net.Dialer, which asks DNS. Tests set it to play DNS.
	GatewayDial gateway.DialFunc

	CallTimeout  time.Duration // per call to another service; default 2s
	ProbeTimeout time.Duration // per readiness probe of a dependency; default 500ms
	ReadyCache   time.Duration // how long a readiness result is reused; default 1s
}

func (c Config) withDefaults() Config {
	if c.Replica == "" {
		c.Replica, _ = os.Hostname()
	}
	setDefault(&c.CatalogURL, DefaultCatalogURL)
	setDefault(&c.DealsURL, DefaultDealsURL)
	setDefault(&c.CartURL, DefaultCartURL)
	setDefault(&c.OrdersURL, DefaultOrdersURL)
	setDefault(&c.CheckoutURL, DefaultCheckoutURL)
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
// GET /healthz, GET /readyz and GET /diag (what it sees of the machine), and its features under /catalog, /deals,
// /cart, /orders and /checkout; other paths are 404. The gateway role
// answers every feature's paths by passing them on to that feature's
// service.
func Handler(role string, cfg Config) (http.Handler, error) {
	cfg = cfg.withDefaults()

	// Feature roles call each other for every request; keep more idle
	// connections per service than the default 2, so that load does not
	// open and close a connection per call.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	calls := &http.Client{Transport: transport, Timeout: cfg.CallTimeout}

	mux := http.NewServeMux()
	served := []string{role} // the features mounted, for the faults
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
		served = features
	case "catalog":
		catalog.New().Register(mux)
	case "deals":
		deals.New(catalog.NewClient(cfg.CatalogURL, calls)).Register(mux)
		deps = []dependency{{name: "catalog", baseURL: cfg.CatalogURL}}
	case "cart":
		cart.New(catalog.NewClient(cfg.CatalogURL, calls)).Register(mux)
		deps = []dependency{{name: "catalog", baseURL: cfg.CatalogURL}}
	case "orders":
		orders.New().Register(mux)
	case "checkout":
		checkout.New(cart.NewClient(cfg.CartURL, calls), orders.NewClient(cfg.OrdersURL, calls)).Register(mux)
		deps = []dependency{{name: "cart", baseURL: cfg.CartURL}, {name: "orders", baseURL: cfg.OrdersURL}}
	case "gateway":
		backends := []gateway.Backend{
			{Name: "catalog", URL: cfg.CatalogURL},
			{Name: "deals", URL: cfg.DealsURL},
			{Name: "cart", URL: cfg.CartURL},
			{Name: "orders", URL: cfg.OrdersURL},
			{Name: "checkout", URL: cfg.CheckoutURL},
		}
		// Probes go through the gateway's transport too, so they find
		// services the same way requests do.
		transport = gateway.Transport(cfg.GatewayDial)
		gw, err := gateway.New(backends, transport)
		if err != nil {
			return nil, err
		}
		mux.Handle("/", backendNamesItself(gw))
		served = nil
		// Without the catalog there is no shop to show; without any other
		// service only its pages fail, so it is listed but not required.
		for _, b := range backends {
			deps = append(deps, dependency{name: b.Name, baseURL: b.URL, optional: b.Name != "catalog"})
		}
	default:
		return nil, fmt.Errorf("unknown role %q: want one of %s", role, strings.Join(roles, ", "))
	}

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /diag", diag("/proc"))
	probes := &http.Client{Transport: transport, Timeout: cfg.ProbeTimeout}
	mux.Handle("GET /readyz", newReadiness(deps, probes, cfg.ReadyCache))

	var h http.Handler = mux
	if cfg.Faults != nil {
		h = cfg.Faults.Wrap(h, served...)
	}
	h = withHeader(ReplicaHeader, cfg.Replica, h)
	if role == "gateway" {
		h = withHeader(GatewayHeader, cfg.Replica, h)
	}
	return h, nil
}

// withHeader sets header name to value on every reply of next, errors
// included.
func withHeader(name, value string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(name, value)
		next.ServeHTTP(w, r)
	})
}

// backendNamesItself drops this replica's ReplicaHeader from the gateway's
// replies, so that the one the backend sends is the only one: a learner
// sees which replica behind the gateway answered. A reply the gateway makes
// itself, such as a 502, names no replica; GatewayHeader names the gateway.
func backendNamesItself(gw http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Del(ReplicaHeader)
		gw.ServeHTTP(w, r)
	})
}

// Package shop wires the shop's features into a deployment. The same
// features run in every role; only how they reach each other differs. The
// monolith mounts all five and they call each other in process; each feature
// role mounts one feature and reaches the rest over HTTP by service name;
// the gateway mounts none and routes every feature's paths to its service.
// The subscriber roles take the shop's events from the bus. The function
// roles, recommend and receipt, are what a learner scales to zero.
package shop

import (
	"context"
	"fmt"
	"log/slog"
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
	"github.com/flotilla/flotilla/sample-services/recommend"
	"github.com/flotilla/flotilla/sample-services/version"
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

// functions are the roles that run as functions: scaled to zero while idle
// and woken by a request (recommend) or by messages waiting on the bus
// (receipt, also a subscriber). Each takes faults under its own name.
var functions = []string{"recommend", "receipt"}

// roles are the deployments Handler knows, the monolith first.
var roles = slices.Concat([]string{"monolith"}, features, []string{"gateway"}, subscribers, []string{"recommend"})

// Roles returns the valid roles.
func Roles() []string { return slices.Clone(roles) }

// Features returns the shop's features, the names faults are set for.
func Features() []string { return slices.Clone(features) }

// Functions returns the roles that run as functions, which take faults
// under their own names.
func Functions() []string { return slices.Clone(functions) }

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

	// Version is the release the replica runs (package version): v1, v2
	// or v3; default version.Default. Flaw is how v3 goes wrong: errors
	// (the default), unready or crash; other versions ignore it. Handler
	// refuses unknown values of either.
	Version, Flaw string
	// CrashAfter is how long v3 with flaw crash lives before it crashes;
	// default DefaultCrashAfter.
	CrashAfter time.Duration
	// Crash ends the process with msg when the crash flaw fires; default a
	// panic. Tests replace it to survive.
	Crash func(msg string)

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

	// CheckoutEvents is how the checkout role tells of each order (setting
	// events); nil calls the Subscribers over HTTP in line (events=http).
	CheckoutEvents checkout.Events
	// Subscribers are the services the checkout role calls in http mode;
	// default checkout.DefaultSubscribers (http://<name>:8080).
	Subscribers []checkout.Subscriber
	// CartStore is where the cart role keeps carts (setting store); nil
	// keeps them in the replica's memory.
	CartStore cart.Store
	// ReceiptTrigger is what wakes the receipt role (setting trigger):
	// TriggerBus (default, its consumer on the bus) or TriggerHTTP (POST
	// /receipt alone).
	ReceiptTrigger string
	// Context bounds the background work of a role: a subscriber's pull
	// loop; default context.Background().
	Context context.Context
	// Getenv reads a subscriber's bus settings (NATS_URL, NATS_USER,
	// NATS_PASSWORD); default os.Getenv. Without NATS_URL a subscriber
	// takes only POST /events and is never ready.
	Getenv func(string) string
	// Log is where a role logs what it does in the background (a
	// subscriber's loop among); default slog.Default().
	Log *slog.Logger

	CallTimeout  time.Duration // per call to another service; default 2s
	ProbeTimeout time.Duration // per readiness probe of a dependency; default 500ms
	ReadyCache   time.Duration // how long a readiness result is reused; default 1s
}

func (c Config) withDefaults() Config {
	if c.Replica == "" {
		c.Replica, _ = os.Hostname()
	}
	c.Version, c.Flaw = version.Resolve(c.Version, c.Flaw)
	setDefault(&c.CrashAfter, DefaultCrashAfter)
	if c.Crash == nil {
		c.Crash = crashProcess
	}
	setDefault(&c.CatalogURL, DefaultCatalogURL)
	setDefault(&c.DealsURL, DefaultDealsURL)
	setDefault(&c.CartURL, DefaultCartURL)
	setDefault(&c.OrdersURL, DefaultOrdersURL)
	setDefault(&c.CheckoutURL, DefaultCheckoutURL)
	if c.Subscribers == nil {
		c.Subscribers = checkout.DefaultSubscribers
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	setDefault(&c.CallTimeout, 2*time.Second)
	setDefault(&c.ProbeTimeout, 500*time.Millisecond)
	setDefault(&c.ReadyCache, time.Second)
	if c.Context == nil {
		c.Context = context.Background()
	}
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
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
// service. A subscriber role (notifications, inventory, analytics,
// fulfillment) takes the shop's events from the bus, for the life of
// cfg.Context, and answers GET /stats, POST /events and its own page
// (GET /sent, /stock, /revenue, /done); it is ready once its consumer is
// bound. The recommend function answers GET /recommend and is ready at
// once; the receipt function is a subscriber that also answers GET
// /receipts and POST /receipt, or, with cfg.ReceiptTrigger http, only
// takes orders over HTTP and is ready at once.
//
// Every reply names the replica's version in version.Header; v2 and later
// offer their own deals; v3 goes wrong as cfg.Flaw says (see withRelease).
func Handler(role string, cfg Config) (http.Handler, error) {
	if err := version.Check(cfg.Version, cfg.Flaw); err != nil {
		return nil, err
	}
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
		deals.NewVersion(cat, cfg.Version).Register(mux)
		crt.Register(mux)
		ord.Register(mux)
		checkout.New(crt, ord).Register(mux)
		served = features
	case "catalog":
		catalog.New().Register(mux)
	case "deals":
		deals.NewVersion(catalog.NewClient(cfg.CatalogURL, calls), cfg.Version).Register(mux)
		deps = []dependency{{name: "catalog", baseURL: cfg.CatalogURL}}
	case "cart":
		cat := catalog.NewClient(cfg.CatalogURL, calls)
		deps = []dependency{{name: "catalog", baseURL: cfg.CatalogURL}}
		if cfg.CartStore == nil {
			cart.New(cat).Register(mux)
			break
		}
		cart.NewWithStore(cat, cfg.CartStore).Register(mux)
		// Carts kept on the bus need it: without it no cart can be read.
		if h, ok := cfg.CartStore.(healthChecker); ok {
			deps = append(deps, dependency{name: "bus", check: h.Health})
		}
	case "orders":
		orders.New().Register(mux)
	case "checkout":
		events := cfg.CheckoutEvents
		if events == nil {
			events = checkout.NewHTTPEvents(cfg.Subscribers, calls, nil, cfg.Log)
		}
		checkout.NewWithEvents(cart.NewClient(cfg.CartURL, calls), orders.NewClient(cfg.OrdersURL, calls), events).Register(mux)
		deps = []dependency{{name: "cart", baseURL: cfg.CartURL}, {name: "orders", baseURL: cfg.OrdersURL}}
		// Publishing to the bus, checkout takes orders without it (they
		// wait in its outbox): the bus is shown, not required.
		if h, ok := events.(healthChecker); ok {
			deps = append(deps, dependency{name: "bus", check: h.Health, optional: true})
		}
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
		mux.Handle("/", backendNamesItself(gw, cfg.Version))
		served = nil
		// Without the catalog there is no shop to show; without any other
		// service only its pages fail, so it is listed but not required.
		for _, b := range backends {
			deps = append(deps, dependency{name: b.Name, baseURL: b.URL, optional: b.Name != "catalog"})
		}
	case "notifications", "inventory", "analytics", "fulfillment":
		_, dep := subscriber(role, newFeature(role), cfg, mux)
		deps = []dependency{dep}
	case "recommend":
		// The catalog built into the binary: the function calls nothing,
		// so it is ready as soon as it listens.
		recommend.New(catalog.New(), cfg.Replica).Register(mux)
	case "receipt":
		var err error
		if deps, err = receiptRole(cfg, mux); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown role %q: want one of %s", role, strings.Join(roles, ", "))
	}

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /diag", diag("/proc", cfg.Version))
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
	return withRelease(cfg, h), nil
}

// healthChecker is a part of a role that can say whether what it relies
// on (the bus) is there.
type healthChecker interface {
	Health(ctx context.Context) error
}

// withHeader sets header name to value on every reply of next, errors
// included.
func withHeader(name, value string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(name, value)
		next.ServeHTTP(w, r)
	})
}

// backendNamesItself drops this replica's ReplicaHeader and version from
// the gateway's replies, so that the ones the backend sends are the only
// ones: a learner sees which replica behind the gateway answered, and which
// version it runs. A reply the gateway makes itself, such as a 502, names no
// replica, but the gateway's version; GatewayHeader names the gateway.
func backendNamesItself(gw http.Handler, own string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Del(ReplicaHeader)
		w.Header().Del(version.Header)
		gw.ServeHTTP(&versionOfBackend{ResponseWriter: w, own: own}, r)
	})
}

package shop_test

import (
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flotilla/flotilla/sample-services/cart"
	"github.com/flotilla/flotilla/sample-services/faults"
	"github.com/flotilla/flotilla/sample-services/shop"
)

func TestGatewayJourney(t *testing.T) {
	u, replicas := startServices(t)
	gw := serve(t, "gateway", shop.Config{
		Replica: "gateway-1", CatalogURL: u.catalog, DealsURL: u.deals, CartURL: u.cart, OrdersURL: u.orders, CheckoutURL: u.checkout,
	})
	// Through the gateway, each reply still names the replica behind it.
	journey(t, same(gw.URL), replicas)

	for _, path := range []string{"/catalog", "/deals", "/cart", "/orders", "/healthz", "/readyz", "/nowhere"} {
		if r := call(t, "GET", gw.URL+path, "bob", ""); r.gateway != "gateway-1" {
			t.Errorf("GET %s: %s %q, want gateway-1", path, shop.GatewayHeader, r.gateway)
		}
	}
	if r := call(t, "GET", gw.URL+"/healthz", "", ""); r.replica != "gateway-1" {
		t.Errorf("gateway's own /healthz names replica %q, want gateway-1", r.replica)
	}
}

// roundRobinDNS plays Docker's DNS for the gateway: a service name stands
// for several replicas, and each dial reaches the next one.
type roundRobinDNS struct {
	mu    sync.Mutex
	addrs map[string][]string // "name:port" -> the replicas' real addresses
	next  map[string]int
}

func (d *roundRobinDNS) add(name string, srv *httptest.Server) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.addrs == nil {
		d.addrs, d.next = map[string][]string{}, map[string]int{}
	}
	d.addrs[name] = append(d.addrs[name], srv.Listener.Addr().String())
}

func (d *roundRobinDNS) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	if as := d.addrs[addr]; len(as) > 0 {
		name := addr
		addr = as[d.next[name]%len(as)]
		d.next[name]++
	}
	d.mu.Unlock()
	var dialer net.Dialer
	return dialer.DialContext(ctx, network, addr)
}

func TestGatewaySpreadsOverReplicas(t *testing.T) {
	dns := &roundRobinDNS{}
	for _, name := range []string{"catalog-1", "catalog-2", "catalog-3"} {
		dns.add("catalog:8080", serve(t, "catalog", shop.Config{Replica: name}))
	}
	gw := serve(t, "gateway", shop.Config{GatewayDial: dns.Dial})

	seen := map[string]int{}
	for range 30 {
		r := call(t, "GET", gw.URL+"/catalog", "", "")
		if r.code != 200 {
			t.Fatalf("GET /catalog = %d %s", r.code, r.body)
		}
		seen[r.replica]++
	}
	if len(seen) != 3 || seen["catalog-1"] != 10 || seen["catalog-2"] != 10 || seen["catalog-3"] != 10 {
		t.Errorf("replies by replica %v, want 10 each from catalog-1..3", seen)
	}
}

// Carts live in each cart replica's memory. Through a gateway that spreads
// requests, a shopper sees whichever replica answers: the data consistency
// lesson of stage 6, kept on purpose.
func TestGatewayCartIsPerReplica(t *testing.T) {
	cat := serve(t, "catalog", shop.Config{})
	dns := &roundRobinDNS{}
	for _, name := range []string{"cart-1", "cart-2"} {
		dns.add("cart:8080", serve(t, "cart", shop.Config{Replica: name, CatalogURL: cat.URL}))
	}
	gw := serve(t, "gateway", shop.Config{CatalogURL: cat.URL, GatewayDial: dns.Dial})

	var c cart.Cart
	r := call(t, "POST", gw.URL+"/cart/items", "alice", `{"productId":"tea-mug","quantity":1}`)
	r.decode(t, 200, &c)
	if r.replica != "cart-1" || len(c.Items) != 1 {
		t.Fatalf("add: replica %q, cart %+v", r.replica, c)
	}
	r = call(t, "GET", gw.URL+"/cart", "alice", "")
	r.decode(t, 200, &c)
	if r.replica != "cart-2" || len(c.Items) != 0 {
		t.Errorf("get from the other replica: replica %q, cart %+v; want cart-2 knowing nothing", r.replica, c)
	}
	r = call(t, "GET", gw.URL+"/cart", "alice", "")
	r.decode(t, 200, &c)
	if r.replica != "cart-1" || len(c.Items) != 1 {
		t.Errorf("get from the first replica: replica %q, cart %+v; want cart-1 with the mug", r.replica, c)
	}
}

func TestGatewayBackendDown(t *testing.T) {
	cat := serve(t, "catalog", shop.Config{Replica: "catalog-1"})
	deals := serve(t, "deals", shop.Config{CatalogURL: cat.URL})
	deals.Close()
	gw := serve(t, "gateway", shop.Config{Replica: "gateway-1", CatalogURL: cat.URL, DealsURL: deals.URL})

	var e struct{ Error string }
	r := call(t, "GET", gw.URL+"/deals", "", "")
	r.decode(t, 502, &e)
	if !strings.HasPrefix(e.Error, "deals is unreachable: ") {
		t.Errorf("error %q, want deals is unreachable: ...", e.Error)
	}
	if r.replica != "" || r.gateway != "gateway-1" {
		t.Errorf("502 names replica %q and gateway %q; want no replica and gateway-1", r.replica, r.gateway)
	}

	r = call(t, "GET", gw.URL+"/catalog", "", "")
	if r.code != 200 || r.replica != "catalog-1" {
		t.Errorf("GET /catalog with deals down = %d from %q", r.code, r.replica)
	}
}

func TestGatewayReadyz(t *testing.T) {
	cat := serve(t, "catalog", shop.Config{})
	down := httptest.NewServer(nil)
	down.Close()
	gw := serve(t, "gateway", shop.Config{
		CatalogURL: cat.URL, DealsURL: down.URL, CartURL: down.URL, OrdersURL: down.URL, CheckoutURL: down.URL,
		ReadyCache: time.Nanosecond,
	})

	// The catalog is enough to show a shop; the rest are listed.
	var b readyBody
	call(t, "GET", gw.URL+"/readyz", "", "").decode(t, 200, &b)
	if b.Status != "ready" || b.Error != "" || len(b.Dependencies) != 5 || b.Dependencies["catalog"] != "ok" {
		t.Errorf("catalog up, rest down: %+v", b)
	}
	for _, name := range []string{"deals", "cart", "orders", "checkout"} {
		if b.Dependencies[name] == "ok" || b.Dependencies[name] == "" {
			t.Errorf("%s is down but reported %q", name, b.Dependencies[name])
		}
	}

	cat.Close()
	b = readyBody{}
	call(t, "GET", gw.URL+"/readyz", "", "").decode(t, 503, &b)
	if b.Status != "unavailable" || !strings.Contains(b.Error, "catalog") || strings.Contains(b.Error, "deals") {
		t.Errorf("catalog down: %+v, want an error naming the catalog only", b)
	}
}

// faulty serves role with an injector and returns its URL and its admin
// API's URL.
func faulty(t *testing.T, role string, cfg shop.Config) (base, admin string) {
	t.Helper()
	cfg.Faults = faults.New(shop.Features()...)
	a := httptest.NewServer(cfg.Faults.Admin())
	t.Cleanup(a.Close)
	return serve(t, role, cfg).URL, a.URL
}

func putFault(t *testing.T, admin, feature, body string) {
	t.Helper()
	if r := call(t, "PUT", admin+"/faults/"+feature, "", body); r.code != 200 {
		t.Fatalf("PUT /faults/%s = %d %s", feature, r.code, r.body)
	}
}

func TestFaultsInTheMonolith(t *testing.T) {
	base, admin := faulty(t, "monolith", shop.Config{Replica: "shop-1"})
	putFault(t, admin, "deals", `{"errorRate":1}`)

	var e struct{ Error string }
	r := call(t, "GET", base+"/deals", "", "")
	r.decode(t, 500, &e)
	if e.Error != "injected fault" || r.replica != "shop-1" {
		t.Errorf("GET /deals: %q from %q", e.Error, r.replica)
	}
	if r := call(t, "GET", base+"/catalog", "", ""); r.code != 200 {
		t.Errorf("GET /catalog = %d: only deals is faulted", r.code)
	}
	if r := call(t, "GET", base+"/readyz", "", ""); r.code != 200 {
		t.Errorf("GET /readyz = %d: probes are never faulted", r.code)
	}
}

func TestFaultsInTheGateway(t *testing.T) {
	cat := serve(t, "catalog", shop.Config{Replica: "catalog-1"})
	base, admin := faulty(t, "gateway", shop.Config{Replica: "gateway-1", CatalogURL: cat.URL})

	// The gateway serves no feature of its own: a feature's fault belongs
	// to that feature's service, not to the gateway in front of it.
	putFault(t, admin, "catalog", `{"errorRate":1}`)
	if r := call(t, "GET", base+"/catalog", "", ""); r.code != 200 {
		t.Errorf("catalog fault on the gateway: GET /catalog = %d, want 200", r.code)
	}

	putFault(t, admin, faults.All, `{"errorRate":1}`)
	r := call(t, "GET", base+"/catalog", "", "")
	if r.code != 500 || r.replica != "gateway-1" || r.gateway != "gateway-1" {
		t.Errorf("* fault on the gateway: GET /catalog = %d from %q via %q, want 500 made by gateway-1", r.code, r.replica, r.gateway)
	}
}

package shop_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flotilla/flotilla/sample-services/cart"
	"github.com/flotilla/flotilla/sample-services/catalog"
	"github.com/flotilla/flotilla/sample-services/deals"
	"github.com/flotilla/flotilla/sample-services/orders"
	"github.com/flotilla/flotilla/sample-services/shop"
)

// reply is one HTTP answer.
type reply struct {
	code    int
	replica string
	gateway string // X-Flotilla-Gateway
	body    []byte
}

func (r reply) decode(t *testing.T, code int, v any) {
	t.Helper()
	if r.code != code {
		t.Fatalf("status %d, want %d: %s", r.code, code, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// call sends one request over real HTTP, as shopper if not empty.
func call(t *testing.T, method, url, shopper, body string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if shopper != "" {
		req.Header.Set("X-Shopper", shopper)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.Header.Values(shop.ReplicaHeader)); n > 1 {
		t.Errorf("%s %s: %d %s headers, want at most one", method, url, n, shop.ReplicaHeader)
	}
	return reply{code: resp.StatusCode, replica: resp.Header.Get(shop.ReplicaHeader), gateway: resp.Header.Get(shop.GatewayHeader), body: b}
}

// serve starts role as an HTTP server for the test's lifetime.
func serve(t *testing.T, role string, cfg shop.Config) *httptest.Server {
	t.Helper()
	h, err := shop.Handler(role, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// urls says something per feature: where it is served, or which replica
// serves it.
type urls struct{ catalog, deals, cart, orders, checkout string }

// same is u for every feature.
func same(u string) urls { return urls{u, u, u, u, u} }

// journey is a shopper's visit: browse, look at deals, fill the cart, check
// out, find the order, see the cart empty. u says where each feature is
// served, and replicas which replica must answer for it.
func journey(t *testing.T, u, replicas urls) {
	const who = "alice"
	replicaOf := map[string]string{"/catalog": replicas.catalog, "/deals": replicas.deals,
		"/cart": replicas.cart, "/orders": replicas.orders, "/checkout": replicas.checkout}
	step := func(method, base, path, body string) reply {
		t.Helper()
		r := call(t, method, base+path, who, body)
		feature := "/" + strings.Split(path, "/")[1]
		if want := replicaOf[feature]; r.replica != want {
			t.Errorf("%s %s: %s %q, want %q", method, path, shop.ReplicaHeader, r.replica, want)
		}
		return r
	}

	var products []catalog.Product
	step("GET", u.catalog, "/catalog", "").decode(t, 200, &products)
	if len(products) == 0 {
		t.Fatal("empty catalog")
	}

	var ds []deals.Deal
	step("GET", u.deals, "/deals", "").decode(t, 200, &ds)
	if len(ds) == 0 || ds[0].PriceCents >= ds[0].Product.PriceCents {
		t.Fatalf("deals = %+v, want at least one discount", ds)
	}

	var c cart.Cart
	step("POST", u.cart, "/cart/items", `{"productId":"`+products[0].ID+`","quantity":2}`).decode(t, 200, &c)
	step("POST", u.cart, "/cart/items", `{"productId":"`+ds[0].Product.ID+`","quantity":1}`).decode(t, 200, &c)
	step("GET", u.cart, "/cart", "").decode(t, 200, &c)
	wantTotal := 2*products[0].PriceCents + ds[0].Product.PriceCents
	if len(c.Items) != 2 || c.TotalCents != wantTotal {
		t.Fatalf("cart = %+v, want 2 items totalling %d", c, wantTotal)
	}

	var o orders.Order
	step("POST", u.checkout, "/checkout", "").decode(t, 201, &o)
	if o.ID == "" || o.Shopper != who || o.TotalCents != wantTotal || len(o.Items) != 2 {
		t.Fatalf("order = %+v, want alice's 2 items totalling %d", o, wantTotal)
	}

	var mine []orders.Order
	step("GET", u.orders, "/orders", "").decode(t, 200, &mine)
	if len(mine) != 1 || mine[0].ID != o.ID {
		t.Errorf("alice's orders = %+v, want just %s", mine, o.ID)
	}
	var got orders.Order
	step("GET", u.orders, "/orders/"+o.ID, "").decode(t, 200, &got)
	if got.ID != o.ID || got.TotalCents != o.TotalCents {
		t.Errorf("GET /orders/%s = %+v, want %+v", o.ID, got, o)
	}

	step("GET", u.cart, "/cart", "").decode(t, 200, &c)
	if len(c.Items) != 0 {
		t.Errorf("cart after checkout = %+v, want empty", c)
	}

	var e struct{ Error string }
	step("POST", u.checkout, "/checkout", "").decode(t, 409, &e)
	if e.Error != "cart is empty" {
		t.Errorf("second checkout: error %q", e.Error)
	}
}

func TestMonolithJourney(t *testing.T) {
	srv := serve(t, "monolith", shop.Config{Replica: "shop-1"})
	journey(t, same(srv.URL), same("shop-1"))
}

// startServices runs each feature as its own server, wired over HTTP, and
// returns where each is served and its replica's name.
func startServices(t *testing.T) (u, replicas urls) {
	t.Helper()
	cat := serve(t, "catalog", shop.Config{Replica: "catalog-1"})
	ord := serve(t, "orders", shop.Config{Replica: "orders-1"})
	dls := serve(t, "deals", shop.Config{Replica: "deals-1", CatalogURL: cat.URL})
	crt := serve(t, "cart", shop.Config{Replica: "cart-1", CatalogURL: cat.URL})
	chk := serve(t, "checkout", shop.Config{Replica: "checkout-1", CartURL: crt.URL, OrdersURL: ord.URL})
	return urls{cat.URL, dls.URL, crt.URL, ord.URL, chk.URL},
		urls{"catalog-1", "deals-1", "cart-1", "orders-1", "checkout-1"}
}

func TestMicroservicesJourney(t *testing.T) {
	u, replicas := startServices(t)
	journey(t, u, replicas)
}

func TestFeatureRoleServesOnlyItsFeature(t *testing.T) {
	u, _ := startServices(t)
	paths := map[string]string{
		"catalog": "/catalog", "deals": "/deals", "cart": "/cart", "orders": "/orders", "checkout": "/checkout",
	}
	bases := map[string]string{
		"catalog": u.catalog, "deals": u.deals, "cart": u.cart, "orders": u.orders, "checkout": u.checkout,
	}
	for role, base := range bases {
		for feature, path := range paths {
			method := "GET"
			if feature == "checkout" {
				method = "POST"
			}
			r := call(t, method, base+path, "alice", "")
			if feature == role && r.code == http.StatusNotFound {
				t.Errorf("%s role: %s %s is 404", role, method, path)
			}
			if feature != role && r.code != http.StatusNotFound {
				t.Errorf("%s role: %s %s is %d, want 404", role, method, path, r.code)
			}
		}
	}
}

// A feature whose dependency is down fails only the calls that need it.
func TestDependencyDown(t *testing.T) {
	cat := serve(t, "catalog", shop.Config{})
	crt := serve(t, "cart", shop.Config{CatalogURL: cat.URL, CallTimeout: time.Second})
	cat.Close()

	var e struct{ Error string }
	call(t, "POST", crt.URL+"/cart/items", "alice", `{"productId":"tea-mug","quantity":1}`).decode(t, 502, &e)
	if !strings.Contains(e.Error, "catalog") {
		t.Errorf("error %q does not name the catalog", e.Error)
	}
	var c cart.Cart
	call(t, "GET", crt.URL+"/cart", "alice", "").decode(t, 200, &c)
}

func TestHealthz(t *testing.T) {
	for _, role := range shop.Roles() {
		srv := serve(t, role, shop.Config{})
		r := call(t, "GET", srv.URL+"/healthz", "", "")
		if r.code != 200 || string(bytes.TrimSpace(r.body)) != `{"status":"ok"}` {
			t.Errorf("%s: /healthz = %d %s", role, r.code, r.body)
		}
	}
}

type readyBody struct {
	Status       string
	Error        string
	Failing      []string
	Dependencies map[string]string
}

func TestReadyzMonolithAndLeaves(t *testing.T) {
	for _, role := range []string{"monolith", "catalog", "orders"} {
		// No dependencies: ready even though the default URLs resolve nowhere.
		srv := serve(t, role, shop.Config{})
		var b readyBody
		call(t, "GET", srv.URL+"/readyz", "", "").decode(t, 200, &b)
		if b.Status != "ready" || b.Error != "" {
			t.Errorf("%s: /readyz = %+v", role, b)
		}
	}
}

func TestReadyzFollowsDependencies(t *testing.T) {
	var cartUp atomic.Bool
	cartUp.Store(true)
	fakeCart := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || !cartUp.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"status":"ok"}`))
	}))
	defer fakeCart.Close()
	ord := serve(t, "orders", shop.Config{})
	chk := serve(t, "checkout", shop.Config{
		CartURL: fakeCart.URL, OrdersURL: ord.URL, ReadyCache: time.Nanosecond,
	})

	var b readyBody
	call(t, "GET", chk.URL+"/readyz", "", "").decode(t, 200, &b)
	if b.Status != "ready" || b.Dependencies["cart"] != "ok" || b.Dependencies["orders"] != "ok" || len(b.Failing) != 0 {
		t.Errorf("all up: %+v", b)
	}

	cartUp.Store(false)
	b = readyBody{}
	call(t, "GET", chk.URL+"/readyz", "", "").decode(t, 503, &b)
	if b.Status != "unavailable" || !strings.Contains(b.Error, "cart") || strings.Contains(b.Error, "orders") {
		t.Errorf("cart down: %+v, want an error naming cart only", b)
	}
	if len(b.Failing) != 1 || b.Failing[0] != "cart" {
		t.Errorf("cart down: failing %v, want [cart]", b.Failing)
	}
	if b.Dependencies["cart"] == "ok" || b.Dependencies["orders"] != "ok" {
		t.Errorf("cart down: dependencies %v", b.Dependencies)
	}

	cartUp.Store(true)
	b = readyBody{}
	call(t, "GET", chk.URL+"/readyz", "", "").decode(t, 200, &b)

	ord.Close()
	b = readyBody{}
	call(t, "GET", chk.URL+"/readyz", "", "").decode(t, 503, &b)
	if !strings.Contains(b.Error, "orders") {
		t.Errorf("orders server closed: error %q does not name orders", b.Error)
	}
}

func TestReadyzTimesOutSlowDependency(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	}))
	defer slow.Close()
	srv := serve(t, "deals", shop.Config{CatalogURL: slow.URL, ProbeTimeout: 50 * time.Millisecond})

	start := time.Now()
	var b readyBody
	call(t, "GET", srv.URL+"/readyz", "", "").decode(t, 503, &b)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("readyz took %v with a 50ms probe timeout", took)
	}
	if !strings.Contains(b.Error, "catalog") {
		t.Errorf("error %q does not name catalog", b.Error)
	}
}

func TestReadyzIsCached(t *testing.T) {
	var probes atomic.Int32
	cat := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probes.Add(1)
	}))
	defer cat.Close()
	srv := serve(t, "cart", shop.Config{CatalogURL: cat.URL, ReadyCache: time.Hour})

	for range 5 {
		if r := call(t, "GET", srv.URL+"/readyz", "", ""); r.code != 200 {
			t.Fatalf("/readyz = %d %s", r.code, r.body)
		}
	}
	if n := probes.Load(); n != 1 {
		t.Errorf("catalog probed %d times in 5 readyz calls, want 1", n)
	}
}

func TestReplicaHeader(t *testing.T) {
	srv := serve(t, "catalog", shop.Config{Replica: "catalog-7"})
	for _, path := range []string{"/catalog", "/healthz", "/readyz", "/nowhere"} {
		if r := call(t, "GET", srv.URL+path, "", ""); r.replica != "catalog-7" {
			t.Errorf("GET %s: %s %q, want catalog-7", path, shop.ReplicaHeader, r.replica)
		}
	}

	host, err := os.Hostname()
	if err != nil {
		t.Skip("no hostname:", err)
	}
	srv = serve(t, "orders", shop.Config{})
	if r := call(t, "GET", srv.URL+"/healthz", "", ""); r.replica != host {
		t.Errorf("default replica %q, want the hostname %q", r.replica, host)
	}
}

func TestUnknownRole(t *testing.T) {
	h, err := shop.Handler("warehouse", shop.Config{})
	if err == nil || h != nil {
		t.Fatalf("Handler(warehouse) = %v, %v; want an error", h, err)
	}
	for _, role := range append(shop.Roles(), "warehouse") {
		if !strings.Contains(err.Error(), role) {
			t.Errorf("error %q does not mention %q", err, role)
		}
	}
}

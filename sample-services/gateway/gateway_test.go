package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/flotilla/flotilla/sample-services/gateway"
)

// echo is what a fake backend saw of a request.
type echo struct {
	Replica, Method, Path, Query, Host, Shopper, Cookie, Body, ForwardedFor string
}

// backend starts a fake service replica that answers every request with an
// echo of it, naming itself in X-Flotilla-Replica.
func backend(t *testing.T, replica string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Flotilla-Replica", replica)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(echo{
			Replica: replica, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host,
			Shopper: r.Header.Get("X-Shopper"), Cookie: r.Header.Get("Cookie"), Body: string(body),
			ForwardedFor: r.Header.Get("X-Forwarded-For"),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// serve starts a gateway over backends with transport.
func serve(t *testing.T, backends []gateway.Backend, transport http.RoundTripper) string {
	t.Helper()
	h, err := gateway.New(backends, transport)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// send sends one request and returns the reply with its body read.
func send(t *testing.T, method, url, body string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
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
	return resp, b
}

func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

var names = []string{"catalog", "deals", "cart", "orders", "checkout"}

func TestRoutesEachPrefixToItsService(t *testing.T) {
	var backends []gateway.Backend
	for _, name := range names {
		backends = append(backends, gateway.Backend{Name: name, URL: backend(t, name+"-1").URL})
	}
	gw := serve(t, backends, gateway.Transport(nil))

	for _, name := range names {
		for _, path := range []string{"/" + name, "/" + name + "/", "/" + name + "/a/b?q=1&r=2"} {
			resp, b := send(t, "GET", gw+path, "", nil)
			var e echo
			decode(t, b, &e)
			wantPath, wantQuery, _ := strings.Cut(path, "?")
			if resp.StatusCode != 201 || e.Replica != name+"-1" || e.Path != wantPath || e.Query != wantQuery {
				t.Errorf("GET %s reached %s %s?%s (status %d), want %s-1 %s", path, e.Replica, e.Path, e.Query, resp.StatusCode, name, path)
			}
		}
	}
	for _, path := range []string{"/", "/inventory", "/catalogue", "/healthz"} {
		resp, b := send(t, "GET", gw+path, "", nil)
		var e struct{ Error string }
		decode(t, b, &e)
		if resp.StatusCode != 404 || e.Error == "" {
			t.Errorf("GET %s = %d %s, want a 404 error", path, resp.StatusCode, b)
		}
	}
}

func TestPassesRequestAndReplyThrough(t *testing.T) {
	cart := backend(t, "cart-3")
	gw := serve(t, []gateway.Backend{{Name: "cart", URL: cart.URL}}, gateway.Transport(nil))

	header := http.Header{"X-Shopper": {"alice"}, "Cookie": {"shopper=bob"}}
	resp, b := send(t, "POST", gw+"/cart/items", `{"productId":"tea-mug","quantity":1}`, header)
	var e echo
	decode(t, b, &e)
	want := echo{
		Replica: "cart-3", Method: "POST", Path: "/cart/items", Host: strings.TrimPrefix(cart.URL, "http://"),
		Shopper: "alice", Cookie: "shopper=bob", Body: `{"productId":"tea-mug","quantity":1}`, ForwardedFor: "127.0.0.1",
	}
	if e != want {
		t.Errorf("backend saw %+v\nwant %+v", e, want)
	}
	if resp.StatusCode != 201 || resp.Header.Get("X-Flotilla-Replica") != "cart-3" {
		t.Errorf("reply %d, X-Flotilla-Replica %q; want the backend's 201 and cart-3", resp.StatusCode, resp.Header.Get("X-Flotilla-Replica"))
	}
}

// fakeDNS plays Docker's DNS: it knows several addresses for a name and
// hands them out in turn. Its Dial resolves the name, then dials the address.
type fakeDNS struct {
	mu    sync.Mutex
	addrs map[string][]string // "name:port" -> real "127.0.0.1:port"s
	next  int
}

func (d *fakeDNS) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	if as, ok := d.addrs[addr]; ok {
		addr = as[d.next%len(as)]
		d.next++
	}
	d.mu.Unlock()
	var dialer net.Dialer
	return dialer.DialContext(ctx, network, addr)
}

func TestSpreadsOverAllAddressesOfAName(t *testing.T) {
	dns := &fakeDNS{addrs: map[string][]string{"catalog:8080": {
		backend(t, "catalog-1").Listener.Addr().String(),
		backend(t, "catalog-2").Listener.Addr().String(),
		backend(t, "catalog-3").Listener.Addr().String(),
	}}}
	gw := serve(t, []gateway.Backend{{Name: "catalog", URL: "http://catalog:8080"}}, gateway.Transport(dns.Dial))

	seen := map[string]int{}
	for range 30 {
		resp, b := send(t, "GET", gw+"/catalog", "", nil)
		var e echo
		decode(t, b, &e)
		if e.Host != "catalog:8080" {
			t.Fatalf("backend saw Host %q, want the service name", e.Host)
		}
		seen[resp.Header.Get("X-Flotilla-Replica")]++
	}
	// Each request dials, so asks DNS, anew: a pooled connection would send
	// all 30 to one replica.
	if len(seen) != 3 || seen["catalog-1"] != 10 || seen["catalog-2"] != 10 || seen["catalog-3"] != 10 {
		t.Errorf("replies by replica %v, want 10 each from catalog-1..3", seen)
	}
}

func TestDeadBackendFailsOnlyItsRoutes(t *testing.T) {
	deals := backend(t, "deals-1")
	deals.Close()
	catalog := backend(t, "catalog-1")
	gw := serve(t, []gateway.Backend{{Name: "catalog", URL: catalog.URL}, {Name: "deals", URL: deals.URL}}, gateway.Transport(nil))

	resp, b := send(t, "GET", gw+"/deals", "", nil)
	var e struct{ Error string }
	decode(t, b, &e)
	if resp.StatusCode != 502 || !strings.HasPrefix(e.Error, "deals is unreachable: ") {
		t.Errorf("GET /deals = %d %s, want 502 deals is unreachable", resp.StatusCode, b)
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("502 Content-Type %q", resp.Header.Get("Content-Type"))
	}
	if resp, b := send(t, "GET", gw+"/catalog", "", nil); resp.StatusCode != 201 {
		t.Errorf("GET /catalog = %d %s with deals down", resp.StatusCode, b)
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "catalog:8080", "ftp://catalog", "http://", "http://a b"} {
		if _, err := gateway.New([]gateway.Backend{{Name: "catalog", URL: u}}, nil); err == nil {
			t.Errorf("URL %q: no error", u)
		}
	}
}

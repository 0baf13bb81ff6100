// Package gateway is the shop's API gateway: one front door for clients that
// routes each request, by the first segment of its path, to the service of
// that name: /deals and /deals/... go to the deals service.
//
// The gateway knows services only by name, such as http://deals:8080, and
// asks DNS for the name again on every request. On a Docker network, DNS
// answers a group's name with the addresses of all its running replicas, in
// a new random order each time. So DNS is the service discovery here: scale a
// group and the gateway sends traffic to the new replicas, with no change to
// its configuration.
package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
)

// Backend is a service behind the gateway.
type Backend struct {
	Name string // requests to /Name and /Name/... go to this service
	URL  string // where it is, such as "http://deals:8080"
}

// DialFunc opens a connection to addr, a "host:port" whose host is usually a
// service name, as net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Transport returns the transport a gateway should use. It dials with dial,
// or with a net.Dialer if dial is nil.
//
// It keeps no connection open between requests, so that each request dials
// anew and so asks DNS anew. A kept-alive connection would stay with the
// replica it first reached: the gateway would never notice a new replica,
// and one client's traffic would stick to one replica, which is the very
// coupling a scaling group is meant to remove. Given several addresses, the
// dialer tries them in the order DNS sent them, the next one if a connection
// is refused. A new connection per request costs a little latency; real
// gateways keep connections and re-resolve on a timer instead, which is
// faster but hides what happens.
func Transport(dial DialFunc) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DisableKeepAlives = true
	if dial != nil {
		t.DialContext = dial
	}
	return t
}

// New returns a handler that passes each request to the backend named by
// the first segment of its path, with its method, path, query, headers and
// body, and passes the backend's reply back, headers included. A request
// that names no backend is answered 404. If the backend cannot be reached,
// the reply is 502 {"error": "<name> is unreachable: <why>"}; the other
// backends are not affected.
func New(backends []Backend, transport http.RoundTripper) (http.Handler, error) {
	proxies := make(map[string]*httputil.ReverseProxy, len(backends))
	for _, b := range backends {
		target, err := url.Parse(b.URL)
		if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
			return nil, fmt.Errorf("backend %s: URL %q is not http://host:port", b.Name, b.URL)
		}
		name := b.Name
		proxies[name] = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target) // also sets Host, so the backend sees its own name
				pr.SetXForwarded()
			},
			Transport: transport,
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				httpjson.Error(w, http.StatusBadGateway, fmt.Sprintf("%s is unreachable: %v", name, err))
			},
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		p, ok := proxies[name]
		if !ok {
			httpjson.Error(w, http.StatusNotFound, "no service serves "+r.URL.Path)
			return
		}
		p.ServeHTTP(w, r)
	}), nil
}

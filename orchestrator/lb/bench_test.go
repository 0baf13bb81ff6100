package lb

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkProxy measures one GET through the balancer to a fasthttp
// backend, both on 127.0.0.1, with allocations per request (client and
// backend included; both allocate nothing once warm).
func BenchmarkProxy(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 347) // the shop's /catalog
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set(ReplicaHeader, "a")
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}}
	go srv.Serve(ln)
	defer srv.Shutdown()

	lb, err := New(Config{Group: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	lb.SetUpstreams([]Upstream{{ID: "a", Addr: ln.Addr().String()}})
	if err := lb.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	defer lb.Close(b.Context())

	c := &fasthttp.HostClient{Addr: lb.Endpoint()}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://" + lb.Endpoint() + "/catalog")
		for pb.Next() {
			if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Fatalf("%v %d", err, resp.StatusCode())
			}
		}
	})
}

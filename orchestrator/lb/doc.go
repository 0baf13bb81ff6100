// Package lb is the data plane of a group's load balancer: it listens on
// 127.0.0.1, spreads requests over the group's ready replicas, and keeps a
// failing replica from hurting more requests than it must. It knows nothing
// of Docker: the controller creates one Balancer per group and tells it
// which replicas are ready (SetUpstreams), which are going (Drain) and which
// died (MarkDown).
//
// # Rotation
//
// The replicas in rotation are an immutable snapshot, swapped atomically:
// a request picks from the snapshot it loaded, and a replica that leaves
// finishes the requests it already has. Drain returns once those are done;
// MarkDown does not wait.
//
// # Policies
//
// A policy is a selector with one method, pick, over the snapshot:
// round-robin (the default), least-connections (fewest requests in flight,
// ties round-robin), p2c (the less busy of two random replicas) and sticky
// (rendezvous hashing of the shopper named by header X-Shopper or cookie
// "shopper", round-robin without one). Carts live in a replica's memory, so
// sticky is what keeps a shopper's cart; when a replica leaves only its own
// shoppers move. SetPolicy switches at run time.
//
// # Failures
//
// Outlier detection is passive: EjectAfter consecutive failures (refused,
// reset, timed out, or a 5xx answer) take a replica out of rotation for
// EjectBase, doubling with each repeat up to EjectMax. At most
// MaxEjectedPercent of the set is ejected at once, so when every replica
// fails, the rest keep serving and the client sees the replica's real
// error, not a blanket 503. OnEvent hears of ejections and returns.
//
// A try that fails before any answer (refused, reset, or no answer within
// TryTimeout, which is what a paused container looks like) is retried once
// on another replica if the request is safe to repeat: GET, HEAD, OPTIONS,
// PUT, DELETE, or any method with an Idempotency-Key header. A POST without
// one is never sent twice. Retries are bounded by a budget: RetryRatio of
// the last 10 s of requests plus RetryFloor per second. Request bodies are
// read whole before the first try (up to MaxRequestBody), which is what
// lets a retry replay them.
//
// With no replica in rotation the answer is 503 with
// {"error":"no ready replicas in group G"}. The balancer appends the
// client to X-Forwarded-For, keeps Host, drops hop-by-hop headers and passes
// the replica's X-Flotilla-Replica through.
//
// # Data path
//
// The selection, ejection, retry and budget logic above is plain Go over
// atomics (policy.go, retry.go, balancer.go) with no HTTP in it. The HTTP
// path (proxy.go, conn.go) is github.com/valyala/fasthttp: its server in
// front, one fasthttp.HostClient connection pool per replica behind, the
// request and response objects of the server reused for the upstream
// exchange, so a proxied request allocates nothing (BenchmarkProxy:
// 0 allocs/op). Its sockets make their reads and writes with
// syscall.RawSyscall (rawConn): they are non-blocking, and telling the
// scheduler about each one cost the Go runtime's monitor thread about a
// tenth of the balancer's CPU in handing Ps between threads.
//
// Chosen on these figures, from scripts/bench-lb.sh on the 2-core
// development machine (wrk -t2 -c64, three shop replicas as processes,
// GET /catalog, medians of alternating rounds; the machine is shared, so
// single runs vary by ±20%):
//
//	data path                                  req/s   proxy CPU µs/req
//	net/http httputil.ReverseProxy, tuned      12 000      68
//	fasthttp, net.Conn sockets                 22 300      28.6
//	fasthttp, raw-syscall sockets (this)       24 700      24.3
//	nginx 1.22 (2 workers, upstream keepalive) 31 800      20.8
//	HAProxy 2.6 (nbthread 2, http-reuse)       29 400      21.9
//
// So the balancer does about twice the work of the standard library's
// proxy for the same CPU, and reaches about 0.8x nginx's throughput at
// about 1.15x its CPU per request. Profiles say where the rest goes: the
// kernel's cost of a request (two loopback sends of about 6 µs each, two
// receives) is the same for all three proxies; what remains is the
// goroutine-per-connection model (a park, a netpoll and a wake for each
// wait on a socket, and a receive that finds nothing before every wait:
// about 6 syscalls per request against nginx's 5) and fasthttp's parsing,
// about 3 µs per request more than nginx's user time. Closing that gap
// needs an event loop of our own (epoll on locked threads, an HTTP/1.1
// parser over its buffers), which is future work.
package lb

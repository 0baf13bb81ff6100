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
// 0 allocs/op). On Linux its sockets make their reads and writes with
// syscall.RawSyscall (rawConn, conn_linux.go): they are non-blocking, and telling the
// scheduler about each one cost the Go runtime's monitor thread about a
// tenth of the balancer's CPU in handing Ps between threads.
//
// Chosen on these figures, from orchestrator/lb/lbbench/bench-lb.sh (make bench-lb) (BASELINE=1,
// PROTOTYPE=1) and A/B runs of the same harness on the 2-core development
// machine: wrk -t2 -c64 to three shop replicas run as processes,
// GET /catalog, medians of alternating 10 s rounds, proxy CPU from /proc.
// The machine is shared, so a single round varies by up to ±20%; the
// ranges are four full runs.
//
//	data path                                  req/s            proxy CPU µs/req
//	net/http httputil.ReverseProxy, tuned      13 200 - 14 500  69 - 74
//	fasthttp over net.Conn sockets             22 300           28.6   (A/B)
//	fasthttp over raw-syscall sockets (this)   27 400 - 31 100  21.6 - 24.8
//	nginx 1.22, upstream keepalive 64          32 000 - 35 400  19.5 - 20.6
//	HAProxy 2.6, nbthread 2, http-reuse        29 400 - 35 200  19.6 - 21.4
//	event-loop prototype (lbbench)             32 100 - 38 900  17.5 - 19.0
//	nginx 1.22 without upstream keepalive      11 700           74     (A/B)
//	(wrk straight to one replica)              62 300 - 65 100  -
//
// So this data path does twice the requests of the standard library's
// proxy at a third of its CPU, and reaches 0.78 to 0.95 of nginx's and
// HAProxy's throughput at 1.02 to 1.27 times their CPU per request, with
// a p99 latency like theirs (it beats nginx, by 2.8x, only when nginx is
// left without upstream keep-alive). Profiles say where the rest goes:
// the kernel's share of a request (two loopback sends of about 6 µs each,
// with their netfilter and wake-up, and two receives) is the same for all
// three proxies; what remains is the goroutine per connection (a park, a
// netpoll and a wake-up for each wait on a socket, and a receive that finds
// nothing before each wait: about 6 syscalls per request against nginx's 5)
// and fasthttp's parsing, together about 3 µs of user time per request
// more than nginx.
//
// An event loop of our own removes the first part, as the prototype in
// lbbench (evloop_linux.go: one epoll loop per P on a locked thread,
// level-triggered reads, raw socket calls) shows: it undercuts both
// nginx's and HAProxy's CPU per request by 5 to 10% and matches or passes
// their throughput. It handles only the benchmark's shape, though; a real
// one needs an HTTP/1.1 parser with bodies (Content-Length, chunked,
// close-delimited), non-blocking connects, partial writes, a timer wheel
// for try and idle timeouts, and the retry and drain rules above, which is
// why it is not the data path yet.
package lb

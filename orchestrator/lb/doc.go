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
// client to X-Forwarded-For, keeps Host, drops hop-by-hop headers and the
// fields Connection names, sends its own version (HTTP/1.1) to the replica
// and passes the replica's X-Flotilla-Replica through.
//
// # Framing
//
// Both data paths read requests and answers with package http1, which
// takes only messages whose framing has one reading (RFC 9112; the rules
// are in its package doc). An ambiguous request (both Content-Length and
// Transfer-Encoding, repeated lengths, a coding other than a single
// chunked, bad chunks, bare CR or LF, control bytes, no Host, a version
// other than 1.0 and 1.1...) is answered 400, a body over MaxRequestBody
// 413, and the connection closes. An ambiguous answer is a 502 to the
// client, counts against the replica, is never retried, and its connection
// is closed. A connection to a replica goes back to its pool only when the
// request went out whole and the answer came back whole with nothing after
// it; one the replica writes to while pooled is closed.
//
// # Resources
//
// Buffers grow as bytes arrive, never from an announced length, and every
// buffer counts against MaxBufferedBytes per balancer: a request that
// would pass it is answered 503 and its connection closed. A request head
// must arrive within HeaderTimeout of its first byte and its body within
// BodyTimeout of the head (else 408 and close); an answer must be written
// within WriteTimeout (else the connection closes); at most MaxConns
// client connections are open (one more is answered 503 and closed). The
// balancer's own answers (400, 408, 413, 431, 502, 503, 504) have the same
// head on both paths: status line, Content-Type: application/json,
// Content-Length, Connection: close when closing; no Date.
//
// # Data path
//
// The selection, ejection, retry and budget logic above is plain Go over
// atomics (policy.go, retry.go, balancer.go) with no HTTP in it; the
// decisions of one request (pick, retry, counting, the balancer's own
// answers) are in request.go, used by both data paths, and the bounds in
// limits.go. Two data paths carry requests through them (Config.DataPath):
//
//   - The event loop (evloop_linux.go; the default on Linux, amd64
//     and arm64): one epoll loop per P, the accepted connections dealt
//     round-robin among them, level-triggered (no read that finds nothing),
//     raw socket calls (no scheduler hand-off per call), a loop with nothing
//     to do parked in the runtime's poller (its P free), its own HTTP/1.1
//     parsing that rewrites the request head for the replica in one pass,
//     non-blocking connects, a pool of idle connections per replica and
//     loop, partial writes, a FIFO of try deadlines, and a one-second sweep
//     for idle connections and the timeouts. It takes requests with a
//     Content-Length body or none (it answers Expect: 100-continue
//     itself); a connection that sends a well-framed request of another
//     kind (a chunked body, Upgrade, HTTP/1.0, a head over 16 KiB...)
//     leaves the loop for the fasthttp path with what was read of it. Responses of every framing (length, chunked,
//     until close, 1xx before) are read by the loop.
//   - fasthttp (proxy.go, framer.go, transport.go, conn.go; the default
//     elsewhere): the github.com/valyala/fasthttp server in front, fed
//     whole, checked requests by framedConn; one HostClient pool per
//     replica behind, whose answers strictTransport checks; sockets with
//     raw calls on Linux (rawConn).
//
// Both are tested with the same behaviour tests (datapath_test.go and
// hostile_test.go run the socket-level ones on each, TestFasthttpDataPath
// the rest).
//
// Chosen on these figures, from make bench-lb (bench-lb.sh, with
// BASELINE=1 FASTHTTP=1) on the 2-core development machine: wrk -t2 -c64 to
// three shop replicas run as processes, GET /catalog, medians of
// alternating rounds, proxy CPU from /proc. The machine is shared, so a
// round varies by up to ±20%.
//
//	data path                                  req/s            proxy CPU µs/req
//	net/http httputil.ReverseProxy, tuned      13 200 - 14 500  69 - 74
//	fasthttp over net.Conn sockets             22 300           28.6
//	fasthttp over raw-syscall sockets          26 900 - 31 100  21.6 - 26.9
//	event loop (this)                          36 100           17.3
//	nginx 1.22, upstream keepalive 64          29 900 - 35 800  19.5 - 23.4
//	HAProxy 2.6, nbthread 2, http-reuse        28 500 - 35 200  19.6 - 26.0
//	(wrk straight to one replica)              62 300 - 65 100  -
//
// On another, slower machine of the same size (wrk straight to a replica
// 37 300 req/s) one run gave the event loop 1.15x nginx's throughput at
// 0.73x its CPU per request, and 1.22x HAProxy's at 0.67x; with real
// replicas at their upstream addresses 1.24x and 1.15x, at 0.63x and 0.67x.
//
// Where the difference comes from: the kernel's share of a request (two
// loopback sends with their netfilter and wake-ups, two receives) is the
// same for every proxy, about four fifths of nginx's CPU. With a goroutine
// per connection, fasthttp adds a park, a netpoll and a wake-up for each
// wait on a socket and a receive that finds nothing before most waits, and
// its general parsing; together about 3 µs per request more than nginx. The
// event loop waits in epoll only, reads only readable sockets and parses
// just what a proxy needs. How it waits mattered too: loops blocking in
// epoll_wait held every P in a system call, and the runtime's monitor
// thread woke every few milliseconds to take them back (a tenth of the
// CPU); parked in the runtime's poller instead, the same loops use 10-15%
// less CPU per request.
package lb

package lb

import "sync/atomic"

// safeToRepeat reports whether a request may be sent a second time: its
// method is idempotent (RFC 9110, 9.2.2), or the client gave it an
// Idempotency-Key, promising the replica will apply it once. A POST without
// a key is never repeated, even when its first try failed, because the
// balancer cannot know whether the replica acted on it.
func safeToRepeat(method []byte, hasKey bool) bool {
	switch string(method) { // no allocation: the compiler reads the bytes in place
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE":
		return true
	}
	return hasKey
}

// tryOutcome classifies how one try at one replica ended.
type tryOutcome uint8

const (
	// outcomeResponse: the replica answered, with any status.
	outcomeResponse tryOutcome = iota
	// outcomeConnFailed: refused, reset or closed before the first response
	// byte: the replica is (for now) unreachable. Counts towards ejection;
	// retryable.
	outcomeConnFailed
	// outcomeTimeout: the try ran out of TryTimeout. Counts towards
	// ejection; retryable.
	outcomeTimeout
	// outcomeLocal: the balancer gave up for a reason of its own (a
	// response too large, no free connection); not the replica's fault, not
	// retried.
	outcomeLocal
	// outcomeBadResponse: the replica answered with a message that is not
	// strict HTTP/1.1 (two framings, bad chunks, a bare CR...). Counts
	// towards ejection; never retried: the replica may have acted on it.
	outcomeBadResponse
)

// failed reports whether the outcome counts against the replica.
func (o tryOutcome) failed(status int) bool {
	switch o {
	case outcomeResponse:
		return status >= 500
	case outcomeConnFailed, outcomeTimeout, outcomeBadResponse:
		return true
	}
	return false
}

// retryable reports whether the request may be tried again elsewhere:
// the replica never started to answer.
func (o tryOutcome) retryable() bool {
	return o == outcomeConnFailed || o == outcomeTimeout
}

// retryBudget bounds retries to ratio of the requests in the last
// windowSeconds, plus floor per second, like Finagle's RetryBudget: when
// every replica fails, retries add at most ratio extra load instead of
// doubling it.
type retryBudget struct {
	ratio, floor float64
	requests     window
	retries      window
}

// request records one incoming request.
func (rb *retryBudget) request(sec int64) { rb.requests.add(sec, 1) }

// withdraw takes one retry from the budget; it reports false, and takes
// nothing, when the budget is spent. Concurrent callers may overdraw it by
// a few retries, which is fine for a bound on load.
func (rb *retryBudget) withdraw(sec int64) bool {
	allowed := rb.ratio*float64(rb.requests.sum(sec)) + rb.floor*windowSeconds
	if float64(rb.retries.sum(sec)) >= allowed {
		return false
	}
	rb.retries.add(sec, 1)
	return true
}

// windowSeconds is the length of the sliding windows: the retry budget and
// each replica's recent share of traffic.
const windowSeconds = 10

// window counts events in the last windowSeconds whole seconds, in one
// bucket per second. It is approximate at bucket boundaries (an add racing
// with the bucket's reset may be lost) and exact otherwise; it never blocks.
type window struct {
	b [windowSeconds]struct {
		sec atomic.Int64
		n   atomic.Uint64
	}
}

func (w *window) add(sec int64, n uint64) {
	b := &w.b[uint64(sec)%windowSeconds]
	if s := b.sec.Load(); s != sec && b.sec.CompareAndSwap(s, sec) {
		b.n.Store(0)
	}
	b.n.Add(n)
}

// sum returns the count over the window that ends with second sec.
func (w *window) sum(sec int64) uint64 {
	var total uint64
	for i := range w.b {
		b := &w.b[i]
		if s := b.sec.Load(); s <= sec && sec-s < windowSeconds {
			total += b.n.Load()
		}
	}
	return total
}

package lb

import (
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Upstream is one replica the balancer may send requests to.
type Upstream struct {
	// ID identifies the replica across updates (for example its container
	// ID). An Upstream with a known ID and the same Addr keeps its counters,
	// ejection state and pooled connections.
	ID string
	// Name is the replica's name for people and metrics (e.g. "shop-2");
	// default ID.
	Name string
	// Addr is the "host:port" the balancer dials.
	Addr string
}

func (u Upstream) label() string {
	if u.Name != "" {
		return u.Name
	}
	return u.ID
}

// host is the balancer's state for one upstream. Fields read on every
// request are atomics; the rest is guarded by Balancer.mu.
type host struct {
	up     Upstream
	idHash uint64 // hash of ID, mixed with the shopper's for sticky
	client *fasthttp.HostClient
	dial   dialTarget // where the event loop connects

	inflight atomic.Int64
	// ejected is read on every pick; set and cleared under Balancer.mu.
	ejected atomic.Bool
	// consecFails counts failures since the last success.
	consecFails atomic.Int32

	// drained is signalled (never closed) when inflight drops to zero while
	// draining is set, so Drain wakes without polling.
	draining atomic.Bool
	drained  chan struct{}

	m hostMetrics

	// Guarded by Balancer.mu.
	ejections    int       // ejections in the current streak, for doubling
	ejectedUntil time.Time // zero unless ejected
	restoredAt   time.Time
	ejectTimer   *time.Timer
}

func newHost(u Upstream, cfg *Config, b *Balancer) *host {
	h := &host{
		up:      u,
		idHash:  hash64([]byte(u.ID)),
		drained: make(chan struct{}, 1),
	}
	if cfg.DataPath == DataPathEventLoop {
		h.dial = resolveDial(u.Addr)
	}
	h.client = &fasthttp.HostClient{
		Addr:        u.Addr,
		DialTimeout: dialRaw,
		// Paths pass through as they are, and no User-Agent is added.
		DisablePathNormalizing:   true,
		NoDefaultUserAgentHeader: true,
		MaxConns:                 1024,
		// Wait for a pooled connection rather than fail at once when the
		// pool is full; the per-try deadline still bounds the wait.
		MaxConnWaitTimeout: cfg.TryTimeout,
		// Below the 60 s idle timeout of the shop's server, so the balancer
		// closes an idle connection before the replica does.
		MaxIdleConnDuration: 30 * time.Second,
		MaxResponseBodySize: cfg.MaxResponseBody,
		ReadBufferSize:      8 << 10,
		WriteBufferSize:     8 << 10,
		// Try twice on the same replica only when a pooled connection turns
		// out to be closed, and only for requests safe to repeat; every other
		// retry is the balancer's, on another replica.
		MaxIdemponentCallAttempts: 2,
		Transport:                 strictTransport{b: b},
		RetryIfErr: func(req *fasthttp.Request, _ int, err error) (bool, bool) {
			return false, isStaleConn(err) && safeToRepeat(req.Header.Method(), len(req.Header.Peek(IdempotencyKeyHeader)) > 0)
		},
	}
	return h
}

// begin and end bracket one try on h.
func (h *host) begin() { h.inflight.Add(1) }

func (h *host) end() {
	if h.inflight.Add(-1) == 0 && h.draining.Load() {
		select {
		case h.drained <- struct{}{}:
		default:
		}
	}
}

// usable reports whether a selector may pick h.
func (pc *pickCtx) usable(h *host) bool {
	return h != pc.exclude && (pc.ignoreEjection || !h.ejected.Load())
}

// set is an immutable snapshot of the hosts in rotation. A new set replaces
// the old one atomically; requests already holding a host finish on it.
type set struct {
	hosts []*host
	// canary and stable are the two sides of a split (split.go), percent
	// the canary's share; nil and 0 without one.
	canary, stable []*host
	percent        int
}

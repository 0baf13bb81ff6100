package lb

import (
	"net"
	"sync/atomic"
	"time"
)

// idleClientTimeout closes a client's connection after this long without a
// request, on both data paths.
const idleClientTimeout = 90 * time.Second

// memBudget bounds the bytes a balancer holds in buffers at once
// (Config.MaxBufferedBytes): request bodies being received, answers being
// read from replicas or written to clients. A buffer grows only if the
// budget has room; the request that would pass it is refused with 503 and
// its connection closed, so a flood of large or slow messages costs a
// bounded amount of memory however many connections carry it.
type memBudget struct {
	used atomic.Int64
	max  int64
}

// take charges n bytes; it reports false, and charges nothing, when that
// would pass the budget.
func (m *memBudget) take(n int) bool {
	if n <= 0 {
		return true
	}
	if m.used.Add(int64(n)) > m.max {
		m.used.Add(-int64(n))
		return false
	}
	return true
}

// give returns n bytes to the budget.
func (m *memBudget) give(n int) {
	if n != 0 {
		m.used.Add(-int64(n))
	}
}

// admit counts a new client connection; it reports false, counting
// nothing, when Config.MaxConns are open already.
func (b *Balancer) admit() bool {
	if b.open.Add(1) > int64(b.cfg.MaxConns) {
		b.open.Add(-1)
		b.refusedConns.Add(1)
		return false
	}
	return true
}

// tooManyConns is what a client over Config.MaxConns is sent before its
// connection closes.
func (b *Balancer) tooManyConns() []byte {
	return b.appendOwnAnswer(nil, 503, errorBody("too many open connections to the balancer of group "+b.cfg.Group), true, false)
}

// limitedListener hands the fasthttp server framed connections, at most
// Config.MaxConns at once; one over the limit is answered 503 and closed.
type limitedListener struct {
	net.Listener
	b *Balancer
}

func (l limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.b.admit() {
			c.SetWriteDeadline(time.Now().Add(time.Second)) //nolint:errcheck // best effort
			c.Write(l.b.tooManyConns())                     //nolint:errcheck // best effort
			c.Close()
			continue
		}
		rc := newRawConn(c)
		return newFramedConn(l.b, rc, clientIP(rc)), nil
	}
}

// clientIP is the client's address as text, for X-Forwarded-For.
func clientIP(c net.Conn) []byte {
	if rc, ok := c.(*rawConn); ok {
		return rc.ip
	}
	return appendIP(nil, c.RemoteAddr())
}

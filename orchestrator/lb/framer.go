package lb

import (
	"bytes"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/flotilla/flotilla/orchestrator/lb/http1"
)

// framedConn is a client's connection on the fasthttp path. The fasthttp
// server reads leniently (it takes a request with both Content-Length and
// Transfer-Encoding, bare LFs, control bytes...), so it never reads the
// client directly: framedConn reads the client, checks each request with
// package http1 as the event loop does, and hands the server only whole,
// strict requests, body included. That also bounds what a request costs:
// the body is buffered as it arrives, charged to the balancer's budget, and
// the server (which sizes its buffer from Content-Length) sees it only once
// it is all here. A request that fails the check, or whose head or body
// does not arrive in time, is handed on as a stand-in request that the
// handler answers with the refusal (refused), and the connection ends.
type framedConn struct {
	net.Conn
	b  *Balancer
	ip []byte

	buf   []byte // read from the client: buf[off:ready] checked, to deliver
	off   int
	ready int
	held  atomic.Int64 // bytes of buf charged to the budget

	// The request being checked, once its head is whole.
	head     http1.Request
	headDone bool
	chunks   http1.Chunks
	started  time.Time // the request's first byte, then its head's end

	msgs     uint64 // requests handed to the server
	refuseAt uint64 // the request number answered with the refusal, 0 for none
	code     int
	problem  string
	rerr     error // the read error to return once delivered bytes run out

	idleDL time.Time // the server's read deadline: how long to wait for a request
	setDL  time.Time // the deadline set on the socket
	closed atomic.Bool
}

// standIn is what the server reads in place of a refused request.
const standIn = "GET / HTTP/1.1\r\nHost: balancer\r\n\r\n"

var errRefused = errors.New("request refused")

func newFramedConn(b *Balancer, c net.Conn, ip []byte) *framedConn {
	f := &framedConn{Conn: c, b: b, ip: ip}
	b.framedMu.Lock()
	b.framed[f] = struct{}{}
	b.framedMu.Unlock()
	return f
}

// closeFramed closes every client connection of the fasthttp path: what
// the server's shutdown left open (it leaves a connection that never sent
// a request alone for its first 5 s).
func (b *Balancer) closeFramed() {
	b.framedMu.Lock()
	open := make([]*framedConn, 0, len(b.framed))
	for f := range b.framed {
		open = append(open, f)
	}
	b.framedMu.Unlock()
	for _, f := range open {
		f.Close()
	}
}

// refused reports whether request n of the connection is the stand-in of
// a refused one, and with what.
func (f *framedConn) refused(n uint64) (int, string, bool) {
	if f.refuseAt != 0 && n == f.refuseAt {
		return f.code, f.problem, true
	}
	return 0, "", false
}

// SetReadDeadline takes the server's deadline for the wait between
// requests; within a request, the balancer's header and body timeouts
// apply instead.
func (f *framedConn) SetReadDeadline(t time.Time) error {
	f.idleDL = t
	return nil
}

func (f *framedConn) SetDeadline(t time.Time) error {
	f.idleDL = t
	return f.Conn.SetWriteDeadline(t)
}

func (f *framedConn) Read(p []byte) (int, error) {
	for f.off == f.ready {
		if f.rerr != nil {
			return 0, f.rerr
		}
		f.compact()
		if f.frame() {
			break
		}
		if f.rerr == nil {
			f.fill()
		}
	}
	n := copy(p, f.buf[f.off:f.ready])
	f.off += n
	return n, nil
}

// compact drops what was delivered.
func (f *framedConn) compact() {
	if f.off == 0 {
		return
	}
	f.buf = f.buf[:copy(f.buf, f.buf[f.off:])]
	f.ready -= f.off
	f.off = 0
	if len(f.buf) == 0 && cap(f.buf) > keepBufferSize {
		f.release() // grown for a large request: not kept for the next
	}
}

// frame checks the request at the start of buf; it reports true when one
// is ready to deliver (a whole request or the stand-in of a refused one).
func (f *framedConn) frame() bool {
	if len(f.buf) == 0 {
		return false
	}
	cfg := &f.b.cfg
	if !f.headDone {
		if f.started.IsZero() {
			f.started = time.Now()
		}
		r, _, st := http1.ParseRequest(f.buf, f.ip, cfg.MaxRequestBody, nil)
		switch {
		case st == http1.NeedMore:
			return false
		case st == http1.Bad:
			return f.refuse(r.Code, r.Problem)
		case st == http1.Handoff && r.HeadLen == 0:
			return f.refuse(431, "request head over the balancer's limit")
		}
		f.head, f.headDone, f.chunks = r, true, http1.Chunks{Next: r.HeadLen}
		f.started = time.Now()
		if r.Expect100 && !f.bodyIn(r) {
			// The server would say 100 Continue only once it has the
			// request, which it gets with its body: say it now. Every
			// earlier answer is out (the server flushes before it reads
			// on), so this one cannot overtake any.
			f.Conn.Write(continue100) //nolint:errcheck // a gone client fails the next read
		}
	}
	end := f.head.Total()
	if f.head.Chunked {
		e, st := http1.ChunkedEnd(f.buf, &f.chunks, cfg.MaxRequestBody)
		switch st {
		case http1.Bad:
			if f.chunks.TooLarge {
				return f.refuse(413, "request body over the limit")
			}
			return f.refuse(400, "malformed chunked body")
		case http1.NeedMore:
			return false
		}
		end = e
	}
	if len(f.buf) < end {
		return false
	}
	if f.head.Expect100 {
		// Answered above if it had to be; the server would answer it
		// again, even with the body in.
		n := stripExpect(f.buf, f.head.HeadLen)
		f.buf = f.buf[:len(f.buf)-n]
		end -= n
	}
	f.ready, f.headDone, f.started = end, false, time.Time{}
	f.msgs++
	return true
}

// bodyIn reports whether the body of r, a Content-Length request, or the
// end of a chunked one, is buffered.
func (f *framedConn) bodyIn(r http1.Request) bool {
	if r.Chunked {
		_, st := http1.ChunkedEnd(f.buf, &http1.Chunks{Next: r.HeadLen}, f.b.cfg.MaxRequestBody)
		return st != http1.NeedMore
	}
	return len(f.buf) >= r.Total()
}

// stripExpect removes the Expect fields from the head at the start of
// buf, headLen bytes long, moving all that follows up (the caller then
// drops the last bytes); it returns the bytes removed.
func stripExpect(buf []byte, headLen int) int {
	removed := 0
	for off := bytes.IndexByte(buf, '\n') + 1; off < headLen-removed-2; {
		eol := off + bytes.IndexByte(buf[off:], '\n') + 1
		if len(buf)-off > 7 && bytes.EqualFold(buf[off:off+7], []byte("expect:")) {
			n := eol - off
			copy(buf[off:], buf[eol:])
			removed += n
			buf = buf[:len(buf)-n]
			continue
		}
		off = eol
	}
	return removed
}

// refuse delivers the stand-in for the request being read and ends the
// connection after it.
func (f *framedConn) refuse(code int, problem string) bool {
	f.code, f.problem = code, problem
	f.msgs++
	f.refuseAt = f.msgs
	f.release()
	f.buf = append(f.buf[:0], standIn...)
	f.off, f.ready = 0, len(f.buf)
	f.rerr = errRefused
	return true
}

// fill reads more of the client, within the deadline of what is awaited.
func (f *framedConn) fill() {
	cfg := &f.b.cfg
	dl := f.idleDL
	switch {
	case f.headDone:
		dl = f.started.Add(cfg.BodyTimeout)
	case len(f.buf) > 0:
		dl = f.started.Add(cfg.HeaderTimeout)
	}
	if !dl.Equal(f.setDL) {
		f.Conn.SetReadDeadline(dl) //nolint:errcheck // a closed connection fails the read below
		f.setDL = dl
	}
	if len(f.buf) == cap(f.buf) {
		n := max(4096, 2*cap(f.buf))
		if !f.b.mem.take(n - cap(f.buf)) {
			f.refuse(503, overBudget)
			return
		}
		f.held.Add(int64(n - cap(f.buf)))
		f.buf = append(make([]byte, 0, n), f.buf...)
	}
	n, err := f.Conn.Read(f.buf[len(f.buf):cap(f.buf)])
	f.buf = f.buf[:len(f.buf)+n]
	if err == nil {
		return
	}
	if errors.Is(err, os.ErrDeadlineExceeded) && len(f.buf) > 0 {
		f.refuse(408, "request not received in time")
		return
	}
	f.rerr = err
}

// release gives the buffer's bytes back to the budget.
func (f *framedConn) release() {
	f.b.mem.give(int(f.held.Swap(0)))
	f.buf = nil
}

func (f *framedConn) Close() error {
	if f.closed.Swap(true) {
		return nil
	}
	// The buffer itself is left to the reader, which may be in a read.
	f.b.mem.give(int(f.held.Swap(0)))
	f.b.framedMu.Lock()
	delete(f.b.framed, f)
	f.b.framedMu.Unlock()
	f.b.open.Add(-1)
	return f.Conn.Close()
}

package lb

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flotilla/flotilla/orchestrator/lb/http1"
)

// strictTransport carries the fasthttp path's tries to a replica. It writes
// the request as fasthttp does, but reads the answer with package http1, as
// the event loop does, and only then lets fasthttp parse it: an ambiguous
// answer (two framings, bad chunks, a bare CR...) fails the try with 502
// and its connection is closed. A connection goes back to the pool only
// when the request went out whole and the answer came back whole with
// nothing after it; one that received bytes while pooled is closed before
// it is used.
type strictTransport struct {
	b *Balancer
}

var errUnasked = errors.New("the replica sent bytes nobody asked for")

var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8192); return &b }}

var bufReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

func (t strictTransport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (bool, error) {
	cfg := &t.b.cfg
	deadline := time.Now().Add(cfg.TryTimeout)
	cc, err := hc.AcquireConn(cfg.TryTimeout, req.ConnectionClose())
	if err != nil {
		return false, err
	}
	conn := cc.Conn()
	// The deadline first: a pooled connection still has the last try's,
	// long past, and a peek would fail on it.
	if err := conn.SetDeadline(deadline); err != nil {
		hc.CloseConn(cc)
		return true, err
	}
	if pending(conn) {
		hc.CloseConn(cc)
		return true, io.EOF // stale: tried again on a fresh connection where safe
	}
	bw := hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		hc.CloseConn(cc)
		return true, err
	}

	bp := readBufs.Get().(*[]byte)
	buf, held := (*bp)[:0], 0
	defer func() {
		t.b.mem.give(held)
		if cap(buf) <= keepBufferSize {
			*bp = buf[:0]
			readBufs.Put(bp)
		}
	}()
	isHEAD := req.Header.IsHead()
	limit := http1.MaxResponseHead + cfg.MaxResponseBody
	var rh http1.Response
	headDone, end, eof := false, 0, false
	for {
		if !eof {
			if len(buf) == cap(buf) {
				if cap(buf) >= limit {
					hc.CloseConn(cc)
					return false, fasthttp.ErrBodyTooLarge
				}
				n := min(2*cap(buf), limit)
				if !t.b.mem.take(n - cap(buf)) {
					hc.CloseConn(cc)
					return false, errOverBudget
				}
				held += n - cap(buf)
				buf = append(make([]byte, 0, n), buf...)
			}
			n, rerr := conn.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			switch {
			case errors.Is(rerr, io.EOF) && headDone && rh.Kind == http1.BodyToEOF:
				eof = true
			case rerr != nil:
				hc.CloseConn(cc)
				if len(buf) > 0 && errors.Is(rerr, io.EOF) {
					rerr = io.ErrUnexpectedEOF // not a stale connection: do not repeat
				}
				return len(buf) == 0, rerr
			}
		}
		for !headDone {
			r, st := http1.ParseResponse(buf, isHEAD)
			switch {
			case st == http1.NeedMore:
				goto more
			case st == http1.Bad || r.Status == 101:
				hc.CloseConn(cc)
				return false, errMalformed
			case r.Status < 200:
				buf = buf[:copy(buf, buf[r.HeadLen:])]
				continue
			}
			rh, headDone = r, true
		}
		if eof {
			end = len(buf)
			break
		}
		if e, st := http1.ResponseEnd(buf, &rh); st == http1.Bad {
			hc.CloseConn(cc)
			return false, errMalformedChunks
		} else if st == http1.OK {
			end = e
			break
		}
	more:
	}

	resp.SkipBody = isHEAD
	if fh := t.b.freshHead.Load(); fh != nil {
		// As the server makes a head: no Date or Content-Type the replica
		// did not send (the client's Reset of resp brought them back).
		fh.CopyTo(&resp.Header)
	}
	br := bufReaders.Get().(*bufio.Reader)
	br.Reset(bytes.NewReader(buf[:end]))
	err = resp.Read(br)
	br.Reset(nil)
	bufReaders.Put(br)
	if err != nil {
		hc.CloseConn(cc)
		return false, errMalformed
	}
	if eof || end != len(buf) || !rh.Reusable || req.ConnectionClose() || earlyAnswer(len(req.Body()), rh.Status) {
		hc.CloseConn(cc)
	} else {
		hc.ReleaseConn(cc)
	}
	return false, nil
}

// keepBufferSize is the largest read buffer kept for reuse.
const keepBufferSize = 64 << 10

var errOverBudget = errors.New("the balancer's buffer budget is spent")

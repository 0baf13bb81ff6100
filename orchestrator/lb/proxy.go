package lb

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flotilla/flotilla/orchestrator/lb/http1"
)

// newServer returns the fasthttp server of the data path.
func (b *Balancer) newServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               b.serve,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		NoDefaultDate:         true, // the balancer's own answers match the event loop's
		// Bodies pass through byte for byte, multipart ones too.
		DisablePreParseMultipartForm: true,
		MaxRequestBodySize:           b.cfg.MaxRequestBody,
		ReadBufferSize:               16 << 10, // also the largest request head accepted
		// The header and body timeouts are framedConn's; the server's idle
		// timeout is the wait between requests.
		IdleTimeout:     idleClientTimeout,
		ReadTimeout:     idleClientTimeout, // the wait for a connection's first request
		WriteTimeout:    b.cfg.WriteTimeout,
		CloseOnShutdown: true,
		Logger:          quietLogger{},
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			b.keepFreshHead(ctx)
			// framedConn checked the request already: what the server still
			// refuses is refused the same way.
			b.ownAnswer(ctx, 400, rejectBody(400, "unreadable request"), true)
		},
	}
}

// takeOver prepares a client's connection that the event loop hands to
// this path, with what the loop had read of it first in c; serveTakenOver
// serves it until it closes. These two are all the event loop knows of the
// fasthttp path.
func (b *Balancer) takeOver(c net.Conn, ip []byte) net.Conn { return newFramedConn(b, c, ip) }

func (b *Balancer) serveTakenOver(c net.Conn) {
	b.srv.ServeConn(c) //nolint:errcheck // the client sees its errors
}

// quietLogger drops fasthttp's own log lines (a client closing a connection
// mid-request, say): errors that matter reach the client and the counters.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// hopByHop are the headers that describe one connection, not the message
// (RFC 9110, 7.6.1); they are not forwarded. Deleting Connection also
// clears fasthttp's ConnectionClose flag.
var (
	// Expect too: the balancer has read the whole body already.
	hopByHopRequest  = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade", "Expect"}
	hopByHopResponse = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Trailer", "Upgrade"}
)

var headerXFF = []byte("X-Forwarded-For")

// serve forwards one request: pick a replica, try it, and where the try
// failed before any answer and the request is safe to repeat, try once
// more on another replica, within the retry budget (request.go decides).
func (b *Balancer) serve(ctx *fasthttp.RequestCtx) {
	b.keepFreshHead(ctx)
	if fc, ok := ctx.Conn().(*framedConn); ok {
		if code, problem, refused := fc.refused(ctx.ConnRequestNum()); refused {
			b.ownAnswer(ctx, code, rejectBody(code, problem), true)
			return
		}
	}
	start := ctx.Time() // read by the server as the request arrived: one clock read fewer
	sec := start.Unix()
	b.countArrival(sec)
	p := b.policy.Load()
	req := &ctx.Request

	var key []byte
	if p.keyed {
		key = shopperKey(&req.Header)
	}
	clientClose := prepareRequest(ctx)
	repeatable := b.repeatable(req.Header.Method(), len(req.Header.Peek(IdempotencyKeyHeader)) > 0)

	var prev *host
	var held *waiter
	if act := b.act.Load(); act != nil && act.cfg.OnHeld != nil {
		defer func() {
			if held != nil {
				act.cfg.OnHeld(HeldRequest{Arrived: held.arrived, Released: held.released, Answered: time.Now(), Status: ctx.Response.StatusCode()})
			}
		}()
	}
	for {
		h := b.acquire(p, key, prev)
		if h == nil && prev == nil && held == nil {
			if act := b.act.Load(); act != nil {
				w, code, body := b.hold(act)
				held = w
				if code != 0 {
					b.ownAnswer(ctx, code, body, clientClose)
					ctx.Response.Header.Set("Retry-After", retryAfterSeconds)
					return
				}
				h = b.acquire(p, key, prev)
			}
		}
		if h == nil {
			if prev == nil {
				code, body := b.unroutable()
				b.ownAnswer(ctx, code, body, clientClose)
			}
			// Else no other replica to retry on: the first failure stands.
			return
		}
		if held != nil && prev == nil {
			start = time.Now() // the try begins now, not when the request was held
		}
		err := h.client.DoTimeout(req, &ctx.Response, b.cfg.TryTimeout)
		end := time.Now()
		out := classifyErr(err)
		status := 0
		if out == outcomeResponse {
			status = ctx.Response.StatusCode()
		}
		b.endTry(h, out, status, end.Sub(start), sec)
		start = end

		if out == outcomeResponse {
			resp := &ctx.Response
			dropConnectionNamed(&resp.Header)
			for _, k := range hopByHopResponse { // Connection: close too: it was the replica's connection
				resp.Header.Del(k)
			}
			if clientClose {
				ctx.SetConnectionClose()
			}
			return
		}
		if isStaleConn(err) {
			err = errEOF // as the event loop says it
		}
		code, body := b.tryError(h, out, err)
		b.ownAnswer(ctx, code, body, clientClose)
		if !b.retryAfter(prev, repeatable, out, sec) {
			return
		}
		prev = h
	}
}

// keepFreshHead keeps, once, a copy of the response head the server gives
// a request before anything is set on it.
func (b *Balancer) keepFreshHead(ctx *fasthttp.RequestCtx) {
	if b.freshHead.Load() == nil {
		h := &fasthttp.ResponseHeader{}
		ctx.Response.Header.CopyTo(h)
		b.freshHead.CompareAndSwap(nil, h)
	}
}

// ownAnswer makes ctx's response one the balancer makes itself, with the
// same head as appendOwnAnswer's.
func (b *Balancer) ownAnswer(ctx *fasthttp.RequestCtx, code int, body []byte, closing bool) {
	// Reset would bring back the Date header the server leaves out: start
	// from a head as the server makes it instead.
	ctx.Response.ResetBody()
	b.freshHead.Load().CopyTo(&ctx.Response.Header)
	ctx.SetStatusCode(code)
	ctx.Response.Header.SetStatusMessage([]byte(http1.StatusText(code)))
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
	if closing {
		ctx.SetConnectionClose()
	}
}

// prepareRequest turns the client's request into the replica's, in place:
// hop-by-hop headers go, X-Forwarded-For gains the client's address, Host
// stays. It reports whether the client asked to close its connection.
func prepareRequest(ctx *fasthttp.RequestCtx) (clientClose bool) {
	h := &ctx.Request.Header
	// Fields the client's Connection names are hop-by-hop too (read before
	// ResetConnectionClose, which drops Connection).
	var named [][]byte
	for k, v := range h.All() {
		if bytes.EqualFold(k, []byte("Connection")) {
			for tok := range bytes.SplitSeq(v, []byte(",")) {
				if tok = bytes.TrimSpace(tok); len(tok) > 0 {
					named = append(named, append([]byte(nil), tok...))
				}
			}
		}
	}
	clientClose = h.ConnectionClose()
	if clientClose {
		h.ResetConnectionClose()
	}
	for _, k := range named {
		h.DelBytes(k)
	}
	for _, k := range hopByHopRequest {
		h.Del(k)
	}
	// The balancer speaks its own HTTP version to the replica, and adds
	// no Content-Type the client did not send.
	h.SetProtocol("HTTP/1.1")
	h.SetNoDefaultContentType(true)
	ctx.Request.UseHostHeader = true

	var scratch [128]byte
	v := scratch[:0]
	if prior := h.PeekBytes(headerXFF); len(prior) > 0 {
		v = append(append(v, prior...), ", "...)
	}
	switch c := ctx.Conn().(type) {
	case *framedConn:
		v = append(v, c.ip...)
	case *rawConn:
		v = append(v, c.ip...)
	default:
		v = appendIP(v, ctx.RemoteAddr())
	}
	h.SetBytesKV(headerXFF, v)
	return clientClose
}

// dropConnectionNamed deletes the fields the replica's Connection fields
// name: they describe its connection, not the answer.
func dropConnectionNamed(h *fasthttp.ResponseHeader) {
	var named [][]byte
	for k, v := range h.All() {
		if bytes.EqualFold(k, []byte("Connection")) {
			for tok := range bytes.SplitSeq(v, []byte(",")) {
				if tok = bytes.TrimSpace(tok); len(tok) > 0 && !bytes.EqualFold(tok, []byte("close")) &&
					!bytes.EqualFold(tok, []byte("keep-alive")) {
					named = append(named, append([]byte(nil), tok...))
				}
			}
		}
	}
	for _, k := range named {
		h.DelBytes(k)
	}
}

// shopperKey returns the shopper named by the request, header first.
func shopperKey(h *fasthttp.RequestHeader) []byte {
	if k := bytes.TrimSpace(h.Peek(ShopperHeader)); len(k) > 0 {
		return k
	}
	return bytes.TrimSpace(h.Cookie(ShopperCookie))
}

// classifyErr maps a fasthttp client error to a try outcome.
func classifyErr(err error) tryOutcome {
	if err == nil {
		return outcomeResponse
	}
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.As(err, &ne) && ne.Timeout():
		return outcomeTimeout
	case errors.Is(err, errMalformed), errors.Is(err, errMalformedChunks):
		return outcomeBadResponse
	case errors.Is(err, fasthttp.ErrNoFreeConns), errors.Is(err, fasthttp.ErrBodyTooLarge), errors.Is(err, errOverBudget),
		errors.Is(err, fasthttp.ErrHostClientRedirectToDifferentScheme):
		return outcomeLocal
	}
	return outcomeConnFailed
}

// isStaleConn reports whether err is what a pooled connection that the
// replica had closed looks like.
func isStaleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, fasthttp.ErrConnectionClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

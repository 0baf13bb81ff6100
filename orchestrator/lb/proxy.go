package lb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// newServer returns the fasthttp server of the data path.
func (b *Balancer) newServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               b.serve,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		MaxRequestBodySize:    b.cfg.MaxRequestBody,
		ReadBufferSize:        16 << 10, // also the largest request head accepted
		// Only an idle timeout: read and write timeouts would cost two more
		// deadline updates per request, and clients are on this host.
		IdleTimeout:     90 * time.Second,
		CloseOnShutdown: true,
		Logger:          quietLogger{},
	}
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

// maxPicks bounds the picks of one try: a pick may race with a Drain and
// have to be made again.
const maxPicks = 4

// serve forwards one request: pick a replica, try it, and where the try
// failed before any answer and the request is safe to repeat, try once
// more on another replica, within the retry budget.
func (b *Balancer) serve(ctx *fasthttp.RequestCtx) {
	start := ctx.Time() // read by the server as the request arrived: one clock read fewer
	sec := start.Unix()
	b.budget.request(sec)
	p := b.policy.Load()
	req := &ctx.Request

	var key []byte
	if p.keyed {
		key = shopperKey(&req.Header)
	}
	clientClose := prepareRequest(ctx)
	repeatable := !b.cfg.DisableRetry && safeToRepeat(req.Header.Method(), len(req.Header.Peek(IdempotencyKeyHeader)) > 0)

	var prev *host
	for {
		h := b.acquire(p, key, prev)
		if h == nil {
			if prev == nil {
				b.unrouted.Add(1)
				ctx.Response.Reset()
				ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
				ctx.SetContentType("application/json")
				ctx.SetBody(b.noReplicas)
				if clientClose {
					ctx.SetConnectionClose()
				}
				return
			}
			// No other replica to retry on: the first failure stands.
			return
		}
		err := h.client.DoTimeout(req, &ctx.Response, b.cfg.TryTimeout)
		h.end()
		end := time.Now()
		out := classifyErr(err)
		status, class := 0, classError
		if out == outcomeResponse {
			status = ctx.Response.StatusCode()
			class = classOf(status)
		}
		h.m.observe(class, end.Sub(start), sec)
		start = end
		b.recordTry(h, out.failed(status))

		if out == outcomeResponse {
			resp := &ctx.Response
			for _, k := range hopByHopResponse { // Connection: close too: it was the replica's connection
				resp.Header.Del(k)
			}
			if clientClose {
				ctx.SetConnectionClose()
			}
			return
		}
		writeTryError(ctx, h, out, err, b.cfg.TryTimeout)
		if clientClose {
			ctx.SetConnectionClose()
		}
		if prev != nil || !repeatable || !out.retryable() {
			return
		}
		if !b.budget.withdraw(sec) {
			b.retriesDenied.Add(1)
			return
		}
		b.retries.Add(1)
		prev = h
	}
}

// acquire picks a host and counts the try in its in-flight gauge; the
// caller must call end on it. It re-picks if the host left rotation between
// the pick and the count, so a drained host gets no request after Drain
// has seen it idle.
func (b *Balancer) acquire(p *policy, key []byte, exclude *host) *host {
	for range maxPicks {
		h := b.pick(p, b.rotation.Load().hosts, key, exclude)
		if h == nil {
			return nil
		}
		h.begin()
		if !h.draining.Load() {
			return h
		}
		h.end()
	}
	return nil
}

// prepareRequest turns the client's request into the replica's, in place:
// hop-by-hop headers go, X-Forwarded-For gains the client's address, Host
// stays. It reports whether the client asked to close its connection.
func prepareRequest(ctx *fasthttp.RequestCtx) (clientClose bool) {
	h := &ctx.Request.Header
	clientClose = h.ConnectionClose()
	if clientClose {
		h.ResetConnectionClose()
	}
	for _, k := range hopByHopRequest {
		h.Del(k)
	}
	ctx.Request.UseHostHeader = true

	var scratch [128]byte
	v := scratch[:0]
	if prior := h.PeekBytes(headerXFF); len(prior) > 0 {
		v = append(append(v, prior...), ", "...)
	}
	if rc, ok := ctx.Conn().(*rawConn); ok {
		v = append(v, rc.ip...)
	} else {
		v = appendIP(v, ctx.RemoteAddr())
	}
	h.SetBytesKV(headerXFF, v)
	return clientClose
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
	case errors.Is(err, fasthttp.ErrNoFreeConns), errors.Is(err, fasthttp.ErrBodyTooLarge),
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

// writeTryError answers the client for a try that got no response: 504 for
// a timeout, 502 otherwise, naming the replica.
func writeTryError(ctx *fasthttp.RequestCtx, h *host, out tryOutcome, err error, timeout time.Duration) {
	ctx.Response.Reset()
	msg := fmt.Sprintf("replica %s: %v", h.up.label(), err)
	code := fasthttp.StatusBadGateway
	if out == outcomeTimeout {
		code = fasthttp.StatusGatewayTimeout
		msg = fmt.Sprintf("replica %s did not answer within %s", h.up.label(), timeout)
	}
	ctx.SetStatusCode(code)
	ctx.SetContentType("application/json")
	ctx.SetBody(errorBody(msg))
}

// errorBody is the JSON body of an answer the balancer makes itself.
func errorBody(msg string) []byte {
	body, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	return append(body, '\n')
}

// appendIP appends addr's IP to dst.
func appendIP(dst []byte, addr net.Addr) []byte {
	a, ok := addr.(*net.TCPAddr)
	if !ok {
		return dst
	}
	if ip4 := a.IP.To4(); ip4 != nil {
		for i, b := range ip4 {
			if i > 0 {
				dst = append(dst, '.')
			}
			dst = strconv.AppendUint(dst, uint64(b), 10)
		}
		return dst
	}
	return a.AddrPort().Addr().AppendTo(dst)
}

package api

import (
	"bufio"
	"net"
	"net/http"
	"time"
)

// Timeouts bound how long a client may take over a request and its answer,
// so that a client that sends or reads slowly cannot hold a connection, a
// goroutine and its buffers for ever. A zero field takes its default.
//
// They are per request rather than http.Server's ReadTimeout and
// WriteTimeout, which run from the start of a request: those would cut the
// stream's websocket, which lives for hours, and a slow but legitimate
// request (down removes every replica) before it can answer.
type Timeouts struct {
	// ReadHeader bounds reading a request's head (default 5 s).
	ReadHeader time.Duration
	// Body bounds reading a request's body, from the end of its head
	// (default 10 s): far more than a body of MaxBodyBytes needs.
	Body time.Duration
	// Write bounds writing an answer, from its first byte (default 10 s):
	// a client that does not read is cut off.
	Write time.Duration
	// Idle bounds a kept-alive connection waiting for its next request
	// (default 2 min).
	Idle time.Duration
}

// Default timeouts.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultBodyTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
)

func (t Timeouts) withDefaults() Timeouts {
	if t.ReadHeader <= 0 {
		t.ReadHeader = DefaultReadHeaderTimeout
	}
	if t.Body <= 0 {
		t.Body = DefaultBodyTimeout
	}
	if t.Write <= 0 {
		t.Write = DefaultWriteTimeout
	}
	if t.Idle <= 0 {
		t.Idle = DefaultIdleTimeout
	}
	return t
}

// NewServer returns the http.Server that serves h, the handler New returns,
// with the timeouts t.
func NewServer(h http.Handler, t Timeouts) *http.Server {
	t = t.withDefaults()
	return &http.Server{
		Handler:           withDeadlines(h, t),
		ReadHeaderTimeout: t.ReadHeader,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    64 << 10,
	}
}

// withDeadlines gives each request a deadline for its body and one for its
// answer. net/http clears the connection's read deadline once a head is
// read (ReadTimeout is zero) and again when the body ends, before it reads
// in the background to notice a client that leaves, so the body's deadline
// never cancels a handler that works on; a body that never ends keeps it,
// which bounds what net/http discards of it after the answer too. The
// websocket upgrade clears both deadlines, and a request without a body,
// like the stream's, gets no read deadline at all.
func withDeadlines(h http.Handler, t Timeouts) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		// A deadline left from the connection's previous answer must not
		// cut this one; the handler may take its time before it answers.
		_ = rc.SetWriteDeadline(time.Time{})
		if r.Body != nil && r.Body != http.NoBody {
			_ = rc.SetReadDeadline(time.Now().Add(t.Body))
		}
		h.ServeHTTP(&deadlineWriter{ResponseWriter: w, rc: rc, timeout: t.Write}, r)
	})
}

// deadlineWriter sets the write deadline when the answer begins.
type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	started bool
}

func (d *deadlineWriter) start() {
	if !d.started {
		d.started = true
		_ = d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
	}
}

func (d *deadlineWriter) WriteHeader(code int) {
	d.start()
	d.ResponseWriter.WriteHeader(code)
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.start()
	return d.ResponseWriter.Write(p)
}

func (d *deadlineWriter) Flush() {
	d.start()
	_ = d.rc.Flush()
}

// Hijack hands the connection over, as the websocket upgrade needs; gin
// asks the writer for it directly rather than through a controller.
func (d *deadlineWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return d.rc.Hijack()
}

// Unwrap lets http.ResponseController reach the connection.
func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

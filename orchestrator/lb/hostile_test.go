package lb

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests play an attacker at the socket level on every data path: raw
// bytes to the balancer, and replicas that record exactly what bytes reach
// them and answer with whatever bytes the test says.

// recorder is a replica on a raw socket. answer is called with each
// connection's reader and writes what it likes; every byte received is
// kept, per connection.
type recorder struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []*bytes.Buffer
}

func newRecorder(t *testing.T, answer func(br *bufio.Reader, w net.Conn) bool) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := &bytes.Buffer{}
			r.mu.Lock()
			r.conns = append(r.conns, buf)
			r.mu.Unlock()
			go func() {
				defer c.Close()
				br := bufio.NewReader(io.TeeReader(c, lockedWriter{&r.mu, buf}))
				for answer(br, c) {
				}
			}()
		}
	}()
	return r
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (r *recorder) up() Upstream { return Upstream{ID: "rec", Name: "rec", Addr: r.ln.Addr().String()} }

// received returns what each connection received so far.
func (r *recorder) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.conns))
	for i, b := range r.conns {
		out[i] = b.String()
	}
	return out
}

func (r *recorder) all() string { return strings.Join(r.received(), "") }

// okAnswer reads one request with net/http and answers 200 "ok".
func okAnswer(br *bufio.Reader, w net.Conn) bool {
	req, err := http.ReadRequest(br)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, req.Body)
	_, err = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	return err == nil
}

// exchange sends raw on a new connection and returns everything the
// balancer sends back until it closes or wait passes, and whether it closed.
func exchange(t *testing.T, b *Balancer, raw string, wait time.Duration) (string, bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", b.Endpoint(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	got, err := io.ReadAll(c)
	var ne net.Error
	closed := err == nil || !(errors.As(err, &ne) && ne.Timeout()) // a reset is a close too
	return string(got), closed
}

func TestHostileRequestsAre400AndClose(t *testing.T) {
	cases := []struct{ name, raw string }{
		{"CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"TE and CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc"},
		{"TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
		{"TE chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"TE with a tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\x0b\r\n\r\n0\r\n\r\n"},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"},
		{"chunk extension abuse", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;" + strings.Repeat("x", 3000) + "\r\nhello\r\n0\r\n\r\n"},
		{"chunk data too long", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n"},
		{"duplicate CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"},
		{"conflicting CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc"},
		{"CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3,3\r\n\r\nabc"},
		{"NUL in the target", "GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"bare CR in the target", "GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"NUL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n"},
		{"bare CR in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rX-B: b\r\n\r\n"},
		{"control byte in a name", "GET / HTTP/1.1\r\nHost: a\r\nX\x01A: a\r\n\r\n"},
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n"},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n b\r\n\r\n"},
		{"space before colon", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 3\r\n\r\nabc"},
		{"no Host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"},
		{"two Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
		{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n"},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n"},
		{"HTTP/0.9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n"},
		{"no version", "GET /\r\nHost: a\r\n\r\n"},
		{"Connection names Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nConnection: content-length\r\nContent-Length: 3\r\n\r\nabc"},
		{"good then bad on one connection", "GET /first HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"HTTP/1.0 then bad (handed off first)", "GET /first HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"chunked then bad (handed off first)", "POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n"},
	}
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, okAnswer)
		lb := startLB(t, Config{DataPath: path}, rec.up())
		for _, tc := range cases {
			got, closed := exchange(t, lb, tc.raw, 3*time.Second)
			if !closed {
				t.Errorf("%s: the connection stayed open", tc.name)
			}
			last := got[max(strings.LastIndex(got, "HTTP/1.1 400 "), 0):]
			if !strings.HasPrefix(last, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n") ||
				!strings.Contains(last, "\r\nConnection: close\r\n\r\n{\"error\":\"bad request: ") {
				t.Errorf("%s: answer %q, want 400 with Connection: close", tc.name, got)
			}
			if first := strings.HasPrefix(tc.raw[4:], "/first") || strings.HasPrefix(tc.raw[5:], "/first"); first {
				if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") {
					t.Errorf("%s: the good request before got %q", tc.name, got)
				}
			}
		}
		if all := rec.all(); strings.Contains(all, "smuggled") || strings.Contains(all, "POST / ") || strings.Contains(all, "\x00") {
			t.Errorf("a refused request reached the replica:\n%q", all)
		}
	})
}

func TestBalancerSpeaksItsOwnVersionAndDropsConnectionFields(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, okAnswer)
		lb := startLB(t, Config{DataPath: path}, rec.up())
		raw := "GET /old HTTP/1.0\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s3cret\r\nX-Kept: 1\r\n\r\n" +
			"GET /new HTTP/1.1\r\nHost: a\r\nConnection: X-Other\r\nX-Other: o\r\nKeep-Alive: 5\r\nTE: trailers\r\nConnection: close\r\n\r\n"
		got, _ := exchange(t, lb, raw, 3*time.Second)
		if strings.Count(got, "HTTP/1.1 200 OK") != 2 {
			t.Fatalf("answers %q", got)
		}
		all := rec.all()
		for _, bad := range []string{"HTTP/1.0", "X-Secret", "s3cret", "X-Other", "Keep-Alive", "TE: trailers", "Te: trailers"} {
			if strings.Contains(all, bad) {
				t.Errorf("%q reached the replica:\n%s", bad, all)
			}
		}
		if !strings.Contains(all, "GET /old HTTP/1.1\r\n") || !strings.Contains(all, "X-Kept: 1\r\n") {
			t.Errorf("the replica got:\n%s", all)
		}
	})
}

// TestAmbiguousAnswersAre502AndNotReused: a replica's ambiguous answer is a
// 502, and the connection it came on carries nothing more.
func TestAmbiguousAnswersAre502AndNotReused(t *testing.T) {
	answers := map[string]string{
		"/cl-te":      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"/te-cl":      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
		"/bare-cr":    "HTTP/1.1 200 OK\r\nX-A: a\rContent-Length: 0\r\nContent-Length: 2\r\n\r\nok",
		"/bad-chunks": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
		"/te-gzip":    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc",
		"/two-cl":     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk",
		"/nul":        "HTTP/1.1 200 OK\r\nX-A: \x00\r\nContent-Length: 2\r\n\r\nok",
		"/version":    "HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"/bare-lf":    "HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
	}
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, func(br *bufio.Reader, w net.Conn) bool {
			req, err := http.ReadRequest(br)
			if err != nil {
				return false
			}
			a, ok := answers[req.URL.Path]
			if !ok {
				a = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
			}
			_, err = io.WriteString(w, a)
			return err == nil
		})
		lb := startLB(t, Config{DataPath: path, EjectAfter: -1}, rec.up())
		for p := range answers {
			before := len(rec.received())
			got, _ := exchange(t, lb, "GET "+p+" HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 3*time.Second)
			if !strings.HasPrefix(got, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\n") {
				t.Errorf("%s: got %q, want 502 first", p, got)
				continue
			}
			if !strings.HasSuffix(got, "\r\n\r\nok") {
				t.Errorf("%s: the next request on the client's connection got %q", p, got)
			}
			convs := rec.received()
			for _, c := range convs[before:] {
				if strings.Contains(c, "GET "+p+" ") && strings.Contains(c, "GET /next ") {
					t.Errorf("%s: the next request went on the connection of the ambiguous answer:\n%s", p, c)
				}
			}
		}
	})
}

// TestEarlyAnswerDoesNotPoolTheConnection: a replica that answers before it
// has read the body (401, 413) may read the rest as a new request: the
// connection must not carry another one.
func TestEarlyAnswerDoesNotPoolTheConnection(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, func(br *bufio.Reader, w net.Conn) bool {
			req, err := http.ReadRequest(br)
			if err != nil {
				return false
			}
			if req.URL.Path == "/upload" { // answer at once, read the body later (as a request)
				io.WriteString(w, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
				time.Sleep(100 * time.Millisecond)
				return true
			}
			io.Copy(io.Discard, req.Body)
			_, err = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return err == nil
		})
		lb := startLB(t, Config{DataPath: path}, rec.up())
		body := "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n" + strings.Repeat("z", 300<<10)
		raw := "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body
		got, _ := exchange(t, lb, raw, 2*time.Second)
		if !strings.HasPrefix(got, "HTTP/1.1 401 ") {
			t.Fatalf("got %q", got[:min(len(got), 200)])
		}
		for range 5 {
			if r := rawExchange(t, lb, "GET /after HTTP/1.1\r\nHost: a\r\n\r\n", 1)[0]; r.StatusCode != 200 || bodyOf(r) != "ok" {
				t.Errorf("after: %d", r.StatusCode)
			}
		}
		for _, c := range rec.received() {
			if strings.Contains(c, "POST /upload") && strings.Contains(c, "GET /after") {
				t.Errorf("a request followed the early-answered upload on its connection")
			}
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestUnaskedBytesAreNeverAnAnswer: bytes a replica sends after its answer
// (or while idle) reach no client, and the connection is not reused.
func TestUnaskedBytesAreNeverAnAnswer(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, func(br *bufio.Reader, w net.Conn) bool {
			req, err := http.ReadRequest(br)
			if err != nil {
				return false
			}
			switch req.URL.Path {
			case "/extra": // an answer with another one glued to it
				io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSTOLEN")
			case "/later": // the answer, then, a little later, another one
				io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				time.Sleep(50 * time.Millisecond)
				io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSTOLEN")
			default:
				io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nmine")
			}
			return true
		})
		lb := startLB(t, Config{DataPath: path}, rec.up())
		// Glued to the answer: the next request on the same client connection
		// (the same event loop, so the same pool) goes on a new connection.
		if rs := rawExchange(t, lb, "GET /extra HTTP/1.1\r\nHost: a\r\n\r\nGET /mine HTTP/1.1\r\nHost: a\r\n\r\n", 2); bodyOf(rs[0]) != "ok" || bodyOf(rs[1]) != "mine" {
			t.Errorf("/extra, then /mine: %q, %q", bodyOf(rs[0]), bodyOf(rs[1]))
		}
		for _, p := range []string{"/extra", "/later"} {
			if r := rawExchange(t, lb, "GET "+p+" HTTP/1.1\r\nHost: a\r\n\r\n", 1)[0]; bodyOf(r) != "ok" {
				t.Errorf("%s: %q", p, bodyOf(r))
			}
			time.Sleep(200 * time.Millisecond)
			for range 3 {
				if r := rawExchange(t, lb, "GET /mine HTTP/1.1\r\nHost: a\r\n\r\n", 1)[0]; bodyOf(r) != "mine" {
					t.Errorf("after %s: another client got %q", p, bodyOf(r))
				}
			}
		}
		// The connection that carried the unasked bytes carried nothing more.
		for _, conv := range rec.received() {
			for _, p := range []string{"GET /extra", "GET /later"} {
				if i := strings.Index(conv, p); i >= 0 && strings.Contains(conv[i+1:], "GET /") {
					t.Errorf("a connection that received unasked bytes was used again:\n%s", conv)
				}
			}
		}
	})
}

// TestSlowlorisHeadIsCut: a head trickled a field at a time is cut at the
// header timeout.
func TestSlowlorisHeadIsCut(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, okAnswer)
		lb := startLB(t, Config{DataPath: path, HeaderTimeout: 500 * time.Millisecond}, rec.up())
		c, err := net.Dial("tcp", lb.Endpoint())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n")
		closed := make(chan struct{})
		go func() {
			io.ReadAll(c)
			close(closed)
		}()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-closed:
				if d := time.Since(start); d > 3*time.Second {
					t.Errorf("cut after %s", d)
				}
				if strings.Contains(rec.all(), "X-Trickle") {
					t.Error("the trickled head reached the replica")
				}
				return
			case <-tick.C:
				if time.Since(start) > 6*time.Second {
					t.Fatal("a trickled head is held for over 6 s")
				}
				io.WriteString(c, "X-Trickle: 1\r\n")
			}
		}
	})
}

// TestSlowBodyIsCut: a body that does not arrive is cut at the body
// timeout.
func TestSlowBodyIsCut(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, okAnswer)
		lb := startLB(t, Config{DataPath: path, BodyTimeout: 500 * time.Millisecond}, rec.up())
		start := time.Now()
		got, closed := exchange(t, lb, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc", 5*time.Second)
		if !closed || time.Since(start) > 3*time.Second || !strings.HasPrefix(got, "HTTP/1.1 408 ") {
			t.Errorf("after %s: closed %v, %q", time.Since(start), closed, got)
		}
	})
}

// TestAnnouncedBodiesAreNotAllocated: connections that announce large
// bodies and send none cost their bytes received, not the lengths
// announced.
func TestAnnouncedBodiesAreNotAllocated(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, okAnswer)
		lb := startLB(t, Config{DataPath: path}, rec.up())
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range 100 {
			c, err := net.Dial("tcp", lb.Endpoint())
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4194304\r\n\r\nsome")
		}
		time.Sleep(300 * time.Millisecond)
		if used := lb.mem.used.Load(); used > 100*64<<10 {
			t.Errorf("%d bytes held for 100 announced 4 MiB bodies", used)
		}
	})
}

// TestBufferBudgetRefuses: beyond MaxBufferedBytes, a request is refused
// with 503 and its connection closed.
func TestBufferBudgetRefuses(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, okAnswer)
		lb := startLB(t, Config{DataPath: path, MaxBufferedBytes: 1 << 20}, rec.up())
		body := strings.Repeat("b", 2<<20)
		got, closed := exchange(t, lb, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n"+body, 5*time.Second)
		if !closed || !strings.HasPrefix(got, "HTTP/1.1 503 Service Unavailable\r\n") {
			t.Errorf("closed %v, %q", closed, got[:min(len(got), 200)])
		}
		waitFor(t, "the budget to be given back", func() bool { return lb.mem.used.Load() < 1<<20 })
	})
}

// TestNonReadingClientIsCut: a client that never reads its answers is cut
// at the write timeout.
func TestNonReadingClientIsCut(t *testing.T) {
	big := strings.Repeat("x", 32<<20)
	eachDataPath(t, func(t *testing.T, path string) {
		a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) })
		lb := startLB(t, Config{DataPath: path, WriteTimeout: 500 * time.Millisecond, TryTimeout: 20 * time.Second}, a.up())
		c, err := net.Dial("tcp", lb.Endpoint())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.(*net.TCPConn).SetReadBuffer(4096)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		waitFor(t, "a connection to open", func() bool { return lb.open.Load() == 1 })
		deadline := time.Now().Add(15 * time.Second) // the answer is read from the replica first
		for lb.open.Load() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("a client that does not read is held; %d bytes buffered", lb.mem.used.Load())
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// TestConnectionLimit: a client over MaxConns is answered 503 and closed.
func TestConnectionLimit(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, okAnswer)
		lb := startLB(t, Config{DataPath: path, MaxConns: 2}, rec.up())
		var held []net.Conn
		for range 2 {
			c, err := net.Dial("tcp", lb.Endpoint())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			held = append(held, c)
		}
		waitFor(t, "two open connections", func() bool { return lb.open.Load() == 2 })
		got, closed := exchange(t, lb, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 3*time.Second)
		if !closed || !strings.HasPrefix(got, "HTTP/1.1 503 Service Unavailable\r\n") {
			t.Errorf("third connection: closed %v, %q", closed, got)
		}
		held[0].Close()
		waitFor(t, "a connection to close", func() bool { return lb.open.Load() == 1 })
		if r := rawExchange(t, lb, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1)[0]; r.StatusCode != 200 {
			t.Errorf("below the limit again: %d", r.StatusCode)
		}
	})
}

// TestOwnAnswersAreTheSameOnBothPaths: the balancer's own answers have the
// same head, byte for byte, on every data path.
func TestOwnAnswersAreTheSameOnBothPaths(t *testing.T) {
	if len(dataPaths()) < 2 {
		t.Skip("one data path here")
	}
	reqs := []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",                                                    // 503: no replica
		"HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",                              // 503 to HEAD, closing
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", // 400
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n",                       // 413
	}
	answers := map[string][]string{}
	for _, p := range dataPaths() {
		lb := startLB(t, Config{DataPath: p})
		for _, r := range reqs {
			got, _ := exchange(t, lb, r, 500*time.Millisecond)
			answers[p] = append(answers[p], got)
		}
	}
	ev, fh := answers[DataPathEventLoop], answers[DataPathFasthttp]
	for i := range reqs {
		if ev[i] != fh[i] || ev[i] == "" {
			t.Errorf("%q:\nevent loop %q\nfasthttp   %q", reqs[i], ev[i], fh[i])
		}
	}
}

// TestEarlyAnswerBeforeTheBodyIsWritten: the replica answers a large upload
// at once and reads nothing more for a while, so the balancer is still
// writing the body when the answer is whole; the next request must not be
// written after the part of the body that went out.
func TestEarlyAnswerBeforeTheBodyIsWritten(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, func(br *bufio.Reader, w net.Conn) bool {
			req, err := http.ReadRequest(br)
			if err != nil {
				return false
			}
			if req.URL.Path == "/upload" {
				io.WriteString(w, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n")
				time.Sleep(time.Second)
				io.Copy(io.Discard, req.Body)
				return true
			}
			io.Copy(io.Discard, req.Body)
			_, err = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return err == nil
		})
		lb := startLB(t, Config{DataPath: path, MaxRequestBody: 32 << 20, TryTimeout: 5 * time.Second}, rec.up())
		body := strings.Repeat("u", 24<<20) // more than the socket buffers hold
		c, err := net.Dial("tcp", lb.Endpoint())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n"+body)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 413 {
			t.Fatalf("upload: %v %v", resp, err)
		}
		if r := rawExchange(t, lb, "GET /after HTTP/1.1\r\nHost: a\r\n\r\n", 1)[0]; r.StatusCode != 200 || bodyOf(r) != "ok" {
			t.Errorf("after: %d %q", r.StatusCode, bodyOf(r))
		}
		for _, conv := range rec.received() {
			if strings.Contains(conv, "POST /upload") && strings.Contains(conv, "GET /after") {
				t.Error("the next request went on the connection whose body was cut short")
			}
		}
	})
}

// TestPooledConnectionAfterAPause: a connection pooled for longer than a
// try lasts still carries the next request.
func TestPooledConnectionAfterAPause(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, okAnswer)
		lb := startLB(t, Config{DataPath: path, TryTimeout: 300 * time.Millisecond}, rec.up())
		for range 3 {
			if r := do(t, lb, "POST", nil, "x"); r.status != 200 {
				t.Fatalf("POST: %d %s", r.status, r.body)
			}
			time.Sleep(500 * time.Millisecond)
		}
		if n := len(rec.received()); n != 1 {
			t.Errorf("%d connections to the replica, want 1 (reused)", n)
		}
	})
}

// TestExpectContinue: a client that waits for 100 Continue before it sends
// its body gets it at once, and the replica gets the body, not the Expect.
func TestExpectContinue(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, okAnswer)
		lb := startLB(t, Config{DataPath: path}, rec.up())
		for _, te := range []string{"Content-Length: 5", "Transfer-Encoding: chunked"} {
			c, err := net.Dial("tcp", lb.Endpoint())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "PUT /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"+te+"\r\n\r\n")
			br := bufio.NewReader(c)
			start := time.Now()
			line, err := br.ReadString('\n')
			if err != nil || line != "HTTP/1.1 100 Continue\r\n" || time.Since(start) > 500*time.Millisecond {
				t.Fatalf("%s: %q %v after %s", te, line, err, time.Since(start))
			}
			br.ReadString('\n')
			if strings.HasPrefix(te, "Transfer") {
				io.WriteString(c, "5\r\nhello\r\n0\r\n\r\n")
			} else {
				io.WriteString(c, "hello")
			}
			resp, err := http.ReadResponse(br, nil)
			for err == nil && resp.StatusCode == 100 {
				resp, err = http.ReadResponse(br, nil)
			}
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%s: %v %v", te, resp, err)
			}
		}
		if all := rec.all(); strings.Contains(strings.ToLower(all), "expect") || strings.Count(all, "hello") != 2 {
			t.Errorf("the replica got:\n%s", all)
		}
	})
}

// TestAnswerFieldsNamedByConnectionAreDropped: what the replica's
// Connection names stays between it and the balancer.
func TestAnswerFieldsNamedByConnectionAreDropped(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, func(br *bufio.Reader, w net.Conn) bool {
			if _, err := http.ReadRequest(br); err != nil {
				return false
			}
			_, err := io.WriteString(w, "HTTP/1.1 200 OK\r\nConnection: X-Internal, keep-alive\r\nX-Internal: secret\r\n"+
				"Keep-Alive: timeout=5\r\nX-Public: yes\r\nContent-Length: 2\r\n\r\nok")
			return err == nil
		})
		lb := startLB(t, Config{DataPath: path}, rec.up())
		got, _ := exchange(t, lb, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 3*time.Second)
		if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.Contains(got, "X-Public: yes\r\n") {
			t.Fatalf("got %q", got)
		}
		for _, bad := range []string{"X-Internal", "secret", "Keep-Alive", "keep-alive"} {
			if strings.Contains(got, bad) {
				t.Errorf("%q reached the client: %q", bad, got)
			}
		}
	})
}

// TestFramingLookalikesAre400: Content_Length and Transfer_Encoding frame
// a message for servers that map _ to -.
func TestFramingLookalikesAre400(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, okAnswer)
		lb := startLB(t, Config{DataPath: path}, rec.up())
		for _, raw := range []string{
			"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer_Encoding: chunked\r\n\r\nabc",
			"POST / HTTP/1.1\r\nHost: a\r\nContent_Length: 3\r\n\r\nabc",
		} {
			if got, closed := exchange(t, lb, raw, 3*time.Second); !closed || !strings.HasPrefix(got, "HTTP/1.1 400 ") {
				t.Errorf("%q: closed %v, %q", raw, closed, got)
			}
		}
		if all := rec.all(); all != "" {
			t.Errorf("the replica got %q", all)
		}
	})
}

// TestNextRequestNeverLandsInABody: whatever the replica answers while the
// body of a request is still on its way (here a 200), the next request on
// that connection, if any, starts after the whole body.
func TestNextRequestNeverLandsInABody(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, func(br *bufio.Reader, w net.Conn) bool {
			req, err := http.ReadRequest(br)
			if err != nil {
				return false
			}
			if req.URL.Path == "/upload" {
				io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				time.Sleep(time.Second)
			}
			io.Copy(io.Discard, req.Body)
			if req.URL.Path != "/upload" {
				_, err = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
			return err == nil
		})
		lb := startLB(t, Config{DataPath: path, MaxRequestBody: 32 << 20, TryTimeout: 5 * time.Second}, rec.up())
		body := strings.Repeat("u", 24<<20)
		head := "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n"
		c, err := net.Dial("tcp", lb.Endpoint())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// The next request on the same client connection: the same event
		// loop, so the same pool of replica connections.
		go io.WriteString(c, head+body+"GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		for _, what := range []string{"upload", "after"} {
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%s: %v %v", what, resp, err)
			}
			io.Copy(io.Discard, resp.Body)
		}
		time.Sleep(1500 * time.Millisecond) // the replica reads what it was sent
		for _, conv := range rec.received() {
			up := strings.Index(conv, "POST /upload")
			after := strings.Index(conv, "GET /after")
			if up >= 0 && after >= 0 && after < up+len(body) {
				t.Errorf("the next request came %d bytes into a %d-byte body", after-up, len(body))
			}
		}
	})
}

// TestTryErrorsAreTheSameOnBothPaths: a refused, a hanging and a closing
// replica give the same answer, byte for byte, on every data path.
func TestTryErrorsAreTheSameOnBothPaths(t *testing.T) {
	if len(dataPaths()) < 2 {
		t.Skip("one data path here")
	}
	closing := newRecorder(t, func(br *bufio.Reader, w net.Conn) bool {
		http.ReadRequest(br)
		return false // closes without an answer
	})
	ups := map[string]Upstream{
		"refused": {ID: "r", Name: "r", Addr: refusedAddr(t)},
		"hanging": {ID: "h", Name: "h", Addr: hangingAddr(t)},
		"closing": {ID: "c", Name: "c", Addr: closing.ln.Addr().String()},
	}
	for name, up := range ups {
		answers := map[string]string{}
		for _, p := range dataPaths() {
			lb := startLB(t, Config{DataPath: p, TryTimeout: 200 * time.Millisecond, DisableRetry: true}, up)
			got, _ := exchange(t, lb, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx", 3*time.Second)
			answers[p] = got
		}
		if ev, fh := answers[DataPathEventLoop], answers[DataPathFasthttp]; ev != fh || !strings.HasPrefix(ev, "HTTP/1.1 50") {
			t.Errorf("%s:\nevent loop %q\nfasthttp   %q", name, ev, fh)
		}
	}
}

// TestBudgetAndCountsReturnToZero: once the balancer is closed, every
// buffered byte is given back and no connection is counted, whatever the
// traffic was.
func TestBudgetAndCountsReturnToZero(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, func(br *bufio.Reader, w net.Conn) bool {
			req, err := http.ReadRequest(br)
			if err != nil {
				return false
			}
			io.Copy(io.Discard, req.Body)
			body := strings.Repeat("r", 200<<10)
			_, err = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n"+body)
			return err == nil
		})
		b, err := New(Config{DataPath: path})
		if err != nil {
			t.Fatal(err)
		}
		b.SetUpstreams([]Upstream{rec.up()})
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		big := strings.Repeat("q", 300<<10)
		for _, raw := range []string{
			"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + itoa(len(big)) + "\r\n\r\n" + big,
			"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(big), big),
			"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
			"GET / HTTP/1.0\r\n\r\n",
		} {
			exchange(t, b, raw, 300*time.Millisecond)
		}
		idle, _ := net.Dial("tcp", b.Endpoint()) // one left open
		defer idle.Close()
		waitFor(t, "the idle connection to count", func() bool { return b.open.Load() == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		b.Close(ctx)
		waitFor(t, fmt.Sprint("counts to return to zero: ", b.mem.used.Load(), " bytes, ", b.open.Load(), " connections"), func() bool { return b.mem.used.Load() == 0 && b.open.Load() == 0 })
	})
}

// TestLargeRequestBuffersAreLetGo: a connection that carried a large body
// and stays open holds no more than a small buffer afterwards.
func TestLargeRequestBuffersAreLetGo(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, okAnswer)
		lb := startLB(t, Config{DataPath: path}, rec.up())
		c, err := net.Dial("tcp", lb.Endpoint())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		body := strings.Repeat("L", 2<<20)
		go io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n"+body)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v %v", resp, err)
		}
		waitFor(t, "the large buffers to be let go", func() bool { return lb.mem.used.Load() < 256<<10 })
	})
}

// TestMultipartBodiesPassByteForByte: a multipart body is not parsed and
// written anew on the way: the replica gets the client's bytes.
func TestMultipartBodiesPassByteForByte(t *testing.T) {
	body := "--XyZ\r\nContent-Disposition: form-data;name=\"a\"\r\n\r\n1\r\n--XyZ\r\n" +
		"content-disposition: form-data; name=\"f\";  filename=\"x.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n" +
		"\x00\x01\r\n--Xy\r\n--XyZ--\r\ntrailing junk"
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, okAnswer)
		lb := startLB(t, Config{DataPath: path}, rec.up())
		for _, framing := range []string{"Content-Length: " + itoa(len(body)) + "\r\n\r\n" + body,
			"Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)} {
			got, _ := exchange(t, lb, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n"+
				framing+"GET /end HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 2*time.Second)
			if strings.Count(got, "HTTP/1.1 200 OK") != 2 {
				t.Errorf("got %q", got)
			}
		}
		if all := rec.all(); strings.Count(all, "\r\n\r\n"+body) != 2 {
			t.Errorf("the replica got:\n%q", all)
		}
	})
}

// TestChunkedBodyOverTheLimitIs413: a chunked body is bounded like any
// other.
func TestChunkedBodyOverTheLimitIs413(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		rec := newRecorder(t, okAnswer)
		lb := startLB(t, Config{DataPath: path, MaxRequestBody: 10}, rec.up())
		got, closed := exchange(t, lb, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 2*time.Second)
		if !closed || !strings.HasPrefix(got, "HTTP/1.1 413 Content Too Large\r\n") {
			t.Errorf("closed %v, %q", closed, got)
		}
		if all := rec.all(); all != "" {
			t.Errorf("the replica got %q", all)
		}
	})
}

// A client that sends more while its request is retried on another replica
// gets the retry's answer, once: the first try's error is only kept in
// case the retry fails too, never sent while the retry is in flight.
func TestClientSendingDuringARetryGetsTheRetrysAnswer(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		dead := newRecorder(t, func(br *bufio.Reader, w net.Conn) bool {
			http.ReadRequest(br)
			return false // closes without an answer: the try fails, a GET is retried
		})
		slow := newRecorder(t, func(br *bufio.Reader, w net.Conn) bool {
			if _, err := http.ReadRequest(br); err != nil {
				return false
			}
			time.Sleep(300 * time.Millisecond)
			_, err := io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return err == nil
		})
		du, su := dead.up(), slow.up()
		du.ID, du.Name, su.ID, su.Name = "dead", "dead", "slow", "slow"
		lb := startLB(t, Config{DataPath: path, Policy: "round-robin"}, du, su)
		for i := range 4 { // round-robin: half of them try the dead replica first
			c, err := net.DialTimeout("tcp", lb.Endpoint(), time.Second)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, "GET /x HTTP/1.1\r\nHost: shop\r\n\r\n")
			time.Sleep(100 * time.Millisecond) // the retry is in flight
			io.WriteString(c, "GET /y HTTP/1.1\r\n")
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(body) != "ok" {
				t.Errorf("request %d: %d %q, want the retry's 200 ok", i, resp.StatusCode, body)
			}
			c.Close()
		}
	})
}

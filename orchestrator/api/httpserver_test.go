package api

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/flotilla/flotilla/orchestrator/api/apitest"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// testTimeouts are short, so the tests see them act; slack is what a busy
// machine may add before a closed connection is seen.
var testTimeouts = Timeouts{ReadHeader: 400 * time.Millisecond, Body: 400 * time.Millisecond, Write: 400 * time.Millisecond, Idle: 2 * time.Second}

const slack = 1500 * time.Millisecond

// bigAsset is larger than loopback's socket buffers, so a client that does
// not read makes the server wait on its write.
const bigAsset = 64 << 20

// realServer serves the API over the fake with NewServer on a 127.0.0.1
// socket and returns its address.
func realServer(t *testing.T) (string, *apitest.Controller) {
	t.Helper()
	fake := newFake(spec.Group{Name: "web", Service: "monolith", Replicas: 2})
	events := hub.New(hub.Options{})
	assets := fstest.MapFS{"index.html": {Data: []byte("<!doctype html>")}, "big.bin": {Data: make([]byte, bigAsset)}}
	h := newHandler(t, Options{Controller: fake, Hub: events, Assets: assets})
	srv := NewServer(h, testTimeouts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		events.Close()
		srv.Close()
	})
	return ln.Addr().String(), fake
}

// closedWithin reads c until the server closes it, failing the test if that
// takes longer than within; it returns what was read.
func closedWithin(t *testing.T, c net.Conn, within time.Duration) string {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(within + 5*time.Second))
	got, err := io.ReadAll(c)
	took := time.Since(start)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server still holds the connection after %v; read %q", took, got)
	}
	if took > within {
		t.Errorf("the server closed the connection after %v, want within %v", took, within)
	}
	return string(got)
}

// trickle writes s one byte every gap until it is written or the connection
// fails, and reports how many bytes went out.
func trickle(c net.Conn, s string, gap time.Duration) <-chan int {
	sent := make(chan int, 1)
	go func() {
		n := 0
		for ; n < len(s); n++ {
			if _, err := c.Write([]byte{s[n]}); err != nil {
				break
			}
			time.Sleep(gap)
		}
		sent <- n
	}()
	return sent
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestServerCutsATricklingBody(t *testing.T) {
	addr, fake := realServer(t)
	c := dialRaw(t, addr)
	body := `{"service":"monolith","replicas":3}`
	head := "PUT /api/v1/groups/web HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	sent := trickle(c, body, 150*time.Millisecond)
	got := closedWithin(t, c, testTimeouts.Body+slack)
	if !strings.HasPrefix(got, "HTTP/1.1 408 ") || !strings.Contains(got, "too slowly") {
		t.Errorf("a trickled body got %q, want 408 saying it came too slowly", got)
	}
	if n := <-sent; n == len(body) {
		t.Errorf("the whole body went out one byte at a time before the cut")
	}
	if len(fake.Puts()) != 0 {
		t.Errorf("the controller got %+v from a body that never arrived", fake.Puts())
	}
}

func TestServerCutsATricklingHead(t *testing.T) {
	addr, _ := realServer(t)
	c := dialRaw(t, addr)
	sent := trickle(c, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "+strings.Repeat("a", 100)+"\r\n\r\n", 100*time.Millisecond)
	if got := closedWithin(t, c, testTimeouts.ReadHeader+slack); strings.Contains(got, "200 OK") {
		t.Errorf("a head that trickled in was answered: %q", got)
	}
	<-sent
}

func TestServerCutsAClientThatDoesNotRead(t *testing.T) {
	addr, _ := realServer(t)
	c := dialRaw(t, addr)
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetReadBuffer(64 << 10)
	}
	if _, err := io.WriteString(c, "GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(testTimeouts.Write + slack)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) || n >= bigAsset {
		t.Errorf("a client that did not read got %d bytes (err %v); want the answer cut off", n, err)
	}
}

func TestServerAnswersAPromptClient(t *testing.T) {
	addr, fake := realServer(t)
	c := dialRaw(t, addr)
	r := bufio.NewReader(c)
	// Two requests on one connection, the second after more than every
	// timeout but Idle: a deadline must not outlive its request.
	for i, replicas := range []string{"3", "4"} {
		body := `{"service":"monolith","replicas":` + replicas + `}`
		io.WriteString(c, "PUT /api/v1/groups/web HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("request %d: %s", i+1, resp.Status)
		}
		time.Sleep(testTimeouts.Body + testTimeouts.Write + 200*time.Millisecond)
	}
	if g, _ := fake.Spec("web"); g.Replicas != 4 {
		t.Errorf("web has %d replicas, want 4", g.Replicas)
	}
}

func TestServerKeepsTheStreamPastItsTimeouts(t *testing.T) {
	addr, _ := realServer(t)
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial("ws://"+addr+"/api/v1/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	past := 3 * max(testTimeouts.Write, testTimeouts.Body, testTimeouts.ReadHeader)
	stats := 0
	for time.Since(start) < past || stats < 2 {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var m map[string]any
		if err := conn.ReadJSON(&m); err != nil {
			t.Fatalf("the stream ended after %v: %v", time.Since(start), err)
		}
		if m["type"] == "stats" {
			stats++
		}
	}
	// Still up: the client's own frames are read too.
	if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)); err != nil {
		t.Fatalf("ping after %v: %v", time.Since(start), err)
	}
}

// The deadlines bound the client, not the handler: a handler that takes
// longer than every timeout, after reading its body, keeps its context
// and gets its whole answer out.
func TestServerLetsASlowHandlerFinish(t *testing.T) {
	type outcome struct {
		body string
		err  error
	}
	done := make(chan outcome, 1)
	srv := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		time.Sleep(testTimeouts.Body + testTimeouts.Write + 300*time.Millisecond)
		done <- outcome{string(body), r.Context().Err()}
		w.Write([]byte(strings.Repeat("x", 1<<20)))
	}), testTimeouts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	resp, err := http.Post("http://"+ln.Addr().String()+"/", "application/json", strings.NewReader(`{"replicas":1}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != 1<<20 {
		t.Errorf("the answer: %d bytes, %v; want 1 MiB", n, err)
	}
	if o := <-done; o.body != `{"replicas":1}` || o.err != nil {
		t.Errorf("the handler read %q and its context ended with %v; want the body and no end", o.body, o.err)
	}
}

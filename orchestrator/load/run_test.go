package load_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/load"
)

// server is an httptest server on 127.0.0.1 that counts what it is sent.
type server struct {
	*httptest.Server
	hits     atomic.Int64
	inflight atomic.Int64
	peak     atomic.Int64
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		n := s.inflight.Add(1)
		defer s.inflight.Add(-1)
		for {
			p := s.peak.Load()
			if n <= p || s.peak.CompareAndSwap(p, n) {
				break
			}
		}
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// addr is host:port of the server, as a Spec wants it.
func (s *server) addr() string { return s.Listener.Addr().String() }

// run starts s and waits for it to end, failing the test if it outlives
// limit.
func run(t *testing.T, s load.Spec, limit time.Duration) load.Report {
	t.Helper()
	r, err := load.Start(t.Context(), s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	select {
	case <-r.Done():
	case <-time.After(limit):
		r.Stop()
		t.Fatalf("run still going after %v: %+v", limit, r.Report())
	}
	return r.Report()
}

func TestRateIsHonoured(t *testing.T) {
	srv := newServer(t, nil)
	rep := run(t, load.Spec{Target: srv.addr(), Rate: 200, Concurrency: 32, Duration: time.Second}, 3*time.Second)

	if rep.Sent < 180 || rep.Sent > 220 {
		t.Errorf("sent %d requests, want 180..220", rep.Sent)
	}
	if rep.Succeeded != rep.Sent || rep.Failed != 0 || rep.Dropped != 0 || rep.InFlight != 0 {
		t.Errorf("report %+v, want every request sent and succeeded", rep)
	}
	if got := srv.hits.Load(); got != rep.Sent {
		t.Errorf("server saw %d requests, report says %d", got, rep.Sent)
	}
	if rep.RatePerSec < 180 || rep.RatePerSec > 220 {
		t.Errorf("achieved rate %.1f, want 180..220", rep.RatePerSec)
	}
	if rep.State != load.StateFinished {
		t.Errorf("state %q, want %q", rep.State, load.StateFinished)
	}
	if took := rep.Ended.Sub(rep.Started); took < 990*time.Millisecond || took > 2*time.Second {
		t.Errorf("run took %v, want about its 1s duration", took)
	}
	if rep.Status[200] != rep.Sent || rep.ByTarget[srv.addr()].Sent != rep.Sent {
		t.Errorf("status %v, by target %v, want all %d as 200 on %s", rep.Status, rep.ByTarget, rep.Sent, srv.addr())
	}
}

func TestConcurrencyIsBoundedAndBusyTicksAreDropped(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { time.Sleep(50 * time.Millisecond) })
	rep := run(t, load.Spec{Target: srv.addr(), Rate: 400, Concurrency: 4, Duration: time.Second}, 3*time.Second)

	if peak := srv.peak.Load(); peak > 4 || peak < 2 {
		t.Errorf("server saw %d requests in flight at once, want 2..4", peak)
	}
	if rep.Sent+rep.Dropped != 400 {
		t.Errorf("sent %d + dropped %d, want the 400 ticks of 1s at 400/s", rep.Sent, rep.Dropped)
	}
	// 4 slots of 50 ms each carry at most 80 requests a second.
	if rep.Sent > 90 || rep.Dropped < 300 {
		t.Errorf("sent %d, dropped %d; want at most about 80 sent", rep.Sent, rep.Dropped)
	}
	if rep.Succeeded != rep.Sent {
		t.Errorf("succeeded %d of %d", rep.Succeeded, rep.Sent)
	}
}

func TestMaxRequestsEndsTheRun(t *testing.T) {
	srv := newServer(t, nil)
	rep := run(t, load.Spec{Target: srv.addr(), Rate: 1000, MaxRequests: 25, Duration: time.Minute}, 2*time.Second)

	if rep.Sent != 25 || srv.hits.Load() != 25 || rep.Succeeded != 25 {
		t.Errorf("sent %d, server saw %d, succeeded %d; want 25 each", rep.Sent, srv.hits.Load(), rep.Succeeded)
	}
	if rep.State != load.StateFinished {
		t.Errorf("state %q, want finished", rep.State)
	}
	if took := rep.Ended.Sub(rep.Started); took > 500*time.Millisecond {
		t.Errorf("25 requests at 1000/s took %v", took)
	}
}

func TestErrorsAreClassified(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().String()
	ln.Close()

	fails := newServer(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })
	missing := newServer(t, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	release := make(chan struct{})
	hangs := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before the server's Close
	resets := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.(*net.TCPConn).SetLinger(0) // close with RST
			conn.Close()
		}
	})

	tests := []struct {
		name, target, kind string
		status             int
	}{
		{"closed port", closedPort, load.KindRefused, 0},
		{"server error", fails.addr(), load.KindStatus5xx, 500},
		{"not found", missing.addr(), load.KindStatus4xx, 404},
		{"hanging server", hangs.addr(), load.KindTimeout, 0},
		{"connection reset", resets.addr(), load.KindReset, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := run(t, load.Spec{Target: tt.target, Rate: 100, MaxRequests: 5, Duration: time.Second, Timeout: 100 * time.Millisecond}, 2*time.Second)
			if rep.Failed != 5 || rep.Errors[tt.kind] != 5 || len(rep.Errors) != 1 || rep.Succeeded != 0 {
				t.Errorf("failed %d, errors %v; want 5 %s", rep.Failed, rep.Errors, tt.kind)
			}
			if tt.status != 0 && rep.Status[tt.status] != 5 {
				t.Errorf("status %v, want 5 × %d", rep.Status, tt.status)
			}
			if tt.status == 0 && len(rep.Status) != 0 {
				t.Errorf("status %v, want no responses", rep.Status)
			}
			if c := rep.ByTarget[tt.target]; c.Sent != 5 || c.Failed != 5 {
				t.Errorf("by target %v, want 5 sent and failed", c)
			}
		})
	}
}

func TestByReplicaCountsWhoAnswered(t *testing.T) {
	replica := func(name string) *server {
		return newServer(t, func(w http.ResponseWriter, r *http.Request) { w.Header().Set(load.ReplicaHeader, name) })
	}
	a, b := replica("shop-1"), replica("shop-2")
	rep := run(t, load.Spec{Targets: []string{a.addr(), b.addr()}, Rate: 500, MaxRequests: 20, Duration: time.Second}, 2*time.Second)

	want := map[string]int64{"shop-1": 10, "shop-2": 10}
	if fmt.Sprint(rep.ByReplica) != fmt.Sprint(want) {
		t.Errorf("by replica %v, want %v", rep.ByReplica, want)
	}
	if rep.ByTarget[a.addr()].Succeeded != 10 || rep.ByTarget[b.addr()].Succeeded != 10 {
		t.Errorf("by target %v, want 10 each", rep.ByTarget)
	}
}

func TestShoppersKeepTheirIdentityAndTarget(t *testing.T) {
	type seen struct {
		target                     int
		header, cookie, cart, path string
	}
	var mu sync.Mutex
	var log []seen
	shop := func(target int) *server {
		return newServer(t, func(w http.ResponseWriter, r *http.Request) {
			s := seen{target: target, header: r.Header.Get(load.ShopperHeader), path: r.URL.Path}
			if c, err := r.Cookie(load.ShopperCookie); err == nil {
				s.cookie = c.Value
			}
			if c, err := r.Cookie("cart"); err == nil {
				s.cart = c.Value
			} else {
				// The shop remembers a cart by cookie: the shopper's jar must keep it.
				http.SetCookie(w, &http.Cookie{Name: "cart", Value: "cart-of-" + s.header, Path: "/"})
			}
			mu.Lock()
			log = append(log, s)
			mu.Unlock()
		})
	}
	t0, t1 := shop(0), shop(1)
	rep := run(t, load.Spec{
		Targets: []string{t0.addr(), t1.addr()}, Shoppers: 3, Paths: []string{"/catalog", "/deals"},
		Rate: 500, Concurrency: 1, MaxRequests: 30, Duration: time.Second,
	}, 2*time.Second)

	if rep.Succeeded != 30 {
		t.Fatalf("report %+v, want 30 succeeded", rep)
	}
	wantTarget := map[string]int{"s-0": 0, "s-1": 1, "s-2": 0}
	perShopper := map[string]map[string]int{}
	carts := map[string]int{}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range log {
		if s.header != s.cookie {
			t.Errorf("header names %q, cookie %q", s.header, s.cookie)
		}
		want, ok := wantTarget[s.header]
		if !ok {
			t.Fatalf("unknown shopper %q", s.header)
		}
		if s.target != want {
			t.Errorf("shopper %s reached target %d, is pinned to %d", s.header, s.target, want)
		}
		if s.cart != "" {
			carts[s.header]++
			if s.cart != "cart-of-"+s.header {
				t.Errorf("shopper %s sent %s's cart", s.header, s.cart)
			}
		}
		if perShopper[s.header] == nil {
			perShopper[s.header] = map[string]int{}
		}
		perShopper[s.header][s.path]++
	}
	for name := range wantTarget {
		if got := perShopper[name]; got["/catalog"] != 5 || got["/deals"] != 5 {
			t.Errorf("shopper %s asked for %v, want 5 of each path", name, got)
		}
		if carts[name] != 9 {
			t.Errorf("shopper %s sent its cart cookie %d times, want 9 (all but the first)", name, carts[name])
		}
		if c := rep.ByShopper[name]; c.Sent != 10 || c.Succeeded != 10 {
			t.Errorf("by shopper %s = %+v, want 10 sent and succeeded", name, c)
		}
	}
}

func TestHeadersAndBody(t *testing.T) {
	var mu sync.Mutex
	keys := map[string]bool{}
	var bad []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		keys[r.Header.Get("Idempotency-Key")] = true
		if r.Method != "POST" || string(body) != `{"sku":"mug"}` || r.Header.Get("Content-Type") != "application/json" ||
			r.Header.Get("X-For") != r.Header.Get(load.ShopperHeader) || r.URL.RawQuery != "q=1" {
			bad = append(bad, fmt.Sprintf("%s %s %q %v", r.Method, r.URL, body, r.Header))
		}
	})
	rep := run(t, load.Spec{
		Target: srv.addr(), Method: "post", Body: `{"sku":"mug"}`, Paths: []string{"/orders?q=1"}, Shoppers: 2,
		Headers: map[string]string{"Idempotency-Key": "k-{seq}", "X-For": "{shopper}"},
		Rate:    500, MaxRequests: 10, Duration: time.Second,
	}, 2*time.Second)

	if rep.Succeeded != 10 || len(keys) != 10 || !keys["k-0"] || !keys["k-9"] {
		t.Errorf("succeeded %d, keys %v; want 10 distinct k-0..k-9", rep.Succeeded, keys)
	}
	for _, b := range bad {
		t.Errorf("unexpected request: %s", b)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://10.0.0.1/elsewhere", http.StatusFound)
	})
	rep := run(t, load.Spec{Target: srv.addr(), Rate: 500, MaxRequests: 5, Duration: time.Second}, 2*time.Second)
	if rep.Status[http.StatusFound] != 5 || rep.Succeeded != 5 || srv.hits.Load() != 5 {
		t.Errorf("status %v, succeeded %d, want 5 × 302 answered here", rep.Status, rep.Succeeded)
	}
}

func TestStopEndsEarly(t *testing.T) {
	srv := newServer(t, nil)
	r, err := load.Start(t.Context(), load.Spec{Target: srv.addr(), Rate: 100, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	live := r.Report()
	if live.State != load.StateRunning || !live.Ended.IsZero() || live.Sent == 0 {
		t.Errorf("live report %+v, want running with requests sent", live)
	}
	r.Stop()
	select {
	case <-r.Done():
	case <-time.After(time.Second):
		t.Fatal("run did not end within 1s of Stop")
	}
	rep := r.Report()
	if rep.State != load.StateStopped || rep.Ended.IsZero() || rep.Sent > 40 {
		t.Errorf("report %+v, want stopped after about 20 requests", rep)
	}
	if rep.Succeeded+rep.Canceled != rep.Sent || rep.Failed != 0 {
		t.Errorf("report %+v, want each request sent to have succeeded or been cut off", rep)
	}
	hits := srv.hits.Load()
	time.Sleep(50 * time.Millisecond)
	if n := srv.hits.Load(); n != hits || n < rep.Succeeded || n > rep.Sent {
		t.Errorf("server saw %d requests at the end, %d later; report sent %d, succeeded %d", hits, n, rep.Sent, rep.Succeeded)
	}
}

func TestStopCutsOffRequestsInFlight(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithCancel(t.Context())
	r, err := load.Start(ctx, load.Spec{Target: srv.addr(), Rate: 100, Concurrency: 3, Duration: time.Minute, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	cancel() // the caller's context ends the run as Stop does
	select {
	case <-r.Done():
	case <-time.After(time.Second):
		t.Fatal("run did not end within 1s of its context")
	}
	rep := r.Report()
	// A fourth request may leave at the very instant of the cancel, as the
	// first slot frees; it is cut off too.
	if rep.State != load.StateStopped || rep.Canceled != rep.Sent || rep.Sent < 3 || rep.Sent > 4 || rep.Failed != 0 || rep.InFlight != 0 {
		t.Errorf("report %+v, want 3 sent and canceled, none failed", rep)
	}
}

func TestLatencyPercentiles(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { time.Sleep(20 * time.Millisecond) })
	rep := run(t, load.Spec{Target: srv.addr(), Rate: 200, Concurrency: 16, MaxRequests: 40, Duration: time.Second}, 2*time.Second)

	l := rep.LatencyMs
	if l.Count != 40 {
		t.Errorf("latency count %d, want 40", l.Count)
	}
	if l.P50 < 19.5 || l.P50 > 200 {
		t.Errorf("p50 %.2f ms for a 20 ms handler", l.P50)
	}
	if !(l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max && l.Mean >= 19.5 && l.Mean <= l.Max) {
		t.Errorf("latency %+v is not ordered", l)
	}
}

func TestReportJSON(t *testing.T) {
	srv := newServer(t, nil)
	rep := run(t, load.Spec{Target: srv.addr(), Rate: 500, MaxRequests: 3, Duration: time.Second}, 2*time.Second)
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"state":"finished"`, `"status":{"200":3}`, `"duration":"1s"`, `"timeout":"2s"`, `"paths":["/catalog"]`, `"latencyMs":{"count":3`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
}

func TestLocalhostTarget(t *testing.T) {
	srv := newServer(t, nil)
	_, port, _ := net.SplitHostPort(srv.addr())
	target := "localhost:" + port
	rep := run(t, load.Spec{Target: target, Rate: 500, MaxRequests: 3, Duration: time.Second}, 2*time.Second)
	if rep.Succeeded != 3 || rep.ByTarget[target].Succeeded != 3 {
		t.Errorf("report %+v, want 3 succeeded on %s", rep, target)
	}
}

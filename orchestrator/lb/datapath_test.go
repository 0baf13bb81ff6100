package lb

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests pin down what a data path must do at the socket level, and
// run on every data path built here.

// dataPaths are the data paths built on this platform.
func dataPaths() []string {
	if eventLoopBuilt {
		return []string{DataPathEventLoop, DataPathFasthttp}
	}
	return []string{DataPathFasthttp}
}

// eachDataPath runs f once per data path, as a subtest.
func eachDataPath(t *testing.T, f func(t *testing.T, path string)) {
	for _, p := range dataPaths() {
		t.Run(p, func(t *testing.T) { f(t, p) })
	}
}

// TestFasthttpDataPath runs every behaviour test of balancer_test.go,
// written against the default data path, on the fasthttp path too.
func TestFasthttpDataPath(t *testing.T) {
	if !eventLoopBuilt {
		t.Skip("fasthttp is the default data path here: the other tests ran on it")
	}
	testDataPath = DataPathFasthttp
	defer func() { testDataPath = "" }()
	for name, f := range map[string]func(*testing.T){
		"RoundRobinIsEven":                      TestRoundRobinIsEven,
		"NoReplicasIs503":                       TestNoReplicasIs503,
		"ForwardsRequestAndResponse":            TestForwardsRequestAndResponse,
		"StickyKeepsShoppersOnTheirReplica":     TestStickyKeepsShoppersOnTheirReplica,
		"DrainWaitsForInFlightAndSendsNothing":  TestDrainWaitsForInFlightAndSendsNothingNew,
		"MarkDownStopsTrafficAtOnce":            TestMarkDownStopsTrafficAtOnce,
		"EjectionAndRestore":                    TestEjectionAndRestore,
		"GETIsRetriedOnAnotherReplica":          TestGETIsRetriedOnAnotherReplica,
		"POSTWithoutIdempotencyKeyIsNeverTwice": TestPOSTWithoutIdempotencyKeyIsNeverSentTwice,
		"POSTWithIdempotencyKeyIsRetried":       TestPOSTWithIdempotencyKeyIsRetried,
		"TryTimeoutCatchesAHangingReplica":      TestTryTimeoutCatchesAHangingReplica,
		"CloseStopsServing":                     TestCloseStopsServing,
		"PassesMessagesThroughIntact":           TestPassesMessagesThroughIntact,
		"SkipsUpstreamsNotInSet":                TestSkipsUpstreamsNotInSet,
		"LeastConnectionsPrefersTheIdleBackend": TestLeastConnectionsPrefersTheIdleBackend,
		"P2CIsRoughlyEven":                      TestP2CIsRoughlyEven,
		"SetPolicyAtRuntime":                    TestSetPolicyAtRuntime,
		"DrainGivesUpWithItsContext":            TestDrainGivesUpWithItsContext,
		"NeverEjectsMoreThanHalf":               TestNeverEjectsMoreThanHalfAndForwardsRealErrors,
		"RetryBudgetCapsRetries":                TestRetryBudgetCapsRetries,
		"StatsCounts":                           TestStatsCounts,
		"OnEventNeverBlocksTheDataPath":         TestOnEventNeverBlocksTheDataPath,
	} {
		t.Run(name, f)
	}
}

func TestUnknownDataPathIsRefused(t *testing.T) {
	if _, err := New(Config{DataPath: "carrier-pigeon"}); err == nil || !strings.Contains(err.Error(), "unknown data path") {
		t.Errorf("New: %v", err)
	}
}

// wrappedListener is a listener of some other kind than *net.TCPListener,
// as a TLS or test wrapper would be.
type wrappedListener struct{ net.Listener }

// TestServeOnAnyListener: the default data path serves a listener it cannot
// read the socket of, the fasthttp way.
func TestServeOnAnyListener(t *testing.T) {
	a := newBackend(t, "a", nil)
	b, err := New(Config{Group: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	b.SetUpstreams([]Upstream{a.up()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve(wrappedListener{ln}) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + "/catalog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || a.hits.Load() != 1 {
		t.Errorf("status %d, %d requests at the replica; want 200 and 1", resp.StatusCode, a.hits.Load())
	}
}

// rawExchange writes raw to the balancer on one connection and reads n
// final responses.
func rawExchange(t *testing.T, b *Balancer, raw string, n int) []*http.Response {
	t.Helper()
	c, err := net.DialTimeout("tcp", b.Endpoint(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*http.Response
	for range n {
		resp, err := http.ReadResponse(br, nil)
		for err == nil && resp.StatusCode < 200 { // interim (100 Continue): read on, as clients do
			resp, err = http.ReadResponse(br, nil)
		}
		if err != nil {
			t.Fatalf("response %d: %v", len(out)+1, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", len(out)+1, err)
		}
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		resp.ContentLength = int64(len(body))
		out = append(out, resp)
	}
	return out
}

func bodyOf(r *http.Response) string {
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func TestPipelinedRequestsAreAnsweredInOrder(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
		})
		lb := startLB(t, Config{DataPath: path}, a.up())
		raw := "GET /one HTTP/1.1\r\nHost: shop\r\n\r\n" +
			"POST /two HTTP/1.1\r\nHost: shop\r\nContent-Length: 5\r\n\r\nhello" +
			"GET /three HTTP/1.1\r\nHost: shop\r\n\r\n"
		want := []string{"GET /one ", "POST /two hello", "GET /three "}
		for i, r := range rawExchange(t, lb, raw, 3) {
			if got := bodyOf(r); got != want[i] {
				t.Errorf("response %d: %q, want %q", i+1, got, want[i])
			}
		}
	})
}

func TestClientConnectionCloseIsHonoured(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		a := newBackend(t, "a", nil)
		lb := startLB(t, Config{DataPath: path}, a.up())
		c, err := net.DialTimeout("tcp", lb.Endpoint(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /x HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n")
		all, err := io.ReadAll(c) // ends only if the balancer closes
		if err != nil {
			t.Fatalf("read: %v (the connection was not closed)", err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(all))), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || !resp.Close {
			t.Errorf("status %d, close %v: %q", resp.StatusCode, resp.Close, all)
		}
	})
}

// TestUncommonRequestsAreServed sends what the event loop hands to the
// fasthttp path, and a head too large for anyone.
func TestUncommonRequestsAreServed(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s %d %s", r.Method, r.URL.Path, len(body), r.Header.Get("X-Forwarded-For"))
		})
		lb := startLB(t, Config{DataPath: path}, a.up())
		cases := []struct {
			name, raw, want string
		}{
			{"http/1.0", "GET /old HTTP/1.0\r\nHost: shop\r\n\r\n", "GET /old 0 127.0.0.1"},
			{"chunked body", "POST /c HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "POST /c 5 127.0.0.1"},
			{"expect", "PUT /e HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc", "PUT /e 3 127.0.0.1"},
			{"xff", "GET /x HTTP/1.1\r\nHost: shop\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n", "GET /x 0 10.1.2.3, 127.0.0.1"},
		}
		for _, tc := range cases {
			rs := rawExchange(t, lb, tc.raw, 1)
			r := rs[0]
			if got := bodyOf(r); r.StatusCode != 200 || got != tc.want {
				t.Errorf("%s: %d %q, want %q", tc.name, r.StatusCode, got, tc.want)
			}
		}
		big := "GET /big HTTP/1.1\r\nHost: shop\r\nX-Big: " + strings.Repeat("x", 20<<10) + "\r\n\r\n"
		if r := rawExchange(t, lb, big, 1)[0]; r.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("20 KiB head: %d, want 431", r.StatusCode)
		}
		// After all that, the balancer still serves plain requests.
		if r := get(t, lb); r.status != 200 {
			t.Errorf("then: %d %s", r.status, r.body)
		}
	})
}

// TestUncommonResponsesArrive: replies delimited by the replica closing,
// and interim 1xx heads before the answer.
func TestUncommonResponsesArrive(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					req, err := http.ReadRequest(bufio.NewReader(c))
					if err != nil {
						return
					}
					switch req.URL.Path {
					case "/eof":
						io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Flotilla-Replica: raw\r\n\r\nuntil the end")
					case "/interim":
						io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
					}
				}()
			}
		}()
		lb := startLB(t, Config{DataPath: path}, Upstream{ID: "raw", Addr: ln.Addr().String()})
		for range 2 { // twice: the replica's closing must not close the client's connection
			rs := rawExchange(t, lb, "GET /eof HTTP/1.1\r\nHost: shop\r\n\r\nGET /interim HTTP/1.1\r\nHost: shop\r\n\r\n", 2)
			if got := bodyOf(rs[0]); rs[0].StatusCode != 200 || got != "until the end" {
				t.Errorf("eof: %d %q", rs[0].StatusCode, got)
			}
			if got := bodyOf(rs[1]); rs[1].StatusCode != 200 || got != "ok" || rs[1].Close {
				t.Errorf("interim: %d %q close=%v", rs[1].StatusCode, got, rs[1].Close)
			}
		}
	})
}

// TestClientLeavingMidRequest: a client that hangs up while its request is
// at a replica costs nothing: no try stays in flight, and no error counts
// against the replica.
func TestClientLeavingMidRequest(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		release := make(chan struct{})
		var once sync.Once
		a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				<-release
			}
			io.WriteString(w, "ok")
		})
		t.Cleanup(func() { once.Do(func() { close(release) }) })
		lb := startLB(t, Config{DataPath: path, TryTimeout: 5 * time.Second}, a.up())
		c, err := net.DialTimeout("tcp", lb.Endpoint(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: shop\r\n\r\n")
		waitFor(t, "the request at the replica", func() bool { return statsOf(lb, "a").InFlight == 1 })
		c.Close()
		once.Do(func() { close(release) })
		waitFor(t, "nothing in flight", func() bool { return statsOf(lb, "a").InFlight == 0 })
		if s := statsOf(lb, "a"); s.ByClass["5xx"] != 0 || lb.Totals().Retries != 0 {
			t.Errorf("stats after the client left: %+v, %+v", s, lb.Totals())
		}
		if r := get(t, lb); r.status != 200 || r.body != "ok" {
			t.Errorf("next request: %d %q", r.status, r.body)
		}
	})
}

// TestReplicaClosingIdleConnections: a replica that closes its idle
// keep-alive connections quickly makes the balancer find closed pooled
// connections; GETs must not fail for it.
func TestReplicaClosingIdleConnections(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
		lb := startLB(t, Config{DataPath: path, EjectAfter: 1}, a.up())
		for i := range 5 {
			if r := get(t, lb); r.status != 200 {
				t.Fatalf("GET %d: %d %s", i, r.status, r.body)
			}
			a.closeIdle()
			time.Sleep(20 * time.Millisecond) // the closes reach the balancer
		}
		if s := statsOf(lb, "a"); s.Errors != 0 || s.Ejections != 0 {
			t.Errorf("a closed pooled connection counted as a failure: %+v", s)
		}
	})
}

// TestCloseLetsRequestsInFlightFinish: Close stops accepting at once but
// answers the request in flight.
func TestCloseLetsRequestsInFlightFinish(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(300 * time.Millisecond)
			io.WriteString(w, "done")
		})
		b, err := New(Config{DataPath: path, TryTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		b.SetUpstreams([]Upstream{a.up()})
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		go func() {
			resp, err := http.Get("http://" + b.Endpoint() + "/")
			if err != nil {
				got <- err.Error()
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			got <- fmt.Sprintf("%d %s", resp.StatusCode, body)
		}()
		waitFor(t, "the request at the replica", func() bool { return statsOf(b, "a").InFlight == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		if g := <-got; g != "200 done" {
			t.Errorf("request in flight at Close: %s", g)
		}
	})
}

// TestManyClientsAtOnce: concurrent clients over every loop; every answer
// is whole and the counters add up.
func TestManyClientsAtOnce(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		a := newBackend(t, "a", nil)
		b2 := newBackend(t, "b", nil)
		lb := startLB(t, Config{DataPath: path}, a.up(), b2.up())
		const clients, each = 32, 50
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tr := &http.Transport{MaxIdleConnsPerHost: 1}
				defer tr.CloseIdleConnections()
				c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
				for j := range each {
					body := fmt.Sprintf("c%d-r%d", i, j)
					resp, err := c.Post("http://"+lb.Endpoint()+"/catalog", "text/plain", strings.NewReader(body))
					if err != nil {
						errs <- err
						return
					}
					got, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if r := resp.Header.Get(ReplicaHeader); string(got) != r+":"+body {
						errs <- fmt.Errorf("got %q from %s for %q", got, r, body)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		total := statsOf(lb, "a").Requests + statsOf(lb, "b").Requests
		if total != clients*each {
			t.Errorf("requests counted: %d, want %d", total, clients*each)
		}
	})
}

// waitFor polls cond for up to 3 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSlowReaderGetsTheWholeAnswer: an answer larger than the socket
// buffers, to a client that reads late, arrives whole, and the connection
// serves the next request.
func TestSlowReaderGetsTheWholeAnswer(t *testing.T) {
	big := strings.Repeat("flotilla", 1<<20) // 8 MiB
	eachDataPath(t, func(t *testing.T, path string) {
		a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/big" {
				io.WriteString(w, big)
				return
			}
			io.WriteString(w, "small")
		})
		lb := startLB(t, Config{DataPath: path}, a.up())
		c, err := net.DialTimeout("tcp", lb.Endpoint(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /big HTTP/1.1\r\nHost: shop\r\n\r\n")
		time.Sleep(300 * time.Millisecond) // the balancer's writes fill the buffers and wait
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil || string(got) != big {
			t.Fatalf("big answer: %d of %d bytes, %v", len(got), len(big), err)
		}
		io.WriteString(c, "GET /small HTTP/1.1\r\nHost: shop\r\n\r\n")
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := io.ReadAll(resp.Body); string(got) != "small" {
			t.Errorf("next answer: %q", got)
		}
	})
}

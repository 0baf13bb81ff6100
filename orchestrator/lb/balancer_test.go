package lb

import (
	"context"
	"errors"
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
)

// These tests run the balancer on real sockets on 127.0.0.1, in front of
// httptest backends; no Docker.

// backend is a replica: an httptest server that counts requests and names
// itself in X-Flotilla-Replica, as the shop does.
type backend struct {
	name string
	addr string
	hits atomic.Int64
	srv  *httptest.Server
}

// closeIdle closes the backend's connections, as a replica's idle timeout
// does; call it between requests.
func (b *backend) closeIdle() { b.srv.CloseClientConnections() }

// newBackend starts a backend; h, if not nil, answers instead of the
// default, which echoes what the replica saw of the request.
func newBackend(t *testing.T, name string, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{name: name}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		w.Header().Set(ReplicaHeader, name)
		if h != nil {
			h(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen-Host", r.Host)
		w.Header().Set("X-Seen-XFF", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Seen-Keep-Alive", r.Header.Get("Keep-Alive"))
		w.Header().Set("Keep-Alive", "timeout=5") // hop-by-hop: must not reach the client
		fmt.Fprintf(w, "%s:%s", name, body)
	}))
	t.Cleanup(srv.Close)
	b.srv = srv
	b.addr = srv.Listener.Addr().String()
	return b
}

func failing(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, body, http.StatusInternalServerError)
	}
}

func (b *backend) up() Upstream { return Upstream{ID: "id-" + b.name, Name: b.name, Addr: b.addr} }

func ups(bs ...*backend) []Upstream {
	out := make([]Upstream, len(bs))
	for i, b := range bs {
		out[i] = b.up()
	}
	return out
}

// refusedAddr returns an address on 127.0.0.1 where nothing listens.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// hangingAddr returns an address that accepts connections and never
// answers, like a paused container.
func hangingAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// resetting returns a handler that reads the request and then drops the
// connection without a response: the replica may have acted on it.
func resetting(hits *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		hits.Add(1)
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
	}
}

// testDataPath is the data path startLB gives a balancer that names none;
// TestFasthttpDataPath runs the behaviour tests again with the other one.
var testDataPath string

// startLB starts a balancer with cfg over ups, closed at the end of the
// test.
func startLB(t *testing.T, cfg Config, upstreams ...Upstream) *Balancer {
	t.Helper()
	if cfg.Group == "" {
		cfg.Group = "shop"
	}
	if cfg.DataPath == "" {
		cfg.DataPath = testDataPath
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.SetUpstreams(upstreams)
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b
}

type result struct {
	status  int
	replica string
	body    string
	header  http.Header
}

var client = &http.Client{
	Transport: &http.Transport{MaxIdleConnsPerHost: 64},
	Timeout:   10 * time.Second,
}

func do(t *testing.T, b *Balancer, method string, hdr map[string]string, body string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+b.Endpoint()+"/catalog", rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header.Get(ReplicaHeader), string(data), resp.Header}
}

func get(t *testing.T, b *Balancer) result { return do(t, b, "GET", nil, "") }

// spread sends n GETs and counts the answering replicas.
func spread(t *testing.T, b *Balancer, n int, hdr map[string]string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		r := do(t, b, "GET", hdr, "")
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		got[r.replica]++
	}
	return got
}

func statsOf(b *Balancer, name string) UpstreamStats {
	for _, s := range b.Stats() {
		if s.Name == name {
			return s
		}
	}
	return UpstreamStats{}
}

func TestRoundRobinIsEven(t *testing.T) {
	a, b2, c := newBackend(t, "a", nil), newBackend(t, "b", nil), newBackend(t, "c", nil)
	lb := startLB(t, Config{}, ups(a, b2, c)...)
	got := spread(t, lb, 300, nil)
	for _, n := range []string{"a", "b", "c"} {
		if got[n] != 100 {
			t.Errorf("round-robin: %v, want 100 each", got)
			break
		}
	}
}

func TestSkipsUpstreamsNotInSet(t *testing.T) {
	a, b2, c := newBackend(t, "a", nil), newBackend(t, "b", nil), newBackend(t, "c", nil)
	lb := startLB(t, Config{}, ups(a, b2)...)
	if got := spread(t, lb, 20, nil); got["c"] != 0 || got["a"] != 10 || got["b"] != 10 {
		t.Errorf("set {a,b}: %v", got)
	}
	lb.SetUpstreams(ups(c))
	if got := spread(t, lb, 10, nil); got["c"] != 10 {
		t.Errorf("set {c}: %v", got)
	}
	if c.hits.Load() != 10 {
		t.Errorf("c served %d, want 10", c.hits.Load())
	}
}

func TestNoReplicasIs503(t *testing.T) {
	lb := startLB(t, Config{Group: "shop"})
	r := get(t, lb)
	if r.status != http.StatusServiceUnavailable || r.body != `{"error":"no ready replicas in group shop"}`+"\n" {
		t.Errorf("got %d %q", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	a := newBackend(t, "a", nil)
	lb.SetUpstreams(ups(a))
	lb.SetUpstreams(nil)
	if r := get(t, lb); r.status != http.StatusServiceUnavailable {
		t.Errorf("after emptying the set: %d", r.status)
	}
	if got := lb.Totals().Unrouted; got != 2 {
		t.Errorf("unrouted = %d, want 2", got)
	}
}

func TestForwardsRequestAndResponse(t *testing.T) {
	a := newBackend(t, "a", nil)
	lb := startLB(t, Config{}, ups(a)...)
	r := do(t, lb, "POST", map[string]string{
		"Host":            "shop.flotilla.test",
		"X-Forwarded-For": "192.0.2.7",
		"Keep-Alive":      "timeout=9",
	}, "hello")
	if r.status != 200 || r.body != "a:hello" {
		t.Fatalf("got %d %q", r.status, r.body)
	}
	for k, want := range map[string]string{
		ReplicaHeader:       "a",
		"X-Seen-Host":       "shop.flotilla.test",
		"X-Seen-XFF":        "192.0.2.7, 127.0.0.1",
		"X-Seen-Keep-Alive": "",
		"Keep-Alive":        "",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if r := get(t, lb); r.header.Get("X-Seen-XFF") != "127.0.0.1" {
		t.Errorf("X-Forwarded-For without a prior one: %q", r.header.Get("X-Seen-XFF"))
	}
}

func TestLeastConnectionsPrefersTheIdleBackend(t *testing.T) {
	release, arrived := make(chan struct{}), make(chan struct{}, 100)
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	})
	fast := newBackend(t, "fast", nil)
	lb := startLB(t, Config{Policy: PolicyLeastConnections, TryTimeout: 5 * time.Second}, ups(slow, fast)...)

	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(release)
	for range 20 {
		done := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done)
			get(t, lb)
		}()
		select { // the request is either held by slow, or answered by fast
		case <-arrived:
		case <-done:
		}
	}
	if s, f := slow.hits.Load(), fast.hits.Load(); s != 1 || f != 19 {
		t.Errorf("slow got %d, fast %d; want 1 and 19", s, f)
	}
}

func TestP2CIsRoughlyEven(t *testing.T) {
	a, b2, c := newBackend(t, "a", nil), newBackend(t, "b", nil), newBackend(t, "c", nil)
	lb := startLB(t, Config{Policy: PolicyP2C}, ups(a, b2, c)...)
	got := spread(t, lb, 600, nil)
	for _, n := range []string{"a", "b", "c"} {
		if got[n] < 150 || got[n] > 250 {
			t.Errorf("p2c: %v, want about 200 each", got)
			break
		}
	}
}

func TestStickyKeepsShoppersOnTheirReplica(t *testing.T) {
	a, b2, c := newBackend(t, "a", nil), newBackend(t, "b", nil), newBackend(t, "c", nil)
	lb := startLB(t, Config{Policy: PolicySticky}, ups(a, b2, c)...)
	const shoppers = 60
	home := map[string]string{}
	per := map[string]int{}
	for i := range shoppers {
		s := fmt.Sprintf("s-%d", i)
		r := do(t, lb, "GET", map[string]string{ShopperHeader: s}, "")
		home[s] = r.replica
		per[r.replica]++
	}
	for _, n := range []string{"a", "b", "c"} {
		if per[n] < 8 {
			t.Errorf("shoppers per replica %v: too uneven", per)
			break
		}
	}
	for i := range shoppers {
		s := fmt.Sprintf("s-%d", i)
		if r := do(t, lb, "GET", map[string]string{ShopperHeader: s}, ""); r.replica != home[s] {
			t.Fatalf("shopper %s moved from %s to %s", s, home[s], r.replica)
		}
		if r := do(t, lb, "GET", map[string]string{"Cookie": ShopperCookie + "=" + s}, ""); r.replica != home[s] {
			t.Fatalf("shopper %s by cookie went to %s, by header to %s", s, r.replica, home[s])
		}
	}
	// No shopper: round-robin.
	if got := spread(t, lb, 30, nil); got["a"] != 10 || got["b"] != 10 || got["c"] != 10 {
		t.Errorf("no shopper: %v, want round-robin", got)
	}
	// c leaves: only c's shoppers move.
	lb.SetUpstreams(ups(a, b2))
	moved := 0
	for i := range shoppers {
		s := fmt.Sprintf("s-%d", i)
		r := do(t, lb, "GET", map[string]string{ShopperHeader: s}, "")
		switch {
		case home[s] == "c":
			moved++
		case r.replica != home[s]:
			t.Errorf("shopper %s of %s moved to %s when c left", s, home[s], r.replica)
		}
	}
	if moved != per["c"] {
		t.Errorf("%d shoppers moved, c had %d", moved, per["c"])
	}
	// c returns: its shoppers come home.
	lb.SetUpstreams(ups(a, b2, c))
	for i := range shoppers {
		s := fmt.Sprintf("s-%d", i)
		if r := do(t, lb, "GET", map[string]string{ShopperHeader: s}, ""); r.replica != home[s] {
			t.Errorf("after c returned, shopper %s is on %s, was on %s", s, r.replica, home[s])
		}
	}
}

func TestSetPolicyAtRuntime(t *testing.T) {
	a, b2 := newBackend(t, "a", nil), newBackend(t, "b", nil)
	lb := startLB(t, Config{}, ups(a, b2)...)
	if lb.Policy() != PolicyRoundRobin {
		t.Errorf("default policy %q", lb.Policy())
	}
	err := lb.SetPolicy("random")
	if !errors.Is(err, ErrUnknownPolicy) {
		t.Fatalf("unknown policy: %v", err)
	}
	for _, p := range Policies() {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not list %s", err, p)
		}
	}
	if err := lb.SetPolicy(PolicySticky); err != nil {
		t.Fatal(err)
	}
	if got := spread(t, lb, 10, map[string]string{ShopperHeader: "alice"}); len(got) != 1 {
		t.Errorf("sticky after SetPolicy: alice went to %v", got)
	}
	if lb.Policy() != PolicySticky {
		t.Errorf("policy %q", lb.Policy())
	}
}

func TestDrainWaitsForInFlightAndSendsNothingNew(t *testing.T) {
	release, arrived := make(chan struct{}), make(chan struct{}, 1)
	a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("slow") == "" {
			arrived <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	})
	b2 := newBackend(t, "b", nil)
	lb := startLB(t, Config{TryTimeout: 5 * time.Second}, ups(a)...)

	slowDone := make(chan result, 1)
	go func() { slowDone <- get(t, lb) }()
	<-arrived
	lb.SetUpstreams(ups(a, b2))

	drained := make(chan error, 1)
	go func() { drained <- lb.Drain(context.Background(), a.up().ID) }()
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	if got := spread(t, lb, 10, nil); got["b"] != 10 {
		t.Errorf("while draining a: %v", got)
	}
	close(release)
	select {
	case err := <-drained:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return after the request finished")
	}
	if r := <-slowDone; r.status != 200 || r.body != "done" {
		t.Errorf("in-flight request: %d %q", r.status, r.body)
	}
	if a.hits.Load() != 1 {
		t.Errorf("a served %d requests, want only the one in flight", a.hits.Load())
	}
	if err := lb.Drain(context.Background(), "nope"); !errors.Is(err, ErrUnknownUpstream) {
		t.Errorf("drain of an unknown id: %v", err)
	}
}

func TestDrainGivesUpWithItsContext(t *testing.T) {
	release, arrived := make(chan struct{}), make(chan struct{}, 1)
	a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	})
	lb := startLB(t, Config{TryTimeout: 5 * time.Second}, ups(a)...)
	done := make(chan struct{})
	go func() { defer close(done); get(t, lb) }()
	<-arrived
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := lb.Drain(ctx, a.up().ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain = %v, want deadline exceeded", err)
	}
	close(release)
	<-done
}

func TestMarkDownStopsTrafficAtOnce(t *testing.T) {
	a, b2 := newBackend(t, "a", nil), newBackend(t, "b", nil)
	lb := startLB(t, Config{}, ups(a, b2)...)
	spread(t, lb, 4, nil)
	before := a.hits.Load()
	lb.MarkDown(a.up().ID)
	if got := spread(t, lb, 20, nil); got["b"] != 20 {
		t.Errorf("after MarkDown(a): %v", got)
	}
	if a.hits.Load() != before {
		t.Errorf("a got %d requests after MarkDown", a.hits.Load()-before)
	}
	lb.MarkDown("unknown") // a no-op
	lb.SetUpstreams(ups(a, b2))
	if got := spread(t, lb, 10, nil); got["a"] != 5 {
		t.Errorf("a listed again: %v", got)
	}
}

func TestEjectionAndRestore(t *testing.T) {
	a := newBackend(t, "a", failing("boom from a"))
	b2, c := newBackend(t, "b", nil), newBackend(t, "c", nil)
	events := make(chan Event, 10)
	lb := startLB(t, Config{
		EjectAfter: 3, EjectBase: time.Second, EjectMax: 4 * time.Second,
		OnEvent: func(e Event) { events <- e },
	}, ups(a, b2, c)...)

	// Round-robin: a fails requests 1, 4 and 7 and is out for the rest.
	fails := 0
	for range 15 {
		if r := get(t, lb); r.status == 500 {
			fails++
			if !strings.Contains(r.body, "boom from a") {
				t.Errorf("5xx body %q is not the replica's", r.body)
			}
		}
	}
	if fails != 3 || a.hits.Load() != 3 {
		t.Errorf("a failed %d times and served %d; want 3 and 3 then ejected", fails, a.hits.Load())
	}
	e := <-events
	if e.Kind != EventEjected || e.Replica != "a" || e.Group != "shop" || !strings.Contains(e.Reason, "3 consecutive") {
		t.Errorf("event %+v", e)
	}
	if d := e.Until.Sub(e.Time); d != time.Second {
		t.Errorf("first ejection lasts %v, want 1s", d)
	}
	if s := statsOf(lb, "a"); s.State != "ejected" || s.Ejections != 1 || !s.EjectedUntil.After(time.Now()) {
		t.Errorf("stats while ejected: %+v", s)
	}

	select {
	case e := <-events:
		if e.Kind != EventRestored || e.Replica != "a" {
			t.Errorf("event %+v", e)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a was not restored")
	}
	if s := statsOf(lb, "a"); s.State != "ready" {
		t.Errorf("state after restore %q", s.State)
	}
	for range 15 {
		get(t, lb)
	}
	if a.hits.Load() != 6 {
		t.Errorf("a served %d, want 3 more before its second ejection", a.hits.Load())
	}
	e = <-events
	if d := e.Until.Sub(e.Time); e.Kind != EventEjected || d != 2*time.Second {
		t.Errorf("second ejection: %+v lasting %v, want 2s (doubled)", e, d)
	}
}

func TestNeverEjectsMoreThanHalfAndForwardsRealErrors(t *testing.T) {
	var bs []*backend
	for _, n := range []string{"a", "b", "c", "d"} {
		bs = append(bs, newBackend(t, n, failing("boom from "+n)))
	}
	lb := startLB(t, Config{EjectAfter: 2, EjectBase: 10 * time.Second}, ups(bs...)...)
	for range 40 {
		r := get(t, lb)
		if r.status != 500 || !strings.HasPrefix(r.body, "boom from ") {
			t.Fatalf("got %d %q; want the replica's own 500", r.status, r.body)
		}
	}
	ejected := 0
	for _, s := range lb.Stats() {
		if s.State == "ejected" {
			ejected++
		}
	}
	if ejected != 2 {
		t.Errorf("%d of 4 ejected, want 2 (50%%)", ejected)
	}

	one := newBackend(t, "one", failing("boom from one"))
	lb.SetUpstreams(ups(one))
	for range 10 {
		if r := get(t, lb); r.status != 500 || r.replica != "one" {
			t.Fatalf("single failing replica: %d from %q", r.status, r.replica)
		}
	}
	if s := statsOf(lb, "one"); s.State != "ready" || s.Ejections != 0 {
		t.Errorf("the only replica was ejected: %+v", s)
	}
}

func TestGETIsRetriedOnAnotherReplica(t *testing.T) {
	b2, c := newBackend(t, "b", nil), newBackend(t, "c", nil)
	dead := Upstream{ID: "dead", Name: "dead", Addr: refusedAddr(t)}
	lb := startLB(t, Config{}, dead, b2.up(), c.up())
	for i := range 30 {
		if r := get(t, lb); r.status != 200 {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
	}
	if lb.Totals().Retries == 0 {
		t.Error("no retry counted")
	}
	if s := statsOf(lb, "dead"); s.Errors == 0 || s.ByClass["error"] != s.Errors {
		t.Errorf("dead replica stats %+v", s)
	}
}

func TestPOSTWithoutIdempotencyKeyIsNeverSentTwice(t *testing.T) {
	var xHits atomic.Int64
	x := newBackend(t, "x", resetting(&xHits))
	b2 := newBackend(t, "b", nil)
	lb := startLB(t, Config{EjectAfter: -1}, ups(x, b2)...)
	bad := 0
	for range 10 {
		r := do(t, lb, "POST", nil, `{"item":"tea-mug"}`)
		switch r.status {
		case 200:
		case http.StatusBadGateway:
			bad++
			if !strings.Contains(r.body, `"error":"replica x`) {
				t.Errorf("502 body %q", r.body)
			}
		default:
			t.Fatalf("status %d", r.status)
		}
	}
	if int64(bad) != xHits.Load() || bad != 5 {
		t.Errorf("%d POSTs failed, x received %d; want 5 and 5 (each once)", bad, xHits.Load())
	}
	if b2.hits.Load() != 5 || lb.Totals().Retries != 0 {
		t.Errorf("b got %d, retries %d; want 5 and 0", b2.hits.Load(), lb.Totals().Retries)
	}
}

func TestPOSTWithIdempotencyKeyIsRetried(t *testing.T) {
	var xHits atomic.Int64
	x := newBackend(t, "x", resetting(&xHits))
	b2 := newBackend(t, "b", nil)
	lb := startLB(t, Config{EjectAfter: -1}, ups(x, b2)...)
	for i := range 10 {
		r := do(t, lb, "POST", map[string]string{IdempotencyKeyHeader: fmt.Sprint("k-", i)}, `{"item":"tea-mug"}`)
		if r.status != 200 || r.body != `b:{"item":"tea-mug"}` {
			t.Fatalf("got %d %q; want b's echo of the whole body", r.status, r.body)
		}
	}
	if xHits.Load() == 0 || lb.Totals().Retries == 0 {
		t.Errorf("x hits %d, retries %d", xHits.Load(), lb.Totals().Retries)
	}
}

func TestTryTimeoutCatchesAHangingReplica(t *testing.T) {
	b2 := newBackend(t, "b", nil)
	paused := Upstream{ID: "paused", Name: "paused", Addr: hangingAddr(t)}
	lb := startLB(t, Config{TryTimeout: 200 * time.Millisecond}, paused, b2.up())
	slowest := time.Duration(0)
	for range 4 {
		start := time.Now()
		if r := get(t, lb); r.status != 200 || r.replica != "b" {
			t.Fatalf("got %d from %q: %s", r.status, r.replica, r.body)
		}
		slowest = max(slowest, time.Since(start))
	}
	if slowest < 200*time.Millisecond || slowest > 2*time.Second {
		t.Errorf("slowest request took %v; want the 200ms try timeout and a retry", slowest)
	}
	if s := statsOf(lb, "paused"); s.Errors == 0 {
		t.Errorf("paused stats %+v", s)
	}
	// Without another replica the client sees 504 after the try timeout.
	lb.SetUpstreams([]Upstream{paused})
	if r := get(t, lb); r.status != http.StatusGatewayTimeout || !strings.Contains(r.body, "did not answer within 200ms") {
		t.Errorf("alone: %d %q", r.status, r.body)
	}
}

func TestRetryBudgetCapsRetries(t *testing.T) {
	b2 := newBackend(t, "b", nil)
	dead := Upstream{ID: "dead", Name: "dead", Addr: refusedAddr(t)}
	// No share of requests, a floor of 0.2/s: 2 retries per 10 s window.
	lb := startLB(t, Config{EjectAfter: -1, RetryRatio: -1, RetryFloor: 0.2}, dead, b2.up())
	failed := 0
	for range 20 {
		if r := get(t, lb); r.status != 200 {
			failed++
		}
	}
	tot := lb.Totals()
	if tot.Retries != 2 || tot.RetriesDenied == 0 || uint64(failed) != tot.RetriesDenied {
		t.Errorf("retries %d, denied %d, client errors %d; want 2, >0, = denied", tot.Retries, tot.RetriesDenied, failed)
	}
}

func TestStatsCounts(t *testing.T) {
	a := newBackend(t, "a", nil)
	bad := newBackend(t, "bad", failing("no"))
	lb := startLB(t, Config{EjectAfter: -1}, ups(a, bad)...)
	for range 20 {
		get(t, lb)
	}
	sa, sb := statsOf(lb, "a"), statsOf(lb, "bad")
	if sa.Requests != 10 || sa.Errors != 0 || sa.ByClass["2xx"] != 10 || sa.InFlight != 0 || sa.State != "ready" {
		t.Errorf("a: %+v", sa)
	}
	if sb.Requests != 10 || sb.Errors != 10 || sb.ByClass["5xx"] != 10 {
		t.Errorf("bad: %+v", sb)
	}
	if sa.Share != 0.5 || sa.TotalShare != 0.5 || sa.P50 <= 0 || sa.P99 < sa.P50 {
		t.Errorf("a share %v total %v p50 %v p99 %v", sa.Share, sa.TotalShare, sa.P50, sa.P99)
	}
	if sa.ID != "id-a" || sa.Addr != a.addr {
		t.Errorf("a upstream %+v", sa.Upstream)
	}
}

func TestOnEventNeverBlocksTheDataPath(t *testing.T) {
	stuck := make(chan struct{})
	defer close(stuck)
	var bs []*backend
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		bs = append(bs, newBackend(t, n, failing("boom")))
	}
	b, err := New(Config{Group: "g", EjectAfter: 1, EjectBase: time.Minute, OnEvent: func(Event) { <-stuck }, DataPath: testDataPath})
	if err != nil {
		t.Fatal(err)
	}
	b.SetUpstreams(ups(bs...))
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 12 {
		if r := get(t, b); r.status != 500 {
			t.Fatalf("status %d", r.status)
		}
	}
	ejected := 0
	for _, s := range b.Stats() {
		if s.State == "ejected" {
			ejected++
		}
	}
	if ejected != 3 {
		t.Errorf("%d ejected, want 3 with OnEvent stuck on the first event", ejected)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	b.Close(ctx)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v with OnEvent stuck", d)
	}
}

func TestCloseStopsServing(t *testing.T) {
	a := newBackend(t, "a", nil)
	b, err := New(Config{DataPath: testDataPath})
	if err != nil {
		t.Fatal(err)
	}
	if b.Endpoint() != "" {
		t.Error("endpoint before Start")
	}
	b.SetUpstreams(ups(a))
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := b.Endpoint()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("endpoint %q", addr)
	}
	get(t, b)
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("still listening after Close")
	}
	if err := b.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v", err)
	}
}

func TestPassesMessagesThroughIntact(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB
	a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			io.WriteString(w, big)
		case "/chunked":
			w.Header().Set("X-Custom", "kept")
			for range 3 {
				io.WriteString(w, "part;")
				http.NewResponseController(w).Flush()
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		case "/echo":
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.RequestURI(), len(body))
		}
	})
	lb := startLB(t, Config{}, ups(a)...)
	base := "http://" + lb.Endpoint()

	fetch := func(method, path string, body io.Reader) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(data)
	}
	if resp, body := fetch("GET", "/big", nil); resp.StatusCode != 200 || body != big {
		t.Errorf("big: %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp, body := fetch("GET", "/chunked", nil); body != "part;part;part;" || resp.Header.Get("X-Custom") != "kept" {
		t.Errorf("chunked: %q %v", body, resp.Header)
	}
	if resp, body := fetch("GET", "/empty", nil); resp.StatusCode != 204 || body != "" {
		t.Errorf("204: %d %q", resp.StatusCode, body)
	}
	if resp, body := fetch("HEAD", "/big", nil); resp.StatusCode != 200 || body != "" {
		t.Errorf("HEAD: %d %q", resp.StatusCode, body)
	}
	// The path and query pass through as sent, even when not normal.
	if _, body := fetch("GET", "/echo?q=a%20b&x=%2F..%2F", nil); body != "GET /echo?q=a%20b&x=%2F..%2F 0" {
		t.Errorf("query: %q", body)
	}
	// A chunked request body arrives whole.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(strings.Repeat("x", 100_000)))
		pw.Close()
	}()
	if _, body := fetch("PUT", "/echo", pr); body != "PUT /echo 100000" {
		t.Errorf("chunked request: %q", body)
	}
	// The replica's Connection: close ends its connection, not the client's.
	for range 3 {
		if resp, body := fetch("GET", "/close", nil); resp.Close || body != "bye" {
			t.Errorf("replica's Connection: close reached the client (%q)", body)
		}
	}
}

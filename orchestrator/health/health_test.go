package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func waitVerdict(t *testing.T, p *Prober, id, want string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if st, ok := p.Status(id); ok && st.Verdict == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	st, _ := p.Status(id)
	t.Fatalf("replica %s is %q, want %q", id, st.Verdict, want)
}

func TestVerdictsFollowTheReplica(t *testing.T) {
	var healthy atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	changes := make(chan Change, 16)
	p := New(Config{Interval: 10 * time.Millisecond, StartInterval: 5 * time.Millisecond, FailureThreshold: 2}, func(c Change) { changes <- c })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tgt := Target{ID: "a", Group: "web", Name: "web-1", URL: srv.URL + "/readyz"}
	p.Sync(ctx, "web", []Target{tgt})

	// Failing while starting never reads as unready: it has not served yet.
	time.Sleep(50 * time.Millisecond)
	if st, _ := p.Status("a"); st.Verdict != Starting {
		t.Fatalf("a never-ready replica is %q, want starting", st.Verdict)
	}
	healthy.Store(true)
	waitVerdict(t, p, "a", Ready)
	healthy.Store(false)
	waitVerdict(t, p, "a", Unready)
	healthy.Store(true)
	waitVerdict(t, p, "a", Ready)

	var seen []string
	for len(changes) > 0 {
		if c := <-changes; c.Prev != c.Verdict {
			seen = append(seen, c.Prev+">"+c.Verdict)
		}
	}
	want := []string{"starting>ready", "ready>unready", "unready>ready"}
	if len(seen) != len(want) {
		t.Fatalf("changes %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("changes %v, want %v", seen, want)
		}
	}
}

func TestSyncStopsVanishedTargets(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	p := New(Config{Interval: 5 * time.Millisecond}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.Sync(ctx, "web", []Target{{ID: "a", Group: "web", URL: srv.URL}})
	p.Sync(ctx, "db", []Target{{ID: "b", Group: "db", URL: srv.URL}})
	waitVerdict(t, p, "a", Ready)
	p.Sync(ctx, "web", nil)
	if _, ok := p.Status("a"); ok {
		t.Fatal("a is still probed after it left its group")
	}
	if _, ok := p.Status("b"); !ok {
		t.Fatal("syncing group web stopped the probe of group db")
	}
	p.Forget("b")
	time.Sleep(20 * time.Millisecond)
	before := hits.Load()
	time.Sleep(50 * time.Millisecond)
	if after := hits.Load(); after != before {
		t.Fatalf("probes continued after every target left: %d more hits", after-before)
	}
}

func waitStatus(t *testing.T, p *Prober, id, what string, cond func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if st, ok := p.Status(id); ok && cond(st) {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	st, _ := p.Status(id)
	t.Fatalf("replica %s never got %s: %+v", id, what, st)
	return st
}

// A replica whose dependency is down is unready with the dependency named,
// and still live; only when it stops answering /healthz is it not live.
func TestReadinessAndLivenessAreApart(t *testing.T) {
	var depDown, hung atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if hung.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if depDown.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"status":"unavailable","failing":["catalog"],"error":"dependency not ready: catalog: dial tcp: lookup catalog: no such host"}`))
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	changes := make(chan Change, 64)
	p := New(Config{Interval: 10 * time.Millisecond, StartInterval: 5 * time.Millisecond, FailureThreshold: 2}, func(c Change) {
		select {
		case changes <- c:
		default:
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.Sync(ctx, "cart", []Target{{ID: "a", Group: "cart", Name: "cart-1", URL: srv.URL + "/readyz", LiveURL: srv.URL + "/healthz"}})

	waitStatus(t, p, "a", "ready and live", func(s Status) bool { return s.Verdict == Ready && s.Live == Live })
	depDown.Store(true)
	st := waitStatus(t, p, "a", "unready", func(s Status) bool { return s.Verdict == Unready })
	if st.Reason != "dependency catalog unavailable" {
		t.Errorf("reason %q, want the failing dependency named", st.Reason)
	}
	// Several more liveness periods: a dependency's outage never makes it not live.
	time.Sleep(100 * time.Millisecond)
	if st, _ := p.Status("a"); st.Live != Live {
		t.Fatalf("a replica with a dependency down is %q, want live", st.Live)
	}
	hung.Store(true)
	st = waitStatus(t, p, "a", "not-live", func(s Status) bool { return s.Live == NotLive })
	if st.LiveReason != "/healthz answered 500 Internal Server Error" {
		t.Errorf("liveness reason %q", st.LiveReason)
	}
	hung.Store(false)
	depDown.Store(false)
	st = waitStatus(t, p, "a", "ready and live again", func(s Status) bool { return s.Verdict == Ready && s.Live == Live })
	if st.Reason != "" || st.LiveReason != "" {
		t.Errorf("reasons kept after success: %+v", st)
	}

	var sawUnready bool
	for len(changes) > 0 {
		c := <-changes
		if c.Probe == Readiness && c.Verdict == Unready && c.Prev == Ready {
			sawUnready = c.Reason == "dependency catalog unavailable"
		}
	}
	if !sawUnready {
		t.Error("no change reported the replica unready with its reason")
	}
}

func TestAnswerReason(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, tt := range []struct {
		body string
		want string
	}{
		{`{"failing":["catalog"]}`, "dependency catalog unavailable"},
		{`{"failing":["cart","orders"],"error":"…"}`, "dependencies cart, orders unavailable"},
		{`{"error":"disk full"}`, "disk full"},
		{`{"error":"bad\r\nline"}`, "bad  line"},
		{`{"error":"` + long + `"}`, strings.Repeat("x", maxReason) + "…"},
		{`not json`, "/readyz answered 503 Service Unavailable"},
		{``, "/readyz answered 503 Service Unavailable"},
	} {
		if got := answerReason("/readyz", 503, []byte(tt.body)); got != tt.want {
			t.Errorf("answerReason(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestTransportReasons(t *testing.T) {
	c := newChecker()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if got := c.check(context.Background(), "http://"+addr+"/healthz", time.Second); got != "connection refused" {
		t.Errorf("closed port: %q", got)
	}

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer slow.Close()
	if got := c.check(context.Background(), slow.URL+"/healthz", 50*time.Millisecond); got != "no answer within 50ms" {
		t.Errorf("slow replica: %q", got)
	}
}

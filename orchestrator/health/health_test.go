package health

import (
	"context"
	"net/http"
	"net/http/httptest"
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

	// Failing while starting never reads as unhealthy: it has not served yet.
	time.Sleep(50 * time.Millisecond)
	if st, _ := p.Status("a"); st.Verdict != Starting {
		t.Fatalf("a never-ready replica is %q, want starting", st.Verdict)
	}
	healthy.Store(true)
	waitVerdict(t, p, "a", Ready)
	healthy.Store(false)
	waitVerdict(t, p, "a", Unhealthy)
	healthy.Store(true)
	waitVerdict(t, p, "a", Ready)

	var seen []string
	for len(changes) > 0 {
		c := <-changes
		seen = append(seen, c.Prev+">"+c.Verdict)
	}
	want := []string{"starting>ready", "ready>unhealthy", "unhealthy>ready"}
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

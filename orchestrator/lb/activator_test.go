package lb

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A herd of requests at zero is held, causes exactly one wake, and is
// released to the replica that comes, in order and without a failure; the
// timeline of each says when it was held, released and answered.
func TestHeldHerdWakesOnceAndIsReleased(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		be := newBackend(t, "fn-1", nil)
		b := startLB(t, Config{DataPath: path})
		var wakes atomic.Int32
		var mu sync.Mutex
		var held []HeldRequest
		b.SetActivation(&Activation{
			Wake: func() {
				wakes.Add(1)
				time.Sleep(200 * time.Millisecond) // the replica starting
				b.SetUpstreams(ups(be))
			},
			OnHeld: func(h HeldRequest) { mu.Lock(); held = append(held, h); mu.Unlock() },
		})
		const herd = 100
		statuses := make(chan int, herd)
		var wg sync.WaitGroup
		for range herd {
			wg.Go(func() {
				resp, err := client.Get("http://" + b.Endpoint() + "/recommend")
				if err != nil {
					statuses <- 0
					return
				}
				resp.Body.Close()
				statuses <- resp.StatusCode
			})
		}
		wg.Wait()
		close(statuses)
		for s := range statuses {
			if s != http.StatusOK {
				t.Fatalf("a held request got %d, want 200", s)
			}
		}
		if n := wakes.Load(); n != 1 {
			t.Fatalf("%d wakes for a herd of %d, want 1", n, herd)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(held) == 0 || len(held) > herd {
			t.Fatalf("%d held requests reported", len(held))
		}
		for _, h := range held {
			if h.Released.Before(h.Arrived) || h.Answered.Before(h.Released) || h.Status != 200 {
				t.Fatalf("timeline out of order or failed: %+v", h)
			}
			if h.Released.Sub(h.Arrived) > 5*time.Second {
				t.Fatalf("held %s", h.Released.Sub(h.Arrived))
			}
		}
		if l := b.Load(); l.Wakes != 1 || l.Held != 0 || l.Refused != 0 || l.Arrived < herd {
			t.Fatalf("load after the herd: %+v", l)
		}
	})
}

// Past its bounds a held request is answered 503 with Retry-After and a
// JSON error: a full queue at once, a wait too long at its timeout. Once
// every held request gave up, the next one asks to wake again.
func TestHeldRequestsPastTheBoundsAre503(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		b := startLB(t, Config{DataPath: path})
		var wakes atomic.Int32
		b.SetActivation(&Activation{Wake: func() { wakes.Add(1) }, MaxHeld: 1, HoldTimeout: 300 * time.Millisecond})

		first := make(chan result, 1)
		go func() { first <- get(t, b) }()
		waitFor(t, "one request held", func() bool { return b.Load().Held == 1 })
		r := get(t, b) // the queue is full
		if r.status != 503 || r.header.Get("Retry-After") == "" || !jsonError(r.body) {
			t.Fatalf("over the queue: %d %q Retry-After %q", r.status, r.body, r.header.Get("Retry-After"))
		}
		r = <-first // timed out
		if r.status != 503 || r.header.Get("Retry-After") == "" || !jsonError(r.body) {
			t.Fatalf("held too long: %d %q", r.status, r.body)
		}
		if l := b.Load(); l.Refused != 2 || l.Held != 0 {
			t.Fatalf("load: %+v", l)
		}
		_ = get(t, b)
		if n := wakes.Load(); n != 2 {
			t.Fatalf("%d wakes, want 2: a new wait after all gave up asks again", n)
		}
	})
}

// Without activation, no replica is still a plain 503; turning activation
// off answers the held requests at once.
func TestActivationOffAnswersHeldRequests(t *testing.T) {
	b := startLB(t, Config{})
	b.SetActivation(&Activation{HoldTimeout: time.Minute})
	done := make(chan result, 1)
	go func() { done <- get(t, b) }()
	waitFor(t, "one request held", func() bool { return b.Load().Held == 1 })
	b.SetActivation(nil)
	select {
	case r := <-done:
		if r.status != 503 {
			t.Fatalf("status %d, want 503", r.status)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a held request was not answered when holding was turned off")
	}
	if r := get(t, b); r.status != 503 || r.header.Get("Retry-After") != "" {
		t.Fatalf("without activation: %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
}

func jsonError(body string) bool {
	var e struct{ Error string }
	return json.Unmarshal([]byte(body), &e) == nil && e.Error != ""
}

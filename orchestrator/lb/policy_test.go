package lb

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// Tests of the pure parts: selectors, retry rules, budget, windows and
// quantiles, on hosts made without any socket.

func testHosts(n int) []*host {
	cfg, _ := Config{}.withDefaults()
	hs := make([]*host, n)
	for i := range hs {
		id := fmt.Sprintf("r-%d", i)
		hs[i] = newHost(Upstream{ID: id, Addr: "127.0.0.1:1"}, &cfg, nil)
	}
	return hs
}

func counts(t *testing.T, sel selector, hs []*host, n int, pc pickCtx) map[*host]int {
	t.Helper()
	got := map[*host]int{}
	for range n {
		h := sel.pick(hs, pc)
		if h == nil {
			t.Fatal("pick returned nil")
		}
		got[h]++
	}
	return got
}

func TestRoundRobinSelectorIsEvenAndSkipsUnusable(t *testing.T) {
	hs := testHosts(3)
	for _, h := range hs {
		if got := counts(t, new(roundRobin), hs, 300, pickCtx{})[h]; got != 100 {
			t.Errorf("%s got %d of 300, want 100", h.up.ID, got)
		}
	}
	hs[1].ejected.Store(true)
	got := counts(t, new(roundRobin), hs, 100, pickCtx{exclude: hs[2]})
	if got[hs[0]] != 100 {
		t.Errorf("with r-1 ejected and r-2 excluded, r-0 got %d of 100", got[hs[0]])
	}
	if h := new(roundRobin).pick(hs[1:2], pickCtx{}); h != nil {
		t.Errorf("picked ejected %s", h.up.ID)
	}
	if h := new(roundRobin).pick(hs[1:2], pickCtx{ignoreEjection: true}); h != hs[1] {
		t.Errorf("ignoreEjection: picked %v, want r-1", h)
	}
}

func TestLeastConnectionsSelector(t *testing.T) {
	hs := testHosts(3)
	hs[0].inflight.Store(5)
	hs[1].inflight.Store(1)
	hs[2].inflight.Store(2)
	if got := counts(t, new(leastConnections), hs, 10, pickCtx{}); got[hs[1]] != 10 {
		t.Errorf("least loaded r-1 got %d of 10", got[hs[1]])
	}
	// Ties go round-robin.
	for _, h := range hs {
		h.inflight.Store(0)
	}
	for _, h := range hs {
		if got := counts(t, new(leastConnections), hs, 30, pickCtx{})[h]; got != 10 {
			t.Errorf("tie: %s got %d of 30, want 10", h.up.ID, got)
		}
	}
}

func TestP2CSelector(t *testing.T) {
	hs := testHosts(3)
	got := counts(t, new(p2c), hs, 3000, pickCtx{})
	for _, h := range hs {
		if got[h] < 850 || got[h] > 1150 {
			t.Errorf("idle hosts: %s got %d of 3000, want about 1000", h.up.ID, got[h])
		}
	}
	// The busiest of three is never the lesser of two distinct draws.
	hs[2].inflight.Store(10)
	if got := counts(t, new(p2c), hs, 1000, pickCtx{}); got[hs[2]] != 0 {
		t.Errorf("busiest host picked %d times", got[hs[2]])
	}
	hs[0].ejected.Store(true)
	hs[1].ejected.Store(true)
	if got := counts(t, new(p2c), hs, 100, pickCtx{}); got[hs[2]] != 100 {
		t.Errorf("only usable host got %d of 100", got[hs[2]])
	}
}

func TestStickySelectorMovesOnlyTheRemovedHostsShoppers(t *testing.T) {
	hs := testHosts(5)
	const shoppers = 2000
	before := make([]*host, shoppers)
	per := map[*host]int{}
	for i := range before {
		key := []byte(fmt.Sprintf("s-%d", i))
		before[i] = new(sticky).pick(hs, pickCtx{key: key})
		per[before[i]]++
		if again := new(sticky).pick(hs, pickCtx{key: key}); again != before[i] {
			t.Fatalf("shopper %s moved between two picks", key)
		}
	}
	for _, h := range hs {
		if per[h] < shoppers/5*7/10 || per[h] > shoppers/5*13/10 {
			t.Errorf("%s holds %d of %d shoppers, want about %d", h.up.ID, per[h], shoppers, shoppers/5)
		}
	}
	removed := hs[2]
	rest := append(append([]*host{}, hs[:2]...), hs[3:]...)
	moved := 0
	for i := range before {
		after := new(sticky).pick(rest, pickCtx{key: []byte(fmt.Sprintf("s-%d", i))})
		switch {
		case before[i] == removed:
			moved++
		case after != before[i]:
			t.Fatalf("shopper s-%d moved from %s to %s though its host stayed", i, before[i].up.ID, after.up.ID)
		}
	}
	if moved != per[removed] {
		t.Errorf("moved %d shoppers, want the %d of the removed host", moved, per[removed])
	}
	// Ejection is the same as removal for a pick, and the exclusion of a
	// retry too.
	removed.ejected.Store(true)
	for i := range 100 {
		key := []byte(fmt.Sprintf("s-%d", i))
		if h := new(sticky).pick(hs, pickCtx{key: key}); h == removed || (before[i] != removed && h != before[i]) {
			t.Fatalf("shopper %s: picked %s with r-2 ejected", key, h.up.ID)
		}
	}
}

func TestSafeToRepeat(t *testing.T) {
	for _, tc := range []struct {
		method string
		key    bool
		want   bool
	}{
		{"GET", false, true}, {"HEAD", false, true}, {"OPTIONS", false, true},
		{"PUT", false, true}, {"DELETE", false, true},
		{"POST", false, false}, {"PATCH", false, false},
		{"POST", true, true}, {"PATCH", true, true},
	} {
		if got := safeToRepeat([]byte(tc.method), tc.key); got != tc.want {
			t.Errorf("safeToRepeat(%s, key=%v) = %v, want %v", tc.method, tc.key, got, tc.want)
		}
	}
}

func TestOutcomes(t *testing.T) {
	for _, tc := range []struct {
		o          tryOutcome
		status     int
		failed     bool
		retryable_ bool
	}{
		{outcomeResponse, 200, false, false},
		{outcomeResponse, 404, false, false},
		{outcomeResponse, 503, true, false},
		{outcomeConnFailed, 0, true, true},
		{outcomeTimeout, 0, true, true},
		{outcomeLocal, 0, false, false},
	} {
		if got := tc.o.failed(tc.status); got != tc.failed {
			t.Errorf("outcome %d status %d: failed = %v", tc.o, tc.status, got)
		}
		if got := tc.o.retryable(); got != tc.retryable_ {
			t.Errorf("outcome %d: retryable = %v", tc.o, got)
		}
	}
}

func TestRetryBudget(t *testing.T) {
	rb := retryBudget{ratio: 0.2, floor: 0}
	for range 100 {
		rb.request(1000)
	}
	got := 0
	for range 50 {
		if rb.withdraw(1000) {
			got++
		}
	}
	if got != 20 {
		t.Errorf("ratio 0.2 of 100 requests allowed %d retries, want 20", got)
	}
	// The window forgets requests after windowSeconds.
	if rb.withdraw(1000 + windowSeconds) {
		t.Error("retry allowed on an expired window")
	}
	floor := retryBudget{floor: 0.5} // 5 per 10 s window
	got = 0
	for range 10 {
		if floor.withdraw(2000) {
			got++
		}
	}
	if got != 5 {
		t.Errorf("floor 0.5/s allowed %d retries with no requests, want 5", got)
	}
}

func TestWindow(t *testing.T) {
	var w window
	w.add(100, 3)
	w.add(101, 4)
	w.add(109, 5)
	if got := w.sum(109); got != 12 {
		t.Errorf("sum at 109 = %d, want 12", got)
	}
	if got := w.sum(110); got != 9 {
		t.Errorf("sum at 110 = %d, want 9 (second 100 left the window)", got)
	}
	w.add(110, 1) // reuses the bucket of second 100
	if got := w.sum(110); got != 10 {
		t.Errorf("sum at 110 after add = %d, want 10", got)
	}
}

func TestQuantile(t *testing.T) {
	c := make([]uint64, len(latencyBounds)+1)
	if got := quantile(c, 0.5); got != 0 {
		t.Errorf("empty histogram: %v", got)
	}
	// 100 observations in (0.5ms, 1ms]: p50 interpolates to 0.75ms.
	c[3] = 100
	if got, want := quantile(c, 0.5), 750*time.Microsecond; absDur(got-want) > time.Microsecond {
		t.Errorf("p50 = %v, want %v", got, want)
	}
	c[len(c)-1] = 1000 // above the last bound
	if got := quantile(c, 0.99); got != 10*time.Second {
		t.Errorf("p99 in +Inf bucket = %v, want the last bound", got)
	}
	if math.IsNaN(float64(quantile(c, 1))) {
		t.Error("NaN")
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func TestConfigDefaultsAndLoopback(t *testing.T) {
	cfg, err := Config{Group: "g"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:0" || cfg.Policy != PolicyRoundRobin || cfg.TryTimeout != time.Second ||
		cfg.RetryRatio != 0.2 || cfg.RetryFloor != 5 || cfg.EjectAfter != 3 || cfg.EjectBase != time.Second ||
		cfg.EjectMax != 30*time.Second || cfg.MaxEjectedPercent != 50 {
		t.Errorf("defaults: %+v", cfg)
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:8080", "[::1]:0", "127.0.0.2:80"} {
		if _, err := New(Config{Listen: addr}); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	for _, addr := range []string{"0.0.0.0:0", ":8080", "10.0.0.1:80", "example.com:80", "nonsense"} {
		if _, err := New(Config{Listen: addr}); err == nil {
			t.Errorf("%s: no error", addr)
		}
	}
	if _, err := New(Config{Listen: ":0", AllowNonLoopback: true}); err != nil {
		t.Errorf("AllowNonLoopback: %v", err)
	}
	if _, err := New(Config{Policy: "random"}); err == nil {
		t.Error("unknown policy: no error")
	}
}

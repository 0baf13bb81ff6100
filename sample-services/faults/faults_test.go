package faults

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// setup serves a fake role that serves the given features behind inj, and
// inj's admin API. Every feature path answers 200 "ok".
func setup(t *testing.T, inj *Injector, served ...string) (shop, admin string) {
	t.Helper()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	s := httptest.NewServer(inj.Wrap(ok, served...))
	a := httptest.NewServer(inj.Admin())
	t.Cleanup(s.Close)
	t.Cleanup(a.Close)
	return s.URL, a.URL
}

var allFeatures = []string{"catalog", "deals", "cart", "orders", "checkout"}

// do sends one request and returns the status and body.
func do(t *testing.T, ctx context.Context, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// put sets a fault and fails the test unless it is accepted.
func put(t *testing.T, admin, feature, body string) {
	t.Helper()
	if code, reply := do(t, t.Context(), "PUT", admin+"/faults/"+feature, body); code != 200 {
		t.Fatalf("PUT /faults/%s %s = %d %s", feature, body, code, reply)
	}
}

// timed returns how long GET url took, failing the test unless it is 200.
func timed(t *testing.T, url string) time.Duration {
	t.Helper()
	start := time.Now()
	if code, body := do(t, t.Context(), "GET", url, ""); code != 200 {
		t.Fatalf("GET %s = %d %s", url, code, body)
	}
	return time.Since(start)
}

func TestLatencyAppliedAndCleared(t *testing.T) {
	shop, admin := setup(t, New(allFeatures...), allFeatures...)
	const delay = 300 * time.Millisecond

	put(t, admin, "deals", `{"latencyMs":300}`)
	if took := timed(t, shop+"/deals"); took < delay {
		t.Errorf("/deals took %v with 300ms latency", took)
	}
	if took := timed(t, shop+"/catalog"); took >= delay {
		t.Errorf("/catalog took %v: latency on deals leaked", took)
	}

	do(t, t.Context(), "DELETE", admin+"/faults/deals", "")
	if took := timed(t, shop+"/deals"); took >= delay {
		t.Errorf("/deals took %v after the fault was cleared", took)
	}
}

func TestLatencyEndsWithTheRequest(t *testing.T) {
	inj := New(allFeatures...)
	var handled atomic.Bool
	srv := httptest.NewServer(inj.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Store(true)
	}), allFeatures...))
	defer srv.Close()
	inj.faults["cart"] = Fault{LatencyMs: 30_000}

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/cart", nil)
	start := time.Now()
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("got %s, want the client to give up", resp.Status)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("gave up after %v", took)
	}
	srv.Close() // waits for the handler to return
	if handled.Load() {
		t.Error("the request was handled after its client gave up")
	}
}

func TestErrorRate(t *testing.T) {
	shop, admin := setup(t, New(allFeatures...), allFeatures...)

	put(t, admin, "cart", `{"errorRate":1}`)
	for range 20 {
		if code, body := do(t, t.Context(), "GET", shop+"/cart/items", ""); code != 500 || body != `{"error":"injected fault"}` {
			t.Fatalf("errorRate 1: %d %s, want 500 injected fault", code, body)
		}
	}
	if code, _ := do(t, t.Context(), "GET", shop+"/orders", ""); code != 200 {
		t.Errorf("/orders = %d: errors on cart leaked", code)
	}

	put(t, admin, "cart", `{"errorRate":0}`)
	for range 20 {
		if code, body := do(t, t.Context(), "GET", shop+"/cart", ""); code != 200 {
			t.Fatalf("errorRate 0: %d %s", code, body)
		}
	}
	if _, body := do(t, t.Context(), "GET", admin+"/faults", ""); body != "{}" {
		t.Errorf("faults after errorRate 0 = %s, want {}", body)
	}
}

func TestSomeErrors(t *testing.T) {
	shop, admin := setup(t, New(allFeatures...), allFeatures...)
	put(t, admin, "orders", `{"errorRate":0.5}`)
	failed := 0
	for range 200 {
		if code, _ := do(t, t.Context(), "GET", shop+"/orders", ""); code == 500 {
			failed++
		}
	}
	if failed < 50 || failed > 150 { // about 1 in 10^12 to fail by chance
		t.Errorf("%d of 200 failed with errorRate 0.5", failed)
	}
}

func TestAllAppliesEverywhereButProbes(t *testing.T) {
	shop, admin := setup(t, New(allFeatures...), "catalog")
	put(t, admin, All, `{"errorRate":1}`)
	for _, path := range []string{"/catalog", "/deals", "/", "/anything/else"} {
		if code, _ := do(t, t.Context(), "GET", shop+path, ""); code != 500 {
			t.Errorf("GET %s = %d, want 500", path, code)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _ := do(t, t.Context(), "GET", shop+path, ""); code != 200 {
			t.Errorf("GET %s = %d: probes must not be faulted", path, code)
		}
	}
}

func TestFeatureNotServedIsNotFaulted(t *testing.T) {
	shop, admin := setup(t, New(allFeatures...), "catalog")
	put(t, admin, "deals", `{"errorRate":1}`)
	if code, _ := do(t, t.Context(), "GET", shop+"/deals", ""); code != 200 {
		t.Errorf("GET /deals = %d in a role that does not serve deals", code)
	}
	// A path only looks like a feature if the whole first segment matches.
	put(t, admin, "catalog", `{"errorRate":1}`)
	if code, _ := do(t, t.Context(), "GET", shop+"/catalogue", ""); code != 200 {
		t.Errorf("GET /catalogue = %d, want it not to count as catalog", code)
	}
}

func TestCrashFiresOnceOnItsFeature(t *testing.T) {
	inj := New(allFeatures...)
	crashed := make(chan string, 10)
	inj.crash = func(msg string) { crashed <- msg }
	shop, admin := setup(t, inj, "catalog", "deals")

	put(t, admin, "deals", `{"crash":true}`)
	put(t, admin, "cart", `{"crash":true}`) // not served here: never fires
	do(t, t.Context(), "GET", shop+"/catalog", "")
	do(t, t.Context(), "GET", shop+"/cart", "")
	if len(crashed) != 0 {
		t.Fatalf("crashed on other features: %q", <-crashed)
	}
	do(t, t.Context(), "POST", shop+"/deals/x", "")
	do(t, t.Context(), "GET", shop+"/deals", "")
	if n := len(crashed); n != 1 {
		t.Fatalf("%d crashes, want one", n)
	}
	if msg := <-crashed; msg != "injected crash on POST /deals/x" {
		t.Fatalf("crash %q, want one on POST /deals/x", msg)
	}
	if _, body := do(t, t.Context(), "GET", admin+"/faults", ""); body != `{"cart":{"crash":true}}` {
		t.Errorf("faults after the crash = %s, want only cart's left", body)
	}
}

func TestAdminShapes(t *testing.T) {
	_, admin := setup(t, New(allFeatures...))
	steps := []struct{ method, path, body, want string }{
		{"GET", "/faults", "", `{}`},
		{"PUT", "/faults/deals", `{"crash":true,"latencyMs":300,"errorRate":0.25}`,
			`{"deals":{"crash":true,"latencyMs":300,"errorRate":0.25}}`},
		{"PUT", "/faults/*", `{"latencyMs":10}`, `{"*":{"latencyMs":10},"deals":{"crash":true,"latencyMs":300,"errorRate":0.25}}`},
		{"PUT", "/faults/deals", `{"errorRate":1}`, `{"*":{"latencyMs":10},"deals":{"errorRate":1}}`}, // replaces
		{"DELETE", "/faults/deals", "", `{"*":{"latencyMs":10}}`},
		{"DELETE", "/faults/cart", "", `{"*":{"latencyMs":10}}`}, // nothing to clear is fine
		{"DELETE", "/faults", "", `{}`},
	}
	for _, s := range steps {
		code, body := do(t, t.Context(), s.method, admin+s.path, s.body)
		if code != 200 || body != s.want {
			t.Errorf("%s %s %s = %d %s, want 200 %s", s.method, s.path, s.body, code, body, s.want)
		}
	}
}

func TestAdminRejectsBadInput(t *testing.T) {
	_, admin := setup(t, New(allFeatures...))
	bad := []struct{ method, path, body string }{
		{"PUT", "/faults/inventory", `{"crash":true}`},
		{"DELETE", "/faults/inventory", ""},
		{"PUT", "/faults/deals", ``},
		{"PUT", "/faults/deals", `crash`},
		{"PUT", "/faults/deals", `{"crash":"yes"}`},
		{"PUT", "/faults/deals", `{"latency":300}`},
		{"PUT", "/faults/deals", `{"latencyMs":-1}`},
		{"PUT", "/faults/deals", `{"latencyMs":30001}`},
		{"PUT", "/faults/deals", `{"latencyMs":9223372036854775807}`},
		{"PUT", "/faults/deals", `{"latencyMs":1.5}`},
		{"PUT", "/faults/deals", `{"errorRate":-0.1}`},
		{"PUT", "/faults/deals", `{"errorRate":1.01}`},
		{"PUT", "/faults/deals", `{"crash":true} {}`},
	}
	for _, b := range bad {
		code, body := do(t, t.Context(), b.method, admin+b.path, b.body)
		var e struct{ Error string }
		if code != 400 || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
			t.Errorf("%s %s %s = %d %s, want 400 with an error", b.method, b.path, b.body, code, body)
		}
	}
	if _, body := do(t, t.Context(), "GET", admin+"/faults", ""); body != "{}" {
		t.Errorf("faults after bad input = %s, want {}", body)
	}
	if code, _ := do(t, t.Context(), "GET", admin+"/healthz", ""); code != 404 {
		t.Errorf("admin GET /healthz = %d, want 404: the admin port serves faults only", code)
	}
}

// TestSubscriberFaults: poison takes the next N events, which stay poison
// (also when redelivered to another replica) until the fault is cleared;
// slowMs is a per-event delay; neither touches HTTP requests.
func TestSubscriberFaults(t *testing.T) {
	inj := New("notifications")
	shop, admin := setup(t, inj, "notifications")

	put(t, admin, "notifications", `{"poison":2,"slowMs":40}`)
	if d := inj.Delay("notifications"); d != 40*time.Millisecond {
		t.Errorf("Delay = %s, want 40ms", d)
	}
	if d := inj.Delay("inventory"); d != 0 {
		t.Errorf("Delay of another service = %s, want 0", d)
	}
	for _, c := range []struct {
		id          string
		redelivered bool
		want        bool
	}{
		{"o-1", false, true},  // first new event: poisoned
		{"o-1", true, true},   // and it stays poison
		{"o-2", false, true},  // second: poisoned
		{"o-3", false, false}, // the count is spent
		{"o-9", true, true},   // a redelivery poisoned elsewhere
		{"o-2", false, true},
	} {
		if got := inj.Poisoned("notifications", c.id, c.redelivered); got != c.want {
			t.Errorf("Poisoned(%s, redelivered %v) = %v, want %v", c.id, c.redelivered, got, c.want)
		}
	}
	if inj.Poisoned("inventory", "o-1", false) {
		t.Error("a fault of notifications poisoned inventory")
	}
	if elapsed := timed(t, shop+"/notifications/x"); elapsed > 30*time.Millisecond {
		t.Errorf("an HTTP request took %s under a slow-consumer fault, which slows events only", elapsed)
	}

	// Changing only the delay keeps the poison where it was.
	put(t, admin, "notifications", `{"poison":2,"slowMs":10}`)
	if !inj.Poisoned("notifications", "o-1", false) || inj.Poisoned("notifications", "o-4", false) {
		t.Error("a PUT that kept the poison reset it")
	}

	// Cleared: nothing is poison any more, and a new fault counts afresh.
	if code, body := do(t, t.Context(), "DELETE", admin+"/faults/notifications", ""); code != 200 || body != "{}" {
		t.Fatalf("DELETE = %d %s", code, body)
	}
	if inj.Poisoned("notifications", "o-1", true) || inj.Delay("notifications") != 0 {
		t.Error("the fault outlived its DELETE")
	}
	put(t, admin, "notifications", `{"poison":1}`)
	if !inj.Poisoned("notifications", "o-5", false) || inj.Poisoned("notifications", "o-6", false) {
		t.Error("a new poison fault did not count afresh")
	}

	for _, body := range []string{`{"poison":-1}`, `{"poison":10001}`, `{"slowMs":-5}`, `{"slowMs":30001}`} {
		if code, reply := do(t, t.Context(), "PUT", admin+"/faults/notifications", body); code != 400 || !strings.Contains(reply, "must be between") {
			t.Errorf("PUT %s = %d %s, want 400 saying the range", body, code, reply)
		}
	}
}

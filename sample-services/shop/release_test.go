package shop_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/sample-services/catalog"
	"github.com/flotilla/flotilla/sample-services/deals"
	"github.com/flotilla/flotilla/sample-services/faults"
	"github.com/flotilla/flotilla/sample-services/shop"
	"github.com/flotilla/flotilla/sample-services/version"
)

// handler builds role's handler, which must be accepted.
func handler(t *testing.T, role string, cfg shop.Config) http.Handler {
	t.Helper()
	if cfg.Replica == "" {
		cfg.Replica = role + "-1"
	}
	cfg.Context = t.Context()
	cfg.Getenv = func(string) string { return "" } // no bus
	h, err := shop.Handler(role, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// get asks h for path in process.
func get(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestVersionHeaderOnEveryReply(t *testing.T) {
	paths := []string{"/healthz", "/readyz", "/diag", "/catalog", "/deals", "/cart", "/orders", "/nowhere"}
	for _, tc := range []struct{ role, version, want string }{
		{"monolith", "", "v1"},
		{"monolith", "v2", "v2"},
		{"catalog", "v3", "v3"},
		{"deals", "v2", "v2"},
		{"recommend", "v2", "v2"},
		{"notifications", "v2", "v2"},
	} {
		// v3 with the errors flaw fails some replies, and they too carry it.
		h := handler(t, tc.role, shop.Config{Version: tc.version, Faults: faults.New(shop.Features()...)})
		for _, p := range append(paths, "/stats") {
			rec := get(h, p)
			if got := rec.Header().Values(version.Header); len(got) != 1 || got[0] != tc.want {
				t.Errorf("%s %s: GET %s (%d): %s %q, want %q", tc.role, tc.version, p, rec.Code, version.Header, got, tc.want)
			}
		}
	}
}

func TestDiagAndStatsNameTheVersion(t *testing.T) {
	var view shop.MachineView
	if err := json.Unmarshal(get(handler(t, "catalog", shop.Config{Version: "v2"}), "/diag").Body.Bytes(), &view); err != nil || view.Version != "v2" {
		t.Errorf("/diag version %q (%v), want v2", view.Version, err)
	}
	if err := json.Unmarshal(get(handler(t, "catalog", shop.Config{}), "/diag").Body.Bytes(), &view); err != nil || view.Version != "v1" {
		t.Errorf("/diag version %q (%v), want v1 by default", view.Version, err)
	}
	var stats struct{ Replica, Version string }
	rec := get(handler(t, "notifications", shop.Config{Version: "v2"}), "/stats")
	if err := json.Unmarshal(rec.Body.Bytes(), &stats); err != nil || stats.Version != "v2" || stats.Replica != "notifications-1" {
		t.Errorf("/stats = %s, want replica notifications-1 and version v2", rec.Body)
	}
}

func TestV1DealsAreUnchanged(t *testing.T) {
	want, _ := json.Marshal(mustDeals(t, deals.New(catalog.New())))
	for _, role := range []string{"monolith", "deals"} {
		cat := httptest.NewServer(handler(t, "catalog", shop.Config{}))
		defer cat.Close()
		rec := get(handler(t, role, shop.Config{CatalogURL: cat.URL}), "/deals")
		if rec.Code != 200 || rec.Body.String() != string(want)+"\n" {
			t.Errorf("%s v1 /deals = %d %s, want the bare list %s", role, rec.Code, rec.Body, want)
		}
	}
}

func mustDeals(t *testing.T, s *deals.Service) []deals.Deal {
	t.Helper()
	ds, err := s.Deals(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestV2DealsInEveryRole(t *testing.T) {
	cat := httptest.NewServer(handler(t, "catalog", shop.Config{}))
	defer cat.Close()
	v1 := len(mustDeals(t, deals.New(catalog.New())))
	for _, role := range []string{"monolith", "deals"} {
		rec := get(handler(t, role, shop.Config{Version: "v2", CatalogURL: cat.URL}), "/deals")
		var page deals.Page
		if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
			t.Fatalf("%s /deals = %d %s: %v", role, rec.Code, rec.Body, err)
		}
		if page.Version != "v2" || page.Title != "Deals v2" || len(page.Deals) != v1+2 {
			t.Errorf("%s v2 /deals = %s, want Deals v2 with %d deals", role, rec.Body, v1+2)
		}
	}
}

func TestGatewayPassesTheBackendsVersion(t *testing.T) {
	dl := httptest.NewServer(handler(t, "deals", shop.Config{Version: "v2"}))
	defer dl.Close()
	gw := handler(t, "gateway", shop.Config{DealsURL: dl.URL})
	if got := get(gw, "/deals").Header().Values(version.Header); len(got) != 1 || got[0] != "v2" {
		t.Errorf("/deals through a v1 gateway: %s %q, want only the backend's v2", version.Header, got)
	}
	for _, p := range []string{"/nowhere", "/healthz"} {
		if got := get(gw, p).Header().Values(version.Header); len(got) != 1 || got[0] != "v1" {
			t.Errorf("gateway's own %s: %s %q, want the gateway's v1", p, version.Header, got)
		}
	}
}

func TestV3ErrorsFailAShare(t *testing.T) {
	for _, flaw := range []string{"", "errors"} {
		h := handler(t, "monolith", shop.Config{Version: "v3", Flaw: flaw})
		failed := 0
		for range 100 {
			rec := get(h, "/catalog")
			switch rec.Code {
			case 200:
			case 500:
				failed++
				if got := strings.TrimSpace(rec.Body.String()); got != `{"error":"v3 is a bad release: this request failed"}` {
					t.Fatalf("failed reply %s", got)
				}
			default:
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
		if failed != version.ErrorPercent {
			t.Errorf("flaw %q: %d of 100 failed, want %d", flaw, failed, version.ErrorPercent)
		}
		for _, p := range []string{"/healthz", "/readyz", "/diag"} {
			for range 20 {
				if rec := get(h, p); rec.Code != 200 {
					t.Fatalf("GET %s = %d %s: probes are spared", p, rec.Code, rec.Body)
				}
			}
		}
	}
	sub := handler(t, "notifications", shop.Config{Version: "v3"})
	for range 20 {
		if rec := get(sub, "/stats"); rec.Code != 200 {
			t.Fatalf("GET /stats = %d: figures are spared", rec.Code)
		}
	}
}

func TestV3Unready(t *testing.T) {
	h := handler(t, "monolith", shop.Config{Version: "v3", Flaw: "unready"})
	rec := get(h, "/readyz")
	var body struct{ Status, Error string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 503 || body.Status != "unavailable" ||
		!strings.Contains(body.Error, "v3 is a bad release: it never becomes ready") {
		t.Errorf("/readyz = %d %s, want 503 saying why", rec.Code, rec.Body)
	}
	for _, p := range []string{"/healthz", "/catalog", "/deals", "/diag"} {
		for range 10 {
			if rec := get(h, p); rec.Code != 200 {
				t.Fatalf("GET %s = %d %s: only /readyz fails", p, rec.Code, rec.Body)
			}
		}
	}
}

func TestV3Crashes(t *testing.T) {
	crashed := make(chan string, 1)
	start := time.Now()
	h := handler(t, "catalog", shop.Config{Version: "v3", Flaw: "crash", CrashAfter: 50 * time.Millisecond,
		Crash: func(msg string) { crashed <- msg }})
	if rec := get(h, "/catalog"); rec.Code != 200 {
		t.Errorf("before its crash /catalog = %d", rec.Code)
	}
	select {
	case msg := <-crashed:
		if !strings.Contains(msg, "v3 is a bad release") {
			t.Errorf("crash message %q does not name the bad release", msg)
		}
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Errorf("crashed after %s, want 50ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no crash after 5s")
	}
}

func TestOnlyV3Crashes(t *testing.T) {
	crashed := make(chan string, 1)
	for _, v := range []string{"v1", "v2"} {
		handler(t, "catalog", shop.Config{Version: v, Flaw: "crash", CrashAfter: time.Millisecond,
			Crash: func(msg string) { crashed <- msg }})
	}
	select {
	case msg := <-crashed:
		t.Errorf("a good release crashed: %s", msg)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestUnknownVersionOrFlaw(t *testing.T) {
	for _, cfg := range []shop.Config{{Version: "v9"}, {Version: "V2"}, {Version: "v3", Flaw: "slow"}, {Flaw: "oops"}} {
		if _, err := shop.Handler("monolith", cfg); err == nil {
			t.Errorf("version %q flaw %q accepted", cfg.Version, cfg.Flaw)
		}
	}
}

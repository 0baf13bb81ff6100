package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/orchestrator/spec"
)

func TestFaultRoutes(t *testing.T) {
	ff := newFake(spec.Group{Name: "web", Service: "monolith", Replicas: 2})
	srv := httptest.NewServer(newHandler(t, Options{Controller: ff, Faults: ff}))
	defer srv.Close()
	do := func(method, path, body string) int {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/api/v1/faults", `{"kind":"latency","group":"web","feature":"cart","latencyMs":300}`, 201},
		{"POST", "/api/v1/faults", `{"kind":"explode","group":"web"}`, 400},
		{"POST", "/api/v1/faults", `{"kind":"kill","group":"nope"}`, 404},
		{"POST", "/api/v1/faults", `{"kind":"kill","group":"web","colour":"red"}`, 400},
		{"POST", "/api/v1/faults", `{"kind":"latency","group":"web","latencyMs":"slow"}`, 400},
		{"POST", "/api/v1/faults", ``, 400},
		{"GET", "/api/v1/faults", ``, 200},
		{"DELETE", "/api/v1/faults/f-1", ``, 200},
		{"DELETE", "/api/v1/faults/f-2", ``, 404},
	} {
		if got := do(tc.method, tc.path, tc.body); got != tc.want {
			t.Errorf("%s %s %s = %d, want %d", tc.method, tc.path, tc.body, got, tc.want)
		}
	}
	if len(ff.Injected()) != 1 || ff.Injected()[0].LatencyMs != 300 {
		t.Fatalf("injected %+v", ff.Injected())
	}
}

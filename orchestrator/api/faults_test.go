package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/faults"
)

// fakeFaulter answers like the controller: it refuses what the controller
// refuses, by the same sentinels.
type fakeFaulter struct{ injected []faults.Spec }

func (f *fakeFaulter) InjectFault(_ context.Context, s faults.Spec) (faults.Fault, error) {
	switch {
	case s.Kind == "explode":
		return faults.Fault{}, fmt.Errorf("%w: kind %q", faults.ErrInvalid, s.Kind)
	case s.Group != "web":
		return faults.Fault{}, fmt.Errorf("group %q: %w", s.Group, controller.ErrNotFound)
	}
	f.injected = append(f.injected, s)
	return faults.Fault{Spec: s, ID: "f-1", Active: true}, nil
}

func (f *fakeFaulter) Faults() []faults.Fault { return []faults.Fault{} }

func (f *fakeFaulter) RevertFault(_ context.Context, id string) (faults.Fault, error) {
	if id != "f-1" {
		return faults.Fault{}, fmt.Errorf("fault %q: %w", id, controller.ErrNotFound)
	}
	return faults.Fault{ID: id}, nil
}

func TestFaultRoutes(t *testing.T) {
	ff := &fakeFaulter{}
	srv := httptest.NewServer(newHandler(t, Options{Controller: newFake(), Faults: ff}))
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
	if len(ff.injected) != 1 || ff.injected[0].LatencyMs != 300 {
		t.Fatalf("injected %+v", ff.injected)
	}
}

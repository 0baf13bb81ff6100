package cli

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/api/apitest"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/load"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

func TestLoadVerbRunsAndReports(t *testing.T) {
	clearEnv(t)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Flotilla-Replica", "web-1")
	}))
	defer backend.Close()
	fake := apitest.New(apitest.Options{Status: func(g spec.Group) controller.GroupStatus {
		st := apitest.DefaultStatus(g)
		st.Endpoint = strings.TrimPrefix(backend.URL, "http://")
		return st
	}}, spec.Group{Name: "web", Service: "monolith", Replicas: 1})
	loads := load.NewManager(load.ManagerOptions{})
	defer loads.Close()
	h, err := api.New(api.Options{Controller: fake, Load: loads})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	addr := "--addr=" + strings.TrimPrefix(srv.URL, "http://")

	out, _, err := run(t, "load", addr, "--rate", "50", "--duration", "1s", "web")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "finished: sent 50, ok 50, failed 0") || !strings.Contains(out, "web-1") {
		t.Fatalf("load output:\n%s", out)
	}
	out, _, err = run(t, "load", addr, "ls")
	if err != nil || !strings.Contains(out, "finished") {
		t.Fatalf("load ls: %v\n%s", err, out)
	}
	if _, _, err := run(t, "load", addr, "nope"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("load of an unknown group: %v", err)
	}
	if _, _, err := run(t, "load", addr, "--rate", "-5", "--duration", "1s", "web"); err == nil || !strings.Contains(err.Error(), "rate") {
		t.Fatalf("load with rate -5: %v", err)
	}
}

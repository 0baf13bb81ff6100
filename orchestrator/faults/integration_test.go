package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/bus/bustest"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/faults"
	"github.com/flotilla/flotilla/orchestrator/images/imagestest"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/orchestrator/store"
)

func TestMain(m *testing.M) { imagestest.Main(m) }

type harness struct {
	t    *testing.T
	drv  *docker.Driver
	ctrl *controller.Controller
	inj  *faults.Injector
}

// start runs a controller with a fault injector on a fresh instance
// against the real engine; what the instance made is removed when t ends.
func start(t *testing.T) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the Docker engine; skipped in -short mode")
	}
	drv := dockertest.New(t)
	refs := imagestest.Images(t)
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctrl := controller.New(controller.Options{Runtime: drv, Store: st, Images: refs, StopTimeout: 2 * time.Second, BusSecret: bustest.Secret})
	inj := faults.New(faults.Options{Controller: ctrl, Runtime: drv})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller Run: %v", err)
		}
	})
	return &harness{t: t, drv: drv, ctrl: ctrl, inj: inj}
}

func running(group string, n int) string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("%s-%d=running", group, i))
	}
	return strings.Join(out, " ")
}

// converge waits until exactly want runs and the group reports every replica ready.
func (h *harness) converge(group, want string, ready int) {
	h.t.Helper()
	dockertest.Poll(h.t, 60*time.Second, "converge to "+want, func() error {
		reps, err := h.drv.List(context.Background())
		if err != nil {
			return err
		}
		var names []string
		for _, r := range reps {
			names = append(names, r.Name+"="+r.State)
		}
		if got := strings.Join(names, " "); got != want {
			return fmt.Errorf("containers %q", got)
		}
		st, err := h.ctrl.Group(group)
		if err != nil {
			return err
		}
		if st.Ready != ready || st.Status != controller.StatusConverged {
			return fmt.Errorf("group %s: %d ready, status %s %s", group, st.Ready, st.Status, st.Message)
		}
		return nil
	})
}

var quick = &http.Client{Timeout: 2 * time.Second}

func get(addr, path string) (int, time.Duration, error) {
	start := time.Now()
	resp, err := quick.Get("http://" + addr + path)
	if err != nil {
		return 0, time.Since(start), err
	}
	resp.Body.Close()
	return resp.StatusCode, time.Since(start), nil
}

// adminFaults reads a replica's fault table from its fault port, as only
// the controller (and this test, in its place) can.
func adminFaults(t *testing.T, r controller.ReplicaStatus, h *harness) map[string]any {
	t.Helper()
	reps, err := h.drv.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, rep := range reps {
		if rep.ID == r.ID {
			host, _, _ := net.SplitHostPort(rep.NetworkAddress)
			resp, err := quick.Get(fmt.Sprintf("http://%s:%d/faults", host, spec.AdminPort))
			if err != nil {
				t.Fatalf("fault port of %s: %v", r.Name, err)
			}
			defer resp.Body.Close()
			var m map[string]any
			json.NewDecoder(resp.Body).Decode(&m)
			return m
		}
	}
	t.Fatalf("replica %s not found", r.Name)
	return nil
}

func oneReplica(t *testing.T, service string) (*harness, controller.ReplicaStatus) {
	t.Helper()
	h := start(t)
	if _, _, err := h.ctrl.PutGroup(context.Background(), spec.Group{Name: "web", Service: service, Replicas: 1, Balancer: spec.Balancer{Policy: spec.PolicyNone}}); err != nil {
		t.Fatal(err)
	}
	h.converge("web", running("web", 1), 1)
	st, _ := h.ctrl.Group("web")
	return h, st.Replicas[0]
}

func revertAll(t *testing.T, h *harness, f faults.Fault) {
	t.Helper()
	if _, err := h.inj.RevertFault(context.Background(), f.ID); err != nil {
		t.Fatalf("revert %s: %v", f.Kind, err)
	}
	if n := len(h.inj.Faults()); n != 0 {
		t.Fatalf("%d faults left after revert", n)
	}
}

func TestIntegrationFaultKill(t *testing.T) {
	h, r := oneReplica(t, "monolith")
	f, err := h.inj.InjectFault(context.Background(), faults.Spec{Kind: faults.Kill, Group: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if f.Active || strings.Join(f.Replicas, ",") != "web-1" {
		t.Fatalf("kill fault %+v", f)
	}
	h.converge("web", running("web", 1), 1)
	if st, _ := h.ctrl.Group("web"); st.Replicas[0].ID == r.ID {
		t.Fatal("the killed replica was not replaced")
	}
	revertAll(t, h, f)
}

func TestIntegrationFaultPause(t *testing.T) {
	h, r := oneReplica(t, "monolith")
	f, err := h.inj.InjectFault(context.Background(), faults.Spec{Kind: faults.Pause, Group: "web", Replica: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	dockertest.Poll(t, 10*time.Second, "replica paused", func() error {
		st, _ := h.ctrl.Group("web")
		if st.Replicas[0].Health != controller.HealthPaused {
			return fmt.Errorf("health %s", st.Replicas[0].Health)
		}
		return nil
	})
	if _, _, err := get(r.Address, "/catalog"); err == nil {
		t.Fatal("a paused replica answered")
	}
	revertAll(t, h, f)
	h.converge("web", running("web", 1), 1)
	if code, _, err := get(r.Address, "/catalog"); err != nil || code != 200 {
		t.Fatalf("after unpause: %d %v", code, err)
	}
	if st, _ := h.ctrl.Group("web"); st.Replicas[0].ID != r.ID {
		t.Fatal("the paused replica was replaced; a pause is the learner's, not a failure")
	}
}

func TestIntegrationFaultCrashFeature(t *testing.T) {
	h, r := oneReplica(t, "monolith")
	f, err := h.inj.InjectFault(context.Background(), faults.Spec{Kind: faults.CrashFeature, Group: "web", Feature: "deals"})
	if err != nil {
		t.Fatal(err)
	}
	if code, _, err := get(r.Address, "/catalog"); err != nil || code != 200 {
		t.Fatalf("catalog before the crash: %d %v", code, err)
	}
	get(r.Address, "/deals") // the crash: no answer
	dockertest.Poll(t, 10*time.Second, "the monolith died", func() error {
		if _, _, err := get(r.Address, "/catalog"); err == nil {
			return fmt.Errorf("catalog still answers")
		}
		return nil
	})
	revertAll(t, h, f)
	h.converge("web", running("web", 1), 1)
	st, _ := h.ctrl.Group("web")
	if code, _, err := get(st.Replicas[0].Address, "/deals"); err != nil || code != 200 {
		t.Fatalf("deals on the replacement after revert: %d %v", code, err)
	}
	if m := adminFaults(t, st.Replicas[0], h); len(m) != 0 {
		t.Fatalf("faults left on the replacement: %v", m)
	}
}

func TestIntegrationFaultLatencyAndErrors(t *testing.T) {
	h, r := oneReplica(t, "monolith")
	ctx := context.Background()
	lat, err := h.inj.InjectFault(ctx, faults.Spec{Kind: faults.Latency, Group: "web", Feature: "catalog", LatencyMs: 300})
	if err != nil {
		t.Fatal(err)
	}
	if _, took, err := get(r.Address, "/catalog"); err != nil || took < 300*time.Millisecond {
		t.Fatalf("catalog with 300 ms latency took %s (%v)", took, err)
	}
	if _, took, _ := get(r.Address, "/deals"); took >= 300*time.Millisecond {
		t.Fatalf("deals took %s: latency leaked to another feature", took)
	}
	errs, err := h.inj.InjectFault(ctx, faults.Spec{Kind: faults.Errors, Group: "web", Feature: "cart", ErrorRate: 1})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+r.Address+"/cart", nil)
	req.Header.Set("X-Shopper", "s-1")
	resp, err := quick.Do(req)
	if err != nil || resp.StatusCode != 500 {
		t.Fatalf("cart with errorRate 1: %v %v", resp, err)
	}
	resp.Body.Close()
	if n := len(h.inj.Faults()); n != 2 {
		t.Fatalf("%d faults listed, want 2", n)
	}
	if _, err := h.inj.RevertFault(ctx, lat.ID); err != nil {
		t.Fatal(err)
	}
	revertAll(t, h, errs)
	if _, took, _ := get(r.Address, "/catalog"); took >= 300*time.Millisecond {
		t.Fatalf("catalog still slow after revert: %s", took)
	}
	if m := adminFaults(t, r, h); len(m) != 0 {
		t.Fatalf("faults left on the replica after revert: %v", m)
	}
}

func TestIntegrationFaultPartition(t *testing.T) {
	h, r := oneReplica(t, "monolith")
	f, err := h.inj.InjectFault(context.Background(), faults.Spec{Kind: faults.Partition, Group: "web", Replica: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(r.Address, "/catalog"); err == nil {
		t.Fatal("a partitioned replica answered on its published port")
	}
	revertAll(t, h, f)
	dockertest.Poll(t, 20*time.Second, "the replica is reachable again", func() error {
		st, _ := h.ctrl.Group("web")
		if len(st.Replicas) != 1 || st.Replicas[0].ID != r.ID {
			return fmt.Errorf("replicas %+v", st.Replicas)
		}
		code, _, err := get(st.Replicas[0].Address, "/catalog")
		if err != nil || code != 200 {
			return fmt.Errorf("catalog: %d %v", code, err)
		}
		return nil
	})
}

package controller_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/images/imagestest"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/orchestrator/store"
)

func TestMain(m *testing.M) { imagestest.Main(m) }

type harness struct {
	t    *testing.T
	drv  *docker.Driver
	ctrl *controller.Controller
}

// start runs a controller on a fresh instance against the real engine; the
// instance's containers and network are removed when t ends.
func start(t *testing.T, with ...func(*controller.Options)) *harness {
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
	opts := controller.Options{Runtime: drv, Store: st, Images: refs, StopTimeout: 2 * time.Second}
	for _, f := range with {
		f(&opts)
	}
	ctrl := controller.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller Run: %v", err)
		}
	})
	return &harness{t: t, drv: drv, ctrl: ctrl}
}

// names lists the instance's containers as "name=state", sorted.
func (h *harness) names() (string, error) {
	reps, err := h.drv.List(context.Background())
	if err != nil {
		return "", err
	}
	var out []string
	for _, r := range reps {
		out = append(out, r.Name+"="+r.State)
	}
	return strings.Join(out, " "), nil
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
		got, err := h.names()
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("containers %q", got)
		}
		st, err := h.ctrl.Group(group)
		if ready == 0 && errors.Is(err, controller.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if st.Ready != ready || st.Status != controller.StatusConverged {
			return fmt.Errorf("group %s: %d ready, status %s %s", group, st.Ready, st.Status, st.Message)
		}
		return nil
	})
}

func (h *harness) ids() map[string]string {
	reps, err := h.drv.List(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range reps {
		out[r.Name] = r.ID
	}
	return out
}

func TestIntegrationScaleExactContainers(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	if _, _, err := h.ctrl.PutGroup(ctx, spec.Group{Name: "web", Service: "monolith", Replicas: 0}); err != nil {
		t.Fatal(err)
	}
	h.converge("web", "", 0)

	if _, err := h.ctrl.Scale(ctx, "web", 5); err != nil {
		t.Fatal(err)
	}
	h.converge("web", running("web", 5), 5)

	// Every replica answers on its published 127.0.0.1 port and names itself,
	// and every container passes the policy read back from the engine.
	st, _ := h.ctrl.Group("web")
	for _, r := range st.Replicas {
		if !strings.HasPrefix(r.Address, "127.0.0.1:") {
			t.Errorf("%s address %q is not on 127.0.0.1", r.Name, r.Address)
		}
		resp, err := http.Get("http://" + r.Address + "/catalog")
		if err != nil {
			t.Fatalf("GET %s/catalog: %v", r.Name, err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Flotilla-Replica"); resp.StatusCode != 200 || got != r.Name {
			t.Errorf("%s: status %d, served by %q", r.Name, resp.StatusCode, got)
		}
		if err := h.drv.AuditPolicy(ctx, r.ID); err != nil {
			t.Error(err)
		}
	}

	before := h.ids()
	if _, err := h.ctrl.Scale(ctx, "web", 2); err != nil {
		t.Fatal(err)
	}
	h.converge("web", running("web", 2), 2)
	after := h.ids()
	for _, name := range []string{"web-1", "web-2"} {
		if before[name] != after[name] {
			t.Errorf("scale down replaced %s instead of keeping it", name)
		}
	}

	if _, err := h.ctrl.Scale(ctx, "web", 0); err != nil {
		t.Fatal(err)
	}
	h.converge("web", "", 0)
	if err := h.ctrl.DeleteGroup(ctx, "web"); err != nil {
		t.Fatal(err)
	}
}

func TestIntegrationKilledReplicaIsReplaced(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	if _, _, err := h.ctrl.PutGroup(ctx, spec.Group{Name: "web", Service: "monolith", Replicas: 2}); err != nil {
		t.Fatal(err)
	}
	h.converge("web", running("web", 2), 2)
	old := h.ids()["web-2"]
	if err := h.drv.Kill(ctx, old, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	h.converge("web", running("web", 2), 2)
	if now := h.ids()["web-2"]; now == old {
		t.Fatalf("web-2 still has the killed container %s", old)
	}
}

func TestIntegrationDeleteRemovesGroup(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	for _, g := range []spec.Group{{Name: "cart", Service: "cart", Replicas: 2}, {Name: "catalog", Service: "catalog", Replicas: 1}} {
		if _, _, err := h.ctrl.PutGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	// cart is ready only once it reaches the catalog by name on the project network.
	dockertest.Poll(t, 60*time.Second, "cart ready through Docker DNS", func() error {
		st, err := h.ctrl.Group("cart")
		if err != nil || st.Ready != 2 {
			return fmt.Errorf("cart: %+v %v", st, err)
		}
		return nil
	})
	if err := h.ctrl.DeleteGroup(ctx, "cart"); err != nil {
		t.Fatal(err)
	}
	h.converge("catalog", "catalog-1=running", 1)
}

// TestIntegrationForeignObjectsUntouched runs a controller through a whole
// life next to a container without labels and one owned by another
// instance; both must come out exactly as they went in.
func TestIntegrationForeignObjectsUntouched(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	refs := imagestest.Images(t)

	other := dockertest.New(t) // another instance, cleaned up by its own label
	theirs, err := other.Create(ctx, replica.Spec{Group: "web", Index: 1, Service: "monolith", Image: refs["shop"], Port: spec.ShopPort,
		MemoryBytes: 32 << 20, NanoCPUs: 1e8, PidsLimit: 32, Aliases: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(ctx, theirs.ID); err != nil {
		t.Fatal(err)
	}

	foreign := dockertest.UniqueName("foreign-")
	if out, err := exec.Command("docker", "run", "-d", "--name", foreign, "--read-only", "--cap-drop", "ALL", "--memory", "32m", refs["shop"]).CombinedOutput(); err != nil {
		t.Fatalf("docker run foreign container: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", foreign).Run() })

	if _, _, err := h.ctrl.PutGroup(ctx, spec.Group{Name: "web", Service: "monolith", Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	h.converge("web", running("web", 3), 3)
	if _, err := h.ctrl.Scale(ctx, "web", 1); err != nil {
		t.Fatal(err)
	}
	h.converge("web", running("web", 1), 1)
	if err := h.ctrl.Down(ctx); err != nil {
		t.Fatal(err)
	}
	h.converge("web", "", 0)

	if r, err := other.Inspect(ctx, theirs.ID); err != nil || r.State != replica.StateRunning {
		t.Errorf("the other instance's replica: %+v, %v; want it running", r, err)
	}
	out, err := exec.Command("docker", "inspect", "-f", "{{.State.Running}}", foreign).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "true" {
		t.Errorf("the unlabelled container: %s %v; want it running", out, err)
	}
}

package controller_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/load"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// podMembers counts the engine's containers of the instance by member part.
func podMembers(t *testing.T, h *harness) map[string]int {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	f := filters.NewArgs(filters.Arg("label", docker.LabelInstance+"="+h.drv.Instance()))
	cs, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, c := range cs {
		out[c.Labels[docker.LabelMember]]++
	}
	return out
}

// TestIntegrationPodGroup runs a pod group through the controller: ready,
// balanced, scaled up and down, healed as a whole after its service is
// killed under load without a failed GET, and removed with every member.
func TestIntegrationPodGroup(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	g := spec.Group{Name: "web", Service: "monolith", Replicas: 2, Isolation: spec.IsolationPod}
	st, _, err := h.ctrl.PutGroup(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if st.Isolation != spec.IsolationPod {
		t.Errorf("group JSON isolation %q, want pod", st.Isolation)
	}
	h.converge("web", running("web", 2), 2)
	if got := podMembers(t, h); got[docker.MemberInfra] != 2 || got[docker.MemberService] != 2 || got[docker.MemberAgent] != 2 || len(got) != 3 {
		t.Fatalf("members %v, want 2 pods of infra, service and agent", got)
	}

	if _, err := h.ctrl.Scale(ctx, "web", 3); err != nil {
		t.Fatal(err)
	}
	h.converge("web", running("web", 3), 3)
	var ready controller.GroupStatus
	dockertest.Poll(t, 30*time.Second, "every pod in rotation", func() error {
		ready, _ = h.ctrl.Group("web")
		for _, r := range ready.Replicas {
			if r.Traffic == nil || r.Traffic.State != "ready" {
				return fmt.Errorf("%s not in rotation: %+v", r.Name, r.Traffic)
			}
		}
		return nil
	})
	for _, r := range ready.Replicas {
		if err := h.drv.AuditPolicy(ctx, r.ID); err != nil {
			t.Error(err)
		}
		resp, err := http.Get("http://" + r.Address + "/catalog")
		if err != nil {
			t.Fatalf("GET %s/catalog: %v", r.Name, err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Flotilla-Replica"); resp.StatusCode != 200 || got != r.Name {
			t.Errorf("%s: status %d, served by %q", r.Name, resp.StatusCode, got)
		}
	}

	// Kill the service of one pod under load: no GET fails, and the
	// controller brings back a whole new pod under the same name.
	victim := ready.Replicas[1]
	rep := loadFor(t, load.Spec{Target: ready.Endpoint, Rate: 200, Concurrency: 32, Duration: 6 * time.Second, Paths: []string{"/catalog", "/deals"}},
		2*time.Second, func() {
			if err := h.drv.Kill(ctx, victim.ID, "SIGKILL"); err != nil {
				t.Fatal(err)
			}
		})
	if rep.Failed != 0 {
		t.Fatalf("%d of %d GETs failed across a killed pod; want 0", rep.Failed, rep.Sent)
	}
	if rep.Sent < 1000 {
		t.Fatalf("only %d requests sent; the load did not run", rep.Sent)
	}
	h.converge("web", running("web", 3), 3)
	if now := h.ids()[victim.Name]; now == victim.ID {
		t.Fatalf("%s still has the killed pod %s", victim.Name, victim.ID)
	}
	if got := podMembers(t, h); got[docker.MemberInfra] != 3 || got[docker.MemberService] != 3 || got[docker.MemberAgent] != 3 || len(got) != 3 {
		t.Fatalf("after healing, members %v, want 3 whole pods and nothing left of the killed one", got)
	}

	if _, err := h.ctrl.Scale(ctx, "web", 1); err != nil {
		t.Fatal(err)
	}
	h.converge("web", running("web", 1), 1)
	if got := podMembers(t, h); got[docker.MemberInfra] != 1 || got[docker.MemberService] != 1 || got[docker.MemberAgent] != 1 {
		t.Fatalf("after scaling down, members %v, want one whole pod", got)
	}

	// Back to a container: the template changed, so a rolling update
	// replaces the pod: the container starts beside it, at the next
	// number, and the pod goes once the container is ready.
	g.Replicas, g.Isolation = 1, spec.IsolationContainer
	if _, _, err := h.ctrl.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	dockertest.Poll(t, 60*time.Second, "pod replaced by a container", func() error {
		if got := podMembers(t, h); len(got) != 1 || got[""] != 1 {
			return fmt.Errorf("members %v", got)
		}
		return nil
	})
	h.converge("web", "web-2=running", 1)

	if err := h.ctrl.DeleteGroup(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	h.converge("web", "", 0)
	if got := podMembers(t, h); len(got) != 0 {
		t.Errorf("after delete, containers %v, want none", got)
	}
}

package controller_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/images/imagestest"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// guestKernel is the line the guest's init prints from its /proc/version.
var guestKernel = regexp.MustCompile(`vminit: Linux version (\S+)`)

// TestIntegrationVMGroup runs a vm group through the controller: its
// replica is a QEMU guest in a container under the replica policy, becomes
// ready through the usual probes, serves through the group's balancer, and
// a killed VM is healed by a new one.
func TestIntegrationVMGroup(t *testing.T) {
	vm := imagestest.VMImage(t)
	// TCG is what every host runs; the server chooses KVM only after a
	// probe boot proves it.
	h := start(t, func(o *controller.Options) {
		o.Images = maps.Clone(o.Images)
		o.Images[controller.VMImage] = vm
		o.VMAccel = "tcg"
	})
	ctx := context.Background()
	// A whole CPU: an emulated boot under half of one takes twice as long.
	g := spec.Group{Name: "web", Service: "monolith", Replicas: 1, Isolation: spec.IsolationVM, Resources: spec.Resources{MilliCPU: 1000}}
	st, _, err := h.ctrl.PutGroup(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if st.Isolation != spec.IsolationVM || st.Accel != "tcg" {
		t.Errorf("group JSON isolation %q accel %q, want vm and tcg", st.Isolation, st.Accel)
	}
	// A guest's boot under TCG takes 4 to 10 s on a busy machine; the
	// converge deadline (60 s) covers several.
	h.converge("web", running("web", 1), 1)
	st, err = h.ctrl.Group("web")
	if err != nil {
		t.Fatal(err)
	}
	first := st.Replicas[0]
	if err := h.drv.AuditPolicy(ctx, first.ID); err != nil {
		t.Error(err)
	}
	logs, err := h.drv.Logs(ctx, first.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if m := guestKernel.FindStringSubmatch(logs); m == nil {
		t.Fatalf("the replica's logs do not show a guest kernel booting; not a VM:\n%s", logs)
	} else {
		t.Logf("%s runs guest kernel %s", first.Name, m[1])
	}
	getCatalog(t, st.Endpoint, "web-1")

	// Kill the VM's container (QEMU and its guest with it): the controller
	// boots a new VM under the same name, and the balancer serves from it.
	if err := h.drv.Kill(ctx, first.ID, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	h.converge("web", running("web", 1), 1)
	if now := h.ids()["web-1"]; now == first.ID {
		t.Fatalf("web-1 still has the killed VM %s", first.ID)
	}
	getCatalog(t, st.Endpoint, "web-1")

	if err := h.ctrl.DeleteGroup(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	h.converge("web", "", 0)
}

// getCatalog polls GET /catalog through the balancer at endpoint until the
// named replica answers 200, within a deadline that covers rotation.
func getCatalog(t *testing.T, endpoint, replica string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	dockertest.Poll(t, 30*time.Second, "GET /catalog through the balancer", func() error {
		resp, err := client.Get("http://" + endpoint + "/catalog")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Flotilla-Replica"); resp.StatusCode != http.StatusOK || got != replica {
			return fmt.Errorf("status %d, served by %q", resp.StatusCode, got)
		}
		return nil
	})
}

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
	"github.com/flotilla/flotilla/orchestrator/load"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"golang.org/x/sys/unix"
)

// guestKernel is the line the guest's init prints from its /proc/version.
var guestKernel = regexp.MustCompile(`vminit: Linux version (\S+)`)

// TestIntegrationVMGroup runs a vm group through the controller: its
// replica is a QEMU guest in a container under the replica policy, becomes
// ready through the usual probes, sees a machine of its own, serves through
// the group's balancer, scales out, and a VM killed under load is healed by
// a new one without a failed GET.
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
	// What the controller measured and what the guest sees: its own
	// kernel, its own memory, its own hostname.
	dockertest.Poll(t, 10*time.Second, "the replica's start-up and view", func() error {
		st, _ = h.ctrl.Group("web")
		r := st.Replicas[0]
		if r.StartupMs <= 0 || r.Sees == nil {
			return fmt.Errorf("startupMs %d, sees %+v", r.StartupMs, r.Sees)
		}
		return nil
	})
	var host unix.Utsname
	if err := unix.Uname(&host); err != nil {
		t.Fatal(err)
	}
	if v := st.Replicas[0].Sees; v.Kernel == unix.ByteSliceToString(host.Release[:]) || v.MemTotalKiB > 1<<20 || v.Hostname != "web-1" {
		t.Errorf("the VM sees %+v; want a kernel other than the host's, under 1 GiB of memory and hostname web-1", *v)
	}
	t.Logf("web-1 ready %d ms after its create call; sees %+v", st.Replicas[0].StartupMs, *st.Replicas[0].Sees)

	// Scale out: the second VM boots while the first serves.
	if _, err := h.ctrl.Scale(ctx, "web", 2); err != nil {
		t.Fatal(err)
	}
	h.converge("web", running("web", 2), 2)
	dockertest.Poll(t, 30*time.Second, "both VMs in rotation", func() error {
		st, _ = h.ctrl.Group("web")
		for _, r := range st.Replicas {
			if r.Traffic == nil || r.Traffic.State != "ready" {
				return fmt.Errorf("%s not in rotation: %+v", r.Name, r.Traffic)
			}
		}
		return nil
	})
	for _, r := range st.Replicas {
		if err := h.drv.AuditPolicy(ctx, r.ID); err != nil {
			t.Error(err)
		}
	}

	// Kill one VM's container (QEMU and its guest with it) under load: no
	// GET fails, and the controller boots a new VM under the same name.
	// The shoppers wait as a browser would: an emulated guest can take
	// seconds to answer on a busy host, and the balancer gives it 5 s a try
	// before it retries elsewhere.
	victim := st.Replicas[0]
	rep := loadFor(t, load.Spec{Target: st.Endpoint, Rate: 100, Concurrency: 16, Duration: 5 * time.Second, Timeout: 15 * time.Second, Paths: []string{"/catalog", "/deals"}},
		2*time.Second, func() {
			if err := h.drv.Kill(ctx, victim.ID, "SIGKILL"); err != nil {
				t.Fatal(err)
			}
		})
	if rep.Failed != 0 {
		t.Fatalf("%d of %d GETs failed across a killed VM; want 0", rep.Failed, rep.Sent)
	}
	if rep.Sent < 300 {
		t.Fatalf("only %d requests sent; the load did not run", rep.Sent)
	}
	h.converge("web", running("web", 2), 2)
	if now := h.ids()[victim.Name]; now == victim.ID {
		t.Fatalf("%s still has the killed VM %s", victim.Name, victim.ID)
	}
	getCatalog(t, st.Endpoint, victim.Name)

	if err := h.ctrl.DeleteGroup(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	h.converge("web", "", 0)
	if left := h.ids(); len(left) != 0 {
		t.Errorf("after delete, replicas %v remain", left)
	}
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

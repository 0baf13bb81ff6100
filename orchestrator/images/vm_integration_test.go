package images_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/images"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/google/uuid"
	"golang.org/x/sys/unix"
)

// guestKernel is the line vminit prints from the guest's /proc/version.
var guestKernel = regexp.MustCompile(`vminit: Linux version (\S+)`)

func TestIntegrationVMImageBootsTheShop(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the VM image runs qemu-system-x86_64 guests on amd64 hosts")
	}
	source := vmSource(t)
	d := dockertest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	run := map[string]string{dockertest.RunLabel: uuid.NewString()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := d.RemoveImages(ctx, run); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	var progress strings.Builder
	opts := images.Options{Source: source, Repository: dockertest.UniqueName("flotilla-test-") + "-", Labels: run, Progress: &progress}
	start := time.Now()
	tag, err := images.EnsureVM(ctx, d, opts)
	if err != nil {
		t.Fatalf("EnsureVM: %v\n%s", err, progress.String())
	}
	t.Logf("built %s in %s", tag, time.Since(start).Round(time.Millisecond))

	// The replica runs under the same policy as a container replica (no
	// capabilities, read-only root, nobody), through the driver the
	// controller uses, which labels it and publishes on 127.0.0.1 only.
	spec := replica.Spec{
		Group: "vm", Index: 1, Service: "monolith", Image: tag, Port: 8080,
		Env:         []string{"FLOTILLA_ROLE=monolith"},
		MemoryBytes: 512 << 20, NanoCPUs: 1e9, PidsLimit: 64,
	}
	r, err := d.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	// Before the image's removal, which runs after this (cleanups run last
	// first) and which a container still using the image would block.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := d.Remove(ctx, r.ID); err != nil && !errors.Is(err, replica.ErrNotFound) {
			t.Errorf("cleanup: remove the VM replica: %v", err)
		}
	})
	if err := d.Start(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	booted := time.Now()
	var addr string
	dockertest.Poll(t, 10*time.Second, "published address", func() error {
		got, err := d.Inspect(ctx, r.ID)
		if err != nil {
			return err
		}
		if got.Address == "" {
			return errors.New("no published address yet")
		}
		addr = got.Address
		return nil
	})
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("published on %s, want 127.0.0.1 only", addr)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	err = dockertest.PollErr(60*time.Second, func() error {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/healthz answered %d", resp.StatusCode)
		}
		return nil
	})
	logs, _ := d.Logs(ctx, r.ID, 0)
	if err != nil {
		t.Fatalf("the shop in the guest never answered: %v\nlogs:\n%s", err, logs)
	}
	t.Logf("first 200 from the guest's shop %s after start", time.Since(booted).Round(time.Millisecond))

	m := guestKernel.FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("the replica's logs do not show the guest kernel's version:\n%s", logs)
	}
	var host unix.Utsname
	if err := unix.Uname(&host); err != nil {
		t.Fatal(err)
	}
	hostRelease := unix.ByteSliceToString(host.Release[:])
	if m[1] == hostRelease {
		t.Errorf("the guest runs kernel %s, the host's own: this is not a virtual machine", m[1])
	}
	if !strings.HasPrefix(m[1], "6.1.") {
		t.Errorf("guest kernel %s, want Debian's cloud kernel 6.1", m[1])
	}
	if !strings.Contains(logs, `msg="shop started" role=monolith`) {
		t.Errorf("the logs do not show the shop starting in its role:\n%s", logs)
	}
	t.Logf("guest kernel %s, host kernel %s", m[1], hostRelease)

	// The shop itself, asked what it sees, names the guest's kernel and
	// the guest's memory, not the host's.
	var view struct {
		Kernel      string `json:"kernel"`
		MemTotalKiB int64  `json:"memTotalKiB"`
		Processes   int    `json:"processes"`
	}
	dresp, err := client.Get("http://" + addr + "/diag")
	if err != nil {
		t.Fatalf("GET /diag: %v", err)
	}
	derr := json.NewDecoder(dresp.Body).Decode(&view)
	dresp.Body.Close()
	if derr != nil {
		t.Fatalf("GET /diag: %v", derr)
	}
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	hostKiB := int64(si.Totalram) * int64(si.Unit) / 1024
	if view.Kernel != m[1] || view.MemTotalKiB <= 0 || view.MemTotalKiB >= hostKiB/4 || view.Processes < 1 {
		t.Errorf("the guest's shop sees %+v; want kernel %s and well under the host's %d KiB", view, m[1], hostKiB)
	}
	t.Logf("the guest's shop sees kernel %s, %d KiB, %d processes (host: %d KiB)", view.Kernel, view.MemTotalKiB, view.Processes, hostKiB)

	// A crash of the shop ends PID 1's child; vminit exits, the guest
	// kernel panics, pvpanic makes QEMU exit 1, and so does the container.
	// The admin port reaches the guest through QEMU's forward, on the
	// container's project network address.
	got, err := d.Inspect(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	ip, _, _ := strings.Cut(got.NetworkAddress, ":")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+ip+":9090/faults/deals", strings.NewReader(`{"crash":true}`))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("set the crash fault through the admin port: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT /faults/deals = %s", resp.Status)
	}
	if resp, err := client.Get("http://" + addr + "/deals"); err == nil {
		resp.Body.Close()
	}
	dockertest.Poll(t, 30*time.Second, "the VM replica exits after its shop crashed", func() error {
		got, err = d.Inspect(ctx, r.ID)
		if err != nil {
			return err
		}
		if got.State != replica.StateExited {
			return fmt.Errorf("state %s", got.State)
		}
		return nil
	})
	logs, _ = d.Logs(ctx, r.ID, 200)
	if got.ExitCode != 1 {
		t.Errorf("exit code %d after the guest's panic, want 1 (pvpanic)\n%s", got.ExitCode, logs)
	}
	if !strings.Contains(logs, "Kernel panic") {
		t.Errorf("the logs do not show the guest kernel's panic:\n%s", logs)
	}
}

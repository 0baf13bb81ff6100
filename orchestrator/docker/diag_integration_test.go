package docker_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/images/imagestest"
	"golang.org/x/sys/unix"
)

// machineView is the shop's GET /diag.
type machineView struct {
	Kernel      string `json:"kernel"`
	MemTotalKiB int64  `json:"memTotalKiB"`
	Processes   int    `json:"processes"`
}

func diagOf(t *testing.T, addr string) machineView {
	t.Helper()
	var v machineView
	err := dockertest.PollErr(30*time.Second, func() error {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + addr + "/diag")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&v)
	})
	if err != nil {
		t.Fatalf("GET /diag on %s: %v", addr, err)
	}
	return v
}

// What a replica sees tells the isolation kinds apart: a container and a
// pod share the host's kernel; a container sees its one process, a pod
// the processes of all its members.
func TestIntegrationDiagSeesTheIsolation(t *testing.T) {
	refs := imagestest.Images(t)
	d := dockertest.New(t)
	ctx := ctxFor(t, 3*time.Minute)
	var host unix.Utsname
	if err := unix.Uname(&host); err != nil {
		t.Fatal(err)
	}
	kernel := unix.ByteSliceToString(host.Release[:])

	c := startReplica(t, ctx, d, shopSpec(refs["shop"], "solo", 1))
	p := startReplica(t, ctx, d, podSpec(refs["shop"], "pod", 1))
	cv, pv := diagOf(t, c.Address), diagOf(t, p.Address)
	if cv.Kernel != kernel || pv.Kernel != kernel {
		t.Errorf("kernels %q (container), %q (pod); want the host's %q for both", cv.Kernel, pv.Kernel, kernel)
	}
	if cv.Processes != 1 {
		t.Errorf("a container sees %d processes, want its own one", cv.Processes)
	}
	if pv.Processes < 3 {
		t.Errorf("a pod's service sees %d processes, want its members' (init, pause, service, agent)", pv.Processes)
	}
	t.Logf("container sees %+v; pod sees %+v; host kernel %s", cv, pv, kernel)
}

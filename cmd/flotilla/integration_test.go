package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// controllerProcess is a real `flotilla serve` in its own process.
type controllerProcess struct {
	cmd *exec.Cmd
	log *os.File
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs bin serve with the given state dir and project, and waits
// until its API answers.
func startServe(t *testing.T, bin, addr, stateDir, project, imageRun string) *controllerProcess {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), "serve-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--addr", addr, "--state-dir", stateDir, "--project", project)
	cmd.Env = append(os.Environ(),
		"FLOTILLA_IMAGE_REPOSITORY="+project+"-",
		"FLOTILLA_IMAGE_LABEL="+dockertest.RunLabel+"="+imageRun)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &controllerProcess{cmd: cmd, log: logf}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("controller log:\n%s", b)
		}
	})
	c := &api.Client{Addr: addr}
	dockertest.Poll(t, 3*time.Minute, "controller answers", func() error {
		if cmd.ProcessState != nil {
			return fmt.Errorf("controller exited: %v", cmd.ProcessState)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Healthz(ctx)
	})
	return p
}

// killable is a `flotilla serve` built from this package and running on a
// fresh instance, for a test that kills and restarts it.
type killable struct {
	ctl   *dockertest.Controller
	bin   string
	addr  string
	first *controllerProcess
}

func startKillable(t *testing.T) killable {
	t.Helper()
	k := killable{ctl: dockertest.NewController(t), bin: filepath.Join(t.TempDir(), "flotilla"), addr: freeAddr(t)}
	if out, err := exec.Command("go", "build", "-o", k.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	k.first = startServe(t, k.bin, k.addr, k.ctl.StateDir, k.ctl.Options.Project, k.ctl.ImageLabelValue)
	return k
}

// TestIntegrationSIGKILLMidScaleAdopts kills the controller with SIGKILL
// while it is creating replicas, starts it again on the same state
// directory, and checks it converges with no duplicate and no orphan.
func TestIntegrationSIGKILLMidScaleAdopts(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the Docker engine; skipped in -short mode")
	}
	k := startKillable(t)
	opts, stateDir, imageRun, drv, bin, addr, first := k.ctl.Options, k.ctl.StateDir, k.ctl.ImageLabelValue, k.ctl.Driver, k.bin, k.addr, k.first

	ctx := context.Background()
	c := &api.Client{Addr: addr}
	const want = 20
	if _, _, err := c.PutGroup(ctx, spec.Group{Name: "web", Service: "monolith", Replicas: want}); err != nil {
		t.Fatal(err)
	}
	// Kill as soon as some, but not all, replicas exist.
	dockertest.Poll(t, 60*time.Second, "first replicas created", func() error {
		reps, err := drv.List(ctx)
		if err != nil {
			return err
		}
		if len(reps) < 1 {
			return fmt.Errorf("%d replicas so far", len(reps))
		}
		return nil
	})
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.cmd.Wait()
	reps, _ := drv.List(ctx)
	started := 0
	for _, r := range reps {
		if r.State == replica.StateRunning {
			started++
		}
	}
	t.Logf("controller SIGKILLed with %d of %d replicas created, %d started", len(reps), want, started)

	startServe(t, bin, addr, stateDir, opts.Project, imageRun)
	dockertest.Poll(t, 2*time.Minute, "converged after restart", func() error {
		st, err := c.Group(ctx, "web")
		if err != nil {
			return err
		}
		if st.Ready != want || st.Status != "converged" {
			return fmt.Errorf("ready %d/%d, status %s", st.Ready, want, st.Status)
		}
		return nil
	})

	reps, err := drv.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range reps {
		if r.State != replica.StateRunning {
			t.Errorf("%s is %s after convergence", r.Name, r.State)
		}
		names = append(names, r.Name)
	}
	var expected []string
	for i := 1; i <= want; i++ {
		expected = append(expected, fmt.Sprintf("web-%d", i))
	}
	if strings.Join(names, " ") != strings.Join(expected, " ") {
		t.Fatalf("replicas after restart:\n got %v\nwant %v (no duplicate, no orphan)", names, expected)
	}
}

// TestIntegrationSIGKILLMidRolloutResumes kills the controller with
// SIGKILL in the middle of a rolling update and starts it again on the same
// state directory: it picks the rollout up where it was and ends with every
// replica on the new version, never both versions at full size.
func TestIntegrationSIGKILLMidRolloutResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the Docker engine; skipped in -short mode")
	}
	k := startKillable(t)
	opts, stateDir, imageRun, drv, bin, addr, first := k.ctl.Options, k.ctl.StateDir, k.ctl.ImageLabelValue, k.ctl.Driver, k.bin, k.addr, k.first
	ctx := context.Background()
	c := &api.Client{Addr: addr}
	const n = 4
	g := spec.Group{Name: "shop", Service: "monolith", Replicas: n, Probe: spec.Probe{PeriodMs: 200, TimeoutMs: 200},
		Rollout: &spec.Rollout{MinReadySeconds: 2}}
	if _, _, err := c.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	dockertest.Poll(t, 2*time.Minute, "v1 converged", func() error {
		st, err := c.Group(ctx, "shop")
		if err != nil || st.Ready != n || st.Status != "converged" {
			return fmt.Errorf("%+v, %v", st.Status, err)
		}
		return nil
	})
	g.Version = "v2"
	if _, _, err := c.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	dockertest.Poll(t, time.Minute, "the rollout half way", func() error {
		st, err := c.Group(ctx, "shop")
		if err != nil || st.Rollout == nil || st.Rollout.New < 2 || st.Rollout.Old < 1 {
			return fmt.Errorf("rollout %+v, %v", st.Rollout, err)
		}
		return nil
	})
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.cmd.Wait()
	startServe(t, bin, addr, stateDir, opts.Project, imageRun)
	most := 0
	dockertest.Poll(t, 2*time.Minute, "the rollout finished after the restart", func() error {
		reps, err := drv.List(ctx)
		if err != nil {
			return err
		}
		most = max(most, len(reps))
		st, err := c.Group(ctx, "shop")
		if err != nil || st.Rollout == nil || st.Rollout.Status != "complete" || st.Status != "converged" {
			return fmt.Errorf("status %s, rollout %+v, %v", st.Status, st.Rollout, err)
		}
		for _, r := range st.Replicas {
			if r.Version != "v2" {
				return fmt.Errorf("%s runs %q", r.Name, r.Version)
			}
		}
		if len(st.Replicas) != n {
			return fmt.Errorf("%d replicas", len(st.Replicas))
		}
		return nil
	})
	if most > n+1 {
		t.Fatalf("after the restart %d replicas ran at once: over the surge bound of %d", most, n+1)
	}
}

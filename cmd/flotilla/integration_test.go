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

// TestIntegrationSIGKILLMidScaleAdopts kills the controller with SIGKILL
// while it is creating replicas, starts it again on the same state
// directory, and checks it converges with no duplicate and no orphan.
func TestIntegrationSIGKILLMidScaleAdopts(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the Docker engine; skipped in -short mode")
	}
	ctl := dockertest.NewController(t)
	opts, stateDir, imageRun, drv := ctl.Options, ctl.StateDir, ctl.ImageLabelValue, ctl.Driver

	bin := filepath.Join(t.TempDir(), "flotilla")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	first := startServe(t, bin, addr, stateDir, opts.Project, imageRun)

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

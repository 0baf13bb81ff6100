package conformance_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/server"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// The runtimes the suite runs on, by the name server.Config takes.
const (
	engineRuntime = "engine"
	swarmRuntime  = "swarm"
)

// runImages are the images every controller of this test binary builds
// and shares: one repository and one label, so the first controller builds
// them, the others find them up to date, and TestMain removes them.
var runImages struct {
	repository, run string
	used            atomic.Bool
}

func TestMain(m *testing.M) {
	runImages.repository = dockertest.UniqueName("flotilla-conf-") + "-"
	runImages.run = uuid.NewString()
	code := m.Run()
	if runImages.used.Load() {
		if err := dockertest.RemoveRunImages(runImages.run); err != nil {
			fmt.Fprintf(os.Stderr, "conformance: remove test images: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// flotilla is a whole controller, as `flotilla serve` runs it, in this
// process on a fresh instance and project of one runtime. It can be
// stopped and started again on the same state directory and project.
type flotilla struct {
	runtime   string
	swarmInit bool
	ctl       *dockertest.Controller
	addr      string
	c         *api.Client
	log       *lockedBuffer

	cancel context.CancelFunc
	done   chan error // nil while stopped
}

// newFlotilla prepares a controller of runtime for t without starting it.
// When t ends, pass or fail, everything of the run goes: every group over
// the API (a swarm's services with them) while the controller runs, and
// the swarm too if this controller initialised it; then the controller
// stops, and any service, container and network left with the instance's
// label is removed.
func newFlotilla(t testing.TB, runtime string, swarmInit bool) *flotilla {
	t.Helper()
	f := &flotilla{runtime: runtime, swarmInit: swarmInit, log: &lockedBuffer{}}
	f.ctl = dockertest.NewController(t)
	runImages.used.Store(true)
	if runtime == swarmRuntime {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := removeServices(ctx, f.ctl.Driver, f.ctl.Options.Instance); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	ln.Close()
	f.c = &api.Client{Addr: f.addr}
	t.Cleanup(func() {
		if f.swarmInit {
			f.downLeavingSwarm(t)
		} else if f.done != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			if err := f.c.Down(ctx); err != nil {
				t.Errorf("cleanup: down over the API: %v", err)
			}
			cancel()
		}
		if err := f.stop(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if t.Failed() {
			t.Logf("controller log (%s runtime), last lines:\n%s", runtime, f.log.tail(16<<10))
		}
	})
	return f
}

// config is the server's configuration: the instance's state directory
// and project, the run's images, no VM groups.
func (f *flotilla) config() server.Config {
	cfg := server.Config{
		Addr: f.addr, StateDir: f.ctl.StateDir, MaxReplicas: spec.DefaultMaxReplicas, Project: f.ctl.Options.Project,
		ImageRepository: runImages.repository, ImageLabels: map[string]string{dockertest.RunLabel: runImages.run},
		NoVM: true,
	}
	cfg.Runtime, cfg.SwarmInit = f.runtime, f.swarmInit
	return cfg
}

// start runs the controller and waits until its API answers; the first
// start of a test binary builds the images, so it may take minutes. It
// returns the controller's error if it stops before answering.
func (f *flotilla) start() error {
	if f.done != nil {
		return fmt.Errorf("the %s controller is already running", f.runtime)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := f.config()
	go func() { done <- server.Serve(ctx, cfg, f.log, f.log) }()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		select {
		case err := <-done:
			cancel()
			return fmt.Errorf("the %s controller stopped before answering: %v", f.runtime, err)
		default:
		}
		hctx, hcancel := context.WithTimeout(ctx, time.Second)
		err := f.c.Healthz(hctx)
		hcancel()
		if err == nil {
			f.cancel, f.done = cancel, done
			return nil
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			return fmt.Errorf("the %s controller did not answer within 5m: %v", f.runtime, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the controller as Ctrl-C does: its replicas keep running.
func (f *flotilla) stop() error {
	if f.done == nil {
		return nil
	}
	f.cancel()
	defer func() { f.done = nil }()
	select {
	case err := <-f.done:
		if err != nil {
			return fmt.Errorf("the %s controller: %w", f.runtime, err)
		}
		return nil
	case <-time.After(time.Minute):
		return fmt.Errorf("the %s controller did not stop within a minute", f.runtime)
	}
}

// downLeavingSwarm downs everything over the API and leaves the swarm
// this controller initialised, which also stops it, and checks the engine
// is back out of swarm mode. A controller that is not running is started
// again first: only it knows (by its state directory) that the swarm is
// its own to leave.
func (f *flotilla) downLeavingSwarm(t testing.TB) {
	if f.done == nil {
		if err := f.start(); err != nil {
			t.Errorf("cleanup: start the controller again to leave the swarm it initialised: %v", err)
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := f.c.DownLeavingSwarm(ctx); err != nil {
		t.Errorf("cleanup: down and leave the swarm this test initialised: %v", err)
		return
	}
	if err := dockertest.PollErr(time.Minute, func() error {
		st, err := readSwarmState(ctx)
		if err != nil {
			return err
		}
		if st.active() {
			return errors.New("swarm mode is still active")
		}
		return nil
	}); err != nil {
		t.Errorf("cleanup: the swarm this test initialised is still there after leaving: %v", err)
	}
}

// lockedBuffer is what the controller writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// tail returns the last n bytes written.
func (l *lockedBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.b.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

package conformance_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
)

// TestConformance runs the one suite on each runtime, each on a controller
// of its own: TestConformance/engine/<case> and TestConformance/swarm/<case>.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs whole controllers on the Docker engine; skipped in -short mode")
	}
	t.Run(engineRuntime, func(t *testing.T) {
		f := newFlotilla(t, engineRuntime, false)
		if err := f.start(); err != nil {
			t.Fatal(err)
		}
		runSuite(t, f)
	})
	t.Run(swarmRuntime, func(t *testing.T) {
		f, why := startSwarm(t)
		if f == nil {
			t.Skip(why)
		}
		runSuite(t, f)
	})
}

// startSwarm starts a controller on the swarm runtime. On an engine whose
// swarm mode is inactive it asks the controller to initialise a
// single-node swarm, left again when tb ends; a swarm that was there
// before is never left. Where swarm mode cannot start it returns nil and
// says why; any other failure fails tb.
func startSwarm(tb testing.TB) (*flotilla, string) {
	tb.Helper()
	dockertest.LockSwarm(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before, err := readSwarmState(ctx)
	if err != nil {
		return nil, fmt.Sprintf("swarm mode cannot start here: the engine's swarm state cannot be read: %v", err)
	}
	switch {
	case before.active() && !before.Manager:
		return nil, "swarm mode cannot start here: this engine is a swarm worker, and the swarm runtime needs a manager"
	case !before.active() && before.Node != "inactive":
		return nil, fmt.Sprintf("swarm mode cannot start here: the engine's swarm is %q; `docker swarm leave` or unlock it first", before.Node)
	}
	f := newFlotilla(tb, swarmRuntime, !before.active())
	if err := f.start(); err != nil {
		if after, serr := readSwarmState(ctx); f.swarmInit && serr == nil && !after.active() {
			return nil, fmt.Sprintf("swarm mode cannot start here: initialising a single-node swarm failed: %v", err)
		}
		tb.Fatal(err)
	}
	return f, ""
}

// runSuite runs every case in order on f's controller. The cases share
// the controller and its groups, so a case starts by bringing the group
// to the size it needs.
func runSuite(t *testing.T, f *flotilla) {
	start := time.Now()
	if !t.Run("create", func(t *testing.T) { testCreate(t, f) }) {
		t.Fatal("the group could not be created; the other cases need it")
	}
	cases := []struct {
		name string
		run  func(*testing.T, *flotilla)
	}{
		{"scale", testScale},
		{"kill", testKill},
		{"pause", testPause},
		{"restart", testRestart},
		{"rollout", testRollout},
		{"scenario", testScenario},
		{"delete", testDelete},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, f) })
	}
	t.Logf("the suite took %s on the %s runtime", time.Since(start).Round(100*time.Millisecond), f.runtime)
}

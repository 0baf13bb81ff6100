package dashboard_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flotilla/flotilla/dashboard"
	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/server"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// TestBrowserRealSwarm drives the nodes view of a controller on the swarm
// runtime on the real engine: the swarm's node holds the group's replicas,
// the Drain button drains it and its column empties (with one node the
// tasks have nowhere to go), and Activate brings them back.
func TestBrowserRealSwarm(t *testing.T) {
	dashboard.ChromiumPath(t) // skip early without a browser
	if testing.Short() {
		t.Skip("needs the Docker engine; skipped in -short mode")
	}
	dockertest.LockSwarm(t)
	ctx := context.Background()
	probe := dockertest.New(t)
	_, err := docker.NewSwarm(ctx, probe)
	initialise := errors.Is(err, docker.ErrSwarmInactive)
	if err != nil && !initialise {
		dockertest.SkipOrFail(t, err)
	}
	addr, _ := realControllerOn(t, server.RuntimeSwarm, initialise)
	c := &api.Client{Addr: addr}
	if initialise {
		// Registered after the controller's own cleanup, so it runs first,
		// while the controller that initialised the swarm still answers.
		t.Cleanup(func() {
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if _, err := c.DownLeavingSwarm(dctx); err != nil {
				t.Errorf("cleanup: down and leave the swarm the test initialised: %v", err)
			}
		})
	}
	if _, _, err := c.PutGroup(ctx, spec.Group{Name: "web", Service: "monolith", Replicas: 2}); err != nil {
		t.Fatal(err)
	}
	nodes, err := c.Nodes(ctx)
	if err != nil || len(nodes.Nodes) == 0 {
		t.Fatalf("nodes: %+v, %v", nodes, err)
	}
	node := nodes.Nodes[0]

	b := dashboard.NewBrowser(t)
	b.Open("http://" + addr + "/")
	b.WaitConnected()
	b.WaitTiles("web", 2)
	b.WaitHealth("web-1", "ready")
	b.WaitHealth("web-2", "ready")
	col := `[data-node="` + node.ID + `"]`
	b.WaitFor("the node holds both replicas", `document.querySelectorAll('`+col+` .node-tile').length === 2`, 30*time.Second)

	b.Click(col + ` [data-action="node-drain"]`)
	dashboard.WaitUntil(t, "the node drained", 15*time.Second, func() bool {
		ns, err := c.Nodes(ctx)
		return err == nil && len(ns.Nodes) > 0 && ns.Nodes[0].Availability == replica.AvailabilityDrain
	})
	b.WaitFor("the node's column empty", `document.querySelectorAll('`+col+` .node-tile').length === 0 && document.querySelector('`+col+` .node-avail').textContent === 'draining'`, 30*time.Second)

	b.Click(col + ` [data-action="node-activate"]`)
	b.WaitFor("the replicas back on the node", `document.querySelectorAll('`+col+` .node-tile').length === 2 && document.querySelector('`+col+` .node-avail').textContent === 'active'`, 60*time.Second)
	b.WaitHealth("web-1", "ready")
	b.WaitHealth("web-2", "ready")
}

package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/flotilla/flotilla/dashboard"
	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/server"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// realController runs the whole controller in this process against the
// real engine, with its own instance, project and images, all removed at
// the end. It returns the API's address.
func realController(t *testing.T) (string, *docker.Driver) {
	t.Helper()
	return realControllerOn(t, server.RuntimeEngine, false)
}

// realControllerOn is realController on runtime, initialising a swarm
// first with swarmInit (the caller leaves it).
func realControllerOn(t *testing.T, runtime string, swarmInit bool) (string, *docker.Driver) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the Docker engine; skipped in -short mode")
	}
	ctl := dockertest.NewController(t)
	opts, drv := ctl.Options, ctl.Driver

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Serve(ctx, server.Config{
			Addr: addr, StateDir: ctl.StateDir, MaxReplicas: spec.DefaultMaxReplicas, Project: opts.Project,
			ImageRepository: opts.Project + "-", ImageLabels: map[string]string{ctl.ImageLabelKey: ctl.ImageLabelValue},
			NoVM:    true, // the page is about groups of containers; no VM image needed
			Runtime: runtime, SwarmInit: swarmInit,
		}, io.Discard, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller: %v", err)
		}
	})
	c := &api.Client{Addr: addr}
	dockertest.Poll(t, 3*time.Minute, "controller answers", func() error {
		select {
		case err := <-done:
			t.Fatalf("controller stopped: %v", err)
		default:
		}
		return c.Healthz(context.Background())
	})
	return addr, drv
}

// TestBrowserRealController drives the dashboard of a real controller on
// the real engine: scale up by clicking and watch the new tiles turn ready,
// then kill a replica through the API and watch its tile die and come back.
func TestBrowserRealController(t *testing.T) {
	dashboard.ChromiumPath(t) // skip early without a browser
	addr, _ := realController(t)
	ctx := context.Background()
	c := &api.Client{Addr: addr}
	if _, _, err := c.PutGroup(ctx, spec.Group{Name: "web", Service: "monolith", Replicas: 2}); err != nil {
		t.Fatal(err)
	}

	b := dashboard.NewBrowser(t)
	b.Open("http://" + addr + "/")
	b.WaitConnected()
	b.WaitTiles("web", 2)
	b.WaitHealth("web-1", "ready")
	b.WaitHealth("web-2", "ready")

	// The stage picker loads after the first snapshot and pushes the groups
	// down; click once the layout has settled, as a person would.
	b.WaitFor("the stages loaded", `document.querySelectorAll('[data-action="scenario"]').length >= 5`, 0)
	b.Eval(`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`, nil)
	b.Click(`[data-group="web"] [data-action="scale-up"]`)
	if !scaledTo(c, 3, 5*time.Second) {
		// A click can still land on a moving layout; a person clicks again.
		t.Log("the first click did not scale the group; clicking again")
		b.Click(`[data-group="web"] [data-action="scale-up"]`)
	}
	b.WaitTiles("web", 3)
	b.WaitHealth("web-3", "ready")
	st, err := c.Group(ctx, "web")
	if err != nil || st.Desired != 3 {
		t.Fatalf("after clicking scale-up the group is %+v, %v; want 3 desired", st, err)
	}

	// Record every health web-2's tile shows, so a short-lived "dead" is seen.
	b.Eval(`(() => {
		window.seenHealth = [];
		const record = () => {
			const el = document.querySelector('[data-replica="web-2"]');
			const h = el ? el.getAttribute('data-health') : 'gone';
			if (window.seenHealth[window.seenHealth.length - 1] !== h) window.seenHealth.push(h);
		};
		new MutationObserver(record).observe(document.body, {subtree: true, attributes: true, childList: true});
		record();
		return true;
	})()`, nil)
	old := st.Replicas[1]
	if old.Name != "web-2" {
		t.Fatalf("second replica is %s", old.Name)
	}
	if err := postAction(addr, "web", "web-2", "kill"); err != nil {
		t.Fatal(err)
	}
	b.WaitFor("web-2 tile dead", `window.seenHealth.includes('dead')`, 10*time.Second)
	b.WaitHealth("web-2", "ready")
	var seen []string
	b.Eval(`window.seenHealth`, &seen)
	t.Logf("web-2 tile went through %v", seen)
	st, _ = c.Group(ctx, "web")
	for _, r := range st.Replicas {
		if r.Name == "web-2" && r.ID == old.ID {
			t.Fatalf("web-2 still has the killed container %s", old.ID)
		}
	}
	var text string
	b.Eval(`document.querySelector('[data-replica="web-2"]').innerText`, &text)
	if text == "" {
		t.Fatal("web-2's tile has no text")
	}
	var events string
	b.Eval(`document.getElementById('events').innerText`, &events)
	if !contains(events, "web-2 died") {
		t.Fatalf("the event log does not say web-2 died:\n%s", events)
	}
	t.Logf("screenshot: %s", b.Screenshot("real-controller"))
	b.CheckPage("http://" + addr)
}

func postAction(addr, group, replica, action string) error {
	resp, err := httpPost(fmt.Sprintf("http://%s/api/v1/groups/%s/replicas/%s/%s", addr, group, replica, action))
	if err != nil {
		return err
	}
	if resp != 202 {
		return fmt.Errorf("%s %s: status %d", action, replica, resp)
	}
	return nil
}

// scaledTo polls the API until group web desires n replicas.
func scaledTo(c *api.Client, n int, within time.Duration) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if st, err := c.Group(context.Background(), "web"); err == nil && st.Desired == n {
			return true
		}
	}
	return false
}

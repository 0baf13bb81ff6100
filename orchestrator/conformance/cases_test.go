package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/faults"
	"github.com/flotilla/flotilla/orchestrator/load"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// web is the group most cases work on: the monolith behind a balancer.
const web = "web"

// Bounds of the waits, generous for a 2-core machine and for Swarm, which
// schedules tasks rather than starting containers at once.
const (
	readyTimeout = 2 * time.Minute
	goneTimeout  = time.Minute
)

func testCreate(t *testing.T, f *flotilla) {
	ctx := context.Background()
	_, created, err := f.c.PutGroup(ctx, spec.Group{Name: web, Service: "monolith", Replicas: 1, Balancer: spec.Balancer{Policy: spec.PolicyRoundRobin}})
	if err != nil {
		t.Fatalf("PUT group %s: %v", web, err)
	}
	if !created {
		t.Errorf("PUT group %s answered as an update, want created", web)
	}
	st := waitReady(t, f, web, 1)
	getOK(t, st.Endpoint, "/catalog")
	checkRuntimeName(t, f, "/healthz")
	checkRuntimeName(t, f, "/api/v1/groups/"+web)
}

// checkRuntimeName checks the "runtime" the API shows at path. It is
// required once the server can run the swarm runtime, and checked wherever
// it is shown.
func checkRuntimeName(t *testing.T, f *flotilla, path string) {
	t.Helper()
	var body map[string]any
	if err := f.c.Get(context.Background(), path, &body); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	got, ok := body["runtime"]
	switch {
	case !ok:
		t.Errorf("GET %s shows no runtime, want %q", path, f.runtime)
	case ok && got != f.runtime:
		t.Errorf("GET %s shows runtime %v, want %q", path, got, f.runtime)
	}
}

func testScale(t *testing.T, f *flotilla) {
	ctx := context.Background()
	first := ensureReady(t, f, web, 1)
	if _, err := f.c.Scale(ctx, web, 3); err != nil {
		t.Fatalf("scale up: %v", err)
	}
	up := waitReady(t, f, web, 3)
	if !slices.Contains(ids(up), first.Replicas[0].ID) {
		t.Errorf("scaling up replaced the replica that was there: %v, then %v", ids(first), ids(up))
	}
	if _, err := f.c.Scale(ctx, web, 1); err != nil {
		t.Fatalf("scale down: %v", err)
	}
	down := waitReady(t, f, web, 1)
	if !slices.Contains(ids(up), down.Replicas[0].ID) {
		t.Errorf("scaling down left a replica that was not among the three: %v, then %v", ids(up), ids(down))
	}
	getOK(t, down.Endpoint, "/catalog")
}

func testKill(t *testing.T, f *flotilla) {
	ctx := context.Background()
	st := ensureReady(t, f, web, 3)
	victim := st.Replicas[1]

	run := startLoad(t, f, web, 100, 40*time.Second)
	waitSent(t, f, run, 50)
	killed := time.Now()
	if _, err := f.c.InjectFault(ctx, faults.Spec{Kind: faults.Kill, Group: web, Replica: victim.Name}); err != nil {
		t.Fatalf("kill %s: %v", victim.Name, err)
	}
	var healed controller.ReplicaStatus
	dockertest.Poll(t, readyTimeout, "a new replica "+victim.Name+" ready in rotation", func() error {
		gs, err := f.c.Group(ctx, web)
		if err != nil {
			return err
		}
		for _, r := range gs.Replicas {
			if r.Name == victim.Name && r.ID != victim.ID && inRotation(r) == nil {
				if gs.Ready != 3 {
					return fmt.Errorf("%d of 3 ready", gs.Ready)
				}
				healed = r
				return nil
			}
		}
		return fmt.Errorf("no new %s in rotation yet: %v", victim.Name, describe(gs))
	})
	t.Logf("%s killed, a new one (%.12s) in rotation after %s", victim.Name, healed.ID, time.Since(killed).Round(10*time.Millisecond))
	// A little more traffic with the new replica in rotation.
	time.Sleep(time.Second)
	rep := stopLoad(t, f, run)
	if rep.Failed != 0 {
		t.Errorf("%d of %d GETs through the balancer failed across the kill, want 0: %v", rep.Failed, rep.Sent, rep.Errors)
	}
	if rep.Succeeded < 100 {
		t.Errorf("only %d GETs succeeded: the load did not run across the kill", rep.Succeeded)
	}
}

func testPause(t *testing.T, f *flotilla) {
	ctx := context.Background()
	st := ensureReady(t, f, web, 3)
	victim := st.Replicas[0]

	fault, err := f.c.InjectFault(ctx, faults.Spec{Kind: faults.Pause, Group: web, Replica: victim.Name})
	if err != nil {
		t.Fatalf("pause %s: %v", victim.Name, err)
	}
	reverted := false
	t.Cleanup(func() {
		if !reverted {
			f.c.RevertFault(context.Background(), fault.ID)
		}
	})
	dockertest.Poll(t, 10*time.Second, victim.Name+" paused and out of rotation", func() error {
		r, err := replicaByID(ctx, f, web, victim.ID)
		if err != nil {
			return err
		}
		if r.Health != controller.HealthPaused {
			return fmt.Errorf("%s is %s, want paused", r.Name, r.Health)
		}
		if r.Traffic != nil && r.Traffic.State == "ready" {
			return fmt.Errorf("%s is still in rotation", r.Name)
		}
		return nil
	})

	rep := finishLoad(t, f, startLoad(t, f, web, 100, 3*time.Second))
	if rep.Failed != 0 {
		t.Errorf("%d of %d GETs failed with %s paused, want 0: %v", rep.Failed, rep.Sent, victim.Name, rep.Errors)
	}
	if rep.Succeeded < 100 {
		t.Errorf("only %d GETs succeeded with %s paused", rep.Succeeded, victim.Name)
	}
	if n := rep.ByReplica[victim.Name]; n != 0 {
		t.Errorf("the paused %s answered %d GETs; it should be out of rotation", victim.Name, n)
	}

	if _, err := f.c.RevertFault(ctx, fault.ID); err != nil {
		t.Fatalf("unpause %s: %v", victim.Name, err)
	}
	reverted = true
	dockertest.Poll(t, readyTimeout, victim.Name+" unpaused and back in rotation", func() error {
		r, err := replicaByID(ctx, f, web, victim.ID)
		if err != nil {
			return err
		}
		return inRotation(r)
	})
	waitReady(t, f, web, 3)
}

// testRestart stops the controller and starts a new one on the same state
// directory and project: it adopts every replica, creating and removing
// none, so every replica keeps its ID.
func testRestart(t *testing.T, f *flotilla) {
	ctx := context.Background()
	ensureReady(t, f, web, 3)
	before := allReplicas(t, f)
	if err := f.stop(); err != nil {
		t.Fatal(err)
	}
	if err := f.start(); err != nil {
		t.Fatal(err)
	}
	st := waitReady(t, f, web, 3)
	// Then a few seconds more: a late replacement would show here.
	for range 6 {
		after := allReplicas(t, f)
		if !slices.Equal(before, after) {
			t.Fatalf("replicas across the restart differ; want the same IDs, none created or removed:\nbefore %v\nafter  %v", before, after)
		}
		time.Sleep(500 * time.Millisecond)
	}
	getOK(t, st.Endpoint, "/catalog")
	if _, err := f.c.Group(ctx, web); err != nil {
		t.Fatal(err)
	}
}

// testScenario switches to the monolith stage (its group shop created,
// every other group deleted), then to the balanced stage (shop updated to
// three replicas).
func testScenario(t *testing.T, f *flotilla) {
	ctx := context.Background()
	res, err := f.c.ApplyScenario(ctx, "monolith")
	if err != nil {
		t.Fatalf("PUT scenario monolith: %v", err)
	}
	if !slices.Equal(res.Created, []string{"shop"}) || !slices.Contains(res.Deleted, web) {
		t.Errorf("scenario monolith: created %v, deleted %v; want shop created and %s deleted", res.Created, res.Deleted, web)
	}
	waitReady(t, f, "shop", 1)
	waitGone(t, f, web)

	res, err = f.c.ApplyScenario(ctx, "scaled-lb")
	if err != nil {
		t.Fatalf("PUT scenario scaled-lb: %v", err)
	}
	if !slices.Equal(res.Updated, []string{"shop"}) {
		t.Errorf("scenario scaled-lb updated %v, want [shop]", res.Updated)
	}
	st := waitReady(t, f, "shop", 3)
	getOK(t, st.Endpoint, "/catalog")
}

// testDelete deletes every group left; their replicas go.
func testDelete(t *testing.T, f *flotilla) {
	ctx := context.Background()
	groups, err := f.c.Groups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) == 0 {
		t.Fatal("no group to delete: the earlier cases left none")
	}
	for _, g := range groups {
		if err := f.c.DeleteGroup(ctx, g.Name); err != nil {
			t.Fatalf("DELETE group %s: %v", g.Name, err)
		}
	}
	for _, g := range groups {
		waitGone(t, f, g.Name)
	}
	if left, err := f.c.Groups(ctx); err != nil || len(left) != 0 {
		t.Errorf("groups after deleting them all: %v (%v)", left, err)
	}
}

// waitReady waits until group has exactly n replicas, each running, ready
// and in its balancer's rotation, and returns its status.
func waitReady(t *testing.T, f *flotilla, group string, n int) controller.GroupStatus {
	t.Helper()
	var st controller.GroupStatus
	dockertest.Poll(t, readyTimeout, fmt.Sprintf("%s: %d replicas ready in rotation", group, n), func() error {
		var err error
		st, err = f.c.Group(context.Background(), group)
		if err != nil {
			return err
		}
		if st.Endpoint == "" {
			return errors.New("no balancer endpoint yet")
		}
		if st.Ready != n || len(st.Replicas) != n {
			return fmt.Errorf("%d ready of %d listed, want %d: %v", st.Ready, len(st.Replicas), n, describe(st))
		}
		for _, r := range st.Replicas {
			if err := inRotation(r); err != nil {
				return err
			}
		}
		return nil
	})
	return st
}

// ensureReady scales group to n unless it has n already, and waits until
// they are ready.
func ensureReady(t *testing.T, f *flotilla, group string, n int) controller.GroupStatus {
	t.Helper()
	st, err := f.c.Group(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	if st.Desired != n {
		if _, err := f.c.Scale(context.Background(), group, n); err != nil {
			t.Fatalf("scale %s to %d: %v", group, n, err)
		}
	}
	return waitReady(t, f, group, n)
}

// waitGone waits until group is unknown to the API and no container of
// it is left on the engine, found by the run's labels.
func waitGone(t *testing.T, f *flotilla, group string) {
	t.Helper()
	ctx := context.Background()
	dockertest.Poll(t, goneTimeout, "group "+group+" and its replicas gone", func() error {
		if _, err := f.c.Group(ctx, group); !errors.Is(err, controller.ErrNotFound) {
			return fmt.Errorf("GET group %s: %v, want 404", group, err)
		}
		reps, err := f.ctl.Driver.List(ctx)
		if err != nil {
			return err
		}
		for _, r := range reps {
			if r.Group == group {
				return fmt.Errorf("container %s (%.12s, %s) of %s is still there", r.Name, r.ID, r.State, group)
			}
		}
		return nil
	})
}

// inRotation says why r is not running, ready and in rotation, if so.
func inRotation(r controller.ReplicaStatus) error {
	if r.State != "running" || r.Health != controller.HealthReady {
		return fmt.Errorf("%s is %s/%s %s", r.Name, r.State, r.Health, r.Reason)
	}
	if r.Traffic == nil || r.Traffic.State != "ready" {
		return fmt.Errorf("%s is ready but not in rotation yet", r.Name)
	}
	return nil
}

func replicaByID(ctx context.Context, f *flotilla, group, id string) (controller.ReplicaStatus, error) {
	gs, err := f.c.Group(ctx, group)
	if err != nil {
		return controller.ReplicaStatus{}, err
	}
	for _, r := range gs.Replicas {
		if r.ID == id {
			return r, nil
		}
	}
	return controller.ReplicaStatus{}, fmt.Errorf("replica %.12s is not listed: %v", id, describe(gs))
}

func ids(st controller.GroupStatus) []string {
	var out []string
	for _, r := range st.Replicas {
		out = append(out, r.ID)
	}
	return out
}

// allReplicas lists every group's replicas as group/name=ID, sorted.
func allReplicas(t *testing.T, f *flotilla) []string {
	t.Helper()
	groups, err := f.c.Groups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range groups {
		for _, r := range g.Replicas {
			out = append(out, fmt.Sprintf("%s/%s=%.12s", g.Name, r.Name, r.ID))
		}
	}
	sort.Strings(out)
	return out
}

func describe(st controller.GroupStatus) []string {
	var out []string
	for _, r := range st.Replicas {
		traffic := "-"
		if r.Traffic != nil {
			traffic = r.Traffic.State
		}
		out = append(out, fmt.Sprintf("%s(%.12s %s/%s/%s)", r.Name, r.ID, r.State, r.Health, traffic))
	}
	return out
}

var getClient = &http.Client{Timeout: 5 * time.Second}

// getOK checks that a GET of path through the balancer at endpoint, on
// 127.0.0.1, answers 200.
func getOK(t *testing.T, endpoint, path string) {
	t.Helper()
	resp, err := getClient.Get("http://" + endpoint + path)
	if err != nil {
		t.Fatalf("GET %s through the balancer: %v", path, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s through the balancer: %s, want 200", path, resp.Status)
	}
}

// startLoad starts a run of GETs at rate per second through group's
// balancer, by the API's load generator, for at most d.
func startLoad(t *testing.T, f *flotilla, group string, rate int, d time.Duration) load.Report {
	t.Helper()
	run, err := f.c.StartLoad(context.Background(), map[string]any{
		"group": group, "rate": rate, "concurrency": 16, "duration": d.String(), "paths": []string{"/catalog", "/deals"},
	})
	if err != nil {
		t.Fatalf("start load on %s: %v", group, err)
	}
	t.Cleanup(func() { f.c.StopLoad(context.Background(), run.ID) })
	return run
}

// waitSent waits until the run has sent n requests.
func waitSent(t *testing.T, f *flotilla, run load.Report, n int64) {
	t.Helper()
	dockertest.Poll(t, 10*time.Second, fmt.Sprintf("load sent %d requests", n), func() error {
		rep, err := f.c.Load(context.Background(), run.ID)
		if err != nil {
			return err
		}
		if rep.Sent < n {
			return fmt.Errorf("%d sent", rep.Sent)
		}
		return nil
	})
}

// stopLoad stops the run now and returns its report.
func stopLoad(t *testing.T, f *flotilla, run load.Report) load.Report {
	t.Helper()
	rep, err := f.c.StopLoad(context.Background(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	return logLoad(t, rep)
}

// finishLoad waits until the run has run its course and returns its
// report.
func finishLoad(t *testing.T, f *flotilla, run load.Report) load.Report {
	t.Helper()
	var rep load.Report
	dockertest.Poll(t, run.Spec.Duration+15*time.Second, "load run "+run.ID+" ends", func() error {
		var err error
		rep, err = f.c.Load(context.Background(), run.ID)
		if err != nil {
			return err
		}
		if rep.State == load.StateRunning {
			return fmt.Errorf("still running: %d sent", rep.Sent)
		}
		return nil
	})
	return logLoad(t, rep)
}

func logLoad(t *testing.T, rep load.Report) load.Report {
	t.Helper()
	t.Logf("load: sent %d, ok %d, failed %d %v, canceled %d, dropped %d, by replica %v",
		rep.Sent, rep.Succeeded, rep.Failed, rep.Errors, rep.Canceled, rep.Dropped, rep.ByReplica)
	return rep
}

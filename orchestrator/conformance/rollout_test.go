package conformance_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// rolloutTimeout bounds one rollout, its automatic rollback included.
const rolloutTimeout = 3 * time.Minute

// testRollout changes the group's version twice under load. v1 to v2 is a
// rolling update (the controller's own on the engine runtime, Swarm's own
// update on the swarm runtime) that fails no GET and ends complete in the
// history. v3, a release that fails 30% of its requests, rolled out
// slowly enough to be judged, fails the new version's error rate and is
// rolled back on its own, to v2.
func testRollout(t *testing.T, f *flotilla) {
	ctx := context.Background()
	ensureReady(t, f, web, 3)
	g := spec.Group{Name: web, Service: "monolith", Replicas: 3, Balancer: spec.Balancer{Policy: spec.PolicyRoundRobin},
		Version: "v2", Rollout: &spec.Rollout{AutoRollback: &spec.AutoRollback{ErrorRate: 0.1}}}

	run := startLoad(t, f, web, 100, 90*time.Second)
	waitSent(t, f, run, 50)
	put := time.Now()
	if _, _, err := f.c.PutGroup(ctx, g); err != nil {
		t.Fatalf("PUT %s at v2: %v", web, err)
	}
	ro := waitRollout(t, f, 2, controller.RolloutComplete)
	t.Logf("v1 → v2: %s in %s (%s)", ro.Status, time.Since(put).Round(100*time.Millisecond), ro.Progress)
	rep := stopLoad(t, f, run)
	if rep.Failed != 0 {
		t.Errorf("%d of %d GETs failed during the rolling update to v2, want 0: %v", rep.Failed, rep.Sent, rep.Errors)
	}
	st := waitReady(t, f, web, 3)
	for _, r := range st.Replicas {
		if r.Version != "v2" {
			t.Errorf("after the rollout %s runs %q, want v2", r.Name, r.Version)
		}
	}

	// v3 fails 30% of its answers: past the 10% the group allows, the
	// rollout fails and the group goes back to v2 by itself. Each new
	// replica must stay ready 5 s before the next is replaced, so the
	// balancer judges v3 before the update ends.
	run = startLoad(t, f, web, 100, 2*time.Minute)
	waitSent(t, f, run, 50)
	g.Version, g.Flaw = "v3", "errors"
	g.Rollout.MinReadySeconds = 5
	if _, _, err := f.c.PutGroup(ctx, g); err != nil {
		t.Fatalf("PUT %s at v3: %v", web, err)
	}
	bad := waitRollout(t, f, 3, controller.RolloutFailed, controller.RolloutRolledBack)
	t.Logf("v2 → v3: %s: %s", bad.Status, bad.Reason)
	back := waitRollout(t, f, 4, controller.RolloutComplete)
	if !back.Rollback || back.Version != "v2" {
		t.Errorf("the rollout after v3 is %+v, want a rollback to v2", back)
	}
	stopLoad(t, f, run)
	st = waitReady(t, f, web, 3)
	for _, r := range st.Replicas {
		if r.Version != "v2" {
			t.Errorf("after the rollback %s runs %q, want v2", r.Name, r.Version)
		}
	}
}

// waitRollout waits until the group's rollout to revision rev has one of
// the statuses want, and returns it.
func waitRollout(t *testing.T, f *flotilla, rev int, want ...string) controller.RolloutStatus {
	t.Helper()
	var got controller.RolloutStatus
	dockertest.Poll(t, rolloutTimeout, fmt.Sprintf("the rollout to revision %d %v", rev, want), func() error {
		h, err := f.c.Rollouts(context.Background(), web)
		if err != nil {
			return err
		}
		for _, ro := range h.Rollouts {
			if ro.Revision != rev {
				continue
			}
			got = ro
			for _, w := range want {
				if ro.Status == w {
					return nil
				}
			}
			return fmt.Errorf("revision %d is %s (%s)", rev, ro.Status, ro.Progress)
		}
		return fmt.Errorf("no rollout to revision %d yet among %d", rev, len(h.Rollouts))
	})
	return got
}

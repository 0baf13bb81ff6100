package controller_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/sample-services/version"
)

// steady is load on a group's balancer: 4 clients asking GET /catalog in
// turn, until stop (at most 3 minutes), counting answers by status and by
// the version that gave them.
type steady struct {
	mu       sync.Mutex
	statuses map[int]int
	versions map[string]int
	failures []string
	total    atomic.Int64
	stop     chan struct{}
	done     sync.WaitGroup
}

func startSteady(endpoint string) *steady {
	s := &steady{statuses: map[int]int{}, versions: map[string]int{}, stop: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(3 * time.Minute)
	for range 4 {
		s.done.Go(func() {
			for time.Now().Before(deadline) {
				select {
				case <-s.stop:
					return
				default:
				}
				resp, err := client.Get("http://" + endpoint + "/catalog")
				s.total.Add(1)
				s.mu.Lock()
				if err != nil {
					s.failures = append(s.failures, err.Error())
					s.mu.Unlock()
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				s.statuses[resp.StatusCode]++
				s.versions[resp.Header.Get(version.Header)]++
				if resp.StatusCode != 200 && len(s.failures) < 20 {
					s.failures = append(s.failures, fmt.Sprintf("%d %s", resp.StatusCode, body))
				}
				s.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	return s
}

func (s *steady) end() (ok, bad int) {
	close(s.stop)
	s.done.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for code, n := range s.statuses {
		if code == 200 {
			ok += n
		} else {
			bad += n
		}
	}
	return ok, bad + len(s.failures) - min(len(s.failures), bad)
}

// rolled waits until the group's latest rollout has status want and
// returns the group.
func rolled(t *testing.T, ctrl *controller.Controller, group, want string, within time.Duration) controller.GroupStatus {
	t.Helper()
	var st controller.GroupStatus
	dockertest.Poll(t, within, "rollout "+want, func() error {
		st, _ = ctrl.Group(group)
		if st.Rollout == nil || st.Rollout.Status != want || st.Status != controller.StatusConverged {
			return fmt.Errorf("status %s %s, rollout %+v", st.Status, st.Message, st.Rollout)
		}
		return nil
	})
	return st
}

func versionsOf(st controller.GroupStatus) map[string]int {
	out := map[string]int{}
	for _, r := range st.Replicas {
		out[r.Version]++
	}
	return out
}

var quickProbe = spec.Probe{PeriodMs: 200, TimeoutMs: 200}

// TestIntegrationRollingUpdateLosesNothing: a rolling update of 3
// replicas from v1 to v2 under steady load fails no request, and ends
// with every replica on v2, which answers as v2.
func TestIntegrationRollingUpdateLosesNothing(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	g := spec.Group{Name: "shop", Service: "monolith", Replicas: 3, Probe: quickProbe}
	if _, _, err := h.ctrl.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	h.converge("shop", running("shop", 3), 3)
	st, _ := h.ctrl.Group("shop")
	load := startSteady(st.Endpoint)
	time.Sleep(500 * time.Millisecond)

	g.Version = "v2"
	if _, _, err := h.ctrl.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	st, _ = h.ctrl.Group("shop")
	if st.Rollout == nil || st.Rollout.Status != controller.RolloutProgressing || st.Rollout.Strategy != spec.StrategyRolling {
		t.Fatalf("a version change started no rolling update: %+v", st.Rollout)
	}
	// A second change while it runs is refused.
	g2 := g
	g2.Version = "v1"
	if _, _, err := h.ctrl.PutGroup(ctx, g2); err == nil {
		t.Fatal("a template change during a rollout was accepted")
	}
	st = rolled(t, h.ctrl, "shop", controller.RolloutComplete, 2*time.Minute)
	time.Sleep(500 * time.Millisecond)
	ok, bad := load.end()
	if bad != 0 {
		t.Fatalf("%d of %d requests failed during the rolling update: %v", bad, ok+bad, load.failures)
	}
	if v := versionsOf(st); v["v2"] != 3 || len(st.Replicas) != 3 {
		t.Fatalf("after the rollout the replicas run %v", v)
	}
	if load.versions["v2"] == 0 || load.versions["v1"] == 0 {
		t.Fatalf("answers by version %v: want both", load.versions)
	}
	ros, revs, _ := h.ctrl.Rollouts("shop")
	if len(ros) != 1 || len(revs) != 2 || revs[0].Version != "v2" {
		t.Fatalf("history: rollouts %+v, revisions %+v", ros, revs)
	}
	t.Logf("%d requests, none failed; answers by version %v", ok, load.versions)
}

// TestIntegrationRollbackOnAVersionNeverReady: v3 that never becomes ready
// fails its progress deadline and is rolled back; the old replicas served
// all along.
func TestIntegrationRollbackOnAVersionNeverReady(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	g := spec.Group{Name: "shop", Service: "monolith", Replicas: 2, Probe: quickProbe,
		Rollout: &spec.Rollout{ProgressDeadlineSeconds: 8}}
	if _, _, err := h.ctrl.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	h.converge("shop", running("shop", 2), 2)
	st, _ := h.ctrl.Group("shop")
	load := startSteady(st.Endpoint)

	g.Version, g.Flaw = "v3", "unready"
	if _, _, err := h.ctrl.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	st = rolled(t, h.ctrl, "shop", controller.RolloutComplete, 2*time.Minute)
	ok, bad := load.end()
	if !st.Rollout.Rollback || st.Version != "v1" || versionsOf(st)["v1"] != 2 {
		t.Fatalf("not rolled back to v1: version %s, rollout %+v, replicas %v", st.Version, st.Rollout, versionsOf(st))
	}
	ros, _, _ := h.ctrl.Rollouts("shop")
	if len(ros) != 2 || ros[1].Status != controller.RolloutRolledBack || ros[1].Reason == "" {
		t.Fatalf("history %+v", ros)
	}
	if bad != 0 {
		t.Fatalf("%d of %d requests failed while v3 never got ready", bad, ok+bad)
	}
	t.Logf("rolled back: %s", ros[1].Reason)
}

// TestIntegrationCanaryRolledBackOnErrors: a canary of v3 that fails
// requests is rolled back at its first step; only its share of shoppers
// saw failures.
func TestIntegrationCanaryRolledBackOnErrors(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	g := spec.Group{Name: "shop", Service: "monolith", Replicas: 3, Probe: quickProbe,
		Rollout: &spec.Rollout{Strategy: spec.StrategyCanary, Canary: &spec.Canary{Steps: []int{25, 100}, PauseSeconds: 30},
			AutoRollback: &spec.AutoRollback{ErrorRate: 0.1}}}
	if _, _, err := h.ctrl.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	h.converge("shop", running("shop", 3), 3)
	st, _ := h.ctrl.Group("shop")
	load := startSteady(st.Endpoint)

	g.Version, g.Flaw = "v3", "errors"
	if _, _, err := h.ctrl.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	st = rolled(t, h.ctrl, "shop", controller.RolloutComplete, 2*time.Minute)
	ok, bad := load.end()
	ros, _, _ := h.ctrl.Rollouts("shop")
	if !st.Rollout.Rollback || len(ros) != 2 || ros[1].Status != controller.RolloutRolledBack || ros[1].Step != 1 {
		t.Fatalf("the canary was not rolled back at its first step: %+v", ros)
	}
	if bad == 0 || float64(bad) > 0.2*float64(ok+bad) {
		t.Fatalf("%d of %d requests failed: want some (the canary's), and few", bad, ok+bad)
	}
	t.Logf("rolled back at step 1 (%s); %d of %d requests failed", ros[1].Reason, bad, ok+bad)
}

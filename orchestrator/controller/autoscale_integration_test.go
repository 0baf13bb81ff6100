package controller_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// fn is an autoscaled recommend group with short windows, so a test sees
// it wake, scale out and sleep within seconds.
func fn(name string, pool int) spec.Group {
	return spec.Group{Name: name, Service: "recommend", Replicas: 0, Autoscale: &spec.Autoscale{
		Min: 0, Max: 3, TargetConcurrency: 1, IdleAfter: "5s", StableWindow: "4s", PanicWindow: "2s", WarmPool: pool,
	}}
}

// herd sends n concurrent GETs to the group's balancer and returns the
// statuses that were not 200.
func herd(t *testing.T, endpoint string, n int) []string {
	t.Helper()
	var (
		mu  sync.Mutex
		bad []string
		wg  sync.WaitGroup
	)
	client := &http.Client{Timeout: 40 * time.Second}
	for range n {
		wg.Go(func() {
			resp, err := client.Get("http://" + endpoint + "/recommend/tea-mug")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				bad = append(bad, err.Error())
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				bad = append(bad, fmt.Sprintf("%d %s", resp.StatusCode, body))
			}
		})
	}
	wg.Wait()
	return bad
}

// TestIntegrationScaleFromZero: an autoscaled function sits at zero with its
// balancer listening; a herd of concurrent requests wakes it exactly once
// and every request is answered; the cold start's timeline has its phases
// in order; idle, it goes back to zero; a manual scale is refused.
func TestIntegrationScaleFromZero(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	st, _, err := h.ctrl.PutGroup(ctx, fn("recommend", 0))
	if err != nil {
		t.Fatal(err)
	}
	dockertest.Poll(t, 30*time.Second, "balancer listening at zero", func() error {
		if st, err = h.ctrl.Group("recommend"); err != nil || st.Endpoint == "" {
			return fmt.Errorf("status %+v, %v", st, err)
		}
		return nil
	})
	time.Sleep(2500 * time.Millisecond) // the autoscaler decides on its own twice
	if got, _ := h.names(); got != "" {
		t.Fatalf("at zero with no request, containers %q", got)
	}

	if bad := herd(t, st.Endpoint, 50); len(bad) > 0 {
		t.Fatalf("%d of 50 held requests failed: %v", len(bad), bad[:min(len(bad), 3)])
	}
	st, _ = h.ctrl.Group("recommend")
	a := st.Autoscale
	if a == nil || len(a.ColdStarts) != 1 || a.Starts.Cold != 1 {
		t.Fatalf("after one herd at zero: %+v", a)
	}
	cs := a.ColdStarts[0]
	names := map[string]bool{}
	last := 0.0
	for _, p := range cs.Phases {
		names[p.Name] = true
		if p.StartMs < last-0.001 || p.Ms < 0 {
			t.Fatalf("phases out of order: %+v", cs.Phases)
		}
		last = p.StartMs + p.Ms
	}
	for _, want := range []string{"created", "started", "first ready probe", "answered"} {
		if !names[want] {
			t.Fatalf("cold start without phase %q: %+v", want, cs.Phases)
		}
	}
	if cs.Status != 200 || cs.Held < 1 || cs.From != "zero" || cs.TotalMs <= 0 || cs.TotalMs > 30000 {
		t.Fatalf("cold start %+v", cs)
	}
	t.Logf("cold start %.0f ms: %+v", cs.TotalMs, cs.Phases)

	if _, err := h.ctrl.Scale(ctx, "recommend", 2); !errors.Is(err, controller.ErrConflict) {
		t.Fatalf("manual scale of an autoscaled group = %v, want a conflict", err)
	}

	// Idle for 5 s: back to zero, its balancer still there.
	dockertest.Poll(t, 40*time.Second, "back to zero when idle", func() error {
		got, err := h.names()
		if err != nil || got != "" {
			return fmt.Errorf("containers %q, %v", got, err)
		}
		return nil
	})
	st, _ = h.ctrl.Group("recommend")
	if st.Endpoint == "" || st.Autoscale.Want != 0 {
		t.Fatalf("asleep: endpoint %q, want %d", st.Endpoint, st.Autoscale.Want)
	}
	var idle bool
	for _, d := range st.Autoscale.Decisions {
		idle = idle || d.Mode == "idle" && d.To == 0
	}
	if !idle {
		t.Fatalf("no idle decision among %+v", st.Autoscale.Decisions)
	}
}

// TestIntegrationWarmPool: a warm pool replica is made, paused and kept
// out of rotation; a request thaws it instead of making one, and the pool
// refills behind it.
func TestIntegrationWarmPool(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	if _, _, err := h.ctrl.PutGroup(ctx, fn("recommend", 1)); err != nil {
		t.Fatal(err)
	}
	var st controller.GroupStatus
	dockertest.Poll(t, 60*time.Second, "one paused replica in the pool", func() error {
		got, err := h.names()
		if err != nil {
			return err
		}
		st, err = h.ctrl.Group("recommend")
		if err != nil || got != "recommend-1=paused" || st.Autoscale == nil || len(st.Autoscale.Pool) != 1 || st.Endpoint == "" {
			return fmt.Errorf("containers %q, status %+v, %v", got, st.Autoscale, err)
		}
		return nil
	})
	if !st.Replicas[0].Pooled {
		t.Fatalf("the paused replica is not marked pooled: %+v", st.Replicas[0])
	}

	if bad := herd(t, st.Endpoint, 5); len(bad) > 0 {
		t.Fatalf("requests failed: %v", bad)
	}
	st, _ = h.ctrl.Group("recommend")
	if n := len(st.Autoscale.ColdStarts); n != 1 || st.Autoscale.ColdStarts[0].From != "pool" || st.Autoscale.Starts.Pooled != 1 {
		t.Fatalf("a wake with a pool: %+v", st.Autoscale)
	}
	cs := st.Autoscale.ColdStarts[0]
	t.Logf("from the pool %.0f ms: %+v", cs.TotalMs, cs.Phases)
	for _, p := range cs.Phases {
		if p.Name == "created" {
			t.Fatalf("a wake from the pool made a replica: %+v", cs.Phases)
		}
	}
	dockertest.Poll(t, 60*time.Second, "the pool refilled beside the serving replica", func() error {
		got, err := h.names()
		if err != nil || got != "recommend-1=running recommend-2=paused" {
			return fmt.Errorf("containers %q, %v", got, err)
		}
		return nil
	})
}

// TestIntegrationAutoscaleBadSpecs: bad autoscale settings are refused with
// the field named, and nothing is made.
func TestIntegrationAutoscaleBadSpecs(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	for field, a := range map[string]spec.Autoscale{
		"autoscale.min":               {Min: 4, Max: 2, TargetConcurrency: 1},
		"autoscale.max":               {Max: 500, TargetConcurrency: 1},
		"autoscale.targetConcurrency": {Max: 2},
		"autoscale.idleAfter":         {Max: 2, TargetConcurrency: 1, IdleAfter: "1s"},
		"autoscale.warmPool":          {Max: 2, TargetConcurrency: 1, WarmPool: 3},
	} {
		g := spec.Group{Name: "bad", Service: "recommend", Autoscale: &a}
		_, _, err := h.ctrl.PutGroup(ctx, g)
		var ve *spec.ValidationError
		if !errors.As(err, &ve) || ve.Field != field {
			t.Errorf("%+v: %v, want a validation error on %s", a, err, field)
		}
	}
	if _, err := h.ctrl.Group("bad"); !errors.Is(err, controller.ErrNotFound) {
		t.Fatalf("a refused group exists: %v", err)
	}
}

// TestIntegrationScaleToZeroDropsNothing: requests that arrive while the
// last replica drains away are held and wake the group again; none fails.
func TestIntegrationScaleToZeroDropsNothing(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	st, _, err := h.ctrl.PutGroup(ctx, fn("recommend", 0))
	if err != nil {
		t.Fatal(err)
	}
	dockertest.Poll(t, 30*time.Second, "balancer listening", func() error {
		if st, err = h.ctrl.Group("recommend"); err != nil || st.Endpoint == "" {
			return fmt.Errorf("status %+v, %v", st, err)
		}
		return nil
	})
	if bad := herd(t, st.Endpoint, 1); len(bad) > 0 {
		t.Fatalf("wake: %v", bad)
	}
	// The moment the autoscaler lets it go idle, ask again and again while
	// its replica drains and stops.
	dockertest.Poll(t, 30*time.Second, "the idle decision", func() error {
		if st, _ = h.ctrl.Group("recommend"); st.Autoscale.Want != 0 {
			return fmt.Errorf("want %d", st.Autoscale.Want)
		}
		return nil
	})
	var bad []string
	for i := 0; i < 40; i++ {
		bad = append(bad, herd(t, st.Endpoint, 2)...)
		time.Sleep(25 * time.Millisecond)
	}
	if len(bad) > 0 {
		t.Fatalf("%d requests failed across the scale to zero: %v", len(bad), bad[:min(len(bad), 3)])
	}
	st, _ = h.ctrl.Group("recommend")
	if st.Autoscale.Want < 1 || st.Autoscale.Starts.Cold < 2 {
		t.Fatalf("the requests did not wake it again: %+v", st.Autoscale)
	}
}

// TestIntegrationAutoscaleOffThawsThePool: a group whose autoscale
// settings are removed runs its warm pool's paused replica again.
func TestIntegrationAutoscaleOffThawsThePool(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	g := fn("recommend", 1)
	if _, _, err := h.ctrl.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	dockertest.Poll(t, 60*time.Second, "a paused replica in the pool", func() error {
		if got, err := h.names(); err != nil || got != "recommend-1=paused" {
			return fmt.Errorf("containers %q, %v", got, err)
		}
		return nil
	})
	g.Autoscale, g.Replicas = nil, 1
	if _, _, err := h.ctrl.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	h.converge("recommend", running("recommend", 1), 1)
}

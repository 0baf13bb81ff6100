package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// Every running replica gets the engine's figures, a pod's summed over its
// members, though each read takes the engine about a second.
func TestIntegrationStatsOfEveryReplica(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	for _, g := range []spec.Group{
		{Name: "web", Service: "monolith", Replicas: 24},
		{Name: "sidecar", Service: "monolith", Replicas: 2, Isolation: spec.IsolationPod},
	} {
		if _, _, err := h.ctrl.PutGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	all := running("sidecar", 2) + " " + running("web", 24)
	h.converge("web", all, 24)
	h.converge("sidecar", all, 2)
	dockertest.Poll(t, 20*time.Second, "memory and CPU figures of all 26 replicas", func() error {
		stats := h.ctrl.Stats()
		var missing []string
		for _, name := range []string{"web-1", "web-6", "web-24", "sidecar-1", "sidecar-2"} {
			if s, ok := stats[name]; !ok || s.MemBytes == 0 || s.MemLimitBytes == 0 {
				missing = append(missing, name)
			}
		}
		if n := len(stats); n != 26 || len(missing) > 0 {
			return fmt.Errorf("%d replicas have figures; without memory: %v", n, missing)
		}
		return nil
	})
	stats := h.ctrl.Stats()
	if pod, one := stats["sidecar-1"], stats["web-1"]; pod.MemLimitBytes <= one.MemLimitBytes/2 || pod.MemBytes <= one.MemBytes {
		t.Errorf("a pod's figures %+v are not its three members' beside one container's %+v", pod, one)
	}
}

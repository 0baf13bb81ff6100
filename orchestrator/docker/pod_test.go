package docker

import (
	"testing"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

func TestPodState(t *testing.T) {
	const (
		run = replica.StateRunning
		ex  = replica.StateExited
	)
	for _, tt := range []struct {
		states   []string
		complete bool
		want     string
	}{
		{[]string{run, run, run}, true, run},
		{[]string{run, ex, run}, true, ex},
		{[]string{run, run, replica.StatePaused}, true, replica.StatePaused},
		{[]string{replica.StateCreated, replica.StateCreated, replica.StateCreated}, true, replica.StateCreated},
		{[]string{run, replica.StateCreated, run}, true, replica.StateCreated},
		{[]string{run, run}, false, replica.StateDead},
		{[]string{replica.StateCreated}, false, replica.StateCreated},
		{[]string{run, replica.StateRemoving, run}, true, replica.StateDead},
		{nil, false, replica.StateDead},
	} {
		if got := podState(tt.states, tt.complete); got != tt.want {
			t.Errorf("podState(%v, complete %v) = %q, want %q", tt.states, tt.complete, got, tt.want)
		}
	}
}

func TestPodSharesKeepTheReplicaLimits(t *testing.T) {
	for _, s := range []replica.Spec{
		{MemoryBytes: 64 << 20, NanoCPUs: 500_000_000, PidsLimit: 64},
		{MemoryBytes: PodMinMemoryBytes, NanoCPUs: 50_000_000, PidsLimit: PodMinPids},
		{MemoryBytes: 1 << 30, NanoCPUs: 2_000_000_000, PidsLimit: 1024},
	} {
		h, svc := podShares(s)
		if got := 2*h.Memory + svc.Memory; got != s.MemoryBytes {
			t.Errorf("%+v: memory shares sum to %d", s, got)
		}
		if got := 2**h.PidsLimit + *svc.PidsLimit; got != s.PidsLimit {
			t.Errorf("%+v: pids shares sum to %d", s, got)
		}
		if got := 2*h.NanoCPUs + svc.NanoCPUs; got != s.NanoCPUs {
			t.Errorf("%+v: CPU shares sum to %d", s, got)
		}
		if h.Memory < helperMinMemory || svc.Memory < 32<<20 || *svc.PidsLimit < 16 || h.MemorySwap != h.Memory {
			t.Errorf("%+v: helper %+v, service %+v", s, h, svc)
		}
	}
	if err := validatePod(replica.Spec{MemoryBytes: 32 << 20, PidsLimit: 64}); err == nil {
		t.Error("a 32 MiB pod passes")
	}
}

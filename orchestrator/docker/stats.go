package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/docker/docker/api/types/container"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// Stats takes one resource sample of an owned replica without waiting for
// the engine's second sample.
// A pod's sample is the sum of its members'.
func (d *Driver) Stats(ctx context.Context, id string) (replica.Usage, error) {
	// The engine filters on the pod label, so a plain container costs one
	// small list more than its sample.
	f := d.ownedFilter()
	f.Add("label", LabelPod+"="+id)
	ms, err := d.cli.ContainerList(ctx, container.ListOptions{Filters: f})
	if err != nil || len(ms) == 0 {
		return d.stats(ctx, id)
	}
	// The engine takes up to a second per sample; a pod's members are
	// sampled at once, so a pod costs what a container does.
	ids := []string{id}
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	us := make([]replica.Usage, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, mid := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			us[i], errs[i] = d.stats(ctx, mid)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return replica.Usage{}, err
	}
	sum := us[0]
	for _, u := range us[1:] {
		sum.CPUNanos += u.CPUNanos
		sum.MemBytes += u.MemBytes
		sum.MemLimit += u.MemLimit
	}
	return sum, nil
}

func (d *Driver) stats(ctx context.Context, id string) (replica.Usage, error) {
	resp, err := d.cli.ContainerStatsOneShot(ctx, id)
	if err != nil {
		return replica.Usage{}, translate("stats "+id, err)
	}
	defer resp.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return replica.Usage{}, fmt.Errorf("stats %s: decode: %w", id, err)
	}
	mem := s.MemoryStats.Usage
	// Like `docker stats`: page cache is reclaimable, not the service's own.
	if cache, ok := s.MemoryStats.Stats["inactive_file"]; ok && cache < mem {
		mem -= cache
	} else if cache, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && cache < mem {
		mem -= cache
	}
	return replica.Usage{
		Time:       s.Read,
		CPUNanos:   s.CPUStats.CPUUsage.TotalUsage,
		SystemNano: s.CPUStats.SystemUsage,
		OnlineCPUs: s.CPUStats.OnlineCPUs,
		MemBytes:   mem,
		MemLimit:   s.MemoryStats.Limit,
	}, nil
}

package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/container"
)

// Usage is one sample of a replica's resource use. CPU figures are
// cumulative; CPU percent needs two samples (see CPUPercent).
type Usage struct {
	Time       time.Time
	CPUNanos   uint64 // CPU time used by the container so far
	SystemNano uint64 // CPU time of the whole host so far
	OnlineCPUs uint32
	MemBytes   uint64 // memory in use, less the page cache
	MemLimit   uint64
}

// CPUPercent is the share of one core the container used between two
// samples (100 = one full core), as `docker stats` shows it.
func CPUPercent(prev, cur Usage) float64 {
	if cur.CPUNanos < prev.CPUNanos || cur.SystemNano <= prev.SystemNano {
		return 0
	}
	cpus := float64(cur.OnlineCPUs)
	if cpus == 0 {
		cpus = 1
	}
	return float64(cur.CPUNanos-prev.CPUNanos) / float64(cur.SystemNano-prev.SystemNano) * cpus * 100
}

// Stats takes one resource sample of an owned replica without waiting for
// the engine's second sample.
func (d *Driver) Stats(ctx context.Context, id string) (Usage, error) {
	resp, err := d.cli.ContainerStatsOneShot(ctx, id)
	if err != nil {
		return Usage{}, translate("stats "+id, err)
	}
	defer resp.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return Usage{}, fmt.Errorf("stats %s: decode: %w", id, err)
	}
	mem := s.MemoryStats.Usage
	// Like `docker stats`: page cache is reclaimable, not the service's own.
	if cache, ok := s.MemoryStats.Stats["inactive_file"]; ok && cache < mem {
		mem -= cache
	} else if cache, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && cache < mem {
		mem -= cache
	}
	return Usage{
		Time:       s.Read,
		CPUNanos:   s.CPUStats.CPUUsage.TotalUsage,
		SystemNano: s.CPUStats.SystemUsage,
		OnlineCPUs: s.CPUStats.OnlineCPUs,
		MemBytes:   mem,
		MemLimit:   s.MemoryStats.Limit,
	}, nil
}

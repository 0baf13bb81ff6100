package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// What a replica costs to start and what it sees once up are the figures
// that tell the isolation kinds apart: a container answers in a fraction of
// a second and sees the host's kernel; a VM boots a kernel of its own first.
// The controller measures the first from the moment it asks the runtime to
// create the replica to its first passed readiness probe (probes run every
// 50 ms while a replica starts), and asks the replica for the second, once,
// from its GET /diag.

// MachineView is what a replica's process sees of the machine it runs on,
// as its GET /diag says.
type MachineView struct {
	Kernel      string `json:"kernel"`      // the kernel's release, as uname -r says
	Hostname    string `json:"hostname"`    // the UTS hostname
	MemTotalKiB int64  `json:"memTotalKiB"` // MemTotal of its /proc/meminfo
	Processes   int    `json:"processes"`   // the processes it can see
	CPUs        int    `json:"cpus"`        // the CPUs it may run on
}

// boot is what is known of one replica's start.
type boot struct {
	began time.Time     // the create call; zero for a replica found running
	ready time.Duration // began to first ready; 0 until then or if unknown
	sees  *MachineView  // nil until its /diag answered
	asked bool          // a GET /diag was sent
}

// bootKeep is how long a boot record outlives its replica's last listing:
// a record is made before the list that will show its replica.
const bootKeep = time.Minute

// creating notes that the replica id was just created, its create call
// having begun at began.
func (c *Controller) creating(id string, began time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.boots[id] = &boot{began: began}
}

// firstReady records a replica's first passed readiness probe and asks it,
// once, what it sees, at the probe's address.
func (c *Controller) firstReady(id, probeURL string) {
	c.mu.Lock()
	b := c.boots[id]
	if b == nil {
		b = &boot{}
		c.boots[id] = b
	}
	if b.ready == 0 && !b.began.IsZero() {
		b.ready = time.Since(b.began)
	}
	ask := !b.asked
	b.asked = true
	ctx := c.ctx
	c.mu.Unlock()
	if !ask || ctx == nil {
		return
	}
	go func() {
		v, err := askDiag(ctx, probeURL)
		if err != nil {
			c.log.Debug("replica diag", "id", id, "err", err)
			return
		}
		c.mu.Lock()
		if b := c.boots[id]; b != nil {
			b.sees = &v
		}
		c.mu.Unlock()
	}()
}

// diagClient is for GET /diag; the answer is a few hundred bytes.
var diagClient = &http.Client{Timeout: 2 * time.Second}

// askDiag GETs /diag at the host and port of a probe URL.
func askDiag(ctx context.Context, probeURL string) (MachineView, error) {
	u, err := url.Parse(probeURL)
	if err != nil {
		return MachineView{}, err
	}
	u.Path, u.RawQuery = "/diag", ""
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return MachineView{}, err
	}
	resp, err := diagClient.Do(req)
	if err != nil {
		return MachineView{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return MachineView{}, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var v MachineView
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&v); err != nil {
		return MachineView{}, fmt.Errorf("GET %s: %w", u, err)
	}
	return v, nil
}

// bootLocked fills a replica status's start-up figures.
func (c *Controller) bootLocked(rs *ReplicaStatus) {
	b := c.boots[rs.ID]
	if b == nil {
		return
	}
	rs.StartupMs = b.ready.Milliseconds()
	rs.Sees = b.sees
}

// pruneBootsLocked drops the records of replicas no longer listed, once
// they are old enough to have been listed.
func (c *Controller) pruneBootsLocked(listed []replica.Replica) {
	ids := make(map[string]bool, len(listed))
	for _, r := range listed {
		ids[r.ID] = true
	}
	for id, b := range c.boots {
		if !ids[id] && time.Since(b.began) > bootKeep {
			delete(c.boots, id)
		}
	}
}

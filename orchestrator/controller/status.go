package controller

import (
	"errors"
	"fmt"
	"sort"

	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// ErrNotFound: no group of that name.
var ErrNotFound = errors.New("not found")

// Group status values.
const (
	StatusConverged  = "converged"   // actual matches desired and every replica is ready
	StatusScaling    = "scaling"     // replicas are being created, replaced or removed
	StatusRollingOut = "rolling-out" // a rollout moves the replicas to a new template
	StatusStarting   = "starting"    // the right replicas exist, not all are ready yet
	StatusDegraded   = "degraded"    // every replica runs, but some fail readiness (often a dependency is down); they are kept
	StatusCrashLoop  = "crash-loop"  // replicas keep dying; replacements wait with backoff
	StatusDeleting   = "deleting"    // the group is gone from desired state; replicas are being removed
	StatusError      = "error"       // the last reconcile failed; it is retried with backoff
)

// Replica health values. A running replica is starting, ready, unready or
// unhealthy by its two probes: readiness (/readyz, it can serve) and
// liveness (/healthz, the process answers).
const (
	// HealthStarting: running, not yet ready; it has never passed its
	// readiness probe, so it gets no traffic.
	HealthStarting = "starting"
	// HealthReady: live and ready, in its balancer's rotation.
	HealthReady = "ready"
	// HealthUnready: live but failing its readiness probe, often because
	// a dependency is down (ReplicaStatus.Reason names it). It is out of
	// rotation until it passes again, and never replaced for it.
	HealthUnready = "unready"
	// HealthUnhealthy: failing its liveness probe; the controller
	// replaces it after the grace period.
	HealthUnhealthy = "unhealthy"
	HealthPaused    = "paused"
	HealthDead      = "dead"
)

// GroupStatus is a group's desired state joined with what runs.
type GroupStatus struct {
	Name      string `json:"name"`
	Service   string `json:"service"`
	Isolation string `json:"isolation"`
	// Runtime is the runtime that runs the group's replicas:
	// RuntimeEngine or RuntimeSwarm.
	Runtime string `json:"runtime"`
	// Accel is how a vm group's guests run: "kvm" or "tcg" (emulated);
	// empty for other kinds.
	Accel     string         `json:"accel,omitempty"`
	Desired   int            `json:"desired"`
	Ready     int            `json:"ready"`
	Status    string         `json:"status"`
	Message   string         `json:"message,omitempty"`
	Resources spec.Resources `json:"resources"`
	Balancer  spec.Balancer  `json:"balancer"`
	Probe     spec.Probe     `json:"probe"`    // readiness
	Liveness  spec.Probe     `json:"liveness"` // liveness
	// Settings are the group's non-default settings of its service.
	Settings map[string]string `json:"settings,omitempty"`
	// Endpoint is the balancer's "127.0.0.1:PORT"; empty with policy none.
	Endpoint string          `json:"endpoint,omitempty"`
	Replicas []ReplicaStatus `json:"replicas"`
	// Autoscale is the autoscaler of a group with autoscale settings: its
	// count, decisions, warm pool and cold starts. Desired is then its
	// chosen count plus the warm pool.
	Autoscale *AutoscaleStatus `json:"autoscale,omitempty"`
	// Version is the release the group asks for (with v3's flaw), Revision
	// its template's number, and Rollout the latest rollout, running or
	// ended.
	Version  string         `json:"version,omitempty"`
	Revision int            `json:"revision,omitempty"`
	Rollout  *RolloutStatus `json:"rollout,omitempty"`
}

// ReplicaStatus is one replica as the API shows it.
type ReplicaStatus struct {
	Name   string `json:"name"`
	ID     string `json:"id"`
	State  string `json:"state"`  // the engine's container state
	Health string `json:"health"` // one of the Health values
	// Reason says why a running replica is not ready or not live, such as
	// "dependency catalog unavailable"; empty when it is ready.
	Reason  string `json:"reason,omitempty"`
	Address string `json:"address"`
	// Node is the ID of the node the replica runs on; empty on the engine
	// runtime, whose one node is the local engine.
	Node string `json:"node,omitempty"`
	// Upstream is the address the group's balancer dials: the replica on
	// the project network where the host reaches it, else Address.
	Upstream string `json:"upstream,omitempty"`
	Restarts int    `json:"restarts"` // replacements of this replica number after crashes
	ExitCode int    `json:"exitCode,omitempty"`
	// LastExitCode is the exit code of the last replica at this number
	// that died, if one did: 1 for a VM whose guest kernel panicked.
	LastExitCode *int `json:"lastExitCode,omitempty"`
	// LastWords are the last lines that dead replica wrote, read before it
	// was removed: a VM's are its guest's console, a kernel panic's among.
	LastWords []string `json:"lastWords,omitempty"`
	Traffic   *Traffic `json:"traffic,omitempty"`
	// StartupMs is how long the replica took from its create call to its
	// first passed readiness probe; 0 until then, or for a replica this
	// controller found running.
	StartupMs int64 `json:"startupMs,omitempty"`
	// Sees is what the replica's process sees of its machine (its GET
	// /diag once it was first ready): a VM's own kernel and memory, or the
	// host's.
	Sees *MachineView `json:"sees,omitempty"`
	// Pooled: paused in its group's warm pool, out of rotation, its memory
	// kept for a fast wake. Waking: thawed or made for a held request and
	// not ready yet.
	Pooled bool `json:"pooled,omitempty"`
	Waking bool `json:"waking,omitempty"`
	// Version is the release the replica runs, by its template's revision.
	Version string `json:"version,omitempty"`
}

// Traffic is what the group's balancer has sent a replica.
type Traffic struct {
	// State is "ready" (in rotation), "ejected" or "removed".
	State    string `json:"state"`
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
	InFlight int64  `json:"inFlight"`
	// Share is the replica's fraction of the group's requests in the last
	// 10 seconds; TotalShare since it joined.
	Share      float64 `json:"share"`
	TotalShare float64 `json:"totalShare"`
	Ejections  uint64  `json:"ejections"`
	P50Ms      float64 `json:"p50Ms"`
	P99Ms      float64 `json:"p99Ms"`
}

// Groups returns the status of every group, desired or still being removed.
func (c *Controller) Groups() []GroupStatus {
	c.mu.Lock()
	var names []string
	for name, g := range c.groups {
		if g.desired != nil || len(g.observed) > 0 {
			names = append(names, name)
		}
	}
	c.mu.Unlock()
	out := make([]GroupStatus, 0, len(names))
	for _, name := range names {
		if st, err := c.Group(name); err == nil {
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Group returns one group's status.
func (c *Controller) Group(name string) (GroupStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	if g == nil || g.desired == nil && len(g.observed) == 0 {
		return GroupStatus{}, fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	var d spec.Group
	if g.desired != nil {
		d = *g.desired
	}
	st := GroupStatus{Name: name, Service: d.Service, Isolation: d.Isolation, Runtime: c.RuntimeName(), Desired: d.Replicas, Resources: d.Resources, Balancer: d.Balancer, Probe: d.Probe, Liveness: d.Liveness, Settings: d.Settings, Replicas: []ReplicaStatus{}}
	if d.Isolation == spec.IsolationVM {
		st.Accel = c.vmAccel()
	}
	if g.desired != nil {
		st.Version = g.desired.VersionLabel()
	}
	if g.hist != nil {
		if cur := g.hist.current(); cur != nil {
			st.Revision = cur.Revision
		}
		if ro := g.hist.rollout(); ro != nil {
			cp := *ro
			st.Rollout = &cp
		}
	}
	if st.Autoscale = c.autoscaleStatusLocked(g); st.Autoscale != nil {
		st.Desired = st.Autoscale.Want + g.auto.poolSize()
		d.Replicas = st.Desired
	}
	traffic := map[string]*Traffic{}
	if g.balancer != nil {
		st.Endpoint = g.balancer.b.Endpoint()
		for _, us := range g.balancer.b.Stats() {
			traffic[us.ID] = &Traffic{
				State: us.State, Requests: us.Requests, Errors: us.Errors, InFlight: us.InFlight,
				Share: us.Share, TotalShare: us.TotalShare, Ejections: us.Ejections,
				P50Ms: float64(us.P50) / 1e6, P99Ms: float64(us.P99) / 1e6,
			}
		}
	}
	reps := c.replicasLocked(g) // events may be ahead of the last list
	sort.SliceStable(reps, func(i, j int) bool { return reps[i].Index < reps[j].Index })
	var unready, pooled int
	var why string // the first unready replica's reason
	for _, r := range reps {
		rs := ReplicaStatus{Name: r.Name, ID: r.ID, State: r.State, Address: r.Address, Node: r.Node, ExitCode: r.ExitCode}
		if r.State == replica.StateRunning {
			rs.Upstream = c.upstreamLocked(r)
		}
		rs.Traffic = traffic[r.ID]
		rs.Health, rs.Reason = c.healthOf(r)
		rs.Restarts = g.crashes[r.Index].restarts
		if cs, ok := g.crashes[r.Index]; ok && cs.id != "" {
			code := cs.exitCode
			rs.LastExitCode = &code
			rs.LastWords = cs.lastWords
		}
		c.bootLocked(&rs)
		if g.hist != nil {
			rs.Version = g.hist.versionOf(r.TemplateHash)
		}
		if g.auto != nil {
			rs.Pooled = g.auto.pool[r.ID] && r.State == replica.StatePaused
			rs.Waking = g.auto.waking != nil && g.auto.waking.id == r.ID && rs.Health != HealthReady
		}
		switch {
		case rs.Pooled:
			pooled++ // where it should be: paused, in the pool
		case rs.Health == HealthReady:
			st.Ready++
		case rs.Health == HealthUnready:
			if unready++; why == "" {
				why = rs.Reason
			}
		}
		if st.Service == "" {
			st.Service = r.Service
		}
		st.Replicas = append(st.Replicas, rs)
	}

	switch {
	case g.desired == nil:
		st.Status = StatusDeleting
	case g.err != nil:
		st.Status, st.Message = StatusError, g.err.Error()
	case len(g.held) > 0:
		st.Status = StatusCrashLoop
		st.Message = g.held[0].String()
	case st.Rollout.active():
		st.Status = StatusRollingOut
		st.Message = fmt.Sprintf("rollout to revision %d (%s, %s): %s", st.Rollout.Revision, st.Rollout.Version, st.Rollout.Strategy, st.Rollout.Progress)
	case len(reps) != d.Replicas || g.running:
		st.Status = StatusScaling
	case unready > 0 && st.Ready+pooled < d.Replicas:
		st.Status = StatusDegraded
		st.Message = fmt.Sprintf("%d of %d replicas not ready (%s): out of rotation, not restarted", unready, len(reps), why)
	case st.Ready+pooled < d.Replicas:
		st.Status = StatusStarting
	default:
		st.Status = StatusConverged
	}
	return st, nil
}

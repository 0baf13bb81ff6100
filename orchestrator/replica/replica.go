// Package replica holds what every runtime and the controller say about
// replicas: their spec, their observed state, their lifecycle events and
// resource samples, and the errors a runtime returns. It imports no runtime
// SDK, so the controller, the API and the CLI can speak of replicas without
// linking the engine's client.
package replica

import (
	"errors"
	"sort"
	"strconv"
	"time"
)

// Errors runtimes return instead of their SDK's. Callers test them with errors.Is.
var (
	// ErrNotFound: the object does not exist, or exists but is not ours.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a name is taken, or the object is in the wrong state for the call.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: the engine does not answer.
	ErrUnavailable = errors.New("docker engine unavailable")
)

// Spec is everything needed to create one replica.
type Spec struct {
	Group   string // group name
	Index   int    // replica number, from 1
	Service string // catalogued service name
	Image   string // image reference or ID, built by Flotilla
	Port    int    // the port the service listens on inside the replica
	Env     []string
	// Aliases are extra DNS names on the project network (the group name, so
	// services find each other by name).
	Aliases     []string
	MemoryBytes int64
	NanoCPUs    int64
	PidsLimit   int64
	// TemplateHash is stored with the replica; a replica whose hash differs
	// from its group's current one is outdated.
	TemplateHash string
	// Isolation is what the replica is: "container" (also when empty) or
	// "pod"; a runtime refuses a kind it cannot run.
	Isolation string
	// Store, if set, is an absolute path inside the replica where a named
	// volume of this replica's own is mounted, the only writable place
	// that outlives the container: a replacement of the same group and
	// index finds it again. The runtime creates it on first use and
	// removes it only with the instance.
	Store string
	// Update is how a placing runtime rolls replicas of an older
	// template over to this one; the controller derives it from the
	// group's rollout settings. It is not part of the template's hash.
	Update UpdatePolicy
	// Constraints and Spread place the replicas on a runtime of several
	// nodes, in Swarm's terms ("node.labels.zone==a"; "node.labels.zone").
	Constraints []string
	Spread      string
}

// Name is the replica's name as learners see it: <group>-<index>.
func (s Spec) Name() string { return Name(s.Group, s.Index) }

// Name is <group>-<index>.
func Name(group string, index int) string {
	return group + "-" + strconv.Itoa(index)
}

// Replica states, as the engine reports a container's.
const (
	StateCreated    = "created"
	StateRunning    = "running"
	StatePaused     = "paused"
	StateRestarting = "restarting"
	StateRemoving   = "removing"
	StateExited     = "exited"
	StateDead       = "dead"
)

// Replica is one owned replica as observed.
type Replica struct {
	ID           string
	Name         string // <group>-<index>
	Group        string
	Index        int
	Service      string
	TemplateHash string
	State        string // one of the State constants
	ExitCode     int
	OOMKilled    bool
	Created      time.Time
	StartedAt    time.Time // zero until started (only filled by Inspect)
	FinishedAt   time.Time // zero unless it stopped (only filled by Inspect)
	// Address is the published port on the host: "127.0.0.1:PORT"; empty
	// while the replica is not running.
	Address string
	// NetworkAddress is "IP:PORT" on the project network; empty while not running.
	NetworkAddress string
	// Node is the ID of the node the replica runs on, for a runtime of
	// several nodes; empty on the local engine.
	Node string
}

// Sort orders replicas by group, then index, then ID.
func Sort(rs []Replica) {
	sort.Slice(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Index != b.Index {
			return a.Index < b.Index
		}
		return a.ID < b.ID
	})
}

// Event actions the controller acts on. A runtime may send others; they are
// hints like the rest.
const (
	// ActionResync says events may have been missed: re-list everything.
	ActionResync  = "resync"
	ActionStart   = "start"
	ActionDie     = "die"
	ActionOOM     = "oom"
	ActionKill    = "kill"
	ActionStop    = "stop"
	ActionPause   = "pause"
	ActionUnpause = "unpause"
	ActionDestroy = "destroy"
)

// Event is a lifecycle event of an owned replica. Events are hints: the
// receiver re-observes instead of trusting the payload.
type Event struct {
	Action string // one of the Action constants, or another the runtime knows
	ID     string
	Group  string
	Index  int
	Time   time.Time
	// ExitCode is set on die events.
	ExitCode int
}

// Usage is one sample of a replica's resource use. CPU figures are
// cumulative; CPU percent needs two samples (see CPUPercent).
type Usage struct {
	Time       time.Time
	CPUNanos   uint64 // CPU time used by the replica so far
	SystemNano uint64 // CPU time of the whole host so far
	OnlineCPUs uint32
	MemBytes   uint64 // memory in use, less the page cache
	MemLimit   uint64
}

// CPUPercent is the share of one core the replica used between two
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

// UpdatePolicy is how a runtime that places replicas itself (Docker Swarm
// mode) replaces replicas of an older template: Parallelism at a time
// (0: all at once), new ones first ("start-first") or old ones first
// ("stop-first"), Delay between batches, each batch watched for Monitor,
// and on a failure back to the previous template ("rollback") or "pause".
type UpdatePolicy struct {
	Parallelism   int
	Order         string
	Delay         time.Duration
	Monitor       time.Duration
	FailureAction string
}

// Update orders and failure actions.
const (
	UpdateStartFirst = "start-first"
	UpdateStopFirst  = "stop-first"
	UpdateRollback   = "rollback"
	UpdatePause      = "pause"
)

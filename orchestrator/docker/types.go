package docker

import (
	"errors"
	"strconv"
	"time"
)

// Errors the driver returns instead of the SDK's. Callers test them with errors.Is.
var (
	// ErrNotFound: the object does not exist, or exists but is not ours.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a name is taken, or the object is in the wrong state for the call.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: the engine does not answer.
	ErrUnavailable = errors.New("docker engine unavailable")
)

// ReplicaSpec is everything needed to create one replica's container.
type ReplicaSpec struct {
	Group   string // group name; the container is named <project>-<group>-<index>
	Index   int    // replica number, from 1
	Service string // catalogued service name
	Image   string // image reference or ID, built by Flotilla
	Port    int    // the port the service listens on inside the container
	Env     []string
	// Aliases are extra DNS names on the project network (the group name, so
	// services find each other by name).
	Aliases     []string
	MemoryBytes int64
	NanoCPUs    int64
	PidsLimit   int64
	// TemplateHash is stored as a label; a replica whose hash differs from
	// its group's current one is outdated.
	TemplateHash string
}

// Name is the replica's name as learners see it: <group>-<index>.
func (s ReplicaSpec) Name() string { return ReplicaName(s.Group, s.Index) }

// ReplicaName is <group>-<index>.
func ReplicaName(group string, index int) string {
	return group + "-" + strconv.Itoa(index)
}

// Container states as the engine reports them.
const (
	StateCreated    = "created"
	StateRunning    = "running"
	StatePaused     = "paused"
	StateRestarting = "restarting"
	StateRemoving   = "removing"
	StateExited     = "exited"
	StateDead       = "dead"
)

// Replica is one owned container as observed on the engine.
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
	// while the container is not running.
	Address string
	// NetworkAddress is "IP:PORT" on the project network; empty while not running.
	NetworkAddress string
}

// Event is a container lifecycle event of an owned replica. Events are hints:
// the receiver re-observes instead of trusting the payload.
type Event struct {
	Action string // start, die, oom, kill, pause, unpause, destroy, create, stop
	ID     string
	Group  string
	Index  int
	Time   time.Time
	// ExitCode is set on die events.
	ExitCode int
}

package replica

// Node is one machine a runtime places replicas on: a node of a Docker
// Swarm-mode cluster, or the one local engine.
type Node struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Role is "manager" or "worker" for a swarm node, RoleEngine for the
	// local engine runtime's one machine.
	Role string `json:"role"`
	// State is "ready", "down", "disconnected" or "unknown".
	State string `json:"state"`
	// Availability is one of the Availability constants.
	Availability  string            `json:"availability"`
	Leader        bool              `json:"leader,omitempty"`
	Addr          string            `json:"addr,omitempty"`
	EngineVersion string            `json:"engineVersion,omitempty"`
	NanoCPUs      int64             `json:"nanoCPUs"`
	MemoryBytes   int64             `json:"memoryBytes"`
	Labels        map[string]string `json:"labels,omitempty"`
}

// Roles and availabilities of a node.
const (
	RoleManager = "manager"
	RoleWorker  = "worker"
	RoleEngine  = "engine"

	// AvailabilityActive: the node takes new replicas.
	AvailabilityActive = "active"
	// AvailabilityPause: the node keeps what runs there but takes nothing new.
	AvailabilityPause = "pause"
	// AvailabilityDrain: the node's replicas move to other nodes.
	AvailabilityDrain = "drain"
)

// ValidAvailability reports whether a is a node availability.
func ValidAvailability(a string) bool {
	return a == AvailabilityActive || a == AvailabilityPause || a == AvailabilityDrain
}

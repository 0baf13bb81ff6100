package controller

import (
	"context"
	"time"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// Runtime is what the controller needs of whatever runs a group's replicas.
// A runtime is also either a ReplicaRuntime or a PlacingRuntime, which says
// who decides where and when replicas start; New takes either.
type Runtime interface {
	// EnsureNetwork prepares the project network replicas join and the
	// balancers dial. It is idempotent; Run calls it before anything else.
	EnsureNetwork(ctx context.Context) error
	// List returns every replica this instance owns, of every group and in
	// any state. It is the source of truth on what runs: the controller
	// lists once per reconcile and trusts nothing older.
	List(ctx context.Context) ([]replica.Replica, error)
	// Events streams the lifecycle events of owned replicas until ctx ends,
	// then closes the channel. Events are hints to re-list, never facts; an
	// event with Action replica.ActionResync means some may have been
	// missed. A slow reader may hold the stream up but loses nothing.
	Events(ctx context.Context) <-chan replica.Event
	// Stats takes one resource sample of a running replica; an error
	// wrapping replica.ErrNotFound if it is gone.
	Stats(ctx context.Context, id string) (replica.Usage, error)
	// Down removes every object this instance owns, replicas and network.
	// With nothing to remove it succeeds.
	Down(ctx context.Context) error
}

// ReplicaRuntime runs replicas one by one as it is told: the controller
// numbers them, replaces the dead and the outdated, and backs off crash
// loops. The local engine's containers are one (*docker.Driver); pods and
// virtual machines are the same shape.
type ReplicaRuntime interface {
	Runtime
	// Create makes one replica from s without starting it. A name
	// (s.Name()) already taken is an error wrapping replica.ErrConflict.
	Create(ctx context.Context, s replica.Spec) (replica.Replica, error)
	// Start starts a created replica; starting a running one is not an error.
	Start(ctx context.Context, id string) error
	// Stop asks a replica to stop and kills it if it has not after
	// timeout; stopping a stopped one is not an error.
	Stop(ctx context.Context, id string, timeout time.Duration) error
	// Remove deletes a replica, running or not; an error wrapping
	// replica.ErrNotFound if it is already gone.
	Remove(ctx context.Context, id string) error
	// Inspect returns one owned replica with its start and finish times,
	// which List may leave zero; replica.ErrNotFound if it is gone.
	Inspect(ctx context.Context, id string) (replica.Replica, error)
}

// PlacingRuntime is told what a group should be and places, numbers and
// heals its replicas itself, possibly over several nodes (Docker Swarm
// mode's services). The controller never creates or removes one of its
// replicas: it tells the desire, then lists, probes and balances what runs.
type PlacingRuntime interface {
	Runtime
	// Place makes group run count replicas of template (its Index is
	// unset: the runtime numbers replicas) and replaces those of another
	// template. It returns once the runtime took the desire, not when the
	// replicas run. Placing the same desire again changes nothing.
	Place(ctx context.Context, group string, count int, template replica.Spec) error
	// Unplace removes group and every replica of it; a group the runtime
	// does not know is not an error.
	Unplace(ctx context.Context, group string) error
}

// LogReader is the part of a runtime that reads what a replica wrote,
// standard output and error, for a VM replica its guest's console. The
// controller keeps the last lines of a replica that died before it removes
// it, so its crash can still be read.
type LogReader interface {
	Logs(ctx context.Context, id string, tail int) (string, error)
}

// Faulter is the part of a runtime that breaks replicas on purpose, for
// ReplicaAction. A runtime without it refuses replica actions.
type Faulter interface {
	// Kill sends a signal ("" for SIGKILL) to a running replica; one that is
	// not running is an error wrapping replica.ErrConflict.
	Kill(ctx context.Context, id, signal string) error
	// Pause freezes a running replica; replica.ErrConflict if it is not running.
	Pause(ctx context.Context, id string) error
	// Unpause thaws a paused replica; replica.ErrConflict if it is not paused.
	Unpause(ctx context.Context, id string) error
}

// NodeRuntime is the part of a runtime that spreads replicas over several
// machines and can tell which (Docker Swarm mode's nodes). A runtime
// without it has one machine, the local engine, and nothing to drain.
type NodeRuntime interface {
	// Nodes lists the runtime's machines, in any order, with their state,
	// availability and resources. A replica's Node names one of them by ID.
	Nodes(ctx context.Context) ([]replica.Node, error)
	// SetNodeAvailability makes node id (an ID; a runtime may also take a
	// name) take new replicas (active), keep what it runs and take none
	// (pause), or move its replicas elsewhere (drain). An unknown node is
	// an error wrapping replica.ErrNotFound; availability is one of
	// replica's Availability constants, checked by the caller.
	SetNodeAvailability(ctx context.Context, id, availability string) error
}

package controller

import (
	"time"

	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// group is everything the controller holds about one group, guarded by
// Controller.mu. It lives while the group is desired or has replicas.
type group struct {
	// desired is nil once the group is deleted (its replicas drain and go)
	// or when only orphan replicas of it were seen.
	desired *spec.Group
	// observed are the replicas of the last list, with the events that
	// were ahead of it folded in; later events are folded in when read.
	observed []replica.Replica
	balancer *groupBalancer
	// probes are the replicas the prober watches, as the last plan set them.
	probes []ProbeTarget
	// crashes tracks quick deaths and restarts by replica number.
	crashes map[int]crashState
	// held are replacements waiting for a crash-loop backoff.
	held []Action
	// placed is what a placing runtime was last told; nil before that.
	placed *Placement
	// auto is the autoscaler of a group with autoscale settings (autoscale.go).
	auto *autoState
	// unpool are the warm pool's replicas left paused when autoscaling was
	// turned off: the next autoscaler tick unpauses them.
	unpool []string
	// hist are the group's revisions and rollouts; health the balancer's
	// answers by version while one runs; rotation which version gets
	// traffic (rollout.go).
	hist     *history
	health   *rolloutHealth
	rotation rotationView

	// err is the last reconcile's failure, shown as status; failures
	// counts them in a row for the backoff; retryAt is the retry.
	err      error
	failures int
	retryAt  time.Time

	dirty   bool // a reconcile is wanted
	running bool // a reconcile is in flight
	again   bool // dirtied while in flight: run once more after
}

// crashState is what is known of the deaths at one replica number.
type crashState struct {
	id       string // the dead replica already counted
	exitCode int    // its exit code
	// lastWords are the last lines the replica replaced after a death
	// wrote, if the runtime could read them.
	lastWords []string
	count     int       // consecutive quick deaths
	restarts  int       // replacements after deaths
	until     time.Time // no replacement before; zero for none
}

// crashWindow: a replica that dies sooner than this after starting counts
// towards a crash loop.
const crashWindow = 10 * time.Second

// note is what engine events said of one replica ahead of the engine's
// list, which can lag an event by seconds. Each fact is trusted until a
// list agrees with it.
type note struct {
	died     bool
	exitCode int
	// pause is the last pause (true) or unpause (false) event, if known.
	pauseKnown, paused bool
	// leaving: being drained before it stops; it gets no traffic.
	leaving bool
}

// groupLocked returns the named group, making it if needed.
func (c *Controller) groupLocked(name string) *group {
	g := c.groups[name]
	if g == nil {
		g = &group{crashes: map[int]crashState{}}
		c.groups[name] = g
	}
	return g
}

func (c *Controller) noteLocked(id string) *note {
	n := c.notes[id]
	if n == nil {
		n = &note{}
		c.notes[id] = n
	}
	return n
}

// withNotesLocked corrects a listed replica's state with the die, pause
// and unpause events that arrived ahead of the engine's list.
func (c *Controller) withNotesLocked(r replica.Replica) replica.Replica {
	n := c.notes[r.ID]
	if n == nil {
		return r
	}
	if n.died && r.State == replica.StateRunning {
		r.State, r.ExitCode = replica.StateExited, n.exitCode
	}
	if n.pauseKnown {
		switch {
		case n.paused && r.State == replica.StateRunning:
			r.State = replica.StatePaused
		case !n.paused && r.State == replica.StatePaused:
			r.State = replica.StateRunning
		}
	}
	return r
}

// pruneNotesLocked drops what was noted of replicas that are gone, and
// the facts a list now agrees with.
func (c *Controller) pruneNotesLocked(listed []replica.Replica) {
	byID := make(map[string]replica.Replica, len(listed))
	for _, r := range listed {
		byID[r.ID] = r
	}
	for id, n := range c.notes {
		r, ok := byID[id]
		if !ok {
			delete(c.notes, id)
			continue
		}
		if n.died && r.State != replica.StateRunning {
			n.died = false
		}
		if n.pauseKnown && (r.State == replica.StatePaused) == n.paused {
			n.pauseKnown = false
		}
		if !n.died && !n.pauseKnown && !n.leaving {
			delete(c.notes, id)
		}
	}
}

// replicasLocked returns a group's replicas with the notes folded in.
func (c *Controller) replicasLocked(g *group) []replica.Replica {
	out := make([]replica.Replica, 0, len(g.observed))
	for _, r := range g.observed {
		out = append(out, c.withNotesLocked(r))
	}
	return out
}

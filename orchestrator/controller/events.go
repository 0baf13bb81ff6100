package controller

import (
	"context"
	"fmt"

	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/replica"
)

// Publisher receives what happens, for people to watch. *hub.Hub is one.
type Publisher interface {
	// Publish records an event; it must not block.
	Publish(e hub.Event)
}

type discard struct{}

func (discard) Publish(hub.Event) {}

func (c *Controller) publish(kind, group, replica, id, format string, args ...any) {
	c.opt.Events.Publish(hub.Event{Kind: kind, Group: group, Replica: replica, ID: id, Message: fmt.Sprintf(format, args...)})
}

// ErrConflict: the replica is in the wrong state for the action.
var ErrConflict = replica.ErrConflict

// Replica actions a learner may take on one replica.
const (
	ActionKill    = "kill"
	ActionPause   = "pause"
	ActionUnpause = "unpause"
)

// ReplicaAction kills, pauses or unpauses one replica of a group, named
// <group>-<n>. It returns ErrNotFound for an unknown group or replica.
func (c *Controller) ReplicaAction(ctx context.Context, group, name, action string) error {
	f, ok := c.opt.Runtime.(Faulter)
	if !ok {
		return fmt.Errorf("this runtime cannot %s replicas", action)
	}
	c.mu.Lock()
	var id string
	if g := c.groups[group]; g != nil {
		for _, r := range g.observed {
			if r.Name == name {
				id = r.ID
			}
		}
	}
	c.mu.Unlock()
	if id == "" {
		return fmt.Errorf("replica %q of group %q: %w", name, group, ErrNotFound)
	}
	var err error
	switch action {
	case ActionKill:
		err = f.Kill(ctx, id, "SIGKILL")
	case ActionPause:
		err = f.Pause(ctx, id)
	case ActionUnpause:
		err = f.Unpause(ctx, id)
	default:
		return fmt.Errorf("unknown action %q: one of kill, pause, unpause", action)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", action, name, err)
	}
	c.markDirty(group)
	return nil
}

// eventFromRuntime turns a runtime event into a message for people.
func (c *Controller) eventFromRuntime(ev replica.Event) {
	name := replica.Name(ev.Group, ev.Index)
	switch ev.Action {
	case replica.ActionDie:
		c.publish(hub.ReplicaDied, ev.Group, name, ev.ID, "%s died (exit code %d)", name, ev.ExitCode)
	case replica.ActionOOM:
		c.publish(hub.ReplicaDied, ev.Group, name, ev.ID, "%s ran out of memory", name)
	case replica.ActionPause:
		c.publish(hub.ReplicaPaused, ev.Group, name, ev.ID, "%s was paused: frozen, it accepts connections but never answers", name)
	case replica.ActionUnpause:
		c.publish(hub.ReplicaUnpaused, ev.Group, name, ev.ID, "%s was unpaused", name)
	case replica.ActionStart:
		c.publish(hub.ReplicaStarted, ev.Group, name, ev.ID, "%s started", name)
	}
}

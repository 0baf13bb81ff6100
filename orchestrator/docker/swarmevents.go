package docker

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// taskActions are the container events of a task the controller acts on.
var taskActions = []events.Action{
	events.ActionStart, events.ActionDie, events.ActionKill, events.ActionOOM,
	events.ActionPause, events.ActionUnPause, events.ActionDestroy,
}

// Events watches this instance's task containers on this engine (start,
// die, kill, oom, pause, unpause, destroy), each mapped as the driver maps
// a container's with the index read from the task's slot, and sends
// replica.ActionResync when one of its services or any node changes (Swarm
// moved or replaced tasks, maybe on other nodes, which this engine does not
// see). Like the driver's, the streams re-subscribe with backoff when they
// break, and each begins with replica.ActionResync. The channel closes when
// ctx ends.
func (s *Swarm) Events(ctx context.Context) <-chan replica.Event {
	out := make(chan replica.Event, 64)
	var wg sync.WaitGroup
	for _, st := range []eventStream{s.taskEvents(), s.clusterEvents()} {
		wg.Go(func() { s.d.watch(ctx, out, st) })
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out
}

// taskEvents is the stream of this instance's task containers.
func (s *Swarm) taskEvents() eventStream {
	f := s.d.ownedFilter()
	f.Add("type", string(events.ContainerEventType))
	for _, a := range taskActions {
		f.Add("event", string(a))
	}
	return eventStream{filter: f, read: func(m events.Message) (replica.Event, bool) {
		if !ownedBy(m.Actor.Attributes, s.d.instance) {
			return replica.Event{}, false
		}
		return taskEventFromMessage(m), true
	}}
}

// taskEventFromMessage is eventFromMessage for a task's container, which
// has no replica label: its number is the task's slot.
func taskEventFromMessage(m events.Message) replica.Event {
	e := eventFromMessage(m)
	e.Index = slotFromTaskName(m.Actor.Attributes[swarmTaskNameLabel])
	return e
}

// clusterEvents is the stream of service and node changes, each a resync.
func (s *Swarm) clusterEvents() eventStream {
	f := filters.NewArgs(
		filters.Arg("type", string(events.ServiceEventType)),
		filters.Arg("type", string(events.NodeEventType)),
	)
	return eventStream{filter: f, read: func(m events.Message) (replica.Event, bool) {
		return s.clusterEvent(m)
	}}
}

// clusterEvent reads a service or node event: a resync for one of the
// project's services (service events carry the name, not the labels) and
// for any node.
func (s *Swarm) clusterEvent(m events.Message) (replica.Event, bool) {
	switch m.Type {
	case events.ServiceEventType:
		if !strings.HasPrefix(m.Actor.Attributes["name"], s.d.project+"-") {
			return replica.Event{}, false
		}
	case events.NodeEventType:
	default:
		return replica.Event{}, false
	}
	t := time.Unix(0, m.TimeNano)
	if m.TimeNano == 0 {
		t = time.Unix(m.Time, 0)
	}
	return replica.Event{Action: replica.ActionResync, ID: m.Actor.ID, Time: t}, true
}

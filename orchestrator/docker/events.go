package docker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// Backoff between attempts to re-subscribe to the engine's events.
const (
	eventsMinBackoff = 100 * time.Millisecond
	eventsMaxBackoff = 10 * time.Second
)

// Events watches the lifecycle events of this instance's containers until
// ctx ends, then closes the channel. The engine is the source of truth and
// events are hints: re-observe, never trust the payload.
//
// The first event is always replica.ActionResync, sent once the watch is
// established (so an action taken after receiving it cannot be missed).
// When the stream breaks, Events re-subscribes with exponential backoff and
// sends replica.ActionResync again, because anything may have happened meanwhile.
// A consumer that does not read holds the watch up; no event is dropped.
func (d *Driver) Events(ctx context.Context) <-chan replica.Event {
	out := make(chan replica.Event, 64)
	go func() {
		defer close(out)
		d.watch(ctx, out, d.containerEvents())
	}()
	return out
}

// eventStream is one subscription to the engine's events: what to ask for,
// and how to read each message (false: not an event of ours).
type eventStream struct {
	filter filters.Args
	read   func(events.Message) (replica.Event, bool)
}

// containerEvents is the stream of this instance's containers.
func (d *Driver) containerEvents() eventStream {
	f := d.ownedFilter()
	f.Add("type", string(events.ContainerEventType))
	return eventStream{filter: f, read: func(m events.Message) (replica.Event, bool) {
		if !ownedBy(m.Actor.Attributes, d.instance) {
			return replica.Event{}, false
		}
		return eventFromMessage(m), true
	}}
}

// watch runs st until ctx ends, re-subscribing with backoff when it breaks.
func (d *Driver) watch(ctx context.Context, out chan<- replica.Event, st eventStream) {
	send := func(e replica.Event) bool {
		select {
		case out <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}
	backoff := eventsMinBackoff
	for ctx.Err() == nil {
		began := time.Now()
		err := d.watchOnce(ctx, send, st)
		if ctx.Err() != nil {
			return
		}
		// A stream that lived a while was healthy: start backing off afresh.
		if time.Since(began) > eventsMaxBackoff {
			backoff = eventsMinBackoff
		}
		d.log.Warn("docker events stream broke; reconnecting", "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(backoff*2, eventsMaxBackoff)
	}
}

// watchOnce runs one subscription until it breaks.
func (d *Driver) watchOnce(ctx context.Context, send func(replica.Event) bool, st eventStream) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The engine answers the subscription before it subscribes, so an event
	// in between would be lost; asking for a replay from a little before now
	// closes that gap (the margin absorbs clock skew with a VM's engine). At
	// worst an event comes twice, which hints tolerate.
	since := time.Now().Add(-time.Second)
	if _, err := d.cli.Ping(ctx); err != nil {
		return translate("watch events", err)
	}
	msgs, errs := d.cli.Events(ctx, events.ListOptions{
		Since:   fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()),
		Filters: st.filter,
	})
	if !send(replica.Event{Action: replica.ActionResync, Time: time.Now()}) {
		return ctx.Err()
	}
	for {
		select {
		case m := <-msgs:
			e, ok := st.read(m)
			if !ok {
				continue
			}
			if !send(e) {
				return ctx.Err()
			}
		case err := <-errs:
			return translate("watch events", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// eventFromMessage reads an engine event; container events carry the
// container's labels among the actor's attributes.
func eventFromMessage(m events.Message) replica.Event {
	e := replica.Event{
		Action: string(m.Action),
		ID:     m.Actor.ID,
		Group:  m.Actor.Attributes[LabelGroup],
		Time:   time.Unix(0, m.TimeNano),
	}
	if pod := m.Actor.Attributes[LabelPod]; pod != "" {
		// A pod member's event is its replica's, which has the infra
		// container's ID.
		e.ID = pod
	}
	if m.TimeNano == 0 {
		e.Time = time.Unix(m.Time, 0)
	}
	e.Index, _ = strconv.Atoi(m.Actor.Attributes[LabelReplica])
	e.ExitCode, _ = strconv.Atoi(m.Actor.Attributes["exitCode"])
	return e
}

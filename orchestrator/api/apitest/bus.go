package apitest

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/flotilla/flotilla/orchestrator/bus"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// NoBus is the fake's bus until SetBus: none runs.
var NoBus = bus.Status{Error: "no bus runs: the bus is a group named bus of service bus", Streams: []bus.Stream{}, Dead: []bus.DeadLetter{}}

// SetBus makes st the bus's reading, as the controller would have read it.
func (f *Controller) SetBus(st bus.Status) {
	st.Streams = slices.Clone(st.Streams)
	for i := range st.Streams {
		st.Streams[i].Consumers = slices.Clone(st.Streams[i].Consumers)
	}
	st.Dead = slices.Clone(st.Dead)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bus = &st
}

// Replays are the dead letters replayed, by seq, in order.
func (f *Controller) Replays() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.replays)
}

// BusStatus returns what SetBus last set, or NoBus.
func (f *Controller) BusStatus() bus.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := NoBus
	if f.bus != nil {
		st = *f.bus
		st.Streams = slices.Clone(st.Streams)
		st.Dead = slices.Clone(st.Dead)
	}
	if st.Time.IsZero() {
		st.Time = time.Now()
	}
	return st
}

// ReplayDeadLetter removes dead letter seq from the reading, as the
// controller's replay does; it is bus.ErrUnavailable while the reading is
// not up, bus.ErrNotFound for a seq it does not show.
func (f *Controller) ReplayDeadLetter(_ context.Context, seq uint64) (bus.ReplayResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bus == nil || !f.bus.Up {
		why := NoBus.Error
		if f.bus != nil && f.bus.Error != "" {
			why = f.bus.Error
		}
		return bus.ReplayResult{}, fmt.Errorf("%w: %s", bus.ErrUnavailable, why)
	}
	i := slices.IndexFunc(f.bus.Dead, func(d bus.DeadLetter) bool { return d.Seq == seq })
	if i < 0 {
		return bus.ReplayResult{}, fmt.Errorf("dead letter %d: %w: no such dead letter (already replayed, or never there)", seq, bus.ErrNotFound)
	}
	d := f.bus.Dead[i]
	f.bus.Dead = slices.Delete(slices.Clone(f.bus.Dead), i, i+1)
	f.replays = append(f.replays, seq)
	res := bus.ReplayResult{Replayed: d, Subject: d.Subject, MsgID: bus.ReplayMsgID(d.EventID, seq)}
	f.publishLocked(hub.BusReplayed, spec.BusService, "", fmt.Sprint(seq), "dead letter %d replayed: %s %s published again to %s as %s", seq, d.Stream, d.EventID, res.Subject, res.MsgID)
	return res, nil
}

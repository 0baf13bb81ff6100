// Package faults breaks replicas on purpose, as a learner asks: kill,
// pause, cut off the network, make a shop feature crash, slow down or
// fail, or make a subscriber of the bus fail (poison) or slow down
// (slow-consumer) on its events. It sits above the controller: it finds replicas through it, breaks
// them through the runtime or the replica's fault port, and keeps the
// faults in force so a fresh replica of the group gets the group-wide ones
// too (the fault stands for a bug in the code, which a new copy has).
package faults

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/sample-services/bus/access"
)

// Partitioner is the part of the runtime that cuts replicas off the network.
type Partitioner interface {
	// Disconnect cuts a replica off the project network.
	Disconnect(ctx context.Context, id string) error
	// Reconnect puts it back.
	Reconnect(ctx context.Context, id string) error
}

// Controller is what the injector needs of the controller.
type Controller interface {
	// Replicas returns a desired group's replicas as observed; an error
	// wrapping controller.ErrNotFound for a group that is not desired.
	Replicas(group string) ([]replica.Replica, error)
	// ReplicaByID returns an observed replica of any group.
	ReplicaByID(id string) (replica.Replica, bool)
	// MarkDown takes a replica out of its group's balancer rotation now.
	MarkDown(group, id string)
	// Resync asks for a reconcile of group soon.
	Resync(group string)
	// OnReady registers fn for each replica that becomes ready.
	OnReady(fn func(group, id string))
}

// Options configure an Injector.
type Options struct {
	Controller Controller
	// Runtime runs the replicas; kill and pause need it to be a
	// controller.Faulter, partition a Partitioner.
	Runtime controller.Runtime
	// Events, if set, receives what the injector does, for people to watch.
	Events controller.Publisher
	Log    *slog.Logger
}

// Injector applies and reverts faults and keeps the ones in force, so a
// replica that becomes ready gets the group-wide ones too.
type Injector struct {
	ctrl   Controller
	rt     controller.Runtime
	events controller.Publisher
	log    *slog.Logger
	client *http.Client

	mu     sync.Mutex
	faults map[string]*Fault
	// applied remembers, per fault, the replica IDs it was applied to,
	// so it can be reverted on exactly those.
	applied map[string]map[string]string // fault id -> replica id -> admin address
}

// New returns an injector and subscribes it to the controller's ready
// replicas; call it before the controller runs.
func New(opt Options) *Injector {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	in := &Injector{
		ctrl:    opt.Controller,
		rt:      opt.Runtime,
		events:  opt.Events,
		log:     opt.Log,
		client:  &http.Client{Timeout: 2 * time.Second},
		faults:  map[string]*Fault{},
		applied: map[string]map[string]string{},
	}
	opt.Controller.OnReady(func(group, id string) { in.reapply(context.Background(), group, id) })
	return in
}

func (in *Injector) publish(kind, group, replica, id, format string, args ...any) {
	if in.events != nil {
		in.events.Publish(hub.Event{Kind: kind, Group: group, Replica: replica, ID: id, Message: fmt.Sprintf(format, args...)})
	}
}

// inspect reads one replica back from the runtime, where it can.
func (in *Injector) inspect(ctx context.Context, id string) (replica.Replica, error) {
	if rr, ok := in.rt.(interface {
		Inspect(ctx context.Context, id string) (replica.Replica, error)
	}); ok {
		return rr.Inspect(ctx, id)
	}
	if r, ok := in.ctrl.ReplicaByID(id); ok {
		return r, nil
	}
	return replica.Replica{}, fmt.Errorf("replica %s: %w", id, replica.ErrNotFound)
}

// InjectFault applies a fault to owned replicas. An unknown group or
// replica wraps controller.ErrNotFound, a bad request ErrInvalid, and a
// group with no running replica controller.ErrConflict.
func (in *Injector) InjectFault(ctx context.Context, s Spec) (Fault, error) {
	if err := s.Validate(); err != nil {
		return Fault{}, err
	}
	reps, err := in.ctrl.Replicas(s.Group)
	if err != nil {
		return Fault{}, err
	}
	if forSubscribers(s.Kind) {
		if err := subscriberGroup(s, reps); err != nil {
			return Fault{}, err
		}
	}
	var targets []replica.Replica
	for _, r := range reps {
		if r.State != replica.StateRunning && !(s.Kind == Pause && r.State == replica.StatePaused) {
			continue
		}
		if s.Replica == "" || r.Name == s.Replica {
			targets = append(targets, r)
		}
	}
	if s.Replica != "" && len(targets) == 0 {
		return Fault{}, fmt.Errorf("running replica %q of group %q: %w", s.Replica, s.Group, controller.ErrNotFound)
	}
	if len(targets) == 0 {
		return Fault{}, fmt.Errorf("group %q has no running replica to break: %w", s.Group, controller.ErrConflict)
	}
	wholeReplica := s.Kind == Kill || s.Kind == Pause || s.Kind == Partition
	if wholeReplica && s.Replica == "" {
		targets = targets[len(targets)-1:] // the highest number, a stable choice
	}

	f := &Fault{Spec: s, ID: newFaultID(), Created: time.Now(), Active: s.Kind != Kill}
	applied := map[string]string{}
	var errs []error
	for _, r := range targets {
		if err := in.applyFault(ctx, f, r); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Name, err))
			continue
		}
		f.Replicas = append(f.Replicas, r.Name)
		applied[r.ID] = adminAddr(r)
	}
	if len(f.Replicas) == 0 {
		return Fault{}, fmt.Errorf("inject %s: %w", s.Kind, errors.Join(errs...))
	}
	sort.Strings(f.Replicas)
	f.Message = describeFault(f)
	if len(errs) > 0 {
		f.Message += fmt.Sprintf(" (not applied to %d: %v)", len(errs), errors.Join(errs...))
	}
	in.mu.Lock()
	in.faults[f.ID] = f
	in.applied[f.ID] = applied
	in.mu.Unlock()
	in.publish(hub.FaultInjected, s.Group, s.Replica, f.ID, "fault %s: %s", f.ID, f.Message)
	in.ctrl.Resync(s.Group)
	return *f, nil
}

func (in *Injector) applyFault(ctx context.Context, f *Fault, r replica.Replica) error {
	switch f.Kind {
	case Kill, Pause:
		fl, ok := in.rt.(controller.Faulter)
		if !ok {
			return errors.New("this runtime cannot kill or pause")
		}
		if f.Kind == Kill {
			return fl.Kill(ctx, r.ID, "SIGKILL")
		}
		return fl.Pause(ctx, r.ID)
	case Partition:
		p, ok := in.rt.(Partitioner)
		if !ok {
			return errors.New("this runtime cannot partition")
		}
		in.ctrl.MarkDown(f.Group, r.ID)
		return p.Disconnect(ctx, r.ID)
	}
	body := map[string]any{}
	switch f.Kind {
	case CrashFeature:
		body["crash"] = true
	case Latency:
		body["latencyMs"] = f.LatencyMs
	case Errors:
		body["errorRate"] = f.ErrorRate
	case Poison, SlowConsumer:
		body = in.subscriberBody(f.Group, r.Name, f, "")
	}
	return in.adminCall(ctx, http.MethodPut, adminAddr(r), faultPath(f, r.Service), body)
}

// subscriberBody is what a subscriber replica's fault port must hold: the
// poison and slow-consumer faults of group in force on replica name, with
// f added and the fault with ID without left out. The port keeps one entry
// per service and a PUT replaces it, so a poison and a slow-consumer in
// force together are sent together, and reverting one leaves the other.
func (in *Injector) subscriberBody(group, name string, f *Fault, without string) map[string]any {
	body := map[string]any{}
	add := func(f *Fault) {
		switch f.Kind {
		case Poison:
			body["poison"] = f.Messages
		case SlowConsumer:
			body["slowMs"] = f.LatencyMs
		}
	}
	in.mu.Lock()
	for id, o := range in.faults {
		if id != without && (f == nil || id != f.ID) && o.Group == group && o.Active && forSubscribers(o.Kind) && (o.Replica == "" || o.Replica == name) {
			add(o)
		}
	}
	in.mu.Unlock()
	if f != nil {
		add(f)
	}
	return body
}

// faultPath is where the replica's fault port keeps f: under the feature,
// or, for a subscriber's faults, under its service's name.
func faultPath(f *Fault, service string) string {
	switch {
	case forSubscribers(f.Kind):
		return "/faults/" + service
	case f.Feature == "":
		return "/faults/*"
	}
	return "/faults/" + f.Feature
}

// subscriberGroup refuses a subscriber's fault on a group whose service
// takes no events from the bus.
func subscriberGroup(s Spec, reps []replica.Replica) error {
	subs := access.Shop.Subscribers()
	for _, r := range reps {
		if _, _, ok := access.Shop.Subscription(r.Service); !ok {
			return fmt.Errorf("%w: %s acts on a subscriber of the bus (%s); group %q runs %s, which subscribes to nothing",
				ErrInvalid, s.Kind, strings.Join(subs, ", "), s.Group, r.Service)
		}
	}
	return nil
}

// adminAddr is the replica's fault port on the project network.
func adminAddr(r replica.Replica) string {
	host, _, err := net.SplitHostPort(r.NetworkAddress)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(host, strconv.Itoa(spec.AdminPort))
}

func (in *Injector) adminCall(ctx context.Context, method, addr, path string, body any) error {
	if addr == "" {
		return errors.New("the replica has no address on the project network")
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := in.client.Do(req)
	if err != nil {
		return fmt.Errorf("fault port: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("fault port answered %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

// Faults lists the injected faults, newest first.
func (in *Injector) Faults() []Fault {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]Fault, 0, len(in.faults))
	for _, f := range in.faults {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out
}

// RevertFault undoes a fault on the replicas it was applied to that still
// exist, and forgets it. An unknown id wraps controller.ErrNotFound.
func (in *Injector) RevertFault(ctx context.Context, id string) (Fault, error) {
	in.mu.Lock()
	f, ok := in.faults[id]
	applied := in.applied[id]
	in.mu.Unlock()
	if !ok {
		return Fault{}, fmt.Errorf("fault %q: %w", id, controller.ErrNotFound)
	}
	var errs []error
	for cid, admin := range applied {
		if err := in.revertOn(ctx, f, cid, admin); err != nil && !errors.Is(err, replica.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return *f, fmt.Errorf("revert fault %s: %w", id, errors.Join(errs...))
	}
	in.mu.Lock()
	delete(in.faults, id)
	delete(in.applied, id)
	in.mu.Unlock()
	f.Active = false
	in.publish(hub.FaultReverted, f.Group, f.Replica, f.ID, "fault %s reverted: %s", f.ID, describeFault(f))
	in.ctrl.Resync(f.Group)
	return *f, nil
}

func (in *Injector) revertOn(ctx context.Context, f *Fault, id, admin string) error {
	r, ok := in.ctrl.ReplicaByID(id)
	if !ok {
		return nil // replaced meanwhile: its successor never had the fault
	}
	if r.State != replica.StateRunning && r.State != replica.StatePaused {
		return nil // a dead replica's faults died with it
	}
	switch f.Kind {
	case Kill:
		return nil
	case Pause:
		if fl, ok := in.rt.(controller.Faulter); ok {
			err := fl.Unpause(ctx, id)
			if errors.Is(err, replica.ErrConflict) {
				return nil // not paused any more
			}
			return err
		}
		return nil
	case Partition:
		if p, ok := in.rt.(Partitioner); ok {
			return p.Reconnect(ctx, id)
		}
		return nil
	}
	// A subscriber's other fault in force stays: it is sent again alone.
	method, body := http.MethodDelete, any(nil)
	if forSubscribers(f.Kind) {
		if rest := in.subscriberBody(f.Group, r.Name, nil, f.ID); len(rest) > 0 {
			method, body = http.MethodPut, rest
		}
	}
	err := in.adminCall(ctx, method, admin, faultPath(f, r.Service), body)
	if err != nil {
		// The replica may be dying of this very fault; then there is
		// nothing left to revert.
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
			if info, ierr := in.inspect(ctx, id); ierr != nil || info.State != replica.StateRunning {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return err
}

func newFaultID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "f-" + hex.EncodeToString(b)
}

// reapplyFaults gives a replica that just became ready the group-wide
// feature faults in force: the fault stands for a bug in the code, which a
// fresh copy has too. A fault aimed at one replica does not spread.
func (in *Injector) reapply(ctx context.Context, group, id string) {
	r, ok := in.ctrl.ReplicaByID(id)
	if !ok {
		return
	}
	in.mu.Lock()
	var todo []*Fault
	for fid, f := range in.faults {
		if f.Group != group || f.Replica != "" || !f.Active {
			continue
		}
		switch f.Kind {
		case CrashFeature, Latency, Errors, Poison, SlowConsumer:
		default:
			continue
		}
		if _, done := in.applied[fid][id]; !done {
			todo = append(todo, f)
		}
	}
	in.mu.Unlock()
	for _, f := range todo {
		if err := in.applyFault(ctx, f, r); err != nil {
			in.log.Warn("reapply fault", "fault", f.ID, "replica", r.Name, "err", err)
			continue
		}
		in.mu.Lock()
		if applied := in.applied[f.ID]; applied != nil {
			applied[id] = adminAddr(r)
			if !slices.Contains(f.Replicas, r.Name) {
				f.Replicas = append(f.Replicas, r.Name)
				sort.Strings(f.Replicas)
			}
		}
		in.mu.Unlock()
		in.publish(hub.FaultInjected, group, r.Name, f.ID, "fault %s also applies to the new replica %s", f.ID, r.Name)
	}
}

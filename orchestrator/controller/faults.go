package controller

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// Fault kinds a learner can inject.
const (
	FaultKill         = "kill"
	FaultPause        = "pause"
	FaultCrashFeature = "crash-feature"
	FaultLatency      = "latency"
	FaultErrors       = "errors"
	FaultPartition    = "partition"
)

// FaultKinds lists the kinds, for messages.
var FaultKinds = []string{FaultKill, FaultPause, FaultCrashFeature, FaultLatency, FaultErrors, FaultPartition}

// Features of the shop a fault can target.
var Features = []string{"catalog", "deals", "cart", "orders", "checkout"}

// AdminPort is where every replica of the shop takes fault commands.
const AdminPort = spec.AdminPort

// ErrInvalidFault marks a fault request that can never be applied.
var ErrInvalidFault = errors.New("invalid fault")

// FaultSpec is what a learner asks for.
type FaultSpec struct {
	Kind  string `json:"kind"`
	Group string `json:"group"`
	// Replica names one replica ("web-2"); empty means every replica of
	// the group for feature faults, and one replica for kill, pause and
	// partition.
	Replica string `json:"replica,omitempty"`
	// Feature is the shop feature for crash-feature, latency and errors;
	// empty means every path for latency and errors.
	Feature   string  `json:"feature,omitempty"`
	LatencyMs int     `json:"latencyMs,omitempty"`
	ErrorRate float64 `json:"errorRate,omitempty"`
}

// Fault is an injected fault.
type Fault struct {
	FaultSpec
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// Active is false for one-shot faults (kill) and reverted ones.
	Active bool `json:"active"`
	// Replicas are the replicas the fault was applied to.
	Replicas []string `json:"replicas"`
	Message  string   `json:"message"`
}

func (s FaultSpec) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidFault, fmt.Sprintf(format, args...))
	}
	if !slices.Contains(FaultKinds, s.Kind) {
		return bad("kind %q is not one of %v", s.Kind, FaultKinds)
	}
	if s.Group == "" {
		return bad("group is required")
	}
	if s.Feature != "" && !slices.Contains(Features, s.Feature) {
		return bad("feature %q is not one of %v", s.Feature, Features)
	}
	switch s.Kind {
	case FaultCrashFeature:
		if s.Feature == "" {
			return bad("crash-feature needs a feature: one of %v", Features)
		}
	case FaultLatency:
		if s.LatencyMs < 1 || s.LatencyMs > 30000 {
			return bad("latencyMs %d is out of range: 1 to 30000", s.LatencyMs)
		}
	case FaultErrors:
		if s.ErrorRate <= 0 || s.ErrorRate > 1 {
			return bad("errorRate %g is out of range: more than 0, at most 1", s.ErrorRate)
		}
	default:
		if s.Feature != "" {
			return bad("%s acts on a whole replica; feature is only for crash-feature, latency and errors", s.Kind)
		}
	}
	if s.Kind != FaultLatency && s.LatencyMs != 0 {
		return bad("latencyMs is only for latency faults")
	}
	if s.Kind != FaultErrors && s.ErrorRate != 0 {
		return bad("errorRate is only for errors faults")
	}
	return nil
}

// Partitioner is the part of the runtime that cuts replicas off the network.
type Partitioner interface {
	// Disconnect cuts a replica off the project network.
	Disconnect(ctx context.Context, id string) error
	// Reconnect puts it back.
	Reconnect(ctx context.Context, id string) error
}

type faultState struct {
	mu     sync.Mutex
	faults map[string]*Fault
	// applied remembers, per fault, the container IDs it was applied to,
	// so it can be reverted on exactly those.
	applied map[string]map[string]string // fault id -> container id -> admin address
	client  *http.Client
}

func newFaultState() faultState {
	return faultState{
		faults:  map[string]*Fault{},
		applied: map[string]map[string]string{},
		client:  &http.Client{Timeout: 2 * time.Second},
	}
}

// InjectFault applies a fault to owned replicas. An unknown group or
// replica is ErrNotFound; a bad request wraps ErrInvalidFault.
func (c *Controller) InjectFault(ctx context.Context, s FaultSpec) (Fault, error) {
	if err := s.validate(); err != nil {
		return Fault{}, err
	}
	reps, err := c.Replicas(s.Group)
	if err != nil {
		return Fault{}, err
	}
	var targets []replica.Replica
	for _, r := range reps {
		if r.State != replica.StateRunning && !(s.Kind == FaultPause && r.State == replica.StatePaused) {
			continue
		}
		if s.Replica == "" || r.Name == s.Replica {
			targets = append(targets, r)
		}
	}
	if s.Replica != "" && len(targets) == 0 {
		return Fault{}, fmt.Errorf("running replica %q of group %q: %w", s.Replica, s.Group, ErrNotFound)
	}
	if len(targets) == 0 {
		return Fault{}, fmt.Errorf("group %q has no running replica to break: %w", s.Group, ErrConflict)
	}
	wholeReplica := s.Kind == FaultKill || s.Kind == FaultPause || s.Kind == FaultPartition
	if wholeReplica && s.Replica == "" {
		targets = targets[len(targets)-1:] // the highest number, a stable choice
	}

	f := &Fault{FaultSpec: s, ID: newFaultID(), Created: time.Now(), Active: s.Kind != FaultKill}
	applied := map[string]string{}
	var errs []error
	for _, r := range targets {
		if err := c.applyFault(ctx, f, r); err != nil {
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
	c.faults.mu.Lock()
	c.faults.faults[f.ID] = f
	c.faults.applied[f.ID] = applied
	c.faults.mu.Unlock()
	c.publish(hub.FaultInjected, s.Group, s.Replica, f.ID, "fault %s: %s", f.ID, f.Message)
	c.Resync(s.Group)
	return *f, nil
}

func describeFault(f *Fault) string {
	on := fmt.Sprintf("%v", f.Replicas)
	switch f.Kind {
	case FaultKill:
		return "killed " + on
	case FaultPause:
		return "paused " + on
	case FaultPartition:
		return "cut " + on + " off the network"
	case FaultCrashFeature:
		return fmt.Sprintf("the next %s request crashes %s", f.Feature, on)
	case FaultLatency:
		return fmt.Sprintf("%d ms added to %s on %s", f.LatencyMs, featureOrAll(f.Feature), on)
	case FaultErrors:
		return fmt.Sprintf("%.0f%% of %s requests fail on %s", f.ErrorRate*100, featureOrAll(f.Feature), on)
	}
	return f.Kind
}

func featureOrAll(f string) string {
	if f == "" {
		return "all"
	}
	return f
}

func (c *Controller) applyFault(ctx context.Context, f *Fault, r replica.Replica) error {
	switch f.Kind {
	case FaultKill, FaultPause:
		fl, ok := c.opt.Runtime.(Faulter)
		if !ok {
			return errors.New("this runtime cannot kill or pause")
		}
		if f.Kind == FaultKill {
			return fl.Kill(ctx, r.ID, "SIGKILL")
		}
		return fl.Pause(ctx, r.ID)
	case FaultPartition:
		p, ok := c.opt.Runtime.(Partitioner)
		if !ok {
			return errors.New("this runtime cannot partition")
		}
		c.MarkDown(f.Group, r.ID)
		return p.Disconnect(ctx, r.ID)
	}
	body := map[string]any{}
	switch f.Kind {
	case FaultCrashFeature:
		body["crash"] = true
	case FaultLatency:
		body["latencyMs"] = f.LatencyMs
	case FaultErrors:
		body["errorRate"] = f.ErrorRate
	}
	return c.adminCall(ctx, http.MethodPut, adminAddr(r), featurePath(f.Feature), body)
}

func featurePath(feature string) string {
	if feature == "" {
		return "/faults/*"
	}
	return "/faults/" + feature
}

// adminAddr is the replica's fault port on the project network.
func adminAddr(r replica.Replica) string {
	host, _, err := net.SplitHostPort(r.NetworkAddress)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(host, strconv.Itoa(AdminPort))
}

func (c *Controller) adminCall(ctx context.Context, method, addr, path string, body any) error {
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
	resp, err := c.faults.client.Do(req)
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
func (c *Controller) Faults() []Fault {
	c.faults.mu.Lock()
	defer c.faults.mu.Unlock()
	out := make([]Fault, 0, len(c.faults.faults))
	for _, f := range c.faults.faults {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out
}

// RevertFault undoes a fault on the replicas it was applied to that still
// exist, and forgets it. An unknown id is ErrNotFound.
func (c *Controller) RevertFault(ctx context.Context, id string) (Fault, error) {
	c.faults.mu.Lock()
	f, ok := c.faults.faults[id]
	applied := c.faults.applied[id]
	c.faults.mu.Unlock()
	if !ok {
		return Fault{}, fmt.Errorf("fault %q: %w", id, ErrNotFound)
	}
	var errs []error
	for cid, admin := range applied {
		if err := c.revertOn(ctx, f, cid, admin); err != nil && !errors.Is(err, replica.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return *f, fmt.Errorf("revert fault %s: %w", id, errors.Join(errs...))
	}
	c.faults.mu.Lock()
	delete(c.faults.faults, id)
	delete(c.faults.applied, id)
	c.faults.mu.Unlock()
	f.Active = false
	c.publish(hub.FaultReverted, f.Group, f.Replica, f.ID, "fault %s reverted: %s", f.ID, describeFault(f))
	c.Resync(f.Group)
	return *f, nil
}

func (c *Controller) revertOn(ctx context.Context, f *Fault, id, admin string) error {
	r, ok := c.ReplicaByID(id)
	if !ok {
		return nil // replaced meanwhile: its successor never had the fault
	}
	if r.State != replica.StateRunning && r.State != replica.StatePaused {
		return nil // a dead replica's faults died with it
	}
	switch f.Kind {
	case FaultKill:
		return nil
	case FaultPause:
		if fl, ok := c.opt.Runtime.(Faulter); ok {
			err := fl.Unpause(ctx, id)
			if errors.Is(err, replica.ErrConflict) {
				return nil // not paused any more
			}
			return err
		}
		return nil
	case FaultPartition:
		if p, ok := c.opt.Runtime.(Partitioner); ok {
			return p.Reconnect(ctx, id)
		}
		return nil
	}
	err := c.adminCall(ctx, http.MethodDelete, admin, featurePath(f.Feature), nil)
	if err != nil {
		// The replica may be dying of this very fault; then there is
		// nothing left to revert.
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
			if info, ierr := c.replicas.Inspect(ctx, id); ierr != nil || info.State != replica.StateRunning {
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
func (c *Controller) reapplyFaults(ctx context.Context, group, id string) {
	r, ok := c.ReplicaByID(id)
	if !ok {
		return
	}
	c.faults.mu.Lock()
	var todo []*Fault
	for fid, f := range c.faults.faults {
		if f.Group != group || f.Replica != "" || !f.Active {
			continue
		}
		switch f.Kind {
		case FaultCrashFeature, FaultLatency, FaultErrors:
		default:
			continue
		}
		if _, done := c.faults.applied[fid][id]; !done {
			todo = append(todo, f)
		}
	}
	c.faults.mu.Unlock()
	for _, f := range todo {
		if err := c.applyFault(ctx, f, r); err != nil {
			c.log.Warn("reapply fault", "fault", f.ID, "replica", r.Name, "err", err)
			continue
		}
		c.faults.mu.Lock()
		if applied := c.faults.applied[f.ID]; applied != nil {
			applied[id] = adminAddr(r)
			if !slices.Contains(f.Replicas, r.Name) {
				f.Replicas = append(f.Replicas, r.Name)
				sort.Strings(f.Replicas)
			}
		}
		c.faults.mu.Unlock()
		c.publish(hub.FaultInjected, group, r.Name, f.ID, "fault %s also applies to the new replica %s", f.ID, r.Name)
	}
}

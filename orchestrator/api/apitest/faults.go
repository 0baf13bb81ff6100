package apitest

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/faults"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/load"
)

// InjectFault checks a fault as the fault injector does and keeps it, touching
// no replica. Kill, pause and partition without a replica take the group's
// last one.
func (f *Controller) InjectFault(_ context.Context, s faults.Spec) (faults.Fault, error) {
	if err := s.Validate(); err != nil {
		return faults.Fault{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.groups[s.Group]
	if !ok {
		return faults.Fault{}, fmt.Errorf("group %q: %w", s.Group, controller.ErrNotFound)
	}
	var on []string
	for _, r := range st.Replicas {
		if s.Replica == "" || r.Name == s.Replica {
			on = append(on, r.Name)
		}
	}
	if len(on) == 0 {
		return faults.Fault{}, fmt.Errorf("running replica %q of group %q: %w", s.Replica, s.Group, controller.ErrNotFound)
	}
	if s.Replica == "" && (s.Kind == faults.Kill || s.Kind == faults.Pause || s.Kind == faults.Partition) {
		on = on[len(on)-1:]
	}
	f.nFaults++
	fault := faults.Fault{Spec: s, ID: fmt.Sprintf("f-%d", f.nFaults), Created: time.Now(),
		Active: s.Kind != faults.Kill, Replicas: on}
	what := s.Feature
	if what == "" {
		what = "all"
	}
	switch s.Kind {
	case faults.Latency:
		fault.Message = fmt.Sprintf("%d ms added to %s on %v", s.LatencyMs, what, on)
	case faults.Errors:
		fault.Message = fmt.Sprintf("%.0f%% of %s requests fail on %v", s.ErrorRate*100, what, on)
	case faults.CrashFeature:
		fault.Message = fmt.Sprintf("the next %s request crashes %v", s.Feature, on)
	default:
		fault.Message = fmt.Sprintf("%s %v", s.Kind, on)
	}
	f.injected = append(f.injected, s)
	if fault.Active {
		f.faults = append(f.faults, fault)
	}
	f.publishLocked(hub.FaultInjected, s.Group, s.Replica, fault.ID, "fault %s: %s", fault.ID, fault.Message)
	return fault, nil
}

// Faults lists the faults in force, newest first.
func (f *Controller) Faults() []faults.Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.faults)
	slices.Reverse(out)
	if out == nil {
		out = []faults.Fault{}
	}
	return out
}

// RevertFault forgets a fault in force.
func (f *Controller) RevertFault(_ context.Context, id string) (faults.Fault, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.faults, func(x faults.Fault) bool { return x.ID == id })
	if i < 0 {
		return faults.Fault{}, fmt.Errorf("fault %q: %w", id, controller.ErrNotFound)
	}
	fault := f.faults[i]
	f.faults = slices.Delete(f.faults, i, i+1)
	fault.Active = false
	f.publishLocked(hub.FaultReverted, fault.Group, fault.Replica, id, "fault %s reverted: %s", id, fault.Message)
	return fault, nil
}

// Start checks a load spec as the load generator does and keeps a run that
// sends nothing and stays running until Stop; SetLoad fills in its figures.
func (f *Controller) Start(s load.Spec) (load.Report, error) {
	if err := s.Validate(); err != nil {
		return load.Report{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nLoads++
	rep := load.Report{ID: fmt.Sprintf("run-%d", f.nLoads), Spec: s.WithDefaults(), State: load.StateRunning, Started: time.Now(),
		Errors: map[string]int64{}, Status: map[int]int64{}, ByReplica: map[string]int64{}, ByTarget: map[string]load.Counts{}}
	f.loads = append(f.loads, rep)
	f.publishLocked(hub.LoadStarted, "", "", rep.ID, "load run %s started", rep.ID)
	return rep, nil
}

// List returns the runs, newest first.
func (f *Controller) List() []load.Report {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.loads)
	slices.Reverse(out)
	return out
}

// Get returns one run.
func (f *Controller) Get(id string) (load.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.loads, func(r load.Report) bool { return r.ID == id })
	if i < 0 {
		return load.Report{}, fmt.Errorf("run %q: %w", id, load.ErrNotFound)
	}
	return f.loads[i], nil
}

// Stop ends a run.
func (f *Controller) Stop(id string) (load.Report, error) {
	return f.SetLoad(id, func(r *load.Report) {
		if r.State == load.StateRunning {
			r.State, r.Ended = load.StateStopped, time.Now()
		}
	})
}

// SetLoad changes run id with change, as its figures come in.
func (f *Controller) SetLoad(id string, change func(*load.Report)) (load.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.loads, func(r load.Report) bool { return r.ID == id })
	if i < 0 {
		return load.Report{}, fmt.Errorf("run %q: %w", id, load.ErrNotFound)
	}
	change(&f.loads[i])
	return f.loads[i], nil
}

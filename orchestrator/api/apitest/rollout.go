package apitest

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// history is a group's revisions and rollouts, oldest first, as the
// controller keeps them (the last 10 of each).
type history struct {
	revs []controller.Revision
	ros  []controller.RolloutStatus
}

const keepRevisions = 10

func (h *history) current() *controller.Revision {
	if len(h.revs) == 0 {
		return nil
	}
	return &h.revs[len(h.revs)-1]
}

// running is the latest rollout if it still moves replicas, or nil.
func (h *history) running() *controller.RolloutStatus {
	if len(h.ros) == 0 {
		return nil
	}
	ro := &h.ros[len(h.ros)-1]
	if ro.Status != controller.RolloutProgressing && ro.Status != controller.RolloutPaused {
		return nil
	}
	return ro
}

// templateKey is what makes a revision: the fake has no images, so the
// template hash is taken without one.
func templateKey(g spec.Group) string { return g.TemplateHash("") }

// checkRolloutLocked refuses a change of template while a rollout runs,
// unless supersede, with the controller's error.
func (f *Controller) checkRolloutLocked(g spec.Group, supersede bool) error {
	h := f.hist[g.Name]
	if h == nil || supersede {
		return nil
	}
	if ro := h.running(); ro != nil && h.current().Hash != templateKey(g) {
		return fmt.Errorf("%w (to revision %d, %s, %s): wait for it to end, roll it back, or supersede it", controller.ErrRolloutRunning, ro.Revision, ro.Version, ro.Progress)
	}
	return nil
}

// noteTemplateLocked records g as a new revision when its template is new,
// and starts a rollout to it when the group had replicas; a rollout that
// runs is superseded. It returns the rollout started, or nil.
func (f *Controller) noteTemplateLocked(g spec.Group, supersede bool) *controller.RolloutStatus {
	h := f.hist[g.Name]
	if h == nil {
		h = &history{}
		f.hist[g.Name] = h
	}
	hash := templateKey(g)
	cur := h.current()
	if cur != nil && cur.Hash == hash {
		cur.Spec = g
		return nil
	}
	now := time.Now()
	n := 1
	if cur != nil {
		n = cur.Revision + 1
	}
	if ro := h.running(); ro != nil && supersede {
		ro.Status, ro.Reason, ro.Finished = controller.RolloutSuperseded, fmt.Sprintf("superseded by revision %d", n), &now
	}
	h.revs = append(h.revs, controller.Revision{Revision: n, Version: g.VersionLabel(), Hash: hash, Spec: g, Created: now})
	h.revs = h.revs[max(len(h.revs)-keepRevisions, 0):]
	if cur == nil || f.specReplicas(g.Name) == 0 {
		return nil
	}
	s := g.Rollout.Settled()
	ro := controller.RolloutStatus{
		Revision: n, From: cur.Revision, Version: g.VersionLabel(), FromVersion: cur.Version,
		Strategy: s.Strategy, Status: controller.RolloutProgressing, Started: now, Updated: now,
		Hash: hash, FromHash: cur.Hash, Count: g.Replicas, Old: g.Replicas,
		Progress:   fmt.Sprintf("0 of %d replicas run %s", g.Replicas, g.VersionLabel()),
		ErrorRates: map[string]float64{},
	}
	if s.Strategy == spec.StrategyCanary {
		ro.Steps, ro.Step = s.Canary.Steps, 1
	}
	h.ros = append(h.ros, ro)
	h.ros = h.ros[max(len(h.ros)-keepRevisions, 0):]
	f.publishLocked(hub.RolloutStarted, g.Name, "", "", "rollout of %s to revision %d (%s, %s) started", g.Name, n, ro.Version, ro.Strategy)
	if !f.hold {
		f.endLocked(g.Name, controller.RolloutComplete, "")
	}
	return &h.ros[len(h.ros)-1]
}

// specReplicas is the count of the replicas the group ran before this put.
func (f *Controller) specReplicas(name string) int {
	if st, ok := f.groups[name]; ok {
		return len(st.Replicas)
	}
	return 0
}

// statusLocked is the group's status made by Options.Status, with its
// version, revision and latest rollout.
func (f *Controller) statusLocked(g spec.Group) controller.GroupStatus {
	st := f.status(g)
	st.Version = g.VersionLabel()
	for i := range st.Replicas {
		st.Replicas[i].Version = st.Version
	}
	h := f.hist[g.Name]
	if h == nil {
		return st
	}
	if cur := h.current(); cur != nil {
		st.Revision = cur.Revision
	}
	if len(h.ros) > 0 {
		ro := h.ros[len(h.ros)-1]
		st.Rollout = &ro
		if h.running() != nil {
			st.Status = controller.StatusRollingOut
			st.Message = fmt.Sprintf("rollout to revision %d (%s, %s): %s", ro.Revision, ro.Version, ro.Strategy, ro.Progress)
		}
	}
	return st
}

// EndRollout ends the running rollout of a group as status (complete,
// failed or rolled-back) with reason, as the controller's planner would,
// and reports whether one ran. A failed rollout is rolled back, as the
// controller does.
func (f *Controller) EndRollout(name, status, reason string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.hist[name]
	if h == nil || h.running() == nil {
		return false
	}
	if status == controller.RolloutFailed {
		ro := h.running()
		ro.Status, ro.Reason = controller.RolloutFailed, reason
		_, _ = f.rollbackLocked(name, 0, "automatic: "+reason)
		return true
	}
	f.endLocked(name, status, reason)
	return true
}

// SetRolloutProgress moves the running rollout of a group on: its progress
// line, replicas old and new, share of traffic and error rates by version.
func (f *Controller) SetRolloutProgress(name string, old, new, share int, progress string, errorRates map[string]float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.hist[name]
	if h == nil || h.running() == nil {
		return
	}
	ro := h.running()
	ro.Old, ro.New, ro.NewReady, ro.Share, ro.Progress, ro.ErrorRates, ro.Updated = old, new, new, share, progress, errorRates, time.Now()
	f.refreshLocked(name)
}

func (f *Controller) endLocked(name, status, reason string) {
	h := f.hist[name]
	ro := h.running()
	now := time.Now()
	ro.Status, ro.Reason, ro.Finished, ro.Updated = status, reason, &now, now
	if status == controller.RolloutComplete {
		ro.Old, ro.New, ro.NewReady, ro.Share = 0, ro.Count, ro.Count, 100
		ro.Progress = fmt.Sprintf("all %d replicas run %s", ro.Count, ro.Version)
		f.publishLocked(hub.RolloutComplete, name, "", "", "rollout of %s to revision %d (%s) complete", name, ro.Revision, ro.Version)
	}
	f.refreshLocked(name)
}

func (f *Controller) refreshLocked(name string) {
	if g, ok := f.specs[name]; ok {
		f.groups[name] = f.statusLocked(g)
	}
}

// Rollouts returns a group's rollouts and revisions, newest first.
func (f *Controller) Rollouts(name string) ([]controller.RolloutStatus, []controller.Revision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.specs[name]; !ok {
		return nil, nil, fmt.Errorf("group %q: %w", name, controller.ErrNotFound)
	}
	h := f.hist[name]
	if h == nil {
		return []controller.RolloutStatus{}, []controller.Revision{}, nil
	}
	ros, revs := slices.Clone(h.ros), slices.Clone(h.revs)
	slices.Reverse(ros)
	slices.Reverse(revs)
	if ros == nil {
		ros = []controller.RolloutStatus{}
	}
	return ros, revs, nil
}

// Rollback rolls a group back to revision to (0: the one before) as the
// controller does: 409 with no earlier revision, a validation error for
// one that is not earlier, and a rollout marked as a rollback.
func (f *Controller) Rollback(_ context.Context, name string, to int, why string) (controller.RolloutStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rollbackLocked(name, to, why)
}

func (f *Controller) rollbackLocked(name string, to int, why string) (controller.RolloutStatus, error) {
	d, ok := f.specs[name]
	if !ok {
		return controller.RolloutStatus{}, fmt.Errorf("group %q: %w", name, controller.ErrNotFound)
	}
	h := f.hist[name]
	if h == nil || len(h.revs) < 2 && to == 0 {
		return controller.RolloutStatus{}, fmt.Errorf("%w: group %s has no earlier revision to roll back to", controller.ErrConflict, name)
	}
	cur := h.current()
	var last *controller.RolloutStatus
	if len(h.ros) > 0 {
		last = &h.ros[len(h.ros)-1]
	}
	unfinished := h.running() != nil || last != nil && last.Status == controller.RolloutFailed
	if to == 0 {
		to = h.revs[len(h.revs)-2].Revision
		if unfinished {
			to = last.From
		}
	}
	i := slices.IndexFunc(h.revs, func(r controller.Revision) bool { return r.Revision == to })
	if i < 0 || to == cur.Revision {
		return controller.RolloutStatus{}, &spec.ValidationError{Field: "revision", Reason: fmt.Sprintf("%d is not an earlier revision of group %s; see its rollout history", to, name)}
	}
	target := h.revs[i]
	if why == "" {
		why = "rolled back by hand"
	}
	now := time.Now()
	if unfinished {
		last.Status, last.Reason, last.Finished = controller.RolloutRolledBack, why, &now
	}
	back := target.Spec
	back.Name, back.Replicas, back.Balancer, back.Probe, back.Liveness = d.Name, d.Replicas, d.Balancer, d.Probe, d.Liveness
	back.Autoscale, back.Rollout = d.Autoscale, d.Rollout
	f.specs[name] = back
	from := cur.Revision
	hold := f.hold
	f.hold = true // mark it a rollback before it may complete
	ro := f.noteTemplateLocked(back, true)
	f.hold = hold
	var st controller.RolloutStatus
	if ro != nil {
		ro.Rollback, ro.From, ro.Reason = true, from, why
		if !f.hold {
			f.endLocked(name, controller.RolloutComplete, why)
		}
		st = h.ros[len(h.ros)-1]
	}
	f.refreshLocked(name)
	f.publishLocked(hub.RolloutRolledBack, name, "", "", "%s rolled back to revision %d (%s): %s", name, to, target.Version, why)
	return st, nil
}

// PauseRollout pauses or resumes the running rollout of a group; 409 when
// none runs.
func (f *Controller) PauseRollout(name string, pause bool) (controller.RolloutStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.specs[name]; !ok {
		return controller.RolloutStatus{}, fmt.Errorf("group %q: %w", name, controller.ErrNotFound)
	}
	h := f.hist[name]
	var ro *controller.RolloutStatus
	if h != nil {
		ro = h.running()
	}
	if ro == nil {
		return controller.RolloutStatus{}, fmt.Errorf("%w: no rollout of group %s is running", controller.ErrConflict, name)
	}
	ro.Paused, ro.Status, ro.Updated = pause, controller.RolloutProgressing, time.Now()
	what := "resumed"
	if pause {
		ro.Status, what = controller.RolloutPaused, "paused"
	}
	f.refreshLocked(name)
	f.publishLocked(hub.RolloutStep, name, "", "", "rollout of %s to revision %d %s", name, ro.Revision, what)
	return *ro, nil
}

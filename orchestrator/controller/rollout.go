package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// Rollouts. Every template a group has run is a revision; a change of
// template while the group has replicas starts a rollout from the current
// revision to the new one, which the rollout planner (rolloutplan.go)
// carries out round by round. A rollout that makes no progress by its
// deadline, or whose new version fails more requests at the balancer than
// its threshold allows, is rolled back: a rollout to the previous
// revision, with the same guarantees. Revisions and rollouts are kept in
// the store, so a restarted controller picks a rollout up where it was;
// the replicas' template hashes (their labels) say which are old and new.

// Rollout statuses.
const (
	RolloutProgressing = "progressing"
	RolloutComplete    = "complete"
	RolloutPaused      = "paused"
	RolloutFailed      = "failed"
	RolloutRolledBack  = "rolled-back"
	RolloutSuperseded  = "superseded"
)

// keepRevisions bounds the revisions and rollouts kept per group.
const keepRevisions = 10

// rolloutTick is how often a running rollout is sampled and advanced.
const rolloutTick = time.Second

// healthWindow is how many ticks of balancer answers judge a version.
const healthWindow = 10

// ErrRolloutRunning refuses a template change while a rollout of the group
// runs, unless it supersedes it.
var ErrRolloutRunning = fmt.Errorf("%w: a rollout of the group is running", ErrConflict)

// Revision is one template a group ran.
type Revision struct {
	Revision int        `json:"revision"`
	Version  string     `json:"version"`
	Hash     string     `json:"hash"`
	Spec     spec.Group `json:"spec"`
	Created  time.Time  `json:"created"`
}

// RolloutStatus is one rollout, as the API shows and the store keeps it.
type RolloutStatus struct {
	Revision    int    `json:"revision"`
	From        int    `json:"from,omitempty"`
	Version     string `json:"version"`
	FromVersion string `json:"fromVersion,omitempty"`
	Strategy    string `json:"strategy"`
	Status      string `json:"status"`
	Reason      string `json:"reason,omitempty"`
	Progress    string `json:"progress,omitempty"`
	// Rollback: this rollout goes back to an earlier revision.
	Rollback bool       `json:"rollback,omitempty"`
	Started  time.Time  `json:"started"`
	Updated  time.Time  `json:"updated"`
	Finished *time.Time `json:"finished,omitempty"`
	// Step is the canary step in force (from 1), Steps the canary's steps
	// and Share the new version's share of traffic in percent now.
	Step  int   `json:"step,omitempty"`
	Steps []int `json:"steps,omitempty"`
	Share int   `json:"share"`
	// Count replicas wanted; Old and New how many of each run, NewReady
	// how many new ones are available.
	Count    int `json:"count"`
	Old      int `json:"old"`
	New      int `json:"new"`
	NewReady int `json:"newReady"`
	// ErrorRates are each version's share of failed answers at the
	// balancer over the last 10 s, by version.
	ErrorRates map[string]float64 `json:"errorRates,omitempty"`
	Paused     bool               `json:"paused,omitempty"`

	// The planner's state, kept so that a restart picks it up.
	Hash         string    `json:"hash"`
	FromHash     string    `json:"fromHash,omitempty"`
	Progressed   time.Time `json:"progressed"`
	NewReadySeen int       `json:"newReadySeen"`
	StepIndex    int       `json:"stepIndex"`
	StepStarted  time.Time `json:"stepStarted"`
	Switched     time.Time `json:"switched"`
}

// active reports whether the rollout still moves replicas.
func (r *RolloutStatus) active() bool {
	return r != nil && (r.Status == RolloutProgressing || r.Status == RolloutPaused)
}

// history is a group's revisions and rollouts, oldest first.
type history struct {
	Revisions []Revision      `json:"revisions"`
	Rollouts  []RolloutStatus `json:"rollouts"`
}

func (h *history) current() *Revision {
	if len(h.Revisions) == 0 {
		return nil
	}
	return &h.Revisions[len(h.Revisions)-1]
}

// rollout is the latest rollout, or nil.
func (h *history) rollout() *RolloutStatus {
	if len(h.Rollouts) == 0 {
		return nil
	}
	return &h.Rollouts[len(h.Rollouts)-1]
}

func (h *history) revision(n int) *Revision {
	for i := range h.Revisions {
		if h.Revisions[i].Revision == n {
			return &h.Revisions[i]
		}
	}
	return nil
}

func (h *history) addRevision(g spec.Group, hash string, now time.Time) Revision {
	n := 1
	if cur := h.current(); cur != nil {
		n = cur.Revision + 1
	}
	r := Revision{Revision: n, Version: g.VersionLabel(), Hash: hash, Spec: g, Created: now}
	h.Revisions = append(h.Revisions, r)
	if len(h.Revisions) > keepRevisions {
		h.Revisions = slices.Delete(h.Revisions, 0, len(h.Revisions)-keepRevisions)
	}
	return r
}

func (h *history) addRollout(r RolloutStatus) {
	h.Rollouts = append(h.Rollouts, r)
	if len(h.Rollouts) > keepRevisions {
		h.Rollouts = slices.Delete(h.Rollouts, 0, len(h.Rollouts)-keepRevisions)
	}
}

// versionOf is the version of the revision with hash, or "".
func (h *history) versionOf(hash string) string {
	for i := len(h.Revisions) - 1; i >= 0; i-- {
		if h.Revisions[i].Hash == hash {
			return h.Revisions[i].Version
		}
	}
	return ""
}

// rolloutHealth is the balancer's answers per version over the last
// healthWindow ticks of a running rollout.
type rolloutHealth struct {
	last  map[string][2]uint64 // per upstream: requests and errors at the last tick
	ticks [][4]uint64          // per tick: new answers, new errors, old answers, old errors
}

// loadHistory reads a group's history from the store.
func (c *Controller) loadHistory(name string) (*history, error) {
	data, err := c.opt.Store.History(name)
	if err != nil || data == nil {
		return &history{}, err
	}
	h := &history{}
	if err := json.Unmarshal(data, h); err != nil {
		return &history{}, fmt.Errorf("decode the history of group %q: %w", name, err)
	}
	return h, nil
}

// saveHistoryLocked writes a group's history to the store.
func (c *Controller) saveHistoryLocked(name string, g *group) {
	if g.hist == nil {
		return
	}
	data, err := json.Marshal(g.hist)
	if err == nil {
		err = c.opt.Store.PutHistory(name, data)
	}
	if err != nil {
		c.log.Warn("store rollout history", "group", name, "err", err)
	}
}

// templateHash is the hash of the template g's replicas are made from.
func (c *Controller) templateHash(g spec.Group) string {
	t, _ := c.templateOf(g)
	return t.TemplateHash
}

// templateOf is what g's replicas are made from, and an error when this
// controller has no image for it.
func (c *Controller) templateOf(g spec.Group) (replica.Spec, error) {
	svc, _ := spec.LookupService(g.Service)
	image := c.opt.Images[svc.Image]
	var t replica.Spec
	if g.Isolation == spec.IsolationVM {
		image = c.opt.Images[VMImage]
		t = vmTemplate(g, image, c.vmAccel())
	} else {
		t = template(g, image)
	}
	t = c.withBus(t)
	if c.placing != nil {
		t.Update = updatePolicy(g.Rollout)
	}
	if image == "" {
		return t, fmt.Errorf("no image built for service %q with isolation %s", g.Service, g.Isolation)
	}
	return t, nil
}

// noteTemplateLocked records g as the group's newest revision if its
// template is new, and starts a rollout to it when the group has replicas
// of another one. A rollout already running is refused unless supersede.
func (c *Controller) noteTemplateLocked(name string, gr *group, g spec.Group, supersede bool, now time.Time) (*RolloutStatus, error) {
	if gr.hist == nil {
		gr.hist = &history{}
	}
	h := gr.hist
	hash := c.templateHash(g)
	cur := h.current()
	if cur != nil && cur.Hash == hash {
		cur.Spec = g // the same template: counts, probes, balancer may change
		return nil, nil
	}
	running := h.rollout()
	if running.active() && !supersede {
		return nil, fmt.Errorf("%w (to revision %d, %s, %s): wait for it, roll it back, or supersede it", ErrRolloutRunning, running.Revision, running.Version, running.Progress)
	}
	if running.active() {
		running.Status, running.Reason = RolloutSuperseded, "superseded by revision "+fmt.Sprint(revisionAfter(h))
		running.Finished = &now
	}
	if cur == nil || len(gr.observed) == 0 {
		h.addRevision(g, hash, now)
		return nil, nil // nothing runs yet: the replicas are made as they are
	}
	// A copy: adding a revision may drop the oldest and shift the rest
	// under a pointer into the list.
	from := *cur
	rev := h.addRevision(g, hash, now)
	s := g.Rollout.Settled()
	ro := RolloutStatus{
		Revision: rev.Revision, From: from.Revision, Version: rev.Version, FromVersion: from.Version,
		Strategy: s.Strategy, Status: RolloutProgressing, Started: now, Updated: now, Progressed: now,
		Hash: hash, FromHash: from.Hash, Count: g.Replicas,
	}
	if s.Strategy == spec.StrategyCanary {
		ro.Steps = s.Canary.Steps
	}
	h.addRollout(ro)
	gr.health = nil
	return h.rollout(), nil
}

func revisionAfter(h *history) int {
	if cur := h.current(); cur != nil {
		return cur.Revision + 1
	}
	return 1
}

// rolloutInputLocked is what the rollout planner needs of a group's
// running rollout, or nil when none runs.
func (c *Controller) rolloutInputLocked(g *group, d spec.Group, hash string, now time.Time) *RolloutInput {
	if g.hist == nil {
		return nil
	}
	ro := g.hist.rollout()
	if !ro.active() {
		return nil
	}
	if ro.Hash != hash {
		// The template moved without a rollout (images rebuilt): the
		// rollout's target is this one now.
		ro.Hash = hash
	}
	in := &RolloutInput{
		Settings: d.Rollout.Settled(), Count: d.Replicas, Hash: hash, Ready: map[string]time.Time{}, Now: now,
		Started: ro.Started, Progressed: ro.Progressed, NewReadySeen: ro.NewReadySeen,
		Step: ro.StepIndex, StepStarted: ro.StepStarted, Switched: ro.Switched, Paused: ro.Paused,
	}
	if ro.Rollback && in.Settings.Strategy != spec.StrategyRecreate {
		in.Settings.Strategy = spec.StrategyRolling // back the safe way: the old set is often still there
	}
	for _, r := range g.observed {
		if st, ok := c.prober.Status(r.ID); ok && st.Verdict == "ready" && st.Live != "not-live" {
			in.Ready[r.ID] = st.Since
		}
	}
	if hl := g.health; hl != nil {
		for _, t := range hl.ticks {
			in.NewAnswers += t[0]
			in.NewErrors += t[1]
			in.OldAnswers += t[2]
			in.OldErrors += t[3]
		}
	}
	return in
}

// advanceRollout books a round of the rollout planner: progress, the
// canary's step, the blue-green switch, and the end, complete or failed.
// A failed rollout is rolled back.
func (c *Controller) advanceRollout(ctx context.Context, name string, p *RolloutPlan) {
	if p == nil {
		return
	}
	now := time.Now()
	c.mu.Lock()
	g := c.groups[name]
	if g == nil || g.hist == nil || !g.hist.rollout().active() {
		c.mu.Unlock()
		return
	}
	ro := g.hist.rollout()
	g.rotation = rotationView{mode: p.Rotation, hash: ro.Hash, share: p.CanaryShare}
	changed := ro.StepIndex != p.Step || !ro.Switched.Equal(p.Switched) || ro.NewReadySeen != p.NewReadySeen || ro.StepStarted.IsZero() != p.StepStarted.IsZero()
	ro.Progressed, ro.NewReadySeen, ro.StepIndex, ro.StepStarted, ro.Switched = p.Progressed, p.NewReadySeen, p.Step, p.StepStarted, p.Switched
	ro.Progress, ro.Share, ro.Old, ro.New, ro.NewReady, ro.Updated = p.Progress, p.CanaryShare, p.Old, p.New, p.NewReady, now
	if p.Rotation == RotateNew && ro.Strategy == spec.StrategyCanary {
		ro.Share = 100
	}
	if len(ro.Steps) > 0 {
		ro.Step = min(p.Step, len(ro.Steps)-1) + 1
	}
	var event, msg string
	rollback := ""
	switch {
	case p.Done:
		ro.Status, ro.Finished, ro.Progress = RolloutComplete, &now, fmt.Sprintf("all %d replicas run %s", p.NewReady, ro.Version)
		g.rotation = rotationView{}
		event, msg = hub.RolloutComplete, fmt.Sprintf("rollout of %s to revision %d (%s) complete in %s", name, ro.Revision, ro.Version, now.Sub(ro.Started).Round(time.Second))
		changed = true
	case p.Failed != "":
		ro.Status, ro.Reason, ro.Finished = RolloutFailed, p.Failed, &now
		event, msg = hub.RolloutFailed, fmt.Sprintf("rollout of %s to revision %d (%s) failed: %s", name, ro.Revision, ro.Version, p.Failed)
		rollback = p.Failed
		changed = true
	case changed && ro.Strategy == spec.StrategyCanary && !p.StepStarted.IsZero():
		event, msg = hub.RolloutStep, fmt.Sprintf("%s: %s", name, p.Progress)
	case changed && !p.Switched.IsZero() && ro.Strategy == spec.StrategyBlueGreen:
		event, msg = hub.RolloutStep, fmt.Sprintf("%s: %s", name, p.Progress)
	}
	if changed {
		c.saveHistoryLocked(name, g)
	}
	c.mu.Unlock()
	if event != "" {
		c.publish(event, name, "", "", "%s", msg)
	}
	if rollback != "" && !ro.Rollback {
		if _, err := c.Rollback(ctx, name, 0, "automatic: "+rollback); err != nil {
			c.log.Warn("automatic rollback", "group", name, "err", err)
		}
	}
}

// Rollback rolls group back to revision to (0: the one before the current
// one), as a rollout with the group's guarantees. A rollout running is
// ended as rolled back with why.
func (c *Controller) Rollback(ctx context.Context, name string, to int, why string) (RolloutStatus, error) {
	now := time.Now()
	c.mu.Lock()
	g := c.groups[name]
	if g == nil || g.desired == nil {
		c.mu.Unlock()
		return RolloutStatus{}, fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	if g.hist == nil || len(g.hist.Revisions) < 2 && to == 0 {
		c.mu.Unlock()
		return RolloutStatus{}, fmt.Errorf("%w: group %s has no earlier revision to roll back to", ErrConflict, name)
	}
	h := g.hist
	cur := h.current()
	running := h.rollout()
	if to == 0 {
		to = h.Revisions[len(h.Revisions)-2].Revision
		if running.active() || running != nil && running.Status == RolloutFailed {
			to = running.From // back to where the rollout started
		}
	}
	target := h.revision(to)
	if target == nil || to == cur.Revision {
		c.mu.Unlock()
		return RolloutStatus{}, &spec.ValidationError{Field: "revision", Reason: fmt.Sprintf("%d is not an earlier revision of group %s; see its rollout history", to, name)}
	}
	if why == "" {
		why = "rolled back by hand"
	}
	if running.active() || running != nil && running.Status == RolloutFailed {
		running.Status, running.Reason = RolloutRolledBack, why
		running.Finished = &now
	}
	// The old template, with the group's current count, balancer, probes
	// and settings of how it scales and rolls out.
	d := *g.desired
	back, targetVersion := target.Spec, target.Version // copies: the list moves below
	back.Name, back.Replicas, back.Balancer, back.Probe, back.Liveness = d.Name, d.Replicas, d.Balancer, d.Probe, d.Liveness
	back.Autoscale, back.Rollout = d.Autoscale, d.Rollout
	if err := c.opt.Store.PutGroup(back); err != nil {
		c.mu.Unlock()
		return RolloutStatus{}, fmt.Errorf("store group %q: %w", name, err)
	}
	g.desired = &back
	from := cur.Revision
	ro, _ := c.noteTemplateLocked(name, g, back, true, now)
	var st RolloutStatus
	if ro != nil {
		ro.Rollback, ro.From, ro.Reason = true, from, why
		st = *ro
	}
	c.saveHistoryLocked(name, g)
	c.markDirtyLocked(name)
	c.mu.Unlock()
	c.publish(hub.RolloutRolledBack, name, "", "", "%s rolled back to revision %d (%s): %s", name, to, targetVersion, why)
	return st, nil
}

// PauseRollout pauses (or resumes) the running rollout of group: a paused
// rollout moves no replica and does not run out its deadline.
func (c *Controller) PauseRollout(name string, pause bool) (RolloutStatus, error) {
	if c.placing != nil {
		return RolloutStatus{}, fmt.Errorf("%w: on the swarm runtime Swarm carries out the update with its own configuration, which cannot be paused from here; roll back instead", ErrConflict)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	if g == nil || g.desired == nil {
		return RolloutStatus{}, fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	var ro *RolloutStatus
	if g.hist != nil {
		ro = g.hist.rollout()
	}
	if !ro.active() {
		return RolloutStatus{}, fmt.Errorf("%w: no rollout of group %s is running", ErrConflict, name)
	}
	now := time.Now()
	if ro.Paused && !pause {
		// The time paused does not count against the deadline or a step.
		ro.Progressed = now
		if !ro.StepStarted.IsZero() {
			ro.StepStarted = now
		}
	}
	ro.Paused = pause
	ro.Status = RolloutProgressing
	what := "resumed"
	if pause {
		ro.Status, what = RolloutPaused, "paused"
	}
	ro.Updated = now
	c.saveHistoryLocked(name, g)
	c.markDirtyLocked(name)
	c.publish(hub.RolloutStep, name, "", "", "rollout of %s to revision %d %s", name, ro.Revision, what)
	return *ro, nil
}

// Rollouts returns a group's rollout history and revisions, newest first.
func (c *Controller) Rollouts(name string) ([]RolloutStatus, []Revision, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	if g == nil || g.desired == nil {
		return nil, nil, fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	if g.hist == nil {
		return []RolloutStatus{}, []Revision{}, nil
	}
	ros := slices.Clone(g.hist.Rollouts)
	revs := slices.Clone(g.hist.Revisions)
	slices.Reverse(ros)
	slices.Reverse(revs)
	return ros, revs, nil
}

// rolloutLoop samples the balancer of every group with a running rollout
// and has it planned again, so steps, switches and deadlines move on time.
func (c *Controller) rolloutLoop(ctx context.Context) {
	t := time.NewTicker(rolloutTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		for name, g := range c.groups {
			if g.hist == nil || !g.hist.rollout().active() {
				continue
			}
			c.sampleRolloutLocked(g)
			c.markDirtyLocked(name)
		}
		c.mu.Unlock()
	}
}

// sampleRolloutLocked adds a tick of the balancer's answers, split by old
// and new version, to the rollout's health window.
func (c *Controller) sampleRolloutLocked(g *group) {
	if g.balancer == nil {
		return
	}
	ro := g.hist.rollout()
	if g.health == nil {
		g.health = &rolloutHealth{last: map[string][2]uint64{}}
	}
	hashOf := map[string]string{}
	for _, r := range g.observed {
		hashOf[r.ID] = r.TemplateHash
	}
	var tick [4]uint64
	for _, us := range g.balancer.b.Stats() {
		prev, seen := g.health.last[us.ID]
		g.health.last[us.ID] = [2]uint64{us.Requests, us.Errors}
		if !seen || us.Requests < prev[0] || us.Errors < prev[1] {
			continue
		}
		k := 2
		if hashOf[us.ID] == ro.Hash {
			k = 0
		}
		tick[k] += us.Requests - prev[0]
		tick[k+1] += us.Errors - prev[1]
	}
	g.health.ticks = append(g.health.ticks, tick)
	if len(g.health.ticks) > healthWindow {
		g.health.ticks = slices.Delete(g.health.ticks, 0, len(g.health.ticks)-healthWindow)
	}
	var sum [4]uint64
	for _, t := range g.health.ticks {
		for i := range t {
			sum[i] += t[i]
		}
	}
	ro.ErrorRates = map[string]float64{}
	if sum[0] > 0 {
		ro.ErrorRates[ro.Version] = float64(sum[1]) / float64(sum[0])
	}
	if sum[2] > 0 && ro.FromVersion != "" {
		ro.ErrorRates[ro.FromVersion] = float64(sum[3]) / float64(sum[2])
	}
}

// rotationView is which replicas of a group in a rollout get traffic.
type rotationView struct {
	mode  Rotation
	hash  string // the new template's
	share int    // canary: the new version's share
}

// inRotation reports whether r may get traffic as far as a rollout says.
func (v rotationView) inRotation(r replica.Replica) bool {
	switch v.mode {
	case RotateOld:
		return r.TemplateHash != v.hash
	case RotateNew:
		return r.TemplateHash == v.hash
	}
	return true
}

// loadHistories reads every group's history at start.
func (c *Controller) loadHistoriesLocked() error {
	var errs []error
	for name, g := range c.groups {
		h, err := c.loadHistory(name)
		if err != nil {
			errs = append(errs, err)
		}
		g.hist = h
	}
	return errors.Join(errs...)
}

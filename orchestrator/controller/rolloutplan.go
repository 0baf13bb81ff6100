package controller

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// The rollout planner: pure, like MakePlan, which hands it a group whose
// replicas are not all of the current template while a rollout runs. From
// what is observed (which replicas are old and new, which are ready and
// since when, how the new version fares at the balancer) it says which
// replicas to make and remove this round, which versions are in rotation
// and with what share, and where the rollout stands.

// Rotation says which replicas of a group in a rollout get traffic.
type Rotation int

const (
	// RotateAll: every ready replica, old and new, weighted by the policy.
	RotateAll Rotation = iota
	// RotateOld: only the old version (blue-green before its switch).
	RotateOld
	// RotateNew: only the new version (blue-green after its switch).
	RotateNew
)

// RolloutInput is what the rollout planner looks at.
type RolloutInput struct {
	Settings spec.Rollout // settled
	Count    int          // the replicas the group should run
	Hash     string       // the new template's
	// Ready says since when each running replica has passed its readiness
	// probe; a replica not in it is not ready.
	Ready map[string]time.Time
	Now   time.Time
	// The rollout's state so far.
	Started      time.Time
	Progressed   time.Time // the last time more new replicas were ready
	NewReadySeen int       // new replicas available at Progressed
	Step         int       // canary: the index of the step in force
	StepStarted  time.Time // canary: when that step's share took effect; zero until it did
	Switched     time.Time // blue-green: when traffic went to the new set
	Paused       bool
	// Health of the new and old versions at the balancer over the last
	// window: answers and 5xx among them.
	NewAnswers, NewErrors, OldAnswers, OldErrors uint64
}

// RolloutPlan is the rollout planner's answer.
type RolloutPlan struct {
	Actions  []Action
	Rotation Rotation
	// CanaryShare is the new version's share of requests in percent, for
	// RotateAll during a canary; 0 means by the policy alone.
	CanaryShare int
	// State after this round.
	Progressed   time.Time
	NewReadySeen int
	Step         int
	StepStarted  time.Time
	Switched     time.Time
	// Done: every replica is new and available. Failed, if set, is why the
	// rollout must be rolled back.
	Done   bool
	Failed string
	// Progress says where it stands, for people: "3 of 5 new ready".
	Progress string
	NewReady int
	Old, New int
}

// planRollout plans one round of a rollout over members, the group's
// replicas with one per number, broken ones included (in.broken decides).
func planRollout(in PlanInput, members []replica.Replica) RolloutPlan {
	ro := *in.Rollout
	s := ro.Settings
	out := RolloutPlan{Progressed: ro.Progressed, NewReadySeen: ro.NewReadySeen, Step: ro.Step, StepStarted: ro.StepStarted, Switched: ro.Switched}
	if out.Progressed.IsZero() {
		out.Progressed = ro.Started
	}
	minReady := time.Duration(s.MinReadySeconds) * time.Second
	available := func(r replica.Replica) bool {
		since, ok := ro.Ready[r.ID]
		return ok && r.State == replica.StateRunning && !since.After(ro.Now.Add(-minReady))
	}
	ready := func(r replica.Replica) bool {
		_, ok := ro.Ready[r.ID]
		return ok && r.State == replica.StateRunning
	}

	// Broken replicas go: an old one for good, a new one replaced.
	var old, fresh []replica.Replica
	for _, r := range members {
		b := in.broken(r)
		switch {
		case b != nil && r.TemplateHash != ro.Hash:
			a := *b
			a.Kind = Remove
			out.Actions = append(out.Actions, a)
		case b != nil:
			out.Actions = append(out.Actions, *b)
			fresh = append(fresh, r)
		case r.TemplateHash == ro.Hash:
			fresh = append(fresh, r)
		default:
			old = append(old, r)
		}
	}
	var availNew, availOld, readyOld int
	for _, r := range fresh {
		if available(r) {
			availNew++
		}
	}
	for _, r := range old {
		if available(r) {
			availOld++
		}
		if ready(r) {
			readyOld++
		}
	}
	out.Old, out.New, out.NewReady = len(old), len(fresh), availNew
	n := ro.Count
	out.Progress = fmt.Sprintf("%d of %d new ready, %d old left", availNew, n, len(old))

	if availNew > ro.NewReadySeen {
		out.Progressed, out.NewReadySeen = ro.Now, availNew
	}
	if len(old) == 0 && len(fresh) == n && availNew == n {
		out.Done = true
		out.Rotation = RotateNew
		return out
	}
	deadline := time.Duration(s.ProgressDeadlineSeconds) * time.Second
	if !ro.Paused && ro.Now.Sub(out.Progressed) > deadline {
		out.Failed = fmt.Sprintf("no progress for %s (progress deadline): %d of %d new replicas ready", deadline, availNew, n)
		return out
	}
	if why := errorRateFailed(s, ro); why != "" {
		out.Failed = why
		return out
	}
	if ro.Paused {
		out.Rotation = RotateAll
		if s.Strategy == spec.StrategyBlueGreen && !ro.Switched.IsZero() {
			out.Rotation = RotateNew
		}
		out.Progress += " (paused)"
		return out
	}

	free := freeNumbers(members)
	create := func(k int) {
		for range max(k, 0) {
			out.Actions = append(out.Actions, Action{Kind: Create, Reason: ReasonOutdated, Index: free()})
		}
	}
	remove := func(rs []replica.Replica, k int) {
		for _, r := range rs[:min(max(k, 0), len(rs))] {
			out.Actions = append(out.Actions, Action{Kind: Remove, Reason: ReasonOutdated, Index: r.Index, ID: r.ID})
		}
	}
	// Old replicas leave unready ones first, then the highest numbers.
	sort.SliceStable(old, func(i, j int) bool {
		ri, rj := ready(old[i]), ready(old[j])
		if ri != rj {
			return !ri
		}
		return old[i].Index > old[j].Index
	})

	switch s.Strategy {
	case spec.StrategyRecreate:
		out.Rotation = RotateAll
		if len(old) > 0 {
			remove(old, len(old))
			out.Progress = fmt.Sprintf("stopping all %d old replicas first", len(old))
			return out
		}
		create(n - len(fresh))

	case spec.StrategyBlueGreen:
		delay := time.Duration(s.BlueGreen.ScaleDownDelaySeconds) * time.Second
		switch {
		case availNew < n:
			out.Rotation = RotateOld
			create(n - len(fresh))
			out.Progress = fmt.Sprintf("green: %d of %d ready; blue serves", availNew, n)
		case out.Switched.IsZero():
			out.Switched = ro.Now
			out.Rotation = RotateNew
			out.Progress = fmt.Sprintf("switched to green; blue kept %s", delay)
		case ro.Now.Sub(out.Switched) < delay:
			out.Rotation = RotateNew
			out.Progress = fmt.Sprintf("green serves; blue kept %s more", (delay - ro.Now.Sub(out.Switched)).Round(time.Second))
		default:
			out.Rotation = RotateNew
			remove(old, len(old))
			out.Progress = "green serves; blue removed"
		}

	case spec.StrategyCanary:
		steps := s.Canary.Steps
		step := min(out.Step, len(steps)-1)
		share := steps[step]
		want := n
		if share < 100 {
			want = max(1, int(math.Ceil(float64(n)*float64(share)/100)))
		}
		create(want - len(fresh))
		out.Rotation = RotateAll
		if availNew < want {
			// The step's share takes effect once its replicas are ready;
			// until then the previous step's holds (none before the first).
			out.CanaryShare = 0
			if step > 0 && availNew > 0 {
				out.CanaryShare = steps[step-1]
			}
			out.Progress = fmt.Sprintf("step %d of %d (%d%%): %d of %d canary replicas ready", step+1, len(steps), share, availNew, want)
			return out
		}
		out.CanaryShare = share
		if out.StepStarted.IsZero() {
			out.StepStarted = ro.Now
		}
		if share == 100 {
			out.CanaryShare = 0
			out.Rotation = RotateNew
			remove(old, len(old))
			out.Progress = fmt.Sprintf("step %d of %d (100%%): all traffic on the new version; old removed", step+1, len(steps))
			return out
		}
		pause := time.Duration(s.Canary.PauseSeconds) * time.Second
		held := ro.Now.Sub(out.StepStarted)
		out.Progress = fmt.Sprintf("step %d of %d: %d%% of traffic on the new version, %s of %s", step+1, len(steps), share, held.Round(time.Second), pause)
		if held >= pause {
			out.Step, out.StepStarted = step+1, time.Time{}
			out.Progressed = ro.Now
		}

	default: // rolling
		out.Rotation = RotateAll
		surge, unavailable := *s.MaxSurge, *s.MaxUnavailable
		total := len(old) + len(fresh)
		create(min(n-len(fresh), n+surge-total))
		// Unready old replicas serve no one: they go first, freely.
		var unreadyOld int
		for _, r := range old {
			if !ready(r) {
				unreadyOld++
			}
		}
		canLose := availOld + availNew - (n - unavailable)
		remove(old, unreadyOld+max(min(canLose, len(old)-unreadyOld), 0))
	}
	return out
}

// errorRateFailed says why the new version must be rolled back for its
// errors at the balancer, or "": its share of 5xx passed the threshold and
// the old version's over the same window, on enough answers to tell.
func errorRateFailed(s spec.Rollout, ro RolloutInput) string {
	if s.AutoRollback == nil || ro.NewAnswers < minAnswersToJudge {
		return ""
	}
	newRate := float64(ro.NewErrors) / float64(ro.NewAnswers)
	oldRate := 0.0
	if ro.OldAnswers > 0 {
		oldRate = float64(ro.OldErrors) / float64(ro.OldAnswers)
	}
	if newRate <= s.AutoRollback.ErrorRate || newRate <= oldRate {
		return ""
	}
	return fmt.Sprintf("the new version failed %.0f%% of %d requests (%d), over the threshold of %.0f%%; the old version failed %.0f%% over the same window",
		100*newRate, ro.NewAnswers, ro.NewErrors, 100*s.AutoRollback.ErrorRate, 100*oldRate)
}

// minAnswersToJudge is how many answers of the new version an error rate
// needs before it can fail a rollout.
const minAnswersToJudge = 20

// freeNumbers returns a function that hands out the lowest replica numbers
// that members do not use, one per call.
func freeNumbers(members []replica.Replica) func() int {
	used := map[int]bool{}
	for _, r := range members {
		used[r.Index] = true
	}
	next := 1
	return func() int {
		for used[next] {
			next++
		}
		used[next] = true
		return next
	}
}

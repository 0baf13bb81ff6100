package controller

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// ActionKind is what a plan step does.
type ActionKind int

const (
	// Create starts a new replica at a free number.
	Create ActionKind = iota
	// Remove stops a replica gracefully and deletes it.
	Remove
	// Replace removes a replica and creates a fresh one at the same number.
	Replace
	// SetCount tells a placing runtime the group's count and template.
	SetCount
	// Unplace tells a placing runtime the group is gone.
	Unplace
)

func (k ActionKind) String() string {
	switch k {
	case Create:
		return "create"
	case Remove:
		return "remove"
	case Replace:
		return "replace"
	case SetCount:
		return "set count"
	case Unplace:
		return "unplace"
	}
	return fmt.Sprintf("ActionKind(%d)", int(k))
}

// Reason is why a plan step is needed.
type Reason int

const (
	ReasonScaleUp Reason = iota
	// ReasonScaleDown: more replicas than desired; the highest numbers go.
	ReasonScaleDown
	// ReasonDied: the replica exited or is dead (Action.State, Action.ExitCode).
	ReasonDied
	// ReasonNeverStarted: created but never started.
	ReasonNeverStarted
	// ReasonUnhealthy: it failed its liveness probe past the grace period
	// (failing readiness only takes a replica out of rotation).
	ReasonUnhealthy
	// ReasonOutdated: it was made from another template.
	ReasonOutdated
	ReasonGroupDeleted
	// ReasonInvalidNumber: its replica number is not a positive integer.
	ReasonInvalidNumber
	// ReasonDuplicateNumber: another replica holds its number.
	ReasonDuplicateNumber
	// ReasonNotPlaced: a placing runtime has not been told the group yet.
	ReasonNotPlaced
)

// broken reports whether the reason is a failure of the replica itself,
// which counts as a restart when it is replaced.
func (r Reason) broken() bool {
	return r == ReasonDied || r == ReasonNeverStarted || r == ReasonUnhealthy
}

// Action is one step of a plan.
type Action struct {
	Kind   ActionKind
	Reason Reason
	Index  int
	ID     string // the existing replica, for Remove and Replace
	// State and ExitCode describe a replica that died (ReasonDied).
	State    string
	ExitCode int
	// Wait is how long a held replacement still waits (crash-loop backoff).
	Wait time.Duration
	// Count is the replica count for SetCount.
	Count int
}

// Why is the action's reason for people.
func (a Action) Why() string {
	var why string
	switch a.Reason {
	case ReasonScaleUp:
		why = "scale up"
	case ReasonScaleDown:
		why = "highest number"
		if a.Kind == SetCount {
			return "scale down"
		}
	case ReasonDied:
		why = fmt.Sprintf("%s with exit code %d", a.State, a.ExitCode)
	case ReasonNeverStarted:
		why = "created but never started"
	case ReasonUnhealthy:
		why = "unhealthy"
	case ReasonOutdated:
		why = "outdated"
		if a.Kind != Remove {
			why = "outdated template"
		}
	case ReasonGroupDeleted:
		return "group deleted"
	case ReasonInvalidNumber:
		return "invalid replica number"
	case ReasonDuplicateNumber:
		return "duplicate replica number"
	case ReasonNotPlaced:
		return "not placed yet"
	default:
		why = fmt.Sprintf("Reason(%d)", int(a.Reason))
	}
	if a.Kind == Remove {
		why = "scale down: " + why
	}
	if a.Wait > 0 {
		why += fmt.Sprintf("; crash loop, retry in %s", a.Wait.Round(time.Second))
	}
	return why
}

func (a Action) String() string {
	switch a.Kind {
	case SetCount:
		return fmt.Sprintf("set count %d (%s)", a.Count, a.Why())
	case Unplace:
		return fmt.Sprintf("unplace (%s)", a.Why())
	}
	return fmt.Sprintf("%s #%d (%s)", a.Kind, a.Index, a.Why())
}

// BalancerKind is what a plan does to the group's balancer.
type BalancerKind int

const (
	// BalancerKeep leaves it as it is.
	BalancerKeep BalancerKind = iota
	// BalancerStart starts one on 127.0.0.1:Port (0: any free port).
	BalancerStart
	// BalancerSetPolicy switches the running one's policy in place.
	BalancerSetPolicy
	// BalancerRestart closes it and starts one on the new port.
	BalancerRestart
	// BalancerClose closes it: policy none, or the group is gone.
	BalancerClose
)

// BalancerAction is the plan's step for the group's balancer.
type BalancerAction struct {
	Kind   BalancerKind
	Policy string
	Port   int
}

func (b BalancerAction) String() string {
	switch b.Kind {
	case BalancerStart:
		return fmt.Sprintf("start balancer (%s on port %d)", b.Policy, b.Port)
	case BalancerSetPolicy:
		return "balancer policy " + b.Policy
	case BalancerRestart:
		return fmt.Sprintf("restart balancer (%s on port %d)", b.Policy, b.Port)
	case BalancerClose:
		return "close balancer"
	}
	return ""
}

// BalancerState is the group's running balancer, as the planner sees it.
type BalancerState struct {
	Running bool
	Policy  string
	Port    int // the spec's port it was started for; 0 for any
}

// Placement is what a placing runtime was last told of a group.
type Placement struct {
	Count   int
	Hash    string
	Removed bool // the group was unplaced
}

// ProbeTarget is a replica the prober should watch.
type ProbeTarget struct {
	ID, Name string
	Addr     string // host:port the probe dials
}

// Plan is what one reconcile of a group will do. It is plain data so tests
// compare plans without an engine; apply carries it out.
type Plan struct {
	Group    string
	Balancer BalancerAction
	Actions  []Action
	// Held are dead replicas whose replacement waits for a crash-loop backoff.
	Held []Action
	// RetryAt, when not zero, is when the group must be reconciled again
	// (the earliest held replacement).
	RetryAt time.Time
	// Probes are the replicas to probe, with the group's probe settings.
	Probes   []ProbeTarget
	Probe    spec.Probe // readiness
	Liveness spec.Probe
	// Crashes are the group's crash records after this observation.
	Crashes map[int]crashState
	// Template is what Create, Replace and SetCount make replicas from;
	// Create and Replace set its Index.
	Template replica.Spec
	// Forget: the group is neither desired nor running any more.
	Forget bool
	// Rollout is the rollout planner's answer while a rollout runs.
	Rollout *RolloutPlan
}

// Empty reports whether the plan changes nothing on the runtime or the balancer.
func (p Plan) Empty() bool { return len(p.Actions) == 0 && p.Balancer.Kind == BalancerKeep }

func (p Plan) String() string {
	var parts []string
	if p.Balancer.Kind != BalancerKeep {
		parts = append(parts, p.Balancer.String())
	}
	for _, a := range p.Actions {
		parts = append(parts, a.String())
	}
	for _, a := range p.Held {
		parts = append(parts, "hold "+a.String())
	}
	if len(parts) == 0 {
		return p.Group + ": nothing to do"
	}
	return p.Group + ": " + strings.Join(parts, ", ")
}

// PlanInput is everything the pure planner looks at.
type PlanInput struct {
	Group string
	// Desired is nil when the group was deleted: every replica goes.
	Desired *spec.Group
	// Template is what new replicas are made from; its TemplateHash is the
	// one current replicas must carry.
	Template replica.Spec
	// Actual are the group's replicas as observed.
	Actual []replica.Replica
	// Unhealthy holds the IDs of running replicas that failed their
	// liveness probe for too long: they are replaced like dead ones.
	Unhealthy map[string]bool
	// Ran is how long each newly dead replica ran, where known.
	Ran map[string]time.Duration
	// Crashes are the group's crash records before this observation.
	Crashes map[int]crashState
	// Balancer is the group's running balancer.
	Balancer BalancerState
	// Placing: the runtime places replicas itself; Placed is what it was
	// last told (nil: nothing since the controller started).
	Placing bool
	Placed  *Placement
	Now     time.Time
	// Pooled are the replicas paused into an autoscaled group's warm pool:
	// a scale down removes them last.
	Pooled map[string]bool
	// Rollout, while a rollout of the group runs, has the rollout planner
	// decide how its replicas move to the new template (rolloutplan.go).
	Rollout *RolloutInput
}

// MakePlan compares desired with actual for one group. Scale down removes
// broken replicas first, then outdated ones, then the highest numbers; scale
// up takes the lowest free numbers.
func MakePlan(in PlanInput) Plan {
	p := Plan{Group: in.Group, Template: in.Template}
	actual := append([]replica.Replica(nil), in.Actual...)
	sort.Slice(actual, func(i, j int) bool {
		if actual[i].Index != actual[j].Index {
			return actual[i].Index < actual[j].Index
		}
		return actual[i].Created.Before(actual[j].Created)
	})
	if in.Desired != nil {
		p.Probe, p.Liveness = in.Desired.Probe, in.Desired.Liveness
	}
	for _, r := range actual {
		if r.State == replica.StateRunning && r.Address != "" {
			p.Probes = append(p.Probes, ProbeTarget{ID: r.ID, Name: r.Name, Addr: r.Address})
		}
	}
	p.Balancer = planBalancer(in.Desired, in.Balancer, len(actual))
	p.Forget = in.Desired == nil && len(actual) == 0
	if in.Placing {
		p.Actions = planPlacement(in)
		if in.Rollout != nil && in.Desired != nil {
			rp := planPlacedRollout(in, actual)
			p.Rollout = &rp
		}
		return p
	}
	p.Crashes = countCrashes(in.Crashes, actual, in.Ran, in.Now)

	if in.Desired == nil {
		for _, r := range actual {
			p.Actions = append(p.Actions, Action{Kind: Remove, Reason: ReasonGroupDeleted, Index: r.Index, ID: r.ID})
		}
		return p
	}

	// One member per number; anything else (a duplicate number, a number
	// that is not a positive integer) is removed.
	var members []replica.Replica
	seen := map[int]bool{}
	for _, r := range actual {
		switch {
		case r.Index < 1:
			p.Actions = append(p.Actions, Action{Kind: Remove, Reason: ReasonInvalidNumber, Index: r.Index, ID: r.ID})
		case seen[r.Index]:
			p.Actions = append(p.Actions, Action{Kind: Remove, Reason: ReasonDuplicateNumber, Index: r.Index, ID: r.ID})
		default:
			seen[r.Index] = true
			members = append(members, r)
		}
	}

	if in.Rollout != nil {
		rp := planRollout(in, members)
		p.Actions = append(p.Actions, rp.Actions...)
		p.Rollout = &rp
		return p
	}

	hash := in.Template.TemplateHash
	want := in.Desired.Replicas
	if excess := len(members) - want; excess > 0 {
		// Rank removal candidates: broken, then outdated, then highest number.
		rank := func(r replica.Replica) int {
			switch {
			case in.broken(r) != nil:
				return 0
			case r.TemplateHash != hash:
				return 1
			case in.Pooled[r.ID]:
				return 3
			}
			return 2
		}
		order := append([]replica.Replica(nil), members...)
		sort.SliceStable(order, func(i, j int) bool {
			ri, rj := rank(order[i]), rank(order[j])
			if ri != rj {
				return ri < rj
			}
			return order[i].Index > order[j].Index
		})
		gone := map[string]bool{}
		for _, r := range order[:excess] {
			a := Action{Kind: Remove, Reason: ReasonScaleDown, Index: r.Index, ID: r.ID}
			switch rank(r) {
			case 0:
				a = *in.broken(r)
				a.Kind = Remove
			case 1:
				a.Reason = ReasonOutdated
			}
			p.Actions = append(p.Actions, a)
			gone[r.ID] = true
		}
		var kept []replica.Replica
		for _, r := range members {
			if !gone[r.ID] {
				kept = append(kept, r)
			}
		}
		members = kept
	}

	for _, r := range members {
		if a := in.broken(r); a != nil {
			if cs, ok := p.Crashes[r.Index]; ok && !cs.until.IsZero() && in.Now.Before(cs.until) {
				a.Wait = cs.until.Sub(in.Now)
				p.Held = append(p.Held, *a)
				if p.RetryAt.IsZero() || cs.until.Before(p.RetryAt) {
					p.RetryAt = cs.until
				}
				continue
			}
			p.Actions = append(p.Actions, *a)
			continue
		}
		if r.TemplateHash != hash {
			p.Actions = append(p.Actions, Action{Kind: Replace, Reason: ReasonOutdated, Index: r.Index, ID: r.ID})
		}
	}

	used := map[int]bool{}
	for _, r := range members {
		used[r.Index] = true
	}
	for n, i := len(members), 1; n < want; i++ {
		if used[i] {
			continue
		}
		p.Actions = append(p.Actions, Action{Kind: Create, Reason: ReasonScaleUp, Index: i})
		n++
	}
	return p
}

// broken returns the replacement of a replica that cannot serve, or nil if
// it can.
func (in PlanInput) broken(r replica.Replica) *Action {
	a := &Action{Kind: Replace, Index: r.Index, ID: r.ID}
	switch {
	case r.State == replica.StateExited || r.State == replica.StateDead:
		a.Reason, a.State, a.ExitCode = ReasonDied, r.State, r.ExitCode
	case r.State == replica.StateCreated:
		a.Reason = ReasonNeverStarted
	case in.Unhealthy[r.ID]:
		a.Reason = ReasonUnhealthy
	default:
		return nil
	}
	return a
}

// countCrashes returns the crash records after the deaths in actual: a
// death is counted once, and a replica that died within crashWindow of
// starting extends a crash loop. The first quick death is replaced at once;
// from the second on, the replacement waits 1s, 2s, 4s ... up to a minute.
func countCrashes(prev map[int]crashState, actual []replica.Replica, ran map[string]time.Duration, now time.Time) map[int]crashState {
	out := make(map[int]crashState, len(prev))
	for k, v := range prev {
		out[k] = v
	}
	for _, r := range actual {
		if r.State != replica.StateExited && r.State != replica.StateDead {
			continue
		}
		cs := out[r.Index]
		if cs.id == r.ID {
			continue // already counted
		}
		cs.id, cs.exitCode = r.ID, r.ExitCode
		if d, ok := ran[r.ID]; ok && d < crashWindow {
			cs.count++
		} else {
			cs.count = 0
		}
		cs.until = time.Time{}
		if cs.count >= 2 {
			cs.until = now.Add(min(time.Second<<min(cs.count-2, 6), time.Minute))
		}
		out[r.Index] = cs
	}
	return out
}

// planBalancer makes the balancer match the spec: started, switched to the
// spec's policy, restarted on a new port, or closed for policy none. A
// deleted group keeps its balancer until its last replica is gone, so
// leaving replicas drain through it.
func planBalancer(desired *spec.Group, cur BalancerState, replicas int) BalancerAction {
	if desired == nil {
		if cur.Running && replicas == 0 {
			return BalancerAction{Kind: BalancerClose}
		}
		return BalancerAction{}
	}
	want := desired.Balancer
	switch {
	case want.Policy == spec.PolicyNone || want.Policy == "":
		if cur.Running {
			return BalancerAction{Kind: BalancerClose}
		}
	case !cur.Running:
		return BalancerAction{Kind: BalancerStart, Policy: want.Policy, Port: want.Port}
	case cur.Port != want.Port:
		return BalancerAction{Kind: BalancerRestart, Policy: want.Policy, Port: want.Port}
	case cur.Policy != want.Policy:
		return BalancerAction{Kind: BalancerSetPolicy, Policy: want.Policy, Port: want.Port}
	}
	return BalancerAction{}
}

// planPlacement tells a placing runtime what changed since it was last told.
func planPlacement(in PlanInput) []Action {
	if in.Desired == nil {
		if in.Placed == nil || !in.Placed.Removed {
			return []Action{{Kind: Unplace, Reason: ReasonGroupDeleted}}
		}
		return nil
	}
	a := Action{Kind: SetCount, Count: in.Desired.Replicas}
	switch pl := in.Placed; {
	case pl == nil || pl.Removed:
		a.Reason = ReasonNotPlaced
	case pl.Hash != in.Template.TemplateHash:
		a.Reason = ReasonOutdated
	case pl.Count < a.Count:
		a.Reason = ReasonScaleUp
	case pl.Count > a.Count:
		a.Reason = ReasonScaleDown
	default:
		return nil
	}
	return []Action{a}
}

package controller

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// ActionKind is what a plan step does to one replica number.
type ActionKind int

const (
	// Create starts a new replica at a free number.
	Create ActionKind = iota
	// Remove stops a replica gracefully and deletes it.
	Remove
	// Replace removes a replica and creates a fresh one at the same number.
	Replace
)

func (k ActionKind) String() string {
	switch k {
	case Create:
		return "create"
	case Remove:
		return "remove"
	case Replace:
		return "replace"
	}
	return fmt.Sprintf("ActionKind(%d)", int(k))
}

// Action is one step of a plan, with the reason it is needed.
type Action struct {
	Kind   ActionKind
	Index  int
	ID     string // the existing container, for Remove and Replace
	Reason string
}

func (a Action) String() string {
	return fmt.Sprintf("%s #%d (%s)", a.Kind, a.Index, a.Reason)
}

// Plan is what one reconcile of a group will do. It is plain data so tests
// compare plans without an engine.
type Plan struct {
	Group   string
	Actions []Action
	// Held are dead replicas whose replacement waits for a crash-loop backoff.
	Held []Action
	// RetryAt, when not zero, is when the group must be reconciled again
	// (the earliest held replacement).
	RetryAt time.Time
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool { return len(p.Actions) == 0 }

func (p Plan) String() string {
	if p.Empty() && len(p.Held) == 0 {
		return p.Group + ": nothing to do"
	}
	var parts []string
	for _, a := range p.Actions {
		parts = append(parts, a.String())
	}
	for _, a := range p.Held {
		parts = append(parts, "hold "+a.String())
	}
	return p.Group + ": " + strings.Join(parts, ", ")
}

// PlanInput is everything the pure planner looks at.
type PlanInput struct {
	Group string
	// Desired is nil when the group was deleted: every replica goes.
	Desired *spec.Group
	// Hash is the template hash the group's replicas should carry.
	Hash string
	// Actual are the group's containers as observed.
	Actual []replica.Replica
	// Unhealthy holds the IDs of running replicas that failed their
	// readiness probe for too long: they are replaced like dead ones.
	Unhealthy map[string]bool
	// HoldUntil maps a replica number to the time before which a dead
	// replica there must not be replaced (crash-loop backoff).
	HoldUntil map[int]time.Time
	Now       time.Time
}

// broken reports why a replica cannot serve, or "" if it can.
func (in PlanInput) broken(r replica.Replica) string {
	switch r.State {
	case replica.StateExited, replica.StateDead:
		return fmt.Sprintf("%s with exit code %d", r.State, r.ExitCode)
	case replica.StateCreated:
		return "created but never started"
	}
	if in.Unhealthy[r.ID] {
		return "unhealthy"
	}
	return ""
}

// MakePlan compares desired with actual for one group. Scale down removes
// broken replicas first, then outdated ones, then the highest numbers; scale
// up takes the lowest free numbers.
func MakePlan(in PlanInput) Plan {
	p := Plan{Group: in.Group}
	actual := append([]replica.Replica(nil), in.Actual...)
	sort.Slice(actual, func(i, j int) bool {
		if actual[i].Index != actual[j].Index {
			return actual[i].Index < actual[j].Index
		}
		return actual[i].Created.Before(actual[j].Created)
	})

	if in.Desired == nil {
		for _, r := range actual {
			p.Actions = append(p.Actions, Action{Kind: Remove, Index: r.Index, ID: r.ID, Reason: "group deleted"})
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
			p.Actions = append(p.Actions, Action{Kind: Remove, Index: r.Index, ID: r.ID, Reason: "invalid replica number"})
		case seen[r.Index]:
			p.Actions = append(p.Actions, Action{Kind: Remove, Index: r.Index, ID: r.ID, Reason: "duplicate replica number"})
		default:
			seen[r.Index] = true
			members = append(members, r)
		}
	}

	want := in.Desired.Replicas
	if excess := len(members) - want; excess > 0 {
		// Rank removal candidates: broken, then outdated, then highest number.
		rank := func(r replica.Replica) int {
			switch {
			case in.broken(r) != "":
				return 0
			case r.TemplateHash != in.Hash:
				return 1
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
			reason := "scale down: highest number"
			switch rank(r) {
			case 0:
				reason = "scale down: " + in.broken(r)
			case 1:
				reason = "scale down: outdated"
			}
			p.Actions = append(p.Actions, Action{Kind: Remove, Index: r.Index, ID: r.ID, Reason: reason})
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
		if why := in.broken(r); why != "" {
			a := Action{Kind: Replace, Index: r.Index, ID: r.ID, Reason: why}
			if until, ok := in.HoldUntil[r.Index]; ok && in.Now.Before(until) {
				a.Reason = fmt.Sprintf("%s; crash loop, retry in %s", why, until.Sub(in.Now).Round(time.Second))
				p.Held = append(p.Held, a)
				if p.RetryAt.IsZero() || until.Before(p.RetryAt) {
					p.RetryAt = until
				}
				continue
			}
			p.Actions = append(p.Actions, a)
			continue
		}
		if r.TemplateHash != in.Hash {
			p.Actions = append(p.Actions, Action{Kind: Replace, Index: r.Index, ID: r.ID, Reason: "outdated template"})
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
		p.Actions = append(p.Actions, Action{Kind: Create, Index: i, Reason: "scale up"})
		n++
	}
	return p
}

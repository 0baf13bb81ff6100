package spec

import (
	"fmt"
	"slices"

	"github.com/flotilla/flotilla/sample-services/version"
)

// Versions of the sample services a group may run (Group.Version), and
// the kinds of bad release v3 may be (Group.Flaw).
var (
	Versions = version.Versions
	Flaws    = version.Flaws
)

// DefaultVersion is what a group runs when it names no version.
const DefaultVersion = version.Default

// Rollout strategies (Rollout.Strategy).
const (
	// StrategyRolling replaces replicas a few at a time: new ones join
	// rotation once ready, old ones drain before they stop.
	StrategyRolling = "rolling"
	// StrategyRecreate stops every old replica, then starts the new ones:
	// the downtime in between is the lesson.
	StrategyRecreate = "recreate"
	// StrategyBlueGreen starts a full new set beside the old, switches
	// traffic to it at once, and keeps the old set until the switch holds.
	StrategyBlueGreen = "blue-green"
	// StrategyCanary sends a growing share of traffic to the new version,
	// step by step, with a pause between steps.
	StrategyCanary = "canary"
)

// Strategies lists every strategy, the default first.
var Strategies = []string{StrategyRolling, StrategyRecreate, StrategyBlueGreen, StrategyCanary}

// Rollout says how a change to a group's template (version, resources,
// settings, isolation) reaches its replicas. Kubernetes' names where it has
// them.
type Rollout struct {
	Strategy string `json:"strategy,omitempty" yaml:"strategy,omitempty"`
	// MaxSurge is how many replicas over the count a rolling update may
	// run (default 1); MaxUnavailable how many under it may be ready
	// (default 0). Both 0 could never progress.
	MaxSurge       *int `json:"maxSurge,omitempty" yaml:"maxSurge,omitempty"`
	MaxUnavailable *int `json:"maxUnavailable,omitempty" yaml:"maxUnavailable,omitempty"`
	// MinReadySeconds is how long a new replica must stay ready before it
	// counts as available.
	MinReadySeconds int `json:"minReadySeconds,omitempty" yaml:"minReadySeconds,omitempty"`
	// ProgressDeadlineSeconds bounds a rollout that makes no progress
	// (default 120); past it the rollout fails and is rolled back.
	ProgressDeadlineSeconds int           `json:"progressDeadlineSeconds,omitempty" yaml:"progressDeadlineSeconds,omitempty"`
	Canary                  *Canary       `json:"canary,omitempty" yaml:"canary,omitempty"`
	BlueGreen               *BlueGreen    `json:"blueGreen,omitempty" yaml:"blueGreen,omitempty"`
	AutoRollback            *AutoRollback `json:"autoRollback,omitempty" yaml:"autoRollback,omitempty"`
}

// Canary are the steps of a canary rollout: the new version's share of the
// traffic, in percent, each held for PauseSeconds (default 10) before the
// next. A last step under 100 is followed by 100.
type Canary struct {
	Steps        []int `json:"steps,omitempty" yaml:"steps,omitempty"`
	PauseSeconds int   `json:"pauseSeconds,omitempty" yaml:"pauseSeconds,omitempty"`
}

// BlueGreen keeps the old set, out of rotation, for ScaleDownDelaySeconds
// (default 30) after the switch: a switch back until then is instant.
type BlueGreen struct {
	ScaleDownDelaySeconds int `json:"scaleDownDelaySeconds,omitempty" yaml:"scaleDownDelaySeconds,omitempty"`
}

// AutoRollback rolls a rollout back when the new version's share of 5xx
// answers at the balancer passes ErrorRate (0 to 1) and the old version's
// over the same window.
type AutoRollback struct {
	ErrorRate float64 `json:"errorRate" yaml:"errorRate"`
}

// Rollout defaults.
const (
	DefaultMaxSurge                = 1
	DefaultMaxUnavailable          = 0
	DefaultProgressDeadlineSeconds = 120
	DefaultCanaryPauseSeconds      = 10
	DefaultScaleDownDelaySeconds   = 30
)

// DefaultCanarySteps are a canary's steps when it names none.
var DefaultCanarySteps = []int{10, 50, 100}

// Settled is r with its defaults; a nil r is a rolling update with the
// defaults.
func (r *Rollout) Settled() Rollout {
	var o Rollout
	if r != nil {
		o = *r
	}
	if o.Strategy == "" {
		o.Strategy = StrategyRolling
	}
	if o.MaxSurge == nil {
		v := DefaultMaxSurge
		o.MaxSurge = &v
	}
	if o.MaxUnavailable == nil {
		v := DefaultMaxUnavailable
		o.MaxUnavailable = &v
	}
	if o.ProgressDeadlineSeconds == 0 {
		o.ProgressDeadlineSeconds = DefaultProgressDeadlineSeconds
	}
	c := Canary{Steps: DefaultCanarySteps, PauseSeconds: DefaultCanaryPauseSeconds}
	if o.Canary != nil {
		if len(o.Canary.Steps) > 0 {
			c.Steps = o.Canary.Steps
		}
		if o.Canary.PauseSeconds > 0 {
			c.PauseSeconds = o.Canary.PauseSeconds
		}
	}
	if c.Steps[len(c.Steps)-1] != 100 {
		c.Steps = append(slices.Clone(c.Steps), 100)
	}
	o.Canary = &c
	bg := BlueGreen{ScaleDownDelaySeconds: DefaultScaleDownDelaySeconds}
	if o.BlueGreen != nil && o.BlueGreen.ScaleDownDelaySeconds > 0 {
		bg.ScaleDownDelaySeconds = o.BlueGreen.ScaleDownDelaySeconds
	}
	o.BlueGreen = &bg
	return o
}

// validate checks a group's rollout settings.
func (r *Rollout) validate() error {
	if r == nil {
		return nil
	}
	if r.Strategy != "" && !slices.Contains(Strategies, r.Strategy) {
		return invalid("rollout.strategy", "%q is not a strategy; one of %v", r.Strategy, Strategies)
	}
	if r.MaxSurge != nil && (*r.MaxSurge < 0 || *r.MaxSurge > MaxSurgeLimit) {
		return invalid("rollout.maxSurge", "%d is out of range: 0 to %d", *r.MaxSurge, MaxSurgeLimit)
	}
	if r.MaxUnavailable != nil && (*r.MaxUnavailable < 0 || *r.MaxUnavailable > MaxSurgeLimit) {
		return invalid("rollout.maxUnavailable", "%d is out of range: 0 to %d", *r.MaxUnavailable, MaxSurgeLimit)
	}
	s := r.Settled()
	if *s.MaxSurge == 0 && *s.MaxUnavailable == 0 {
		return invalid("rollout.maxSurge", "and rollout.maxUnavailable are both 0: a rolling update could neither add a replica nor take one away")
	}
	if r.MinReadySeconds < 0 || r.MinReadySeconds > 300 {
		return invalid("rollout.minReadySeconds", "%d is out of range: 0 to 300", r.MinReadySeconds)
	}
	if r.ProgressDeadlineSeconds != 0 && (r.ProgressDeadlineSeconds < 5 || r.ProgressDeadlineSeconds > 3600) {
		return invalid("rollout.progressDeadlineSeconds", "%d is out of range: 5 to 3600", r.ProgressDeadlineSeconds)
	}
	if r.Canary != nil {
		prev := 0
		for i, st := range r.Canary.Steps {
			if st <= prev || st > 100 {
				return invalid("rollout.canary.steps", "%v: each step is a share of traffic in percent, increasing, at most 100 (step %d is %d)", r.Canary.Steps, i+1, st)
			}
			prev = st
		}
		if r.Canary.PauseSeconds < 0 || r.Canary.PauseSeconds > 3600 {
			return invalid("rollout.canary.pauseSeconds", "%d is out of range: 0 to 3600", r.Canary.PauseSeconds)
		}
	}
	if r.BlueGreen != nil && (r.BlueGreen.ScaleDownDelaySeconds < 0 || r.BlueGreen.ScaleDownDelaySeconds > 3600) {
		return invalid("rollout.blueGreen.scaleDownDelaySeconds", "%d is out of range: 0 to 3600", r.BlueGreen.ScaleDownDelaySeconds)
	}
	if r.AutoRollback != nil && (r.AutoRollback.ErrorRate <= 0 || r.AutoRollback.ErrorRate > 1) {
		return invalid("rollout.autoRollback.errorRate", "%g is out of range: a share of requests above 0, at most 1", r.AutoRollback.ErrorRate)
	}
	return nil
}

// MaxSurgeLimit bounds maxSurge and maxUnavailable.
const MaxSurgeLimit = 50

// validateVersion checks a group's version and flaw.
func validateVersion(v, flaw string) error {
	if !slices.Contains(Versions, v) {
		return invalid("version", "%q is not a version of the sample services; one of %v", v, Versions)
	}
	switch {
	case flaw != "" && v != version.Bad:
		return invalid("flaw", "%q is set but version %s is a good release; only %s has a flaw", flaw, v, version.Bad)
	case flaw != "" && !slices.Contains(Flaws, flaw):
		return invalid("flaw", "%q is not a kind of bad release; one of %v", flaw, Flaws)
	}
	return nil
}

// VersionLabel is a group's version for people: "v2", or "v3 (errors)".
func (g Group) VersionLabel() string {
	if g.Flaw != "" {
		return fmt.Sprintf("%s (%s)", g.Version, g.Flaw)
	}
	return g.Version
}

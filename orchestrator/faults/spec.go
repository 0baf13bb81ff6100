package faults

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Fault kinds a learner can inject.
const (
	Kill         = "kill"
	Pause        = "pause"
	CrashFeature = "crash-feature"
	Latency      = "latency"
	Errors       = "errors"
	Partition    = "partition"
	// Poison makes a subscriber of the bus fail its next Messages events,
	// every time they are delivered, so they end as dead letters.
	Poison = "poison"
	// SlowConsumer makes a subscriber take LatencyMs more per event.
	SlowConsumer = "slow-consumer"
)

// Kinds lists the kinds, for messages.
var Kinds = []string{Kill, Pause, CrashFeature, Latency, Errors, Partition, Poison, SlowConsumer}

// MaxPoison bounds a poison fault's events (the shop's own bound).
const MaxPoison = 10000

// forSubscribers reports whether kind acts on a subscriber's events.
func forSubscribers(kind string) bool { return kind == Poison || kind == SlowConsumer }

// Features of the shop a fault can target.
var Features = []string{"catalog", "deals", "cart", "orders", "checkout"}

// ErrInvalid marks a fault request that can never be applied.
var ErrInvalid = errors.New("invalid fault")

// Spec is what a learner asks for.
type Spec struct {
	Kind  string `json:"kind"`
	Group string `json:"group"`
	// Replica names one replica ("web-2"); empty means every replica of
	// the group for feature faults, and one replica for kill, pause and
	// partition.
	Replica string `json:"replica,omitempty"`
	// Feature is the shop feature for crash-feature, latency and errors;
	// empty means every path for latency and errors.
	Feature string `json:"feature,omitempty"`
	// LatencyMs is the delay of latency (per request) and slow-consumer
	// (per event).
	LatencyMs int     `json:"latencyMs,omitempty"`
	ErrorRate float64 `json:"errorRate,omitempty"`
	// Messages is how many events a poison fault fails.
	Messages int `json:"messages,omitempty"`
}

// Fault is an injected fault.
type Fault struct {
	Spec
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// Active is false for one-shot faults (kill) and reverted ones.
	Active bool `json:"active"`
	// Replicas are the replicas the fault was applied to.
	Replicas []string `json:"replicas"`
	Message  string   `json:"message"`
}

// Validate says what is wrong with a fault request, wrapping ErrInvalid;
// nil means it can be applied to a group that exists.
func (s Spec) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if !slices.Contains(Kinds, s.Kind) {
		return bad("kind %q is not one of %v", s.Kind, Kinds)
	}
	if s.Group == "" {
		return bad("group is required")
	}
	if s.Feature != "" && !slices.Contains(Features, s.Feature) {
		return bad("feature %q is not one of %v", s.Feature, Features)
	}
	switch s.Kind {
	case CrashFeature:
		if s.Feature == "" {
			return bad("crash-feature needs a feature: one of %v", Features)
		}
	case Latency, SlowConsumer:
		if s.LatencyMs < 1 || s.LatencyMs > 30000 {
			return bad("latencyMs %d is out of range: 1 to 30000", s.LatencyMs)
		}
	case Errors:
		if s.ErrorRate <= 0 || s.ErrorRate > 1 {
			return bad("errorRate %g is out of range: more than 0, at most 1", s.ErrorRate)
		}
	case Poison:
		if s.Messages < 1 || s.Messages > MaxPoison {
			return bad("messages %d is out of range: poison fails 1 to %d events", s.Messages, MaxPoison)
		}
	}
	switch s.Kind {
	case CrashFeature, Latency, Errors:
	default:
		if s.Feature != "" {
			return bad("%s acts on a whole replica; feature is only for crash-feature, latency and errors", s.Kind)
		}
	}
	if s.Kind != Latency && s.Kind != SlowConsumer && s.LatencyMs != 0 {
		return bad("latencyMs is only for latency and slow-consumer faults")
	}
	if s.Kind != Poison && s.Messages != 0 {
		return bad("messages is only for poison faults")
	}
	if s.Kind != Errors && s.ErrorRate != 0 {
		return bad("errorRate is only for errors faults")
	}
	return nil
}

func describeFault(f *Fault) string {
	on := fmt.Sprintf("%v", f.Replicas)
	switch f.Kind {
	case Kill:
		return "killed " + on
	case Pause:
		return "paused " + on
	case Partition:
		return "cut " + on + " off the network"
	case CrashFeature:
		return fmt.Sprintf("the next %s request crashes %s", f.Feature, on)
	case Latency:
		return fmt.Sprintf("%d ms added to %s on %s", f.LatencyMs, featureOrAll(f.Feature), on)
	case Errors:
		return fmt.Sprintf("%.0f%% of %s requests fail on %s", f.ErrorRate*100, featureOrAll(f.Feature), on)
	case Poison:
		return fmt.Sprintf("%s fail their next %d new events at every attempt, until reverted: dead letters after MaxDeliver", on, f.Messages)
	case SlowConsumer:
		return fmt.Sprintf("%d ms added to every event on %s", f.LatencyMs, on)
	}
	return f.Kind
}

func featureOrAll(f string) string {
	if f == "" {
		return "all"
	}
	return f
}

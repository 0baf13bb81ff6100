package spec

import (
	"fmt"
	"time"

	"github.com/flotilla/flotilla/orchestrator/autoscale"
)

// Autoscale makes a group's replica count follow its load instead of
// Replicas: the controller counts the requests in flight at the group's
// balancer (or, with Trigger, the messages waiting for it on the bus) and
// sets the count between Min and Max. Min 0 lets the group sleep at zero:
// its balancer then holds the first request while a replica wakes.
type Autoscale struct {
	Min int `json:"min" yaml:"min"`
	Max int `json:"max" yaml:"max"`
	// TargetConcurrency is the requests in flight one replica should carry
	// (with Trigger: the messages waiting per replica). Required without
	// Trigger; with it, DefaultTargetPending.
	TargetConcurrency float64 `json:"targetConcurrency,omitempty" yaml:"targetConcurrency,omitempty"`
	// IdleAfter is how long without a request (or a waiting message) takes
	// a group with Min 0 to zero: a duration such as "30s", at least 5s.
	IdleAfter string `json:"idleAfter,omitempty" yaml:"idleAfter,omitempty"`
	// StableWindow and PanicWindow are the autoscaler's two averaging
	// windows (defaults 60s and 6s): it scales on the stable one, and out
	// at once when the panic one sees twice the target.
	StableWindow string `json:"stableWindow,omitempty" yaml:"stableWindow,omitempty"`
	PanicWindow  string `json:"panicWindow,omitempty" yaml:"panicWindow,omitempty"`
	// WarmPool keeps this many replicas started and then paused, out of
	// rotation: a wake unpauses one instead of creating one.
	WarmPool int `json:"warmPool,omitempty" yaml:"warmPool,omitempty"`
	// Trigger, if set, is the bus subject the group's service consumes: the
	// group scales on its consumer's waiting messages, not on requests.
	Trigger string `json:"trigger,omitempty" yaml:"trigger,omitempty"`
	// Queue bounds the requests the balancer holds while the group wakes.
	Queue Queue `json:"queue" yaml:"queue,omitempty"`
}

// Queue bounds the requests a group's balancer holds while no replica is
// ready: Size requests (default 1000), each at most Timeout (default "30s").
// Past either, a request is answered 503 with Retry-After.
type Queue struct {
	Size    int    `json:"size,omitempty" yaml:"size,omitempty"`
	Timeout string `json:"timeout,omitempty" yaml:"timeout,omitempty"`
}

// Autoscale defaults and bounds.
const (
	DefaultIdleAfter     = autoscale.DefaultIdleAfter
	DefaultStableWindow  = autoscale.DefaultStableWindow
	DefaultPanicWindow   = autoscale.DefaultPanicWindow
	DefaultQueueSize     = 1000
	DefaultQueueTimeout  = 30 * time.Second
	DefaultTargetPending = 5
	MinIdleAfter         = 5 * time.Second
	MaxQueueSize         = 10000
	MaxQueueTimeout      = 5 * time.Minute
)

// Durations are an Autoscale's durations, read and defaulted.
type Durations struct {
	IdleAfter, StableWindow, PanicWindow, QueueTimeout time.Duration
}

// Durations returns a's durations with defaults for the ones left out. Call
// it on a validated Autoscale: an unreadable one reads as its default.
func (a Autoscale) Durations() Durations {
	read := func(s string, def time.Duration) time.Duration {
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			return d
		}
		return def
	}
	return Durations{
		IdleAfter:    read(a.IdleAfter, DefaultIdleAfter),
		StableWindow: read(a.StableWindow, DefaultStableWindow),
		PanicWindow:  read(a.PanicWindow, DefaultPanicWindow),
		QueueTimeout: read(a.Queue.Timeout, DefaultQueueTimeout),
	}
}

// Target is the load one replica should carry: TargetConcurrency, or
// DefaultTargetPending for a Trigger group that left it out.
func (a Autoscale) Target() float64 {
	if a.TargetConcurrency == 0 && a.Trigger != "" {
		return DefaultTargetPending
	}
	return a.TargetConcurrency
}

// QueueSize is Queue.Size or its default.
func (a Autoscale) QueueSize() int {
	if a.Queue.Size == 0 {
		return DefaultQueueSize
	}
	return a.Queue.Size
}

// validate checks a against the group's replica bound and service.
func (a Autoscale) validate(maxReplicas int, svc Service, balanced bool) error {
	limit := maxReplicas
	if svc.MaxReplicas > 0 && svc.MaxReplicas < limit {
		limit = svc.MaxReplicas
	}
	switch {
	case a.Max < 1 || a.Max > limit:
		return invalid("autoscale.max", "%d is out of range: must be 1 to %d", a.Max, limit)
	case a.Min < 0:
		return invalid("autoscale.min", "%d is negative: 0 lets the group sleep at zero", a.Min)
	case a.Min > a.Max:
		return invalid("autoscale.min", "%d is more than autoscale.max (%d)", a.Min, a.Max)
	case a.Trigger == "" && a.TargetConcurrency <= 0:
		return invalid("autoscale.targetConcurrency", "%g must be more than 0: the requests in flight one replica should carry", a.TargetConcurrency)
	case a.TargetConcurrency < 0:
		return invalid("autoscale.targetConcurrency", "%g is negative: the messages waiting per replica", a.TargetConcurrency)
	case a.WarmPool < 0 || a.WarmPool > a.Max:
		return invalid("autoscale.warmPool", "%d is out of range: must be 0 to autoscale.max (%d)", a.WarmPool, a.Max)
	case a.Queue.Size < 0 || a.Queue.Size > MaxQueueSize:
		return invalid("autoscale.queue.size", "%d is out of range: 0 for the default %d, or up to %d", a.Queue.Size, DefaultQueueSize, MaxQueueSize)
	}
	if a.Trigger == "" && !balanced {
		return invalid("autoscale", "needs a balancer (policy other than %q): it scales on the requests in flight there, and holds them while the group wakes", PolicyNone)
	}
	if a.Trigger != "" && !validSubject(a.Trigger) {
		return invalid("autoscale.trigger", "%q is not a bus subject such as orders.placed", a.Trigger)
	}
	durations := []struct {
		field, value string
		lo, hi       time.Duration
	}{
		{"autoscale.idleAfter", a.IdleAfter, MinIdleAfter, time.Hour},
		{"autoscale.stableWindow", a.StableWindow, 2 * time.Second, time.Hour},
		{"autoscale.panicWindow", a.PanicWindow, time.Second, time.Hour},
		{"autoscale.queue.timeout", a.Queue.Timeout, 100 * time.Millisecond, MaxQueueTimeout},
	}
	for _, d := range durations {
		if d.value == "" {
			continue
		}
		v, err := time.ParseDuration(d.value)
		if err != nil {
			return invalid(d.field, "%q is not a duration such as \"30s\"", d.value)
		}
		if v < d.lo || v > d.hi {
			return invalid(d.field, "%s is out of range: must be %s to %s", v, d.lo, d.hi)
		}
	}
	ds := a.Durations()
	if ds.PanicWindow > ds.StableWindow {
		return invalid("autoscale.panicWindow", "%s is longer than the stable window (%s)", ds.PanicWindow, ds.StableWindow)
	}
	return nil
}

// validSubject accepts dotted tokens of letters, digits, '-' and '_'.
func validSubject(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.' && s[i-1] != '.':
		default:
			return false
		}
	}
	return true
}

// String describes a for people: "0 to 5 at 10 in flight each".
func (a Autoscale) String() string {
	what := "requests in flight"
	if a.Trigger != "" {
		what = "messages waiting on " + a.Trigger
	}
	return fmt.Sprintf("%d to %d at %g %s each", a.Min, a.Max, a.Target(), what)
}

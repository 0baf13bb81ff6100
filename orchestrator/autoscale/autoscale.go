// Package autoscale decides how many replicas a scaling group should run
// from the load its balancer sees, the way Knative's KPA autoscaler does.
//
// The balancer reports, per interval, the average number of requests in
// flight. The scaler keeps two time-weighted averages of it: over the stable
// window (60 s) and over the panic window (6 s). Normally the count is
// ceil(stable average / target concurrency); it falls only once the stable
// window has been observed in full, since the scaler started and since its
// last scale-out, so a short lull or a restart does not shed replicas.
// When the panic average reaches twice what the current replicas are meant
// to carry, the scaler panics: it scales out at once to the panic window's
// figure and never scales in until a stable window passes without a burst.
// With Min 0, a group that saw no request (and had none in flight) for
// IdleAfter goes to 0; a request while at 0 (Wake) brings it back to 1.
// The result is always clamped to [Min, Max].
//
// The package does no I/O and keeps no clock: every call is given the time.
// A Scaler is not safe for concurrent use.
package autoscale

import (
	"fmt"
	"math"
	"time"
)

// Defaults applied to zero settings.
const (
	DefaultStableWindow   = 60 * time.Second
	DefaultPanicWindow    = 6 * time.Second
	DefaultPanicThreshold = 2.0
	DefaultIdleAfter      = 30 * time.Second
	// DefaultSampleInterval is what a sample without an Interval covers when
	// no sample came before it.
	DefaultSampleInterval = time.Second
)

// Modes of a Decision.
const (
	ModeStable = "stable"
	ModePanic  = "panic"
	ModeIdle   = "idle"
	ModeWake   = "wake"
	ModeBounds = "bounds"
)

// eps absorbs floating-point noise, so 10.0/5 asks for 2 replicas, not 3.
const eps = 1e-9

// maxWant bounds a computed count before the clamp, so an absurd average
// cannot overflow an int.
const maxWant = 1 << 20

// Settings of one group's autoscaler; zero durations and a zero threshold
// mean the defaults.
type Settings struct {
	Min, Max          int           // bounds; Min may be 0
	TargetConcurrency float64       // in-flight requests per replica it aims at (> 0)
	StableWindow      time.Duration // default 60s
	PanicWindow       time.Duration // default 6s
	PanicThreshold    float64       // default 2.0: panic when the panic-window demand is >= 2x the current capacity
	IdleAfter         time.Duration // default 30s: with Min 0, this long without a request takes the group to 0
}

// WithDefaults returns s with its zero fields set to the defaults.
func (s Settings) WithDefaults() Settings {
	if s.StableWindow == 0 {
		s.StableWindow = DefaultStableWindow
	}
	if s.PanicWindow == 0 {
		s.PanicWindow = DefaultPanicWindow
	}
	if s.PanicThreshold == 0 {
		s.PanicThreshold = DefaultPanicThreshold
	}
	if s.IdleAfter == 0 {
		s.IdleAfter = DefaultIdleAfter
	}
	return s
}

// Sample is what the balancer saw over one interval ending at At.
type Sample struct {
	At          time.Time
	Concurrency float64 // average requests in flight over the interval (held requests included)
	Requests    uint64  // requests that arrived in the interval
	// Interval is how long the sample covers. Zero means since the previous
	// sample's At, or DefaultSampleInterval for the first sample.
	Interval time.Duration
}

// Decision explains one count the scaler chose.
type Decision struct {
	At       time.Time     `json:"at"`
	From     int           `json:"from"`
	To       int           `json:"to"`
	Mode     string        `json:"mode"`     // ModeStable, ModePanic, ModeIdle, ModeWake or ModeBounds
	Observed float64       `json:"observed"` // the average concurrency that decided it (the window's)
	Window   time.Duration `json:"-"`        // the window that average is over
	WindowS  float64       `json:"windowS"`  // same in seconds, for JSON
	Reason   string        `json:"reason"`   // one plain sentence
}

// span is a stored sample: Concurrency held over (from, to].
type span struct {
	from, to time.Time
	c        float64
}

// Scaler decides one group's replica count. Make it with New.
type Scaler struct {
	set     Settings
	samples []span // oldest first, ends strictly increasing

	start      time.Time // first sign of life: first sample's start, first Decide or Wake
	lastAt     time.Time // end of the latest sample, kept after it is dropped
	lastActive time.Time // end of the latest sample with a request, or the latest Wake

	panicking bool
	burstAt   time.Time // last time the panic condition held
	scaledOut time.Time // last Decide that raised the count
}

// New returns a scaler for s with the defaults applied. It does not
// validate s (see Validate); a target that is not above 0 is taken as 1 so
// that nothing divides by zero.
func New(s Settings) *Scaler {
	s = s.WithDefaults()
	if !(s.TargetConcurrency > 0) {
		s.TargetConcurrency = 1
	}
	return &Scaler{set: s}
}

// Settings returns the scaler's settings, defaults applied.
func (s *Scaler) Settings() Settings { return s.set }

// Observe records a sample. A sample that does not end after the previous
// one is ignored. Samples older than the longer of the stable window and
// IdleAfter (before the newest sample) are dropped.
func (s *Scaler) Observe(x Sample) {
	if !s.lastAt.IsZero() && !x.At.After(s.lastAt) {
		return
	}
	var from time.Time
	switch {
	case x.Interval > 0:
		from = x.At.Add(-x.Interval)
		if !s.lastAt.IsZero() && from.Before(s.lastAt) {
			from = s.lastAt // overlapping samples would count twice
		}
	case !s.lastAt.IsZero():
		from = s.lastAt
	default:
		from = x.At.Add(-DefaultSampleInterval)
	}
	c := x.Concurrency
	if !(c > 0) || math.IsInf(c, 0) {
		c = 0
	}
	s.noteStart(from)
	s.lastAt = x.At
	if x.Requests > 0 {
		s.lastActive = x.At
	}
	s.samples = append(s.samples, span{from: from, to: x.At, c: c})

	cut := x.At.Add(-max(s.set.StableWindow, s.set.IdleAfter))
	i := 0
	for i < len(s.samples) && !s.samples[i].to.After(cut) {
		i++
	}
	if i > 0 {
		s.samples = append(s.samples[:0], s.samples[i:]...)
	}
}

// Wake records that a request arrived while the group was at 0: it counts
// as activity at now, so the next Decide brings the group to 1 and the idle
// rule does not take it straight back to 0.
func (s *Scaler) Wake(now time.Time) {
	s.noteStart(now)
	if now.After(s.lastActive) {
		s.lastActive = now
	}
}

// Panicking reports whether the scaler is in panic mode at now, as of its
// last Decide: a burst was seen less than a stable window ago.
func (s *Scaler) Panicking(now time.Time) bool {
	return s.panicking && now.Sub(s.burstAt) < s.set.StableWindow
}

func (s *Scaler) noteStart(t time.Time) {
	if s.start.IsZero() || t.Before(s.start) {
		s.start = t
	}
}

// average is the time-weighted average concurrency over [now-w, now], over
// the part of it that samples cover; 0 when none does.
func (s *Scaler) average(now time.Time, w time.Duration) float64 {
	lo := now.Add(-w)
	var sum, covered float64
	for _, sp := range s.samples {
		a, b := sp.from, sp.to
		if a.Before(lo) {
			a = lo
		}
		if b.After(now) {
			b = now
		}
		if !b.After(a) {
			continue
		}
		d := b.Sub(a).Seconds()
		sum += sp.c * d
		covered += d
	}
	if covered == 0 {
		return 0
	}
	return sum / covered
}

// replicasFor is ceil(avg/target), with a little slack for floating-point
// noise.
func replicasFor(avg, target float64) int {
	n := math.Ceil(avg/target - eps)
	switch {
	case !(n > 0):
		return 0
	case n > maxWant:
		return maxWant
	}
	return int(n)
}

// Decide returns the count the group should have at now, given that it has
// current replicas, and why. change is false when want == current; d is
// filled either way, its Reason then saying why the count holds.
//
// Precedence: panic (never scales in), then idle (Min 0 only), then the
// stable rule; the bounds apply last and always win.
func (s *Scaler) Decide(now time.Time, current int) (want int, d Decision, change bool) {
	set := s.set
	current = max(current, 0)
	s.noteStart(now)
	target := set.TargetConcurrency

	stableAvg := s.average(now, set.StableWindow)
	panicAvg := s.average(now, set.PanicWindow)
	wantStable := replicasFor(stableAvg, target)
	wantPanic := replicasFor(panicAvg, target)

	capacity := target * float64(max(current, 1))
	burst := panicAvg > eps && panicAvg >= set.PanicThreshold*capacity*(1-eps)
	started := false
	switch {
	case burst:
		s.burstAt = now
		started = !s.panicking
		s.panicking = true
	case s.panicking && now.Sub(s.burstAt) >= set.StableWindow:
		s.panicking = false
	}

	active := !s.lastActive.IsZero() && now.Sub(s.lastActive) < set.IdleAfter
	d = Decision{At: now, From: current}
	var why, hold string
	switch {
	case s.panicking:
		want = max(current, wantPanic)
		d.Mode, d.Observed, d.Window = ModePanic, panicAvg, set.PanicWindow
		if started {
			why = fmt.Sprintf("panic: %s is >= %gx the target of %s at %g each (%g)",
				inFlight(panicAvg, set.PanicWindow), set.PanicThreshold, replicas(max(current, 1)), target, capacity)
		} else {
			why = fmt.Sprintf("panic (last burst %s ago, ends %s after it): %s need %s at %g each",
				secs(now.Sub(s.burstAt)), secs(set.StableWindow), inFlight(panicAvg, set.PanicWindow), replicas(wantPanic), target)
			hold = "no scale-in while panicking"
		}

	case set.Min == 0 && !active && now.Sub(s.start) >= set.IdleAfter:
		idleAvg := s.average(now, set.IdleAfter)
		if idleAvg > eps {
			// Requests that arrived earlier are still in flight.
			want, why = s.stable(&d, now, current, stableAvg, wantStable, active, &hold)
			break
		}
		want = 0
		d.Mode, d.Observed, d.Window = ModeIdle, idleAvg, set.IdleAfter
		why = fmt.Sprintf("idle: no request arrived in the last %s and none was in flight (%.1f on average)", secs(set.IdleAfter), idleAvg)

	default:
		want, why = s.stable(&d, now, current, stableAvg, wantStable, active, &hold)
	}

	raw := want
	want = min(max(want, set.Min), set.Max)
	var bound string
	switch {
	case want < raw:
		bound = fmt.Sprintf("capped at max %d", set.Max)
	case want > raw:
		bound = fmt.Sprintf("raised to min %d", set.Min)
	}
	if bound != "" && want != current && sign(want-current) != sign(raw-current) {
		d.Mode = ModeBounds
		why = "bounds: " + why
	}

	d.To = want
	d.WindowS = d.Window.Seconds()
	var tail string
	switch {
	case want > current && started:
		tail = fmt.Sprintf("scaling out at once to %d", want)
	case want > current:
		tail = fmt.Sprintf("scaling out to %d", want)
	case want < current:
		tail = fmt.Sprintf("scaling in to %d", want)
	case hold != "" && raw == current:
		tail = fmt.Sprintf("holding %d: %s", want, hold)
	default:
		tail = fmt.Sprintf("keeping %d", want)
	}
	if bound != "" {
		tail += " (" + bound + ")"
	}
	d.Reason = why + "; " + tail
	if want > current {
		s.scaledOut = now
	}
	return want, d, want != current
}

// stable applies the stable rule: the stable window's figure, except that
// it does not scale in before the stable window has been observed in full
// (since the scaler started and since its last scale-out), and that with
// Min 0 only the idle rule takes a running group to 0.
func (s *Scaler) stable(d *Decision, now time.Time, current int, avg float64, wantStable int, active bool, hold *string) (int, string) {
	set := s.set
	d.Mode, d.Observed, d.Window = ModeStable, avg, set.StableWindow
	want := wantStable
	why := fmt.Sprintf("stable: %s need %s at %g each", inFlight(avg, set.StableWindow), replicas(wantStable), set.TargetConcurrency)
	if want < current {
		switch {
		case now.Sub(s.start) < set.StableWindow:
			*hold = fmt.Sprintf("seen %s of the %s stable window so far", secs(now.Sub(s.start)), secs(set.StableWindow))
			want = current
		case !s.scaledOut.IsZero() && now.Sub(s.scaledOut) < set.StableWindow:
			*hold = fmt.Sprintf("scaled out %s ago, scale-in waits a full stable window (%s)", secs(now.Sub(s.scaledOut)), secs(set.StableWindow))
			want = current
		}
	}
	if set.Min == 0 && want == 0 && (active || current > 0) {
		want = 1
		switch {
		case current == 0:
			d.Mode = ModeWake
			why = fmt.Sprintf("wake: a request arrived while at 0 (%s)", inFlight(avg, set.StableWindow))
		case active:
			why += fmt.Sprintf(", but a request arrived in the last %s", secs(set.IdleAfter))
		default:
			why += fmt.Sprintf(", but only %s without a request takes the group to 0", secs(set.IdleAfter))
		}
	}
	return want, why
}

func inFlight(avg float64, w time.Duration) string {
	return fmt.Sprintf("%.1f requests in flight on average over the last %s", avg, secs(w))
}

func replicas(n int) string {
	if n == 1 {
		return "1 replica"
	}
	return fmt.Sprintf("%d replicas", n)
}

// secs formats d as "60s" or "2.5s".
func secs(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

func sign(n int) int {
	switch {
	case n > 0:
		return 1
	case n < 0:
		return -1
	}
	return 0
}

package autoscale

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)

// sim feeds a scaler one sample per tick and applies what it decides, the
// way the controller does.
type sim struct {
	t       *testing.T
	s       *Scaler
	now     time.Time
	current int
	tick    time.Duration
	log     []Decision // decisions that changed the count
}

func newSim(t *testing.T, set Settings, current int) *sim {
	return &sim{t: t, s: New(set), now: t0, current: current, tick: time.Second}
}

// step advances one tick with a sample of concurrency c and n arrivals, then
// decides and applies the decision.
func (m *sim) step(c float64, n uint64) (int, Decision) {
	m.t.Helper()
	m.now = m.now.Add(m.tick)
	m.s.Observe(Sample{At: m.now, Concurrency: c, Requests: n})
	return m.decide()
}

func (m *sim) decide() (int, Decision) {
	m.t.Helper()
	from := m.current
	want, d, change := m.s.Decide(m.now, m.current)
	if change != (want != from) {
		m.t.Fatalf("%s: change=%v but want %d, current %d", m.at(), change, want, from)
	}
	if change {
		checkReason(m.t, d)
		m.log = append(m.log, d)
	}
	m.current = want
	return want, d
}

// run steps for dur with a constant load, failing if the count leaves
// [lo, hi]; it returns the count at the end.
func (m *sim) run(dur time.Duration, c float64, n uint64, lo, hi int) int {
	m.t.Helper()
	for end := m.now.Add(dur); m.now.Before(end); {
		if got, d := m.step(c, n); got < lo || got > hi {
			m.t.Fatalf("%s: count %d outside [%d, %d]: %s", m.at(), got, lo, hi, d.Reason)
		}
	}
	return m.current
}

func (m *sim) at() string { return "t+" + secs(m.now.Sub(t0)) }

// checkReason asserts that a decision that changed the count names the
// observed concurrency, the window and the new count.
func checkReason(t *testing.T, d Decision) {
	t.Helper()
	for _, part := range []string{
		strconv.FormatFloat(d.Observed, 'f', 1, 64),
		secs(d.Window),
		" " + strconv.Itoa(d.To),
	} {
		if !strings.Contains(d.Reason, part) {
			t.Errorf("reason %q does not name %q", d.Reason, part)
		}
	}
	if d.WindowS != d.Window.Seconds() || d.Window <= 0 {
		t.Errorf("window %v, windowS %v", d.Window, d.WindowS)
	}
}

func TestSteadyLoadKeepsTheCount(t *testing.T) {
	for _, tt := range []struct {
		load    float64
		current int
	}{
		{5, 1}, {10, 2}, {12, 3}, {24.9, 5}, {50, 10},
	} {
		m := newSim(t, Settings{Min: 1, Max: 20, TargetConcurrency: 5}, tt.current)
		m.run(3*time.Minute, tt.load, 10, tt.current, tt.current)
		if len(m.log) != 0 {
			t.Errorf("load %g at %d replicas: changed %+v", tt.load, tt.current, m.log)
		}
	}
}

func TestRampUpScalesOutWithinTheStableWindow(t *testing.T) {
	m := newSim(t, Settings{Min: 1, Max: 10, TargetConcurrency: 5}, 1)
	m.run(90*time.Second, 4, 5, 1, 1)
	// Ramp from 4 to 9 in flight over 20s, then hold: never twice what one
	// replica carries, so the stable rule alone must follow it.
	for i := 1; i <= 20; i++ {
		m.step(4+float64(i)*0.25, 5)
	}
	m.run(40*time.Second, 9, 5, 1, 2)
	if m.current != 2 {
		t.Fatalf("count %d after the ramp, want 2", m.current)
	}
	if len(m.log) != 1 || m.log[0].Mode != ModeStable || m.log[0].To != 2 {
		t.Fatalf("decisions %+v, want one stable scale-out to 2", m.log)
	}
	if m.log[0].Window != DefaultStableWindow || m.log[0].Observed <= 5 {
		t.Errorf("decided on %.2f over %v", m.log[0].Observed, m.log[0].Window)
	}
	if m.s.Panicking(m.now) {
		t.Error("panicking on a gentle ramp")
	}
}

func TestSpikePanicsAtOnceAndNeverScalesInDuringPanic(t *testing.T) {
	m := newSim(t, Settings{Min: 1, Max: 20, TargetConcurrency: 5}, 2)
	m.run(90*time.Second, 10, 10, 2, 2)
	// Spike to 40 in flight. The stable rule nudges the count to 3 at
	// once; the 6s average reaches twice what 3 replicas carry (30) on the
	// fourth second.
	var d Decision
	for i := 0; i < 4; i++ {
		_, d = m.step(40, 50)
		if i == 0 && (m.current != 3 || d.Mode != ModeStable) {
			t.Fatalf("first second of spike: count %d, %+v", m.current, d)
		}
	}
	if d.Mode != ModePanic || m.current != 6 || d.From != 3 || !m.s.Panicking(m.now) {
		t.Fatalf("after 4s of spike: count %d, %+v", m.current, d)
	}
	if d.Window != DefaultPanicWindow || d.Observed != 30 {
		t.Errorf("decided on %.2f over %v, want 30 over 6s", d.Observed, d.Window)
	}
	if !strings.Contains(d.Reason, "at once to 6") {
		t.Errorf("reason %q", d.Reason)
	}
	// The panic window keeps rising while the spike lasts: 40/5 = 8.
	m.run(10*time.Second, 40, 50, 6, 8)
	if m.current != 8 {
		t.Fatalf("count %d with the spike held, want 8", m.current)
	}
	lastBurst := m.s.burstAt
	// The load drops to nothing: no scale-in while panicking.
	for m.s.Panicking(m.now.Add(m.tick)) {
		if got, d := m.step(0, 0); got < 8 {
			t.Fatalf("%s: scaled in to %d during panic: %s", m.at(), got, d.Reason)
		}
	}
	if got := m.now.Sub(lastBurst); got != DefaultStableWindow-time.Second {
		t.Errorf("panic ended %v after the last burst, want a stable window", got+time.Second)
	}
	// The first decision out of panic is a stable one. The last scale-out
	// (to 8) came after the last burst, so scale-in waits a stable window
	// from it.
	_, d = m.step(0, 0)
	if m.s.Panicking(m.now) || d.Mode != ModeStable {
		t.Fatalf("after panic: count %d, %+v", m.current, d)
	}
	scaledOut := m.log[len(m.log)-1].At
	if m.log[len(m.log)-1].To != 8 || !scaledOut.After(lastBurst) {
		t.Fatalf("last scale-out %+v, last burst %v", m.log[len(m.log)-1], lastBurst)
	}
	for m.now.Add(m.tick).Sub(scaledOut) < DefaultStableWindow {
		if got, d := m.step(0, 0); got != 8 {
			t.Fatalf("%s: count %d: %s", m.at(), got, d.Reason)
		}
	}
	if got, d := m.step(0, 0); got >= 8 || d.Mode != ModeStable {
		t.Fatalf("a stable window after the last scale-out: count %d, %+v", got, d)
	}
}

func TestPanicEndsAfterTheStableWindow(t *testing.T) {
	s := New(Settings{Min: 1, Max: 10, TargetConcurrency: 1})
	now := t0
	for i := 0; i < 6; i++ {
		now = now.Add(time.Second)
		s.Observe(Sample{At: now, Concurrency: 10, Requests: 10})
	}
	want, d, _ := s.Decide(now, 1)
	if want != 10 || d.Mode != ModePanic {
		t.Fatalf("want %d, %+v", want, d)
	}
	burst := now
	// A stable window of silence, deciding every second.
	for i := 0; i < 70; i++ {
		now = now.Add(time.Second)
		s.Observe(Sample{At: now})
		want, d, _ = s.Decide(now, 10)
		inPanic := now.Sub(burst) < DefaultStableWindow
		if s.Panicking(now) != inPanic {
			t.Fatalf("%v after the burst: panicking %v", now.Sub(burst), !inPanic)
		}
		if inPanic && (want != 10 || d.Mode != ModePanic) {
			t.Fatalf("%v after the burst: want %d, %+v", now.Sub(burst), want, d)
		}
		if !inPanic && d.Mode == ModePanic {
			t.Fatalf("%v after the burst: still deciding in panic", now.Sub(burst))
		}
	}
}

func TestPanicThresholdIsTwiceTheCurrentCapacity(t *testing.T) {
	for _, tt := range []struct {
		load    float64
		current int
		panic   bool
	}{
		{19.9, 2, false}, {20, 2, true}, {9.9, 0, false}, {10, 0, true}, {10, 1, true}, {29, 3, false},
	} {
		s := New(Settings{Min: 0, Max: 20, TargetConcurrency: 5})
		s.Observe(Sample{At: t0, Concurrency: tt.load, Requests: 1})
		_, d, _ := s.Decide(t0, tt.current)
		if got := d.Mode == ModePanic; got != tt.panic || s.Panicking(t0) != tt.panic {
			t.Errorf("load %g at %d replicas: panic %v, want %v (%s)", tt.load, tt.current, got, tt.panic, d.Reason)
		}
	}
}

func TestScaleInOnlyWhenTheStableWindowAgrees(t *testing.T) {
	m := newSim(t, Settings{Min: 1, Max: 10, TargetConcurrency: 5}, 4)
	m.run(2*time.Minute, 20, 20, 4, 4)
	// The load falls to 5. The stable average 20 - x/4 after x seconds
	// needs 4 replicas until x = 20s, 3 until 40s, 2 until 60s, then 1.
	wantAt := func(x int) int {
		switch {
		case x < 20:
			return 4
		case x < 40:
			return 3
		case x < 60:
			return 2
		}
		return 1
	}
	for x := 1; x <= 80; x++ {
		if got, d := m.step(5, 5); got != wantAt(x) {
			t.Fatalf("%ds after the drop: count %d, want %d: %s", x, got, wantAt(x), d.Reason)
		}
	}
	for _, d := range m.log {
		if d.Mode != ModeStable || d.Window != DefaultStableWindow {
			t.Errorf("scale-in %+v", d)
		}
	}
}

func TestNoScaleInBeforeAFullStableWindow(t *testing.T) {
	t.Run("since the scaler started", func(t *testing.T) {
		m := newSim(t, Settings{Min: 1, Max: 10, TargetConcurrency: 5}, 4)
		// A restarted controller sees no load yet: keep the 4 replicas until
		// a whole stable window says so (the first sample covers 1s before
		// its end).
		_, d := m.step(0, 0)
		if !strings.Contains(d.Reason, "holding 4") {
			t.Errorf("reason %q", d.Reason)
		}
		m.run(58*time.Second, 0, 0, 4, 4)
		if got, _ := m.step(0, 0); got != 1 {
			t.Fatalf("count %d once the stable window is seen, want 1", got)
		}
	})
	t.Run("since the last scale-out", func(t *testing.T) {
		m := newSim(t, Settings{Min: 1, Max: 10, TargetConcurrency: 5}, 1)
		m.run(time.Minute, 5, 5, 1, 1)
		// 9 in flight (under the panic threshold) until the stable rule scales out.
		for m.current == 1 {
			m.step(9, 5)
		}
		scaledOut := m.now
		_, d := m.step(0, 0)
		if !strings.Contains(d.Reason, "scaled out 1s ago") {
			t.Errorf("reason %q", d.Reason)
		}
		// The stable average soon needs 1 again; hold 2 until a stable
		// window has passed since the scale-out.
		for m.now.Sub(scaledOut) < DefaultStableWindow-time.Second {
			if got, d := m.step(0, 0); got != 2 {
				t.Fatalf("%v after the scale-out: count %d: %s", m.now.Sub(scaledOut), got, d.Reason)
			}
		}
		if got, _ := m.step(0, 0); got != 1 {
			t.Fatalf("count %d a stable window after the scale-out, want 1", got)
		}
	})
}

func TestIdleToZero(t *testing.T) {
	m := newSim(t, Settings{Min: 0, Max: 5, TargetConcurrency: 5}, 1)
	m.run(20*time.Second, 2, 3, 1, 1)
	lastRequest := m.now
	// Nothing arrives and nothing is in flight.
	for m.now.Sub(lastRequest) < DefaultIdleAfter-time.Second {
		if got, d := m.step(0, 0); got != 1 {
			t.Fatalf("%v after the last request: count %d: %s", m.now.Sub(lastRequest), got, d.Reason)
		}
	}
	got, d := m.step(0, 0)
	if got != 0 || d.Mode != ModeIdle || d.Window != DefaultIdleAfter {
		t.Fatalf("%v after the last request: count %d, %+v", m.now.Sub(lastRequest), got, d)
	}
	m.run(time.Minute, 0, 0, 0, 0)

	t.Run("not with Min 1", func(t *testing.T) {
		m := newSim(t, Settings{Min: 1, Max: 5, TargetConcurrency: 5}, 1)
		m.run(20*time.Second, 2, 3, 1, 1)
		m.run(5*time.Minute, 0, 0, 1, 1)
	})
	t.Run("not while a request is in flight", func(t *testing.T) {
		m := newSim(t, Settings{Min: 0, Max: 5, TargetConcurrency: 5}, 1)
		m.run(5*time.Second, 1, 1, 1, 1)
		// One long request, no new arrivals.
		m.run(2*time.Minute, 1, 0, 1, 1)
		end := m.now
		m.run(DefaultIdleAfter-time.Second, 0, 0, 1, 1)
		if got, _ := m.step(0, 0); got != 0 {
			t.Fatalf("count %d %v after the long request ended", got, m.now.Sub(end))
		}
	})
	t.Run("not before a fresh scaler has seen IdleAfter", func(t *testing.T) {
		m := newSim(t, Settings{Min: 0, Max: 5, TargetConcurrency: 5}, 2)
		// The first sample covers t0 to t0+1s.
		m.run(DefaultIdleAfter-time.Second, 0, 0, 2, 2)
		if got, d := m.step(0, 0); got != 0 || d.Mode != ModeIdle {
			t.Fatalf("count %d: %+v", got, d)
		}
	})
	t.Run("IdleAfter longer than the stable window", func(t *testing.T) {
		m := newSim(t, Settings{Min: 0, Max: 5, TargetConcurrency: 5, IdleAfter: 2 * time.Minute}, 1)
		m.run(10*time.Second, 2, 1, 1, 1)
		m.run(2*time.Minute-time.Second, 0, 0, 1, 1)
		if got, _ := m.step(0, 0); got != 0 {
			t.Fatalf("count %d after 2m without a request", got)
		}
	})
}

func TestWake(t *testing.T) {
	m := newSim(t, Settings{Min: 0, Max: 5, TargetConcurrency: 5}, 0)
	m.run(2*time.Minute, 0, 0, 0, 0)
	m.now = m.now.Add(300 * time.Millisecond)
	m.s.Wake(m.now)
	got, d := m.decide()
	if got != 1 || d.Mode != ModeWake {
		t.Fatalf("after Wake: count %d, %+v", got, d)
	}
	woke := m.now
	// The woken request shows up in no sample yet, and the averages are 0:
	// Wake alone keeps 1 for IdleAfter.
	for m.now.Add(m.tick).Sub(woke) < DefaultIdleAfter {
		if got, d := m.step(0, 0); got != 1 {
			t.Fatalf("%v after Wake: count %d: %s", m.now.Sub(woke), got, d.Reason)
		}
	}
	if got, d := m.step(0, 0); got != 0 || d.Mode != ModeIdle {
		t.Fatalf("%v after Wake: count %d, %+v", m.now.Sub(woke), got, d)
	}

	t.Run("a sample with requests at 0 wakes too", func(t *testing.T) {
		m := newSim(t, Settings{Min: 0, Max: 5, TargetConcurrency: 5}, 0)
		m.run(time.Minute, 0, 0, 0, 0)
		if got, _ := m.step(0.5, 1); got != 1 {
			t.Fatalf("count %d", got)
		}
	})
}

func TestBounds(t *testing.T) {
	t.Run("max caps the stable figure", func(t *testing.T) {
		m := newSim(t, Settings{Min: 1, Max: 3, TargetConcurrency: 5, PanicThreshold: 100}, 3)
		_, d := m.step(50, 50)
		if m.current != 3 || !strings.Contains(d.Reason, "keeping 3 (capped at max 3)") || d.Mode != ModeStable {
			t.Fatalf("count %d, %+v", m.current, d)
		}
		m.run(time.Minute, 50, 50, 3, 3)
	})
	t.Run("max caps a scale-out", func(t *testing.T) {
		m := newSim(t, Settings{Min: 1, Max: 3, TargetConcurrency: 5, PanicThreshold: 100}, 2)
		_, d := m.step(50, 50)
		if m.current != 3 || d.Mode != ModeStable || !strings.Contains(d.Reason, "scaling out to 3 (capped at max 3)") {
			t.Fatalf("count %d, %+v", m.current, d)
		}
	})
	t.Run("min keeps replicas without load", func(t *testing.T) {
		m := newSim(t, Settings{Min: 2, Max: 5, TargetConcurrency: 5}, 4)
		m.run(3*time.Minute, 0, 0, 2, 4)
		if m.current != 2 {
			t.Fatalf("count %d, want 2", m.current)
		}
		if d := m.log[len(m.log)-1]; d.Mode != ModeStable || !strings.Contains(d.Reason, "raised to min 2") {
			t.Errorf("%+v", d)
		}
	})
	t.Run("a count over a lowered max comes down at once", func(t *testing.T) {
		s := New(Settings{Min: 1, Max: 4, TargetConcurrency: 5})
		s.Observe(Sample{At: t0, Concurrency: 30, Requests: 5})
		want, d, change := s.Decide(t0, 6)
		if want != 4 || !change || d.Mode != ModeBounds {
			t.Fatalf("want %d, %+v", want, d)
		}
	})
	t.Run("a count under a raised min goes up at once", func(t *testing.T) {
		s := New(Settings{Min: 3, Max: 5, TargetConcurrency: 5})
		want, d, _ := s.Decide(t0, 1)
		if want != 3 || d.Mode != ModeBounds || !strings.Contains(d.Reason, "raised to min 3") {
			t.Fatalf("want %d, %+v", want, d)
		}
	})
}

func TestMaxCapsAPanic(t *testing.T) {
	m := newSim(t, Settings{Min: 1, Max: 6, TargetConcurrency: 5}, 1)
	m.run(time.Minute, 5, 5, 1, 1)
	capped := false
	for i := 0; i < 6 && !capped; i++ {
		_, d := m.step(100, 100)
		capped = d.Mode == ModePanic && d.To == 6 && strings.Contains(d.Reason, "(capped at max 6)")
	}
	if !capped {
		t.Fatalf("no capped panic decision: %+v", m.log)
	}
	m.run(30*time.Second, 100, 100, 6, 6)
}

func TestRounding(t *testing.T) {
	for _, tt := range []struct {
		avg, target float64
		want        int
	}{
		{0, 5, 0}, {1e-12, 5, 0}, {0.001, 5, 1}, {5, 5, 1}, {10, 5, 2}, {10.01, 5, 3},
		{0.3, 0.1, 3}, {0.7, 0.1, 7}, {0.6, 0.2, 3}, {1, 1.0 / 3, 3}, {12, 2.5, 5},
		{-1, 5, 0}, {1e30, 1, maxWant},
	} {
		if got := replicasFor(tt.avg, tt.target); got != tt.want {
			t.Errorf("replicasFor(%g, %g) = %d, want %d", tt.avg, tt.target, got, tt.want)
		}
	}
	// Through Decide: 10.0 in flight with a target of 5 is exactly 2.
	m := newSim(t, Settings{Min: 1, Max: 10, TargetConcurrency: 5}, 1)
	m.run(2*time.Minute, 10, 10, 1, 2)
	if m.current != 2 {
		t.Fatalf("count %d, want 2", m.current)
	}
}

func TestAverages(t *testing.T) {
	s := New(Settings{Min: 1, Max: 10, TargetConcurrency: 1})
	if got := s.average(t0, time.Minute); got != 0 {
		t.Fatalf("empty average %g", got)
	}
	// 2 for 1s (the first sample's default interval), 8 for 3s, 4 for 1s
	// given explicitly after a 1s gap.
	s.Observe(Sample{At: t0.Add(time.Second), Concurrency: 2})
	s.Observe(Sample{At: t0.Add(4 * time.Second), Concurrency: 8})
	s.Observe(Sample{At: t0.Add(6 * time.Second), Concurrency: 4, Interval: time.Second})
	s.Observe(Sample{At: t0.Add(6 * time.Second), Concurrency: 1000}) // not after the last: ignored
	for _, tt := range []struct {
		now  time.Duration
		w    time.Duration
		want float64
	}{
		{6 * time.Second, time.Minute, (2 + 24 + 4) / 5.0},
		{6 * time.Second, 3 * time.Second, (8 + 4) / 2.0}, // the gap (4s, 5s] is not covered
		{4 * time.Second, 2 * time.Second, 8},
		{2 * time.Second, time.Second, 8},
		{30 * time.Second, 6 * time.Second, 0}, // samples older than the window
		{65 * time.Second, time.Minute, 4},     // only the last one reaches in
	} {
		if got := s.average(t0.Add(tt.now), tt.w); got != tt.want {
			t.Errorf("average at t+%v over %v = %g, want %g", tt.now, tt.w, got, tt.want)
		}
	}
	// Old samples are dropped once past the longer window.
	s.Observe(Sample{At: t0.Add(200 * time.Second), Concurrency: 1})
	if len(s.samples) != 1 {
		t.Errorf("%d samples kept", len(s.samples))
	}
}

func TestEmptyWindows(t *testing.T) {
	// A burst long ago: the panic window is empty, the stable one is not.
	s := New(Settings{Min: 0, Max: 10, TargetConcurrency: 5})
	s.Observe(Sample{At: t0, Concurrency: 30, Interval: 5 * time.Second, Requests: 9})
	now := t0.Add(20 * time.Second)
	want, d, _ := s.Decide(now, 6)
	if want != 6 || d.Mode != ModeStable || d.Observed != 30 {
		t.Fatalf("want %d, %+v", want, d)
	}
	// No sample at all: a group at 0 stays there, one running keeps its
	// count until a stable window has passed.
	s = New(Settings{Min: 0, Max: 10, TargetConcurrency: 5})
	if want, _, change := s.Decide(t0, 0); want != 0 || change {
		t.Fatalf("from 0: want %d", want)
	}
	s = New(Settings{Min: 1, Max: 10, TargetConcurrency: 5})
	if want, _, _ := s.Decide(t0, 3); want != 3 {
		t.Fatalf("fresh at 3: want %d", want)
	}
	if want, _, _ := s.Decide(t0.Add(time.Minute), 3); want != 1 {
		t.Fatalf("a minute on at 3: want %d", want)
	}
}

func TestDecisionJSON(t *testing.T) {
	b, err := json.Marshal(Decision{At: t0, From: 1, To: 2, Mode: ModeStable, Observed: 7.5, Window: time.Minute, WindowS: 60, Reason: "r"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"at":"2024-01-01T12:00:00Z","from":1,"to":2,"mode":"stable","observed":7.5,"windowS":60,"reason":"r"}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

func TestSettings(t *testing.T) {
	got := New(Settings{Min: 0, Max: 3, TargetConcurrency: 2}).Settings()
	want := Settings{Min: 0, Max: 3, TargetConcurrency: 2, StableWindow: DefaultStableWindow,
		PanicWindow: DefaultPanicWindow, PanicThreshold: DefaultPanicThreshold, IdleAfter: DefaultIdleAfter}
	if got != want {
		t.Errorf("got %+v", got)
	}
	set := Settings{Min: 1, Max: 2, TargetConcurrency: 1, StableWindow: time.Second, PanicWindow: time.Second, PanicThreshold: 3, IdleAfter: time.Hour}
	if got := New(set).Settings(); got != set {
		t.Errorf("set fields changed: %+v", got)
	}
}

// TestRandomSeries checks invariants over random load: the count stays in
// [Min, Max], it never falls while panicking (unless it is over Max), and
// every change says why.
func TestRandomSeries(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	modes := map[string]int{}
	for run := 0; run < 300; run++ {
		lo := rng.IntN(3)
		set := Settings{
			Min:               lo,
			Max:               lo + 1 + rng.IntN(10),
			TargetConcurrency: 0.5 + rng.Float64()*10,
			PanicThreshold:    []float64{0, 1, 1.5, 3}[rng.IntN(4)],
			IdleAfter:         time.Duration(5+rng.IntN(60)) * time.Second,
		}
		s := New(set)
		now := t0
		current := set.Min + rng.IntN(set.Max-set.Min+1)
		load := 0.0
		for i := 0; i < 600; i++ {
			now = now.Add(time.Duration(200+rng.IntN(1000)) * time.Millisecond)
			switch r := rng.IntN(100); {
			case r < 3:
				load = rng.Float64() * 200 // spike
			case r < 10:
				load = 0 // silence
			case r < 30:
				load = max(0, load+rng.NormFloat64()*5)
			}
			var reqs uint64
			if load > 0 {
				reqs = uint64(rng.IntN(int(load) + 2))
			}
			if rng.IntN(50) > 0 { // now and then a sample is missing
				s.Observe(Sample{At: now, Concurrency: load, Requests: reqs})
			}
			if current == 0 && rng.IntN(20) == 0 {
				s.Wake(now)
			}
			want, d, change := s.Decide(now, current)
			if want < set.Min || want > set.Max {
				t.Fatalf("run %d: want %d outside [%d, %d]: %s", run, want, set.Min, set.Max, d.Reason)
			}
			if s.Panicking(now) && want < current && current <= set.Max {
				t.Fatalf("run %d: scaled in from %d to %d while panicking: %s", run, current, want, d.Reason)
			}
			if p := s.Panicking(now); d.Mode == ModePanic && !p || p && d.Mode != ModePanic && d.Mode != ModeBounds {
				t.Fatalf("run %d: mode %s, panicking %v", run, d.Mode, s.Panicking(now))
			}
			if change != (want != current) || d.From != current || d.To != want {
				t.Fatalf("run %d: change %v from %d to %d, %+v", run, change, current, want, d)
			}
			if change {
				checkReason(t, d)
				modes[d.Mode]++
			}
			current = want
			if rng.IntN(200) == 0 { // someone else changed the count, bounds aside
				current = rng.IntN(set.Max + 3)
			}
		}
	}
	// The series must reach every rule, or the checks above prove little.
	for _, mode := range []string{ModeStable, ModePanic, ModeIdle, ModeWake, ModeBounds} {
		if modes[mode] == 0 {
			t.Errorf("no %s decision in the random series: %v", mode, modes)
		}
	}
}

package lb

import (
	"sync/atomic"
	"time"
)

// codeClass indexes per-class counters: 1xx to 5xx by status/100, and
// classError for a try that got no response.
type codeClass uint8

const (
	classError codeClass = 0
	numClasses           = 6
)

var classNames = [numClasses]string{"error", "1xx", "2xx", "3xx", "4xx", "5xx"}

func classOf(status int) codeClass {
	if c := status / 100; c >= 1 && c <= 5 {
		return codeClass(c)
	}
	return classError
}

// latencyBounds are the upper bounds, in seconds, of the latency histogram
// buckets: fine below 10 ms, where a healthy replica on this host answers,
// and coarse up to the try timeouts a learner may set.
var latencyBounds = [...]float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

var latencyBoundsNanos = func() (b [len(latencyBounds)]int64) {
	for i, s := range latencyBounds {
		b[i] = int64(s * 1e9)
	}
	return b
}()

// hostMetrics are one replica's counters, written with atomics on the data
// path and read by Stats and the Prometheus collector.
type hostMetrics struct {
	tries     [numClasses]atomic.Uint64
	buckets   [len(latencyBounds) + 1]atomic.Uint64 // the last is +Inf
	sumNanos  atomic.Int64
	ejections atomic.Uint64
	recent    window
}

func (m *hostMetrics) observe(class codeClass, d time.Duration, sec int64) {
	m.tries[class].Add(1)
	n := int64(d)
	i := 0
	for i < len(latencyBoundsNanos) && n > latencyBoundsNanos[i] {
		i++
	}
	m.buckets[i].Add(1)
	m.sumNanos.Add(n)
	m.recent.add(sec, 1)
}

// UpstreamStats is a snapshot of one replica's traffic.
type UpstreamStats struct {
	Upstream
	// State is "ready" (in rotation), "ejected" (in the set, but out of
	// rotation until EjectedUntil), or "removed" (no longer in the set, or
	// drained or marked down, with requests still finishing).
	State        string
	EjectedUntil time.Time `json:",omitzero"`
	// Requests counts tries sent to this replica; Errors those that failed
	// (no response, or a 5xx).
	Requests uint64
	Errors   uint64
	// ByClass counts tries by status class: "2xx", "5xx", "error" (no
	// response), ...
	ByClass  map[string]uint64
	InFlight int64
	// Ejections counts how often the replica was ejected.
	Ejections uint64
	// P50 and P99 are latency estimates from the histogram, interpolated
	// within a bucket; zero before the first request.
	P50, P99 time.Duration
	// Share is this replica's fraction of the group's tries in the last
	// 10 seconds (0 when there were none); TotalShare since it joined.
	Share      float64
	TotalShare float64
}

// snapshot reads h's counters; share fields are filled by the caller.
func (h *host) snapshot(state string, sec int64) (UpstreamStats, uint64) {
	s := UpstreamStats{Upstream: h.up, State: state, InFlight: h.inflight.Load(), ByClass: map[string]uint64{}}
	for c := range h.m.tries {
		n := h.m.tries[c].Load()
		s.Requests += n
		if n > 0 {
			s.ByClass[classNames[c]] = n
		}
	}
	s.Errors = h.m.tries[classError].Load() + h.m.tries[5].Load()
	s.Ejections = h.m.ejections.Load()
	var counts [len(latencyBounds) + 1]uint64
	for i := range counts {
		counts[i] = h.m.buckets[i].Load()
	}
	s.P50 = quantile(counts[:], 0.50)
	s.P99 = quantile(counts[:], 0.99)
	return s, h.m.recent.sum(sec)
}

// quantile estimates the q-quantile of a histogram with latencyBounds,
// interpolating linearly within the bucket that holds it, as Prometheus'
// histogram_quantile does.
func quantile(counts []uint64, q float64) time.Duration {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var cum float64
	for i, c := range counts {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank {
			if i == len(latencyBounds) {
				return time.Duration(latencyBounds[i-1] * 1e9) // +Inf: the highest bound
			}
			lo := 0.0
			if i > 0 {
				lo = latencyBounds[i-1]
			}
			hi := latencyBounds[i]
			return time.Duration((lo + (hi-lo)*(rank-cum)/float64(c)) * 1e9)
		}
		cum += float64(c)
	}
	return time.Duration(latencyBounds[len(latencyBounds)-1] * 1e9)
}

package load

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram counts latencies in microseconds in fixed log-linear buckets:
// exact below 64 µs, then 64 buckets per power of two, so any value is
// known within about 1.6% in a fixed 16 KiB whatever the run's length.
// Record is lock-free and may be called from many goroutines.
type histogram struct {
	buckets [histBuckets]atomic.Int64
	count   atomic.Int64
	sumUs   atomic.Int64
	maxUs   atomic.Int64
}

const (
	histSubBits = 6
	histSub     = 1 << histSubBits // buckets per power of two
	histOctaves = 30               // up to 2^36 µs, about 19 hours
	histBuckets = histSub + histOctaves*histSub
	histMaxUs   = int64(1)<<(histSubBits+histOctaves) - 1
)

func bucketOf(us int64) int {
	if us < histSub {
		return int(max(us, 0))
	}
	us = min(us, histMaxUs)
	shift := bits.Len64(uint64(us)) - histSubBits - 1
	return histSub + shift*histSub + int(us>>shift) - histSub
}

// bucketRange returns the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < histSub {
		return int64(i), int64(i)
	}
	shift := (i - histSub) / histSub
	sub := int64((i-histSub)%histSub + histSub)
	return sub << shift, (sub+1)<<shift - 1
}

func (h *histogram) record(d time.Duration) {
	us := d.Microseconds()
	h.buckets[bucketOf(us)].Add(1)
	h.count.Add(1)
	h.sumUs.Add(us)
	for {
		m := h.maxUs.Load()
		if us <= m || h.maxUs.CompareAndSwap(m, us) {
			return
		}
	}
}

// Latency summarises the latencies of the requests that got a response, in
// milliseconds. Percentiles are exact to within about 2%.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// snapshot reads the histogram. While records go on it may mix a few
// samples from either side of the instant; each figure stays sane.
func (h *histogram) snapshot() Latency {
	var counts [histBuckets]int64
	var total int64
	for i := range counts {
		counts[i] = h.buckets[i].Load()
		total += counts[i]
	}
	if total == 0 {
		return Latency{}
	}
	maxUs := h.maxUs.Load()
	quantile := func(q float64) float64 {
		rank := int64(q*float64(total) + 0.5)
		rank = min(max(rank, 1), total)
		var seen int64
		for i, c := range counts {
			seen += c
			if seen >= rank {
				lo, hi := bucketRange(i)
				return usToMs(min((lo+hi)/2, maxUs))
			}
		}
		return usToMs(maxUs)
	}
	return Latency{
		Count: total,
		Mean:  usToMs(h.sumUs.Load()) / float64(max(h.count.Load(), 1)),
		P50:   quantile(0.50),
		P90:   quantile(0.90),
		P99:   quantile(0.99),
		Max:   usToMs(maxUs),
	}
}

func usToMs(us int64) float64 { return float64(us) / 1000 }

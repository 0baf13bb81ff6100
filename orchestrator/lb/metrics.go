package lb

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metric descriptors. Every series carries the group; per-replica series
// carry the replica's name. They are read from the balancer's own atomics
// at scrape time, so the data path pays nothing for Prometheus, and a
// replica's series end when it leaves the balancer.
var (
	descRequests = prometheus.NewDesc("flotilla_lb_requests_total",
		"Tries sent to a replica, by status class of its answer (error: no answer).",
		[]string{"group", "replica", "code_class"}, nil)
	descDuration = prometheus.NewDesc("flotilla_lb_request_duration_seconds",
		"Time from sending a try to a replica to its full answer.",
		[]string{"group", "replica"}, nil)
	descInFlight = prometheus.NewDesc("flotilla_lb_in_flight_requests",
		"Tries at a replica that have not finished.",
		[]string{"group", "replica"}, nil)
	descEjections = prometheus.NewDesc("flotilla_lb_ejections_total",
		"Times a replica was ejected by outlier detection.",
		[]string{"group", "replica"}, nil)
	descEjected = prometheus.NewDesc("flotilla_lb_ejected",
		"1 while a replica is ejected by outlier detection, else 0.",
		[]string{"group", "replica"}, nil)
	descRetries = prometheus.NewDesc("flotilla_lb_retries_total",
		"Requests retried on another replica.",
		[]string{"group"}, nil)
	descRetriesDenied = prometheus.NewDesc("flotilla_lb_retries_denied_total",
		"Retries not made because the retry budget was spent.",
		[]string{"group"}, nil)
	descUnrouted = prometheus.NewDesc("flotilla_lb_unrouted_requests_total",
		"Requests answered 503 because the group had no ready replica.",
		[]string{"group"}, nil)
)

// collector exposes a Balancer's counters to Prometheus.
type collector struct{ b *Balancer }

// Collector returns a prometheus.Collector for the balancer's metrics.
func (b *Balancer) Collector() prometheus.Collector { return collector{b} }

// Register registers the balancer's metrics with r.
func (b *Balancer) Register(r prometheus.Registerer) error { return r.Register(b.Collector()) }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descDuration, descInFlight, descEjections, descEjected, descRetries, descRetriesDenied, descUnrouted} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	b := c.b
	g := b.cfg.Group
	for _, h := range b.knownHosts() {
		r := h.up.label()
		for cl := range h.m.tries {
			ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue,
				float64(h.m.tries[cl].Load()), g, r, classNames[cl])
		}
		buckets := make(map[float64]uint64, len(latencyBounds))
		var cum uint64
		for i, ub := range latencyBounds {
			cum += h.m.buckets[i].Load()
			buckets[ub] = cum
		}
		cum += h.m.buckets[len(latencyBounds)].Load()
		ch <- prometheus.MustNewConstHistogram(descDuration, cum,
			float64(h.m.sumNanos.Load())/1e9, buckets, g, r)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(h.inflight.Load()), g, r)
		ch <- prometheus.MustNewConstMetric(descEjections, prometheus.CounterValue, float64(h.m.ejections.Load()), g, r)
		ejected := 0.0
		if h.ejected.Load() {
			ejected = 1
		}
		ch <- prometheus.MustNewConstMetric(descEjected, prometheus.GaugeValue, ejected, g, r)
	}
	ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(b.retries.Load()), g)
	ch <- prometheus.MustNewConstMetric(descRetriesDenied, prometheus.CounterValue, float64(b.retriesDenied.Load()), g)
	ch <- prometheus.MustNewConstMetric(descUnrouted, prometheus.CounterValue, float64(b.unrouted.Load()), g)
}

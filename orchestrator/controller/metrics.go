package controller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the controller's own counters; group and replica gauges are
// read from the current status at scrape time.
type metrics struct {
	reconciles *prometheus.CounterVec
	duration   prometheus.Histogram
}

func newMetrics() *metrics {
	return &metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flotilla_reconciles_total",
			Help: "Reconciles of a group, by result (ok or error).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flotilla_reconcile_duration_seconds",
			Help:    "Time to observe, plan and apply one group.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}),
	}
}

func (m *metrics) observeReconcile(d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.reconciles.WithLabelValues(result).Inc()
	m.duration.Observe(d.Seconds())
}

var (
	descDesired = prometheus.NewDesc("flotilla_group_desired_replicas", "Replicas a group should have.", []string{"group", "service"}, nil)
	descReady   = prometheus.NewDesc("flotilla_group_ready_replicas", "Replicas of a group that answer their readiness probe.", []string{"group", "service"}, nil)
	descHealth  = prometheus.NewDesc("flotilla_replica_health", "1 for the replica's current health, by health.", []string{"group", "replica", "health"}, nil)
	descRestart = prometheus.NewDesc("flotilla_replica_restarts", "Replacements of a replica number after crashes.", []string{"group", "replica"}, nil)
	descCPU     = prometheus.NewDesc("flotilla_replica_cpu_ratio", "CPU used by the replica, in cores.", []string{"group", "replica"}, nil)
	descMem     = prometheus.NewDesc("flotilla_replica_memory_bytes", "Memory used by the replica, less page cache.", []string{"group", "replica"}, nil)
)

var healths = []string{HealthStarting, HealthReady, HealthUnready, HealthUnhealthy, HealthPaused, HealthDead}

type collector struct{ c *Controller }

// Collector exposes the controller, its groups and replicas to Prometheus.
func (c *Controller) Collector() prometheus.Collector { return collector{c} }

func (col collector) Describe(ch chan<- *prometheus.Desc) {
	col.c.metrics.reconciles.Describe(ch)
	col.c.metrics.duration.Describe(ch)
	for _, d := range []*prometheus.Desc{descDesired, descReady, descHealth, descRestart, descCPU, descMem} {
		ch <- d
	}
}

func (col collector) Collect(ch chan<- prometheus.Metric) {
	col.c.metrics.reconciles.Collect(ch)
	col.c.metrics.duration.Collect(ch)
	stats := col.c.Stats()
	for _, g := range col.c.Groups() {
		ch <- prometheus.MustNewConstMetric(descDesired, prometheus.GaugeValue, float64(g.Desired), g.Name, g.Service)
		ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, float64(g.Ready), g.Name, g.Service)
		for _, r := range g.Replicas {
			for _, h := range healths {
				v := 0.0
				if r.Health == h {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(descHealth, prometheus.GaugeValue, v, g.Name, r.Name, h)
			}
			ch <- prometheus.MustNewConstMetric(descRestart, prometheus.GaugeValue, float64(r.Restarts), g.Name, r.Name)
			if s, ok := stats[r.Name]; ok && s.MemBytes > 0 {
				ch <- prometheus.MustNewConstMetric(descCPU, prometheus.GaugeValue, s.CPUPercent/100, g.Name, r.Name)
				ch <- prometheus.MustNewConstMetric(descMem, prometheus.GaugeValue, float64(s.MemBytes), g.Name, r.Name)
			}
		}
	}
}

// balancersCollector gathers every running balancer's metrics. Balancers
// come and go with their groups, so it describes nothing up front (an
// unchecked collector); each balancer's series carry its group label.
type balancersCollector struct{ c *Controller }

func (balancersCollector) Describe(chan<- *prometheus.Desc) {}

func (bc balancersCollector) Collect(ch chan<- prometheus.Metric) {
	bc.c.mu.Lock()
	var cols []prometheus.Collector
	for _, g := range bc.c.groups {
		if g.balancer != nil {
			cols = append(cols, g.balancer.b.Collector())
		}
	}
	bc.c.mu.Unlock()
	for _, col := range cols {
		col.Collect(ch)
	}
}

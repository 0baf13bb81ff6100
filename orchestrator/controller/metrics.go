package controller

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flotilla/flotilla/orchestrator/bus"
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

// The autoscaler's and the latest rollout's figures, per group, from the
// group's status at scrape time: what the dashboard draws, for a
// Prometheus that keeps it.
var (
	descAutoWant        = prometheus.NewDesc("flotilla_autoscale_want_replicas", "Serving replicas the autoscaler chose for a group.", []string{"group"}, nil)
	descAutoConcurrency = prometheus.NewDesc("flotilla_autoscale_concurrency", "Requests in flight at a group's balancer (held ones included), the autoscaler's last sample.", []string{"group"}, nil)
	descAutoPending     = prometheus.NewDesc("flotilla_autoscale_pending_messages", "Messages waiting for a message-triggered group, the autoscaler's last sample.", []string{"group"}, nil)
	descAutoPanic       = prometheus.NewDesc("flotilla_autoscale_panicking", "1 while the autoscaler of a group is in its panic mode.", []string{"group"}, nil)
	descAutoHeld        = prometheus.NewDesc("flotilla_autoscale_held_requests", "Requests a group's balancer holds now, waiting for a replica.", []string{"group"}, nil)
	descAutoPool        = prometheus.NewDesc("flotilla_autoscale_pool_replicas", "Paused replicas in a group's warm pool.", []string{"group"}, nil)
	descAutoPoolMem     = prometheus.NewDesc("flotilla_autoscale_pool_memory_bytes", "Memory the warm pool's paused replicas hold.", []string{"group"}, nil)
	descAutoStarts      = prometheus.NewDesc("flotilla_autoscale_requests_total", "Requests by how they found the group: warm (a replica was ready), held (waited for one), failed (held, then answered 503); and wakes: cold (made a replica), pooled (thawed one).", []string{"group", "how"}, nil)
	descRollout         = prometheus.NewDesc("flotilla_rollout_status", "1 for the status of a group's latest rollout, by status.", []string{"group", "revision", "status"}, nil)
	descRolloutNew      = prometheus.NewDesc("flotilla_rollout_new_replicas", "Replicas of a group's latest rollout's new revision.", []string{"group"}, nil)
	descRolloutNewReady = prometheus.NewDesc("flotilla_rollout_new_ready_replicas", "Replicas of a group's latest rollout's new revision that are ready.", []string{"group"}, nil)
	descRolloutShare    = prometheus.NewDesc("flotilla_rollout_traffic_share_ratio", "Share of a group's traffic the latest rollout's new revision gets.", []string{"group"}, nil)
	descRolloutErrors   = prometheus.NewDesc("flotilla_rollout_error_rate_ratio", "Share of a version's answers that failed at the group's balancer over the last 10 s, during the latest rollout.", []string{"group", "version"}, nil)
)

var rolloutStatuses = []string{RolloutProgressing, RolloutPaused, RolloutComplete, RolloutFailed, RolloutRolledBack, RolloutSuperseded}

// autoscaleMetrics sends an autoscaled group's figures.
func autoscaleMetrics(ch chan<- prometheus.Metric, group string, a *AutoscaleStatus) {
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, group)
	}
	gauge(descAutoWant, float64(a.Want))
	gauge(descAutoConcurrency, a.Concurrency)
	gauge(descAutoPending, float64(a.Pending))
	gauge(descAutoPanic, bool01(a.Panicking))
	gauge(descAutoHeld, float64(a.Held))
	gauge(descAutoPool, float64(len(a.Pool)))
	gauge(descAutoPoolMem, float64(a.PoolMemBytes))
	for how, v := range map[string]float64{"warm": float64(a.Starts.Warm), "held": float64(a.Starts.Held), "failed": float64(a.Starts.Failed),
		"cold": float64(a.Starts.Cold), "pooled": float64(a.Starts.Pooled)} {
		ch <- prometheus.MustNewConstMetric(descAutoStarts, prometheus.CounterValue, v, group, how)
	}
}

// rolloutMetrics sends a group's latest rollout's figures.
func rolloutMetrics(ch chan<- prometheus.Metric, group string, r *RolloutStatus) {
	rev := strconv.Itoa(r.Revision)
	for _, st := range rolloutStatuses {
		ch <- prometheus.MustNewConstMetric(descRollout, prometheus.GaugeValue, bool01(r.Status == st), group, rev, st)
	}
	ch <- prometheus.MustNewConstMetric(descRolloutNew, prometheus.GaugeValue, float64(r.New), group)
	ch <- prometheus.MustNewConstMetric(descRolloutNewReady, prometheus.GaugeValue, float64(r.NewReady), group)
	ch <- prometheus.MustNewConstMetric(descRolloutShare, prometheus.GaugeValue, float64(r.Share)/100, group)
	for v, rate := range r.ErrorRates {
		ch <- prometheus.MustNewConstMetric(descRolloutErrors, prometheus.GaugeValue, rate, group, v)
	}
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

type collector struct{ c *Controller }

// Collector exposes the controller, its groups and replicas to Prometheus.
func (c *Controller) Collector() prometheus.Collector { return collector{c} }

func (col collector) Describe(ch chan<- *prometheus.Desc) {
	col.c.metrics.reconciles.Describe(ch)
	col.c.metrics.duration.Describe(ch)
	for _, d := range []*prometheus.Desc{descDesired, descReady, descHealth, descRestart, descCPU, descMem,
		descAutoWant, descAutoConcurrency, descAutoPending, descAutoPanic, descAutoHeld, descAutoPool, descAutoPoolMem, descAutoStarts,
		descRollout, descRolloutNew, descRolloutNewReady, descRolloutShare, descRolloutErrors} {
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
		if g.Autoscale != nil {
			autoscaleMetrics(ch, g.Name, g.Autoscale)
		}
		if g.Rollout != nil {
			rolloutMetrics(ch, g.Name, g.Rollout)
		}
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

// The bus's figures, from the controller's last reading of it (taken every
// second while a bus group runs). The broker counts by stream sequence, so
// the "total" series are the broker's own monotonic figures: they reset
// only with the bus's store.
var (
	descBusUp          = prometheus.NewDesc("flotilla_bus_up", "1 if the controller read the bus at its last reading.", nil, nil)
	descBusMessages    = prometheus.NewDesc("flotilla_bus_stream_messages", "Messages kept in a stream of the bus.", []string{"stream"}, nil)
	descBusBytes       = prometheus.NewDesc("flotilla_bus_stream_bytes", "Bytes kept in a stream of the bus.", []string{"stream"}, nil)
	descBusPublished   = prometheus.NewDesc("flotilla_bus_published_total", "Messages ever published to a stream (its last sequence).", []string{"stream"}, nil)
	descBusDelivered   = prometheus.NewDesc("flotilla_bus_delivered_total", "Messages of a stream a consumer was delivered (the stream sequence last delivered).", []string{"stream", "consumer"}, nil)
	descBusAcked       = prometheus.NewDesc("flotilla_bus_acked_total", "Messages a consumer is done with: delivered and no longer waiting for an ack (acknowledged, or given up on after MaxDeliver).", []string{"stream", "consumer"}, nil)
	descBusAckPending  = prometheus.NewDesc("flotilla_bus_ack_pending", "Messages delivered to a consumer and not yet acknowledged.", []string{"stream", "consumer"}, nil)
	descBusRedelivered = prometheus.NewDesc("flotilla_bus_redelivered", "Messages of a consumer not yet acknowledged that were delivered more than once.", []string{"stream", "consumer"}, nil)
	descBusLag         = prometheus.NewDesc("flotilla_bus_consumer_lag", "Messages of a stream not yet delivered to a consumer.", []string{"stream", "consumer"}, nil)
	descBusDead        = prometheus.NewDesc("flotilla_bus_dead_letters", "Dead letters waiting for a replay: messages a consumer gave up on after MaxDeliver attempts.", []string{"stream", "consumer"}, nil)
)

// busCollector exposes the bus's last reading.
type busCollector struct{ c *Controller }

func (busCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBusUp, descBusMessages, descBusBytes, descBusPublished, descBusDelivered, descBusAcked, descBusAckPending, descBusRedelivered, descBusLag, descBusDead} {
		ch <- d
	}
}

func (bc busCollector) Collect(ch chan<- prometheus.Metric) {
	st := bc.c.BusStatus()
	up := 0.0
	if st.Up {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descBusUp, prometheus.GaugeValue, up)
	if !st.Up {
		return
	}
	dead := map[[2]string]int{}
	for _, d := range st.Dead {
		dead[[2]string{d.Stream, d.Consumer}]++
	}
	for _, s := range st.Streams {
		ch <- prometheus.MustNewConstMetric(descBusMessages, prometheus.GaugeValue, float64(s.Messages), s.Name)
		ch <- prometheus.MustNewConstMetric(descBusBytes, prometheus.GaugeValue, float64(s.Bytes), s.Name)
		ch <- prometheus.MustNewConstMetric(descBusPublished, prometheus.CounterValue, float64(s.LastSeq), s.Name)
		for _, c := range s.Consumers {
			ch <- prometheus.MustNewConstMetric(descBusDelivered, prometheus.CounterValue, float64(c.Delivered), s.Name, c.Name)
			ch <- prometheus.MustNewConstMetric(descBusAcked, prometheus.CounterValue, float64(bus.Settled(c)), s.Name, c.Name)
			ch <- prometheus.MustNewConstMetric(descBusAckPending, prometheus.GaugeValue, float64(c.AckPending), s.Name, c.Name)
			ch <- prometheus.MustNewConstMetric(descBusRedelivered, prometheus.GaugeValue, float64(c.Redelivered), s.Name, c.Name)
			ch <- prometheus.MustNewConstMetric(descBusLag, prometheus.GaugeValue, float64(c.Pending), s.Name, c.Name)
			ch <- prometheus.MustNewConstMetric(descBusDead, prometheus.GaugeValue, float64(dead[[2]string{s.Name, c.Name}]), s.Name, c.Name)
		}
	}
}

package lb

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPrometheusMetrics(t *testing.T) {
	a := newBackend(t, "a", nil)
	bad := newBackend(t, "bad", failing("no"))
	dead := Upstream{ID: "dead", Name: "dead", Addr: refusedAddr(t)}
	lb := startLB(t, Config{Group: "shop", EjectAfter: -1}, a.up(), bad.up(), dead)
	for range 6 {
		get(t, lb)
	}

	reg := prometheus.NewRegistry()
	if err := lb.Register(reg); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.CollectAndLint(lb.Collector()); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
	// Round-robin over a, bad, dead, where a retry takes the next turn:
	// a, bad, dead→a, bad, dead→a, bad. So a answers 3, bad answers 3 with
	// 500, dead fails 2 (both retried).
	want := `
# HELP flotilla_lb_requests_total Tries sent to a replica, by status class of its answer (error: no answer).
# TYPE flotilla_lb_requests_total counter
flotilla_lb_requests_total{code_class="1xx",group="shop",replica="a"} 0
flotilla_lb_requests_total{code_class="1xx",group="shop",replica="bad"} 0
flotilla_lb_requests_total{code_class="1xx",group="shop",replica="dead"} 0
flotilla_lb_requests_total{code_class="2xx",group="shop",replica="a"} 3
flotilla_lb_requests_total{code_class="2xx",group="shop",replica="bad"} 0
flotilla_lb_requests_total{code_class="2xx",group="shop",replica="dead"} 0
flotilla_lb_requests_total{code_class="3xx",group="shop",replica="a"} 0
flotilla_lb_requests_total{code_class="3xx",group="shop",replica="bad"} 0
flotilla_lb_requests_total{code_class="3xx",group="shop",replica="dead"} 0
flotilla_lb_requests_total{code_class="4xx",group="shop",replica="a"} 0
flotilla_lb_requests_total{code_class="4xx",group="shop",replica="bad"} 0
flotilla_lb_requests_total{code_class="4xx",group="shop",replica="dead"} 0
flotilla_lb_requests_total{code_class="5xx",group="shop",replica="a"} 0
flotilla_lb_requests_total{code_class="5xx",group="shop",replica="bad"} 3
flotilla_lb_requests_total{code_class="5xx",group="shop",replica="dead"} 0
flotilla_lb_requests_total{code_class="error",group="shop",replica="a"} 0
flotilla_lb_requests_total{code_class="error",group="shop",replica="bad"} 0
flotilla_lb_requests_total{code_class="error",group="shop",replica="dead"} 2
# HELP flotilla_lb_retries_total Requests retried on another replica.
# TYPE flotilla_lb_retries_total counter
flotilla_lb_retries_total{group="shop"} 2
# HELP flotilla_lb_in_flight_requests Tries at a replica that have not finished.
# TYPE flotilla_lb_in_flight_requests gauge
flotilla_lb_in_flight_requests{group="shop",replica="a"} 0
flotilla_lb_in_flight_requests{group="shop",replica="bad"} 0
flotilla_lb_in_flight_requests{group="shop",replica="dead"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"flotilla_lb_requests_total", "flotilla_lb_retries_total", "flotilla_lb_in_flight_requests"); err != nil {
		t.Error(err)
	}
	for name, n := range map[string]int{
		"flotilla_lb_request_duration_seconds": 3,
		"flotilla_lb_ejections_total":          3,
		"flotilla_lb_ejected":                  3,
		"flotilla_lb_retries_denied_total":     1,
		"flotilla_lb_unrouted_requests_total":  1,
	} {
		if got, err := testutil.GatherAndCount(reg, name); err != nil || got != n {
			t.Errorf("%s: %d series (%v), want %d", name, got, err, n)
		}
	}
	// The histogram counts every try.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "flotilla_lb_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if c := m.GetHistogram().GetSampleCount(); c != 2 && c != 3 {
				t.Errorf("histogram %v: %d samples", m.GetLabel(), c)
			}
		}
	}
}

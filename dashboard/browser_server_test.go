package dashboard_test

// The server the browser tests open: the real API handlers (REST routes, the
// stream over its websocket, the embedded page with its security headers)
// on a real socket, with the shared fake controller behind them. Only the
// controller is fake, so a change of the API that the page does not follow
// fails here.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flotilla/flotilla/dashboard"
	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/api/apitest"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/load"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/sample-services/scenarios"
)

// maxReplicas is the controller's --max-replicas in these tests.
const maxReplicas = 50

// call is one REST request the page sent.
type call struct {
	Method, Path, ContentType, Body string
}

// fakeController is the API over the fake, as the page sees it, plus what
// the tests need around it: the requests the page sent, the count of
// stream connections, live figures every second and a restart.
type fakeController struct {
	t         *testing.T
	srv       *httptest.Server
	fake      *apitest.Controller
	scenarios []spec.Scenario // the real stage files, in stage order

	mu       sync.Mutex
	calls    []call
	events   *hub.Hub
	api      http.Handler
	refusing bool // the stream answers 503, as while the controller restarts
	connects int
	stats    map[string]controller.ReplicaStats
	fixed    map[string]controller.ReplicaStats // by replica: figures fixStats set, sent as they are
}

func newFakeController(t *testing.T, groups ...controller.GroupStatus) *fakeController {
	f := &fakeController{t: t, stats: map[string]controller.ReplicaStats{}, fixed: map[string]controller.ReplicaStats{}}
	var err error
	if f.scenarios, err = spec.LoadScenarios(scenarios.Files(), maxReplicas); err != nil {
		t.Fatalf("the stage files: %v", err)
	}
	// Whatever the page puts, the controller shows converged at once, as
	// makeGroup draws it, of the isolation asked for (VMs emulated, as on a
	// machine without KVM); the tests show every other state themselves.
	f.fake = apitest.New(apitest.Options{MaxReplicas: maxReplicas, VM: true, Status: func(g spec.Group) controller.GroupStatus {
		st := makeGroup(g.Name, g.Service, g.Balancer.Policy, g.Replicas)
		st.Isolation = g.Isolation
		if g.Isolation == spec.IsolationVM {
			st.Accel = "tcg"
		}
		return st
	}})
	f.start()
	for _, g := range groups {
		f.fake.SetGroup(g)
		f.setStatsFor(g, 0)
		f.pushEvent(hub.GroupCreated, g.Name, "", "group "+g.Name+" created")
		for _, r := range g.Replicas {
			f.pushEvent(hub.ReplicaReady, g.Name, r.Name, r.Name+" is ready")
		}
	}

	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		f.statsLoop(stop)
	}()
	t.Cleanup(func() {
		close(stop)
		<-stopped
		f.mu.Lock()
		events := f.events
		f.mu.Unlock()
		events.Close() // ends every page's stream with a close frame
		f.srv.Close()
	})
	return f
}

// start builds the API anew, with a new hub, as a controller starting does.
func (f *fakeController) start() {
	events := hub.New(hub.Options{})
	h, err := api.New(api.Options{
		Controller: f.fake, Faults: f.fake, Load: f.fake, Hub: events, Bus: f.fake,
		Assets: dashboard.Assets(), Scenarios: f.scenarios, Log: testLog{f.t},
	})
	if err != nil {
		// Errorf, not Fatalf: a restart runs on a goroutine of its own.
		f.t.Errorf("api: %v", err)
		return
	}
	f.fake.SetEvents(events)
	f.mu.Lock()
	f.events, f.api = events, h
	f.mu.Unlock()
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Logf("api: %s", bytes.TrimSpace(p))
	return len(p), nil
}

// serve hands every request to the API; it records the mutating ones once
// the API has answered them, so a test that saw a call sees its effect.
func (f *fakeController) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	h, refusing := f.api, f.refusing
	if r.URL.Path == "/api/v1/stream" && !refusing {
		f.connects++
	}
	f.mu.Unlock()
	if r.URL.Path == "/api/v1/stream" && refusing {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":"restarting"}`)
		return
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		h.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	h.ServeHTTP(w, r)
	f.mu.Lock()
	f.calls = append(f.calls, call{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Body: string(body)})
	f.mu.Unlock()
}

// open loads the page and waits until it is connected and laid out: the
// stage picker, filled from a request of its own, pushes everything below
// it down, and a click aimed before it arrives lands on the wrong thing.
func (f *fakeController) open(b *dashboard.Browser) {
	f.t.Helper()
	b.Open(f.srv.URL)
	b.WaitConnected()
	b.WaitFor("the stage picker", fmt.Sprintf(`document.querySelectorAll('#stage-picker [data-action="scenario"]').length === %d`, len(f.scenarios)), 0)
}

// pushGroup shows g as the controller's status of the group; the stream
// sends it within a second.
func (f *fakeController) pushGroup(g controller.GroupStatus) {
	f.fake.SetGroup(g)
}

// pushEvent publishes an event, as the controller does.
func (f *fakeController) pushEvent(kind, group, replica, message string) {
	f.mu.Lock()
	events := f.events
	f.mu.Unlock()
	events.Publish(hub.Event{Kind: kind, Group: group, Replica: replica, Message: message})
}

// setStatsFor makes up live figures for every replica of g; tick varies them.
func (f *fakeController) setStatsFor(g controller.GroupStatus, tick int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range g.Replicas {
		if r.State != "running" {
			delete(f.stats, r.Name)
			continue
		}
		if st, ok := f.fixed[r.Name]; ok {
			f.stats[r.Name] = st
			continue
		}
		share := 1 / float64(len(g.Replicas))
		f.stats[r.Name] = controller.ReplicaStats{
			Group: g.Name, RPS: 200 * share, P50Ms: 0.3 + 0.05*float64((i+tick)%7),
			P99Ms: 1.1 + 0.4*float64((i*3+tick)%11), Share: share,
			CPUPercent: 2 + float64((i+tick)%9), MemBytes: uint64(7<<20 + (i%5)<<19), MemLimitBytes: 64 << 20,
		}
	}
	f.fake.SetStats(f.stats)
}

// fixStats makes a replica's live figures st from now on, instead of made-up
// ones; the next stats message carries them.
func (f *fakeController) fixStats(replica string, st controller.ReplicaStats) {
	f.mu.Lock()
	f.fixed[replica] = st
	f.stats[replica] = st
	stats := maps.Clone(f.stats)
	f.mu.Unlock()
	f.fake.SetStats(stats)
}

// statsLoop varies the figures every second; the stream sends them every
// second.
func (f *fakeController) statsLoop(stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-stop:
			return
		case <-tick.C:
			for _, g := range f.fake.Groups() {
				f.setStatsFor(g, n)
			}
		}
	}
}

// restartStream ends every stream and refuses new ones for a while, then
// serves a new API with a new hub, as a restarting controller does.
func (f *fakeController) restartStream(down time.Duration) {
	f.mu.Lock()
	f.refusing = true
	old := f.events
	f.mu.Unlock()
	old.Close()
	time.AfterFunc(down, func() {
		f.start()
		f.mu.Lock()
		f.refusing = false
		f.mu.Unlock()
	})
}

func (f *fakeController) connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connects
}

// waitCall waits for a request with method and path and returns it.
func (f *fakeController) waitCall(method, path string) call {
	f.t.Helper()
	var found call
	dashboard.WaitUntil(f.t, method+" "+path, 0, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.calls {
			if c.Method == method && c.Path == path {
				found = c
				return true
			}
		}
		return false
	})
	return found
}

// applyScenario applies the named stage from outside the page, as the CLI
// or a demo script does.
func (f *fakeController) applyScenario(name string) (controller.ScenarioResult, bool) {
	i := slices.IndexFunc(f.scenarios, func(sc spec.Scenario) bool { return sc.Name == name })
	if i < 0 {
		return controller.ScenarioResult{}, false
	}
	res, err := f.fake.ApplyScenario(context.Background(), f.scenarios[i])
	if err != nil {
		f.t.Errorf("apply %s: %v", name, err)
		return res, false
	}
	return res, true
}

// makeGroup builds a converged group of n ready replicas.
func makeGroup(name, service, policy string, n int) controller.GroupStatus {
	g := controller.GroupStatus{
		Name: name, Service: service, Desired: n, Ready: n, Status: "converged",
		Resources: spec.Resources{MemoryMiB: 64, MilliCPU: 500, Pids: 64},
		Balancer:  spec.Balancer{Policy: policy},
	}
	if policy != "none" {
		g.Endpoint = "127.0.0.1:40001"
	}
	for i := 1; i <= n; i++ {
		g.Replicas = append(g.Replicas, makeReplica(name, i, "ready", n, policy != "none"))
	}
	return g
}

func makeReplica(group string, i int, health string, of int, balanced bool) controller.ReplicaStatus {
	r := controller.ReplicaStatus{
		Name: fmt.Sprintf("%s-%d", group, i), ID: strings.Repeat(fmt.Sprintf("%x", i%16), 64),
		State: "running", Health: health,
		Address: fmt.Sprintf("127.0.0.1:%d", 41000+i), Upstream: fmt.Sprintf("192.168.50.%d:8080", 10+i),
	}
	if balanced {
		share := 1 / float64(of)
		r.Traffic = &controller.Traffic{State: "ready", Requests: uint64(1000 / of), Share: share, TotalShare: share, P50Ms: 0.3, P99Ms: 1.2}
	}
	return r
}

func requireJSON(t *testing.T, c call, want string) {
	t.Helper()
	if c.ContentType != "application/json" {
		t.Errorf("%s %s sent Content-Type %q, want application/json", c.Method, c.Path, c.ContentType)
	}
	var got, exp any
	if err := json.Unmarshal([]byte(c.Body), &got); err != nil {
		t.Fatalf("%s %s sent %q: %v", c.Method, c.Path, c.Body, err)
	}
	json.Unmarshal([]byte(want), &exp)
	gb, _ := json.Marshal(got)
	eb, _ := json.Marshal(exp)
	if string(gb) != string(eb) {
		t.Errorf("%s %s sent %s, want %s", c.Method, c.Path, gb, eb)
	}
}

// stepCounts is one step of a journey report: ok, failed and, for the
// cart, incomplete.
type stepCounts struct{ ok, failed, incomplete int64 }

// setJourneyReport makes load run id a journey run with these counts; the
// next stats message carries it.
func (f *fakeController) setJourneyReport(id string, steps map[string]stepCounts) {
	rate := func(ok, n int64) float64 {
		if n == 0 {
			return 0
		}
		return float64(ok) / float64(n)
	}
	count := func(c stepCounts) load.StepCounts {
		st := load.StepCounts{OK: c.ok, Failed: c.failed, SuccessRate: rate(c.ok, c.ok+c.failed)}
		if c.failed > 0 {
			st.Errors = map[string]int64{"status_5xx": c.failed}
		}
		return st
	}
	var sent, failed int64
	for _, c := range steps {
		sent += c.ok + c.failed
		failed += c.failed
	}
	cart := steps["cart"]
	// A journey ends at checkout, or at its first failure.
	done := steps["checkout"].ok
	jFailed := failed + cart.incomplete
	_, err := f.fake.SetLoad(id, func(r *load.Report) {
		r.Steps = &load.JourneySteps{
			Browse: count(steps["browse"]), Deals: count(steps["deals"]), Add: count(steps["add"]),
			Cart:     load.CartStepCounts{StepCounts: count(cart), Incomplete: cart.incomplete, CompleteRate: rate(cart.ok-cart.incomplete, cart.ok)},
			Checkout: count(steps["checkout"]),
		}
		r.Journeys = &load.JourneyCounts{Started: steps["browse"].ok + steps["browse"].failed, Succeeded: done - cart.incomplete,
			Failed: jFailed, SuccessRate: rate(done-cart.incomplete, done-cart.incomplete+jFailed)}
		r.Sent, r.Succeeded, r.Failed = sent, sent-failed, failed
		r.RatePerSec = 50
		r.LatencyMs = load.Latency{P50: 1.8, P99: 7.5}
		r.ByReplica = map[string]int64{"shop-1": sent / 3, "shop-2": sent / 3, "shop-3": sent - 2*(sent/3)}
	})
	if err != nil {
		f.t.Fatalf("no load run %s: %v", id, err)
	}
}

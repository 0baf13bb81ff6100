package docker_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/images/imagestest"
	"github.com/flotilla/flotilla/orchestrator/lb"
	"github.com/flotilla/flotilla/orchestrator/load"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/orchestrator/store"
	"github.com/flotilla/flotilla/sample-services/version"
)

// The rollout benchmark's shape.
const (
	roGroup    = "web"
	roReplicas = 10
	roPath     = "/catalog"
	// roRate is the load's requests per second unless FLOTILLA_BENCH_RATE
	// says otherwise.
	roRate = 200
	// roConcurrency bounds the load's requests in flight: at 200 req/s
	// and the load's 2 s timeout, room for a second of stalled answers.
	roConcurrency = 200
	// roLimit bounds a rollout, a recreate, and so the load during either.
	roLimit = 5 * time.Minute
	// roSettle is the load kept on after an update ends, its failures
	// counted with the update's and its latencies left out of them: an old
	// replica that went away late still shows.
	roSettle = 2 * time.Second
)

// BenchmarkRollingUpdate measures a rolling update of 10 replicas of the
// monolith from v1 to v2 (rolling, maxSurge 1, maxUnavailable 0, probes
// every 200 ms with a 200 ms timeout) on a real controller on the real
// engine, under a steady open-loop load of FLOTILLA_BENCH_RATE req/s
// (default 200) of GET /catalog from the load generator (package load,
// in-process) to the group's balancer, over FLOTILLA_BENCH_TRIALS rounds
// (default 3). Each round puts the group at v1 afresh and waits until its
// 10 replicas are ready, then:
//
//  1. before: the load for a window as long as the previous round's
//     rollout (the first round's: a calibration rollout under the same
//     load, not counted);
//  2. during: the load from just before the PUT of v2 until the rollout's
//     status is complete (every replica v2 and available, the old ones
//     gone), then roSettle more whose failures count too.
//
// It reports the failed requests (any 4xx, 5xx or transport error), the
// time from the PUT to complete, and the p99 latency before and during.
//
// docker-compose cannot do this: it has no rolling update (update_config
// is for swarm's stack deploy), no readiness gate and no balancer. The
// nearest is the same 10 replicas (same image, role, policy and limits)
// published on a fixed range of 127.0.0.1 ports, behind Flotilla's own
// lb.Balancer with those 10 ports as its static upstreams (as a
// hand-written nginx upstream block would list them), and `up -d` of the
// file with FLOTILLA_VERSION=v2 added, which recreates the containers. It
// runs under the same load with the same before window, from `up` until
// all 10 answer /readyz as v2. The balancer still retries a refused GET on
// another replica and ejects failing ones, which spares compose failures
// it would have alone.
//
// It prints one table with p50 and max over the rounds, and whether the
// target (no failed request during Flotilla's rollout) is met.
func BenchmarkRollingUpdate(b *testing.B) {
	rounds := dockertest.EnvInt(b, "FLOTILLA_BENCH_TRIALS", 3)
	rate := dockertest.EnvInt(b, "FLOTILLA_BENCH_RATE", roRate)
	refs := imagestest.Images(b)
	image := refs["shop"]
	g := roGroupSpec()

	drv := dockertest.New(b)
	st, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ctrl := controller.New(controller.Options{Runtime: drv, Store: st, Images: refs, StopTimeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { ctrl.Run(ctx); close(runDone) }()
	// Stop the controller before the cleanups remove what it made, or it
	// would heal what they remove.
	b.Cleanup(func() { cancel(); <-runDone })
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close() })

	rb := &roBench{ctrl: ctrl, f: &isoFlotilla{ctrl: ctrl, drv: drv, cli: cli}, rate: rate}
	cp, haveCompose := newComposeProject(b, image, g.WithDefaults())
	var rc *roCompose
	if haveCompose {
		rc, err = newRoCompose(cp, cli, image, g.WithDefaults())
		if err != nil {
			b.Fatal(err)
		}
	} else {
		b.Log("docker-compose is not installed: the update has no peer")
	}

	// The first before window is as long as one rollout, unloaded.
	calib, err := rb.calibrate(ctx)
	if err != nil {
		b.Fatalf("calibration rollout: %v", err)
	}
	window := calib

	var ours, theirs []roResult
	policies := map[string]map[string]string{}
	b.ResetTimer()
	for round := range rounds {
		ways := []string{"flotilla", "docker-compose"}
		if !haveCompose {
			ways = ways[:1]
		}
		if round%2 == 1 {
			slices.Reverse(ways)
		}
		next := window
		for _, w := range ways {
			if w == "docker-compose" {
				r, err := rc.round(ctx, window, rate, round == 0)
				if err != nil {
					b.Fatalf("docker-compose, round %d: %v", round+1, err)
				}
				theirs = append(theirs, r)
				if round == 0 {
					policies[w] = r.policy
				}
				continue
			}
			r, err := rb.round(ctx, window, round == 0)
			if err != nil {
				b.Fatalf("flotilla, round %d: %v", round+1, err)
			}
			ours = append(ours, r)
			if round == 0 {
				policies[w] = r.policy
			}
			next = r.total
		}
		window = next
	}
	b.StopTimer()

	// A peer is only a peer if it runs what Flotilla runs, as Flotilla
	// runs it.
	if fl, co := policyCore(policies["flotilla"]), policyCore(policies["docker-compose"]); haveCompose && !maps.Equal(fl, co) {
		b.Errorf("docker-compose does not run what Flotilla runs:\nflotilla %v\ncompose  %v", fl, co)
	}

	fmt.Printf("\nrolling update: %d replicas of the monolith (the shop image), v1 -> v2, under %d req/s of GET %s (open loop, load generator in-process); %d round(s)\n",
		roReplicas, rate, roPath, rounds)
	fmt.Printf("flotilla: rollout {strategy: rolling, maxSurge: 1, maxUnavailable: 0}, probes {periodMs: 200, timeoutMs: 200}, the load at the group's balancer;\n")
	fmt.Printf("  time = PUT of v2 until the rollout's status is complete (every replica v2 and available, the old ones gone).\n")
	fmt.Printf("docker-compose: the same image and policy, 10 replicas on a fixed range of 127.0.0.1 ports behind Flotilla's lb.Balancer with those\n")
	fmt.Printf("  ports as static upstreams; `up -d` with %s=v2 recreates them; time = `up` until all 10 answer /readyz as v2.\n", version.Env)
	fmt.Printf("before = the load for as long as the previous round's rollout took, just before the update (round 1: %.1f s, a calibration\n", calib.Seconds())
	fmt.Printf("  rollout under the same load, not counted); during = from the update's start to its end; failures also count the %s after it. p50 / max over rounds.\n\n", roSettle)

	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	fmt.Printf("  %-34s %10s %10s   %10s %10s   %s\n", "measure", "flotilla", "", "compose", "", "target")
	fmt.Printf("  %-34s %10s %10s   %10s %10s\n", "", "p50", "max", "p50", "max")
	row := func(name, format string, get func(roResult) float64, target string) {
		cells := func(rs []roResult) string {
			if len(rs) == 0 {
				return fmt.Sprintf("%10s %10s", "-", "-")
			}
			vs := make([]float64, len(rs))
			for i, r := range rs {
				vs[i] = get(r)
			}
			slices.Sort(vs)
			return fmt.Sprintf("%10s %10s", fmt.Sprintf(format, vs[(len(vs)-1)/2]), fmt.Sprintf(format, vs[len(vs)-1]))
		}
		line := fmt.Sprintf("  %-34s %s   %s   %s", name, cells(ours), cells(theirs), target)
		fmt.Println(strings.TrimRight(line, " "))
	}
	maxFailed := 0
	for _, r := range ours {
		maxFailed = max(maxFailed, r.failed)
	}
	row("failed requests", "%.0f", func(r roResult) float64 { return float64(r.failed) }, fmt.Sprintf("0: %s", verdict(maxFailed == 0)))
	row("requests sent during", "%.0f", func(r roResult) float64 { return float64(r.sent) }, "")
	row("ticks dropped (all slots busy)", "%.0f", func(r roResult) float64 { return float64(r.dropped) }, "")
	row("total time (s)", "%.1f", func(r roResult) float64 { return r.total.Seconds() }, "")
	row("before window (s)", "%.1f", func(r roResult) float64 { return r.window.Seconds() }, "")
	row("p99 before (ms)", "%.1f", func(r roResult) float64 { return r.p99Before }, "")
	row("p99 during (ms)", "%.1f", func(r roResult) float64 { return r.p99During }, "")
	row("p99 during / before", "%.2f", func(r roResult) float64 { return r.p99During / r.p99Before }, "")
	row("p50 before (ms)", "%.1f", func(r roResult) float64 { return r.p50Before }, "")
	row("p50 during (ms)", "%.1f", func(r roResult) float64 { return r.p50During }, "")
	fmt.Println()
	for i, r := range ours {
		fmt.Printf("  flotilla round %d: %s\n", i+1, r.line())
	}
	for i, r := range theirs {
		fmt.Printf("  compose  round %d: %s\n", i+1, r.line())
	}
	fmt.Println()

	b.ReportMetric(float64(maxFailed), "failed-max")
	b.ReportMetric(roMedian(ours, func(r roResult) float64 { return r.total.Seconds() }), "rollout-s")
	b.ReportMetric(roMedian(ours, func(r roResult) float64 { return r.p99During / r.p99Before }), "p99-during/before")
	if haveCompose {
		b.ReportMetric(roMedian(theirs, func(r roResult) float64 { return float64(r.failed) }), "compose-failed")
	}
}

// roGroupSpec is the benchmark's group at v1.
func roGroupSpec() spec.Group {
	surge, unavailable := 1, 0
	return spec.Group{Name: roGroup, Service: "monolith", Replicas: roReplicas, Version: "v1",
		Probe:   spec.Probe{PeriodMs: 200, TimeoutMs: 200},
		Rollout: &spec.Rollout{Strategy: spec.StrategyRolling, MaxSurge: &surge, MaxUnavailable: &unavailable}}
}

// roResult is one round of one way.
type roResult struct {
	failed, sent, dropped int
	errors                map[string]int64
	total, window         time.Duration
	p99Before, p99During  float64 // ms
	p50Before, p50During  float64
	policy                map[string]string
}

func (r roResult) line() string {
	s := fmt.Sprintf("%d of %d failed, %.1f s, p99 %.1f -> %.1f ms (before window %.1f s)",
		r.failed, r.sent, r.total.Seconds(), r.p99Before, r.p99During, r.window.Seconds())
	if len(r.errors) > 0 {
		s += fmt.Sprintf(", failures by kind %v", r.errors)
	}
	return s
}

func roMedian(rs []roResult, get func(roResult) float64) float64 {
	if len(rs) == 0 {
		return 0
	}
	vs := make([]float64, len(rs))
	for i, r := range rs {
		vs[i] = get(r)
	}
	slices.Sort(vs)
	return vs[(len(vs)-1)/2]
}

// roLoad starts the load at target for d.
func roLoad(ctx context.Context, target string, rate int, d time.Duration) (*load.Run, error) {
	return load.Start(ctx, load.Spec{
		Target: target, Rate: rate, Concurrency: roConcurrency, Paths: []string{roPath},
		Duration: min(max(d, load.MinDuration), load.MaxDuration),
	})
}

// roFinish stops run (if it still runs) and returns its final report.
func roFinish(run *load.Run) load.Report {
	run.Stop()
	<-run.Done()
	return run.Report()
}

// roMeasure runs the before window at target, then the update, under load,
// and the settle after it. update starts the update and returns when it has
// ended.
func roMeasure(ctx context.Context, target string, rate int, window time.Duration, update func() error) (roResult, error) {
	res := roResult{window: window}
	before, err := roLoad(ctx, target, rate, window)
	if err != nil {
		return res, err
	}
	<-before.Done()
	br := before.Report()
	during, err := roLoad(ctx, target, rate, roLimit)
	if err != nil {
		return res, err
	}
	start := time.Now()
	err = update()
	res.total = time.Since(start)
	dr := roFinish(during)
	if err != nil {
		return res, err
	}
	settle, err := roLoad(ctx, target, rate, roSettle)
	if err != nil {
		return res, err
	}
	<-settle.Done()
	sr := settle.Report()
	res.failed = int(dr.Failed + sr.Failed)
	res.sent = int(dr.Sent)
	res.dropped = int(dr.Dropped + sr.Dropped)
	res.errors = map[string]int64{}
	for _, m := range []map[string]int64{dr.Errors, sr.Errors} {
		for k, n := range m {
			if k != load.KindStatus5xx && k != load.KindStatus4xx {
				res.errors[k] += n
			}
		}
	}
	// Answers that failed are told by their status: a replica's own 5xx
	// or the balancer's (502 refused or reset, 504 no answer in time, 503
	// nothing in rotation).
	for _, m := range []map[int]int64{dr.Status, sr.Status} {
		for code, n := range m {
			if code >= 400 {
				res.errors["HTTP "+strconv.Itoa(code)] += n
			}
		}
	}
	res.p99Before, res.p99During = br.LatencyMs.P99, dr.LatencyMs.P99
	res.p50Before, res.p50During = br.LatencyMs.P50, dr.LatencyMs.P50
	if br.Failed > 0 {
		return res, fmt.Errorf("%d of %d requests failed before the update: %v", br.Failed, br.Sent, br.Errors)
	}
	return res, nil
}

// roBench runs Flotilla's side.
type roBench struct {
	ctrl *controller.Controller
	f    *isoFlotilla // for down: delete and wait until all is gone
	rate int
}

// put puts the group at v1 and waits until its 10 replicas are ready
// and it has converged; it returns the balancer's endpoint.
func (r *roBench) put(ctx context.Context) (string, error) {
	if _, _, err := r.ctrl.PutGroup(ctx, roGroupSpec()); err != nil {
		return "", err
	}
	var endpoint string
	err := isoEvery(ctx, 50*time.Millisecond, 2*time.Minute, func() error {
		gs, err := r.ctrl.Group(roGroup)
		if err != nil {
			return err
		}
		if gs.Ready != roReplicas || len(gs.Replicas) != roReplicas || gs.Status != controller.StatusConverged || gs.Endpoint == "" {
			return fmt.Errorf("%d of %d ready, status %s, endpoint %q", gs.Ready, len(gs.Replicas), gs.Status, gs.Endpoint)
		}
		for _, rep := range gs.Replicas {
			if rep.Version != "v1" {
				return fmt.Errorf("replica %s runs %s", rep.Name, rep.Version)
			}
		}
		endpoint = gs.Endpoint
		return nil
	})
	return endpoint, err
}

// update puts v2 and waits until its rollout is complete.
func (r *roBench) update(ctx context.Context) error {
	g := roGroupSpec()
	g.Version = "v2"
	gs, _, err := r.ctrl.PutGroup(ctx, g)
	if err != nil {
		return err
	}
	if gs.Rollout == nil || gs.Rollout.Status != controller.RolloutProgressing || gs.Rollout.Strategy != spec.StrategyRolling {
		return fmt.Errorf("the PUT of v2 started no rolling update: %+v", gs.Rollout)
	}
	revision := gs.Rollout.Revision
	deadline := time.Now().Add(roLimit)
	for {
		gs, err := r.ctrl.Group(roGroup)
		if err != nil {
			return err
		}
		ro := gs.Rollout
		switch {
		case ro == nil || ro.Revision != revision:
			return fmt.Errorf("rollout %+v, want revision %d", ro, revision)
		case ro.Status == controller.RolloutComplete:
			return nil
		case ro.Status != controller.RolloutProgressing:
			return fmt.Errorf("rollout %s: %s", ro.Status, ro.Reason)
		case time.Now().After(deadline):
			return fmt.Errorf("rollout not complete after %s: %s", roLimit, ro.Progress)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// calibrate times one rollout under the same load, not measured.
func (r *roBench) calibrate(ctx context.Context) (d time.Duration, err error) {
	defer func() {
		if derr := r.f.down(context.WithoutCancel(ctx), roGroup); derr != nil && err == nil {
			err = fmt.Errorf("remove: %w", derr)
		}
	}()
	endpoint, err := r.put(ctx)
	if err != nil {
		return 0, err
	}
	run, err := roLoad(ctx, endpoint, r.rate, roLimit)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	err = r.update(ctx)
	d = time.Since(start)
	roFinish(run)
	return d, err
}

// round is one measured rollout of a fresh group.
func (r *roBench) round(ctx context.Context, window time.Duration, policy bool) (res roResult, err error) {
	defer func() {
		if derr := r.f.down(context.WithoutCancel(ctx), roGroup); derr != nil && err == nil {
			err = fmt.Errorf("remove: %w", derr)
		}
	}()
	endpoint, err := r.put(ctx)
	if err != nil {
		return res, err
	}
	if policy {
		if res.policy, err = isoPolicies(ctx, r.f.cli, r.f.drv); err != nil {
			return res, err
		}
	}
	pol := res.policy
	res, err = roMeasure(ctx, endpoint, r.rate, window, func() error { return r.update(ctx) })
	res.policy = pol
	if err != nil {
		return res, err
	}
	gs, err := r.ctrl.Group(roGroup)
	if err != nil {
		return res, err
	}
	if v := versionsOf(gs); v["v2"] != roReplicas || len(gs.Replicas) != roReplicas {
		return res, fmt.Errorf("after the rollout the replicas run %v", v)
	}
	return res, nil
}

func versionsOf(gs controller.GroupStatus) map[string]int {
	out := map[string]int{}
	for _, r := range gs.Replicas {
		out[r.Version]++
	}
	return out
}

// roCompose runs docker-compose's side: the compose project's replicas on
// a fixed port range behind a balancer of Flotilla's.
type roCompose struct {
	cp    *composeProject
	cli   *client.Client
	image string
	g     spec.Group
	ports []int
}

// newRoCompose picks roReplicas free consecutive ports on 127.0.0.1, below
// the ephemeral range so that no outgoing connection takes one meanwhile.
func newRoCompose(cp *composeProject, cli *client.Client, image string, g spec.Group) (*roCompose, error) {
	for base := 21000 + os.Getpid()%4000; base < 31000; base += roReplicas {
		var ports []int
		var held []net.Listener
		for p := base; p < base+roReplicas; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				break
			}
			held = append(held, ln)
			ports = append(ports, p)
		}
		for _, ln := range held {
			ln.Close()
		}
		if len(ports) == roReplicas {
			return &roCompose{cp: cp, cli: cli, image: image, g: g, ports: ports}, nil
		}
	}
	return nil, fmt.Errorf("no %d free consecutive ports on 127.0.0.1", roReplicas)
}

// write writes the compose file for version v: composeYAML's service with
// the version in its environment and the fixed port range.
func (c *roCompose) write(v string) error {
	y := composeYAML(c.image, c.cp.drv.Instance(), c.g)
	env := fmt.Sprintf("environment: [FLOTILLA_ROLE=monolith, PORT=%d]", spec.ShopPort)
	ports := fmt.Sprintf(`ports: ["127.0.0.1::%d"]`, spec.ShopPort)
	if !strings.Contains(y, env) || !strings.Contains(y, ports) {
		return fmt.Errorf("the compose file has changed shape:\n%s", y)
	}
	y = strings.Replace(y, env, fmt.Sprintf("environment: [FLOTILLA_ROLE=monolith, PORT=%d, %s=%s]", spec.ShopPort, version.Env, v), 1)
	y = strings.Replace(y, ports, fmt.Sprintf(`ports: ["127.0.0.1:%d-%d:%d"]`, c.ports[0], c.ports[len(c.ports)-1], spec.ShopPort), 1)
	return os.WriteFile(c.cp.file, []byte(y), 0o600)
}

func (c *roCompose) addrs() []string {
	var out []string
	for _, p := range c.ports {
		out = append(out, "127.0.0.1:"+strconv.Itoa(p))
	}
	return out
}

// up is `docker-compose up -d --scale shop=10` of version v, timed until
// all 10 ports answer /readyz as v.
func (c *roCompose) up(ctx context.Context, v string) error {
	if err := c.write(v); err != nil {
		return err
	}
	if err := c.cp.run(ctx, "up", "-d", "--scale", "shop="+strconv.Itoa(roReplicas)); err != nil {
		return err
	}
	return waitVersion(ctx, c.addrs(), v, time.Minute)
}

// round is one measured recreate of a fresh project.
func (c *roCompose) round(ctx context.Context, window time.Duration, rate int, policy bool) (res roResult, err error) {
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if derr := c.cp.down(dctx); derr != nil && err == nil {
			err = fmt.Errorf("remove: %w", derr)
		}
	}()
	if err := c.up(ctx, "v1"); err != nil {
		return res, err
	}
	if reps, err := c.cp.drv.List(ctx); err != nil || len(reps) != roReplicas {
		return res, fmt.Errorf("%d replicas (%v), want %d", len(reps), err, roReplicas)
	}
	if policy {
		if res.policy, err = isoPolicies(ctx, c.cli, c.cp.drv); err != nil {
			return res, err
		}
	}
	bal, err := lb.New(lb.Config{Group: "compose"})
	if err != nil {
		return res, err
	}
	if err := bal.Start(ctx); err != nil {
		return res, err
	}
	defer bal.Close(context.WithoutCancel(ctx))
	var ups []lb.Upstream
	for i, a := range c.addrs() {
		ups = append(ups, lb.Upstream{ID: a, Name: fmt.Sprintf("shop-%d", i+1), Addr: a})
	}
	bal.SetUpstreams(ups)
	pol := res.policy
	res, err = roMeasure(ctx, bal.Endpoint(), rate, window, func() error { return c.up(ctx, "v2") })
	res.policy = pol
	return res, err
}

// waitVersion polls every address's /readyz until each answers 200 as
// version v.
func waitVersion(ctx context.Context, addrs []string, v string, timeout time.Duration) error {
	return isoEvery(ctx, 20*time.Millisecond, timeout, func() error {
		for _, a := range addrs {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a+"/readyz", nil)
			resp, err := probeClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if got := resp.Header.Get(version.Header); resp.StatusCode != http.StatusOK || got != v {
				return fmt.Errorf("%s: %s as %q, want 200 as %s", a, resp.Status, got, v)
			}
		}
		return nil
	})
}

// policyCore keeps of isoPolicies' description what compose and Flotilla
// must share: the environment, hostname, network and published ports
// differ by design (compose sets neither the group nor the admin port,
// makes its own network and publishes a fixed range).
var policyNoise = regexp.MustCompile(`(hostname|env|net|ports)=(\[[^\]]*\]|\S*) ?`)

func policyCore(p map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range p {
		out[k] = policyNoise.ReplaceAllString(v, "")
	}
	return out
}

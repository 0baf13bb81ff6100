package docker_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/images/imagestest"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/orchestrator/store"
)

// The cold-start benchmark's shape and the targets.
const (
	// coldGroup names every group the benchmark puts, one at a time, and
	// the floor's container, so the two run the same environment.
	coldGroup = "recommend"
	coldPath  = "/recommend/tea-mug"
	// coldHerd is the concurrent requests sent to a group at zero.
	coldHerd = 100
	// coldScale is the scale-out's size, and coldBurst the requests the
	// burst keeps in flight to drive it there (at a target of 1 each).
	coldScale = 20
	coldBurst = 100
	// The targets: Flotilla's cold start within 1.2x the floor, a wake
	// from the warm pool within 50 ms at p99, a herd with no failure and
	// one wake, and the scale-out twice as fast as docker-compose.
	coldTargetRatio  = 1.2
	coldTargetPoolMs = 50
	coldTargetScale  = 2.0
)

// BenchmarkColdStart measures the serverless groups of stage 8 in one run,
// on a real controller on the real engine, over FLOTILLA_BENCH_TRIALS trials
// (default 20) of each, with p50 and p99:
//
//  1. The floor: the raw engine's create and start of the shop image as the
//     recommend role, with the policy, limits and environment Flotilla
//     gives a replica (through the SDK, labelled for cleanup), to the first
//     200 of GET /recommend/tea-mug on its published port, polled every
//     10 ms.
//  2. Flotilla from zero without a pool: an autoscaled recommend group (min
//     0, idleAfter 5s) is put and left at zero with its balancer listening;
//     one GET through the balancer is timed at the client to its 200. The
//     group is then deleted and put again for the next trial: waiting for
//     idleAfter would measure the same start from the same zero, slower.
//     Each trial checks the group made exactly one replica from zero.
//  3. From the warm pool: the same group with warmPool 1, put and waited
//     for until its one replica is paused in the pool; one GET is timed at
//     the client. Each trial checks it thawed the pool's replica.
//  4. A herd: 100 concurrent GETs to the group at zero; its failed requests
//     and its wakes (the cold starts in the group's status, and its counts
//     of starts from zero and from the pool).
//  5. Scale-out 0 -> 20 from a warm pool of 20 (min 0, max 20, target 1 in
//     flight, panicWindow 1s so the burst is seen within a tick): from the
//     start of a burst of 100 closed-loop clients through the balancer to 20
//     ready replicas serving (the group's ready count, which leaves out the
//     pool); against docker-compose up -d --scale 20 of the same image,
//     role, policy and limits until all 20 answer /readyz, in alternating
//     order. FLOTILLA_BENCH_SCALE_TRIALS (default the trials) sets its
//     rounds: each fills a pool of 20 first.
//
// It prints one table with the ratios against the floor and compose and
// whether each target is met, and checks that the floor runs what Flotilla
// runs, under the same policy and limits.
func BenchmarkColdStart(b *testing.B) {
	trials := dockertest.EnvInt(b, "FLOTILLA_BENCH_TRIALS", 20)
	scaleTrials := dockertest.EnvInt(b, "FLOTILLA_BENCH_SCALE_TRIALS", trials)
	refs := imagestest.Images(b)
	image := refs["shop"]
	if svc, _ := spec.LookupService(coldGroup); svc.Port != isoPort {
		b.Fatalf("service %s listens on %d, the floor publishes %d", coldGroup, svc.Port, isoPort)
	}

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

	// The floor: a second instance, its own network, labelled so that its
	// cleanup removes exactly what it made.
	floorDrv := dockertest.New(b)
	if err := floorDrv.EnsureNetwork(ctx); err != nil {
		b.Fatal(err)
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close() })

	cs := &coldBench{ctrl: ctrl, drv: drv, f: &isoFlotilla{ctrl: ctrl, drv: drv, cli: cli}}
	scaleGroup := coldScaleGroup().WithDefaults()
	cp, haveCompose := newComposeProject(b, image, scaleGroup)
	if !haveCompose {
		b.Log("docker-compose is not installed: the scale-out has no peer")
	}

	var (
		floor, fromZero, fromPool, herdTimes []time.Duration
		floorCreate, floorStart              []time.Duration
		zeroTotal, poolTotal                 []time.Duration // the controller's own cold-start timelines
		herdFailed, herdWakesMax             int
		herdWakes                            []int
		policies                             = map[string]map[string]string{}
	)
	b.ResetTimer()
	for round := range trials {
		ways := []string{"floor", "flotilla"}
		if round%2 == 1 {
			slices.Reverse(ways)
		}
		for _, w := range ways {
			if w == "floor" {
				r, err := coldFloor(ctx, cli, floorDrv, image)
				if err != nil {
					b.Fatalf("floor, trial %d: %v", round+1, err)
				}
				floor, floorCreate, floorStart = append(floor, r.total), append(floorCreate, r.create), append(floorStart, r.start)
				if round == 0 {
					policies[w] = r.policy
				}
				continue
			}
			r, err := cs.one(ctx, 0, round == 0)
			if err != nil {
				b.Fatalf("from zero, trial %d: %v", round+1, err)
			}
			fromZero, zeroTotal = append(fromZero, r.client), append(zeroTotal, r.total)
			if round == 0 {
				policies[w] = r.policy
			}
		}
		r, err := cs.one(ctx, 1, false)
		if err != nil {
			b.Fatalf("from the pool, trial %d: %v", round+1, err)
		}
		fromPool, poolTotal = append(fromPool, r.client), append(poolTotal, r.total)
		h, err := cs.herd(ctx)
		if err != nil {
			b.Fatalf("herd, trial %d: %v", round+1, err)
		}
		herdTimes = append(herdTimes, h.times...)
		herdFailed += h.failed
		herdWakes = append(herdWakes, h.wakes)
		herdWakesMax = max(herdWakesMax, h.wakes)
		if h.failed > 0 || h.wakes != 1 {
			b.Logf("herd, trial %d: %d of %d failed %v, %d wakes", round+1, h.failed, coldHerd, h.errors, h.wakes)
		}
	}

	var flScale, flDecided, composeScale []time.Duration
	var fromPoolCount []int
	var burstFailed int
	for round := range scaleTrials {
		ways := []string{"flotilla", "docker-compose"}
		if !haveCompose {
			ways = ways[:1]
		}
		if round%2 == 1 {
			slices.Reverse(ways)
		}
		for _, w := range ways {
			if w == "docker-compose" {
				start := time.Now()
				addrs, err := cp.up(ctx, coldScale)
				if err == nil && len(addrs) != coldScale {
					err = fmt.Errorf("%d replicas, want %d", len(addrs), coldScale)
				}
				if err == nil {
					err = dockertest.WaitReadyz(ctx, addrs, time.Minute)
				}
				elapsed := time.Since(start)
				if err != nil {
					b.Fatalf("docker-compose, round %d: %v", round+1, err)
				}
				composeScale = append(composeScale, elapsed)
				if err := cp.down(ctx); err != nil {
					b.Fatal(err)
				}
				continue
			}
			s, err := cs.scaleOut(ctx)
			if err != nil {
				b.Fatalf("flotilla scale-out, round %d: %v", round+1, err)
			}
			flScale, flDecided = append(flScale, s.elapsed), append(flDecided, s.decided)
			fromPoolCount = append(fromPoolCount, s.thawed)
			burstFailed += s.failed
		}
	}
	b.StopTimer()

	// A floor is only a floor if it runs what Flotilla runs, as Flotilla runs it.
	if fl, fo := policies["flotilla"], policies["floor"]; !maps.Equal(fl, fo) {
		b.Errorf("the floor does not run what Flotilla runs:\nflotilla %v\nfloor    %v", fl, fo)
	}

	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	fmt.Printf("\ncold start: the recommend function (the shop image), %d trial(s) each, floor and Flotilla in alternating order; p50 p99 (ms)\n", trials)
	fmt.Printf("floor = the raw engine's create + start of the same image and policy, to the first 200 of GET %s on its port, polled every 10 ms;\n", coldPath)
	fmt.Printf("from zero / pool / herd: an autoscaled group (min 0, idleAfter 5s) at zero, timed at the client through its balancer.\n")
	fmt.Printf("Method: each trial puts a fresh group (deleted and put again, waited for at zero or with its pool paused) instead of\n")
	fmt.Printf("waiting idleAfter: the same zero, sooner. Scale-out: warmPool 20, min 0, max 20, targetConcurrency 1, panicWindow 1s,\n")
	fmt.Printf("driven by %d closed-loop clients through the balancer, from the burst's start until the group counts %d ready serving\n", coldBurst, coldScale)
	fmt.Printf("replicas (pool excluded); docker-compose up -d --scale %d of the same image and policy until all answer /readyz; %d round(s).\n\n", coldScale, scaleTrials)

	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	fmt.Printf("  %-40s %9s %9s   %-24s %s\n", "measure", "p50", "p99", "against", "target")
	row := func(name string, ts []time.Duration, against, target string) {
		line := fmt.Sprintf("  %-40s %9.1f %9.1f   %-24s %s", name, ms(pct(ts, 50)), ms(pct(ts, 99)), against, target)
		fmt.Println(strings.TrimRight(line, " "))
	}
	row("1. floor: create", floorCreate, "", "")
	row("   floor: start", floorStart, "", "")
	row("   floor: create to first 200", floor, "", "")
	ratio50, ratio99 := ms(pct(fromZero, 50))/ms(pct(floor, 50)), ms(pct(fromZero, 99))/ms(pct(floor, 99))
	row("2. flotilla from zero, at the client", fromZero,
		fmt.Sprintf("%.2fx / %.2fx floor", ratio50, ratio99),
		fmt.Sprintf("<= %.1fx (p50): %s", coldTargetRatio, verdict(ratio50 <= coldTargetRatio)))
	row("   its cold start as the controller saw it", zeroTotal, "", "")
	row("3. flotilla from the warm pool, client", fromPool,
		fmt.Sprintf("%.2fx floor", ms(pct(fromPool, 50))/ms(pct(floor, 50))),
		fmt.Sprintf("p99 <= %d ms: %s", coldTargetPoolMs, verdict(ms(pct(fromPool, 99)) <= coldTargetPoolMs)))
	row("   its wake as the controller saw it", poolTotal, "", "")
	row(fmt.Sprintf("4. herd of %d at zero, each request", coldHerd), herdTimes, "", "")
	fmt.Printf("  %-40s %9d %9s   %-24s %s\n", "   failed requests (all herds)", herdFailed, "", "", fmt.Sprintf("0: %s", verdict(herdFailed == 0)))
	fmt.Printf("  %-40s %9d %9d   %-24s %s\n", "   wakes per herd (p50, max)", herdWakes[len(herdWakes)/2], herdWakesMax, "", fmt.Sprintf("1: %s", verdict(herdWakesMax == 1 && slices.Min(herdWakes) == 1)))
	row(fmt.Sprintf("5. flotilla 0 -> %d ready from a pool", coldScale), flScale, "", "")
	row(fmt.Sprintf("   of which until it wanted %d", coldScale), flDecided, "", "")
	if haveCompose {
		speed50 := ms(pct(composeScale, 50)) / ms(pct(flScale, 50))
		speed99 := ms(pct(composeScale, 99)) / ms(pct(flScale, 99))
		row(fmt.Sprintf("   docker-compose --scale %d to /readyz", coldScale), composeScale,
			fmt.Sprintf("%.2fx / %.2fx faster", speed50, speed99),
			fmt.Sprintf(">= %.0fx (p50): %s", coldTargetScale, verdict(speed50 >= coldTargetScale)))
		b.ReportMetric(speed50, "compose/flotilla")
	}
	slices.Sort(fromPoolCount)
	fmt.Printf("  %-40s %9d %9d   (of %d; the rest were made)\n", "   of which thawed from the pool (p50,min)", fromPoolCount[len(fromPoolCount)/2], fromPoolCount[0], coldScale)
	fmt.Printf("  %-40s %9d\n\n", "   failed requests of the bursts", burstFailed)
	b.ReportMetric(ratio50, "zero/floor")
	b.ReportMetric(ms(pct(fromPool, 99)), "pool-p99-ms")
}

// coldFn is the benchmark's function group: at zero, woken by requests.
func coldFn(pool int) spec.Group {
	return spec.Group{Name: coldGroup, Service: "recommend", Autoscale: &spec.Autoscale{
		Min: 0, Max: 5, TargetConcurrency: 10, IdleAfter: "5s", WarmPool: pool,
	}}
}

// coldScaleGroup is the scale-out's group: a pool of 20 and a target of
// one request in flight each, so a burst of 100 asks for all 20 at once.
func coldScaleGroup() spec.Group {
	return spec.Group{Name: coldGroup, Service: "recommend", Autoscale: &spec.Autoscale{
		Min: 0, Max: coldScale, TargetConcurrency: 1, IdleAfter: "5s", StableWindow: "4s", PanicWindow: "1s", WarmPool: coldScale,
	}}
}

// pct is the p-th percentile of ts, nearest rank.
func pct(ts []time.Duration, p float64) time.Duration {
	if len(ts) == 0 {
		return 0
	}
	s := slices.Clone(ts)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

type floorResult struct {
	create, start, total time.Duration
	policy               map[string]string
}

// coldFloor is `docker run` of the recommend role, timed to its first 200,
// and removed after.
func coldFloor(ctx context.Context, cli *client.Client, owner *docker.Driver, image string) (res floorResult, err error) {
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if derr := removeAll(ctx, owner); derr != nil && err == nil {
			err = fmt.Errorf("remove: %w", derr)
		}
	}()
	svc, _ := spec.LookupService(coldGroup)
	cfg, host := floorConfig(owner, image, coldGroup, svc.Role, serviceEnv(coldGroup), groupResources())
	netCfg := publish(owner, cfg, host, coldGroup)
	began := time.Now()
	resp, err := cli.ContainerCreate(ctx, cfg, host, netCfg, nil, owner.ContainerName(coldGroup, 1))
	if err != nil {
		return res, err
	}
	created := time.Now()
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return res, err
	}
	started := time.Now()
	addr, err := publishedAddr(ctx, cli, resp.ID)
	if err != nil {
		return res, err
	}
	answered, err := first200(ctx, addr, coldPath, time.Minute)
	if err != nil {
		return res, err
	}
	res.create, res.start, res.total = created.Sub(began), started.Sub(created), answered.Sub(began)
	res.policy, err = isoPolicies(ctx, cli, owner)
	return res, err
}

// coldBench runs Flotilla's side: one group at a time, named coldGroup.
type coldBench struct {
	ctrl *controller.Controller
	drv  *docker.Driver
	f    *isoFlotilla // for down: delete and wait until all is gone
}

// put puts g and waits until it sits at zero with its balancer listening
// and, with a pool, every pool replica paused; it returns the endpoint.
func (c *coldBench) put(ctx context.Context, g spec.Group) (string, error) {
	if _, _, err := c.ctrl.PutGroup(ctx, g); err != nil {
		return "", err
	}
	var endpoint string
	err := isoEvery(ctx, 20*time.Millisecond, 2*time.Minute, func() error {
		gs, err := c.ctrl.Group(g.Name)
		if err != nil {
			return err
		}
		pooled := 0
		for _, r := range gs.Replicas {
			if !r.Pooled {
				return fmt.Errorf("replica %s is %s/%s, not in the pool", r.Name, r.State, r.Health)
			}
			pooled++
		}
		if gs.Endpoint == "" || gs.Autoscale == nil || gs.Autoscale.Want != 0 || pooled != g.Autoscale.WarmPool {
			return fmt.Errorf("endpoint %q, %d of %d pooled", gs.Endpoint, pooled, g.Autoscale.WarmPool)
		}
		endpoint = gs.Endpoint
		return nil
	})
	return endpoint, err
}

type oneResult struct {
	client, total time.Duration
	policy        map[string]string
}

// one is a single GET to the group at zero, with a warm pool of pool,
// timed at the client; the group is removed after.
func (c *coldBench) one(ctx context.Context, pool int, policy bool) (res oneResult, err error) {
	defer func() {
		if derr := c.f.down(context.WithoutCancel(ctx), coldGroup); derr != nil && err == nil {
			err = fmt.Errorf("remove: %w", derr)
		}
	}()
	endpoint, err := c.put(ctx, coldFn(pool))
	if err != nil {
		return res, err
	}
	hc := &http.Client{Timeout: 40 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	if err := get200(ctx, hc, endpoint); err != nil {
		return res, err
	}
	res.client = time.Since(start)
	gs, err := c.ctrl.Group(coldGroup)
	if err != nil {
		return res, err
	}
	a := gs.Autoscale
	want := map[int]string{0: "zero", 1: "pool"}[pool]
	if len(a.ColdStarts) != 1 || a.ColdStarts[0].From != want || a.ColdStarts[0].Status != http.StatusOK {
		return res, fmt.Errorf("want one cold start from %s, got %+v", want, a.ColdStarts)
	}
	res.total = time.Duration(a.ColdStarts[0].TotalMs * 1e6)
	if policy {
		res.policy, err = isoPolicies(ctx, c.f.cli, c.drv)
	}
	return res, err
}

// get200 sends one GET of the recommendation and wants its 200.
func get200(ctx context.Context, hc *http.Client, endpoint string) error {
	if !strings.HasPrefix(endpoint, "127.0.0.1:") {
		return fmt.Errorf("%s is not on 127.0.0.1", endpoint)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+endpoint+coldPath, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s %s", coldPath, resp.Status, body)
	}
	return nil
}

type herdResult struct {
	times  []time.Duration // of the requests answered 200
	failed int
	errors map[string]int
	wakes  int
}

// herd sends coldHerd concurrent GETs to the group at zero, each on its own
// connection, and reads the wakes from the group's status.
func (c *coldBench) herd(ctx context.Context) (res herdResult, err error) {
	defer func() {
		if derr := c.f.down(context.WithoutCancel(ctx), coldGroup); derr != nil && err == nil {
			err = fmt.Errorf("remove: %w", derr)
		}
	}()
	endpoint, err := c.put(ctx, coldFn(0))
	if err != nil {
		return res, err
	}
	hc := &http.Client{Timeout: 40 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, MaxIdleConnsPerHost: coldHerd}}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		gate = make(chan struct{})
	)
	res.errors = map[string]int{}
	for range coldHerd {
		wg.Go(func() {
			<-gate
			start := time.Now()
			err := get200(ctx, hc, endpoint)
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.failed++
				res.errors[errorKind(err)]++
				return
			}
			res.times = append(res.times, d)
		})
	}
	close(gate)
	wg.Wait()
	gs, err := c.ctrl.Group(coldGroup)
	if err != nil {
		return res, err
	}
	a := gs.Autoscale
	res.wakes = max(len(a.ColdStarts), a.Starts.Cold+a.Starts.Pooled)
	return res, nil
}

type scaleResult struct {
	elapsed time.Duration
	// decided is when the autoscaler first wanted coldScale serving.
	decided time.Duration
	thawed  int // of the ready replicas, how many the pool held
	failed  int
}

// scaleOut fills the scale group's pool, then drives it from zero to
// coldScale ready serving replicas with a burst of coldBurst closed-loop
// clients, timed from the burst's start.
func (c *coldBench) scaleOut(ctx context.Context) (res scaleResult, err error) {
	defer func() {
		if derr := c.f.down(context.WithoutCancel(ctx), coldGroup); derr != nil && err == nil {
			err = fmt.Errorf("remove: %w", derr)
		}
	}()
	endpoint, err := c.put(ctx, coldScaleGroup())
	if err != nil {
		return res, err
	}
	gs, err := c.ctrl.Group(coldGroup)
	if err != nil {
		return res, err
	}
	pooled := map[string]bool{}
	for _, r := range gs.Replicas {
		pooled[r.ID] = true
	}
	burstCtx, stop := context.WithCancel(ctx)
	var failed atomic.Int64
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: coldBurst}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Timeout: 40 * time.Second, Transport: tr}
	start := time.Now()
	for range coldBurst {
		wg.Go(func() {
			for burstCtx.Err() == nil {
				if err := get200(burstCtx, hc, endpoint); err != nil && burstCtx.Err() == nil {
					failed.Add(1)
				}
			}
		})
	}
	err = isoEvery(ctx, 10*time.Millisecond, 2*time.Minute, func() error {
		if gs, err = c.ctrl.Group(coldGroup); err != nil {
			return err
		}
		if res.decided == 0 && gs.Autoscale != nil && gs.Autoscale.Want >= coldScale {
			res.decided = time.Since(start)
		}
		if gs.Ready < coldScale {
			return fmt.Errorf("%d of %d ready, want %d", gs.Ready, len(gs.Replicas), gs.Autoscale.Want)
		}
		return nil
	})
	res.elapsed = time.Since(start)
	stop()
	wg.Wait()
	res.failed = int(failed.Load())
	if err != nil {
		return res, err
	}
	for _, r := range gs.Replicas {
		if r.Health == controller.HealthReady && !r.Pooled && pooled[r.ID] {
			res.thawed++
		}
	}
	return res, nil
}

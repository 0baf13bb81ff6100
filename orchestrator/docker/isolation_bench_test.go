package docker_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/images"
	"github.com/flotilla/flotilla/orchestrator/images/imagestest"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/orchestrator/store"
)

// What one trial measures, once its replica first answered 200.
const (
	// isoSettle lets a replica finish starting up (the Go runtime's first
	// collections, the guest's last services) before it is measured.
	isoSettle = 3 * time.Second
	// isoIdle is the window over which idle CPU is measured, without traffic.
	isoIdle = 5 * time.Second
	// isoConns and isoLoad shape the closed-loop load: each connection
	// sends its next GET as soon as the last one answered.
	isoConns = 16
	isoLoad  = 3 * time.Second
	// isoTarget is the bound on Flotilla's cost over its floor.
	isoTarget = 1.2
)

// The benchmark's kinds, in the order they run in each round.
var isoKinds = []string{spec.IsolationContainer, spec.IsolationPod, spec.IsolationVM}

// BenchmarkIsolation measures one replica of each isolation kind run by
// Flotilla against the same replica without Flotilla (its floor), over
// FLOTILLA_BENCH_TRIALS trials (default 5) in alternating order:
//
//   - container: Flotilla's controller with a one-replica group behind its
//     balancer, against the raw engine's `docker run` of the same image with
//     the same policy and limits (create and start through the SDK);
//   - pod: the same, against the pod's three containers (infra, service and
//     agent sidecar) created and joined through the SDK by hand. A lone
//     container would be no floor for a pod: the sidecar and the infra
//     container are what the kind is, and they cost what they cost with or
//     without an orchestrator;
//   - vm: against a bare qemu-system-x86_64 process on the host, booting the
//     kernel and initramfs copied out of the VM image with the machine
//     arguments vmboot.QEMUArgs gives the replica, forwarding a 127.0.0.1
//     port. The bare process has no CPU quota, so its floor is if anything
//     low: the replica's container has one core, which TCG's one vCPU fills.
//
// Each trial measures start to the first 200 of GET /catalog (through the
// balancer for Flotilla, from PutGroup; at the published or forwarded port
// for a floor, from its create or exec; polled every 10 ms), memory a few
// seconds after (the engine's figure for containers and pods, a pod's being
// the sum of its members; QEMU's RSS for both VMs), idle CPU over 5 s
// without traffic, and requests per second of a closed loop of 16
// keep-alive connections for 3 s. Flotilla's are through its balancer,
// which is part of what Flotilla adds, and also direct to its replica's
// published port, to show the balancer's share; a floor's are direct. The
// replica's own cores under that load are shown too (not the balancer's,
// which runs in the benchmark's process), and any failed GETs by kind.
//
// It prints one table of medians and ranges with Flotilla's cost over its
// floor and whether the target (within 1.2x) is met, and reports
// the ratios as metrics. The floors of containers and pods are checked to
// run what Flotilla runs, under the same policy and limits.
//
// FLOTILLA_BENCH_KINDS (e.g. container,pod) runs a subset. Without QEMU or
// a guest kernel the vm rows are skipped, unless FLOTILLA_REQUIRE_VM=1.
func BenchmarkIsolation(b *testing.B) {
	trials := dockertest.EnvInt(b, "FLOTILLA_BENCH_TRIALS", 5)
	kinds := isoKinds
	if s := os.Getenv("FLOTILLA_BENCH_KINDS"); s != "" {
		kinds = nil
		for _, k := range strings.Split(s, ",") {
			if !slices.Contains(isoKinds, k) {
				b.Fatalf("FLOTILLA_BENCH_KINDS: %q is not one of %v", k, isoKinds)
			}
			kinds = append(kinds, k)
		}
	}

	refs := maps.Clone(imagestest.Images(b))
	var host images.VMHost
	if slices.Contains(kinds, spec.IsolationVM) {
		var err error
		if host, err = isoVMHost(); err != nil {
			if os.Getenv(imagestest.RequireVMEnv) == "1" {
				b.Fatalf("%s=1 but this machine cannot run VM replicas: %v", imagestest.RequireVMEnv, err)
			}
			b.Logf("vm rows skipped: %v (%s=1 makes this a failure)", err, imagestest.RequireVMEnv)
			kinds = slices.DeleteFunc(slices.Clone(kinds), func(k string) bool { return k == spec.IsolationVM })
			if len(kinds) == 0 {
				b.Skip("no kind left to measure")
			}
		} else {
			refs[controller.VMImage] = imagestest.VMImage(b)
		}
	}

	// Flotilla: a real controller on the real engine.
	drv := dockertest.New(b)
	st, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ctrl := controller.New(controller.Options{Runtime: drv, Store: st, Images: refs, VMAccel: images.AccelTCG, StopTimeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { ctrl.Run(ctx); close(runDone) }()
	// Stop the controller before the cleanups remove what it made, or it
	// would heal what they remove.
	b.Cleanup(func() { cancel(); <-runDone })

	// Floors: a second instance, its own network, labelled so that its
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
	var vm *bareVM
	if slices.Contains(kinds, spec.IsolationVM) {
		vm = newBareVM(b, ctx, cli, floorDrv, refs[controller.VMImage], host.QEMU)
	}

	f := &isoFlotilla{ctrl: ctrl, drv: drv, cli: cli}
	results := map[string]map[string][]isoResult{} // kind -> way -> trials
	policies := map[string]map[string]map[string]string{}
	b.ResetTimer()
	for round := range trials {
		for _, kind := range kinds {
			ways := []isoWay{
				{"flotilla", func(ctx context.Context) (*isoReplica, error) { return f.up(ctx, kind) }},
				{"floor", func(ctx context.Context) (*isoReplica, error) {
					switch kind {
					case spec.IsolationPod:
						return podFloor(ctx, cli, floorDrv, refs["shop"], isoGroup(kind))
					case spec.IsolationVM:
						return vm.up(ctx, f.vmEnv)
					}
					return containerFloor(ctx, cli, floorDrv, refs["shop"], isoGroup(kind))
				}},
			}
			// Flotilla first in the first round: the VM floor boots the
			// guest with the environment Flotilla gave its replica.
			if round%2 == 1 {
				slices.Reverse(ways)
			}
			for _, w := range ways {
				r, err := isoTrial(ctx, w)
				if err != nil {
					b.Fatalf("%s %s, trial %d: %v", w.name, kind, round+1, err)
				}
				// A few failures under a saturating load are a finding,
				// shown with the table; more than 1% make its req/s meaningless.
				if r.failed*100 > r.failed+r.ok {
					b.Errorf("%s %s, trial %d: %d of %d GETs under load failed: %v", w.name, kind, round+1, r.failed, r.failed+r.ok, r.errors)
				}
				if results[kind] == nil {
					results[kind] = map[string][]isoResult{}
					policies[kind] = map[string]map[string]string{}
				}
				results[kind][w.name] = append(results[kind][w.name], r)
				if r.policy != nil {
					policies[kind][w.name] = r.policy
				}
			}
		}
	}
	b.StopTimer()

	// A floor is only a floor if it runs what Flotilla runs, as Flotilla runs it.
	for _, kind := range kinds {
		if kind == spec.IsolationVM {
			continue // the same QEMU arguments by construction (QEMUArgs over the replica's environment)
		}
		fl, fo := policies[kind]["flotilla"], policies[kind]["floor"]
		if want := map[string]int{spec.IsolationContainer: 1, spec.IsolationPod: 3}[kind]; len(fl) != want {
			b.Errorf("Flotilla's %s replica is %d containers, want %d: %v", kind, len(fl), want, fl)
		}
		if !maps.Equal(fl, fo) {
			b.Errorf("the %s floor does not run what Flotilla runs:\nflotilla %v\nfloor    %v", kind, fl, fo)
		}
	}
	isoReport(b, kinds, trials, results)
}

// isoGroup names the group (and the floor's containers) of a kind.
func isoGroup(kind string) string {
	return map[string]string{spec.IsolationContainer: "ctr", spec.IsolationPod: "pod", spec.IsolationVM: "vm"}[kind]
}

// isoVMHost is imagestest.VMSource's check without its skip: what the host
// lacks for VM replicas, if anything.
func isoVMHost() (images.VMHost, error) {
	source, err := images.FindSource(".")
	if err != nil {
		return images.VMHost{}, err
	}
	return images.FindVMHost(source)
}

// isoReport prints the table and reports the ratios.
func isoReport(b *testing.B, kinds []string, trials int, results map[string]map[string][]isoResult) {
	type metric struct {
		name   string
		unit   string
		higher bool // more is better: the cost is floor over Flotilla
		judged bool // against isoTarget
		get    func(isoResult) float64
		format func(float64) string
	}
	ms := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + "ms" }
	mib := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + "MiB" }
	pct := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "%" }
	rps := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
	cores := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	metrics := []metric{
		{"start to first 200", "start", false, true, func(r isoResult) float64 { return float64(r.start) / 1e6 }, ms},
		{"memory", "mem", false, true, func(r isoResult) float64 { return float64(r.mem) / (1 << 20) }, mib},
		{"idle CPU (% of a core)", "cpu", false, true, func(r isoResult) float64 { return r.idleCPU }, pct},
		{"req/s via balancer", "rps", true, true, func(r isoResult) float64 { return r.rps }, rps},
		{"req/s direct", "rps-direct", true, false, func(r isoResult) float64 { return r.rpsDirect }, rps},
		{"replica cores, loaded", "load-cpu", false, false, func(r isoResult) float64 { return r.loadCPU }, cores},
	}
	fmt.Printf("\nisolation: 1 replica of each kind, Flotilla vs its floor, %d trial(s) each in alternating order; median [min-max]\n", trials)
	fmt.Printf("floors: container = the raw engine's docker run of the same image and policy; pod = its 3 containers joined by hand;\n")
	fmt.Printf("        vm = bare qemu-system-x86_64 (TCG) with the image's kernel and initramfs. Floor req/s is always direct.\n")
	fmt.Printf("cost = Flotilla / floor (for req/s, floor / Flotilla); target: cost <= %.1fx\n\n", isoTarget)
	fmt.Printf("  %-24s %-9s %-26s %-26s %7s  %s\n", "metric", "kind", "flotilla", "floor", "cost", "target")
	for _, m := range metrics {
		for _, kind := range kinds {
			fl := isoValues(results[kind]["flotilla"], m.get)
			fo := isoValues(results[kind]["floor"], m.get)
			name := m.name
			if m.unit == "mem" && kind == spec.IsolationVM {
				name = "memory (QEMU RSS)"
				if slices.ContainsFunc(results[kind]["flotilla"], func(r isoResult) bool { return r.engineMem == 0 }) {
					// This host does not see the replica's QEMU: the
					// engine's figure stands in for its RSS.
					name = "memory (engine | RSS)"
				}
			}
			cost := isoCost(isoMedian(fl), isoMedian(fo), m.higher)
			verdict := "-"
			if m.judged {
				verdict = "no"
				if cost <= isoTarget {
					verdict = "yes"
				}
				b.ReportMetric(cost, kind+"-"+m.unit+"-x")
			}
			note := ""
			if m.unit == "cpu" {
				// A ratio of two near-zero figures says little alone.
				note = fmt.Sprintf("  (%+.2f points)", isoMedian(fl)-isoMedian(fo))
			}
			line := fmt.Sprintf("  %-24s %-9s %-26s %-26s %6.2fx  %-3s%s", name, kind, isoSpread(fl, m.format), isoSpread(fo, m.format), cost, verdict, note)
			fmt.Println(strings.TrimRight(line, " "))
		}
	}
	for _, kind := range kinds {
		for _, way := range []string{"flotilla", "floor"} {
			var failed, sent int64
			errs := map[string]int64{}
			for _, r := range results[kind][way] {
				failed, sent = failed+r.failed, sent+r.failed+r.ok
				for k, n := range r.errors {
					errs[k] += n
				}
			}
			if failed > 0 {
				fmt.Printf("\n  %s %s: %d of %d GETs under load failed %v", way, kind, failed, sent, errs)
			}
		}
	}
	if em := isoValues(results[spec.IsolationVM]["flotilla"], func(r isoResult) float64 { return float64(r.engineMem) / (1 << 20) }); len(em) > 0 && slices.Min(em) > 0 {
		fmt.Printf("\n  the vm replica's container as the engine counts it (QEMU, page cache and kernel memory): %s\n", isoSpread(em, mib))
	}
	fmt.Println()
}

func isoValues(rs []isoResult, get func(isoResult) float64) []float64 {
	out := make([]float64, 0, len(rs))
	for _, r := range rs {
		out = append(out, get(r))
	}
	return out
}

func isoMedian(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func isoSpread(v []float64, format func(float64) string) string {
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf("%s [%s-%s]", format(isoMedian(v)), format(slices.Min(v)), format(slices.Max(v)))
}

// isoCost is Flotilla's cost over its floor: how many times the floor's
// time, memory or CPU it takes, or how many times fewer requests it serves.
func isoCost(flotilla, floor float64, higherIsBetter bool) float64 {
	if higherIsBetter {
		flotilla, floor = floor, flotilla
	}
	if floor <= 0 {
		if flotilla <= 0 {
			return 1
		}
		return math.Inf(1)
	}
	return flotilla / floor
}

// isoFlotilla runs each kind's one-replica group through the controller.
type isoFlotilla struct {
	ctrl *controller.Controller
	drv  *docker.Driver
	cli  *client.Client
	// vmEnv is the environment of Flotilla's VM replica, from its first trial.
	vmEnv []string
}

// up puts the kind's group and returns its balancer's endpoint as soon as
// it listens; the replica is measured once the endpoint first answers 200.
func (f *isoFlotilla) up(ctx context.Context, kind string) (*isoReplica, error) {
	name := isoGroup(kind)
	g := spec.Group{Name: name, Service: "monolith", Replicas: 1, Isolation: kind, Balancer: spec.Balancer{Policy: spec.PolicyRoundRobin}}
	if kind == spec.IsolationVM {
		// A whole core, as the VM tests give it: TCG's vCPU fills one.
		g.Resources.MilliCPU = 1000
	}
	if _, _, err := f.ctrl.PutGroup(ctx, g); err != nil {
		return nil, err
	}
	r := &isoReplica{down: func(ctx context.Context) error { return f.down(ctx, name) }}
	err := isoEvery(ctx, 10*time.Millisecond, time.Minute, func() error {
		gs, err := f.ctrl.Group(name)
		if err != nil {
			return err
		}
		if gs.Endpoint == "" {
			return errors.New("the balancer does not listen yet")
		}
		r.addr = gs.Endpoint
		return nil
	})
	if err != nil {
		return r, err
	}
	r.ready = func(ctx context.Context) error {
		gs, err := f.ctrl.Group(name)
		if err != nil {
			return err
		}
		if len(gs.Replicas) != 1 || gs.Replicas[0].Address == "" {
			return fmt.Errorf("group %s answered through its balancer but shows replicas %+v", name, gs.Replicas)
		}
		id := gs.Replicas[0].ID
		r.direct = gs.Replicas[0].Address
		r.policy = func(ctx context.Context) (map[string]string, error) { return isoPolicies(ctx, f.cli, f.drv) }
		r.sample = func(ctx context.Context) (isoUsage, error) { return engineUsage(ctx, f.drv, id) }
		if kind != spec.IsolationVM {
			return nil
		}
		c, err := f.cli.ContainerInspect(ctx, id)
		if err != nil {
			return err
		}
		if f.vmEnv == nil {
			f.vmEnv = c.Config.Env
		}
		// QEMU is the container's first process (vmlaunch replaced itself
		// with it). Where this host sees it, its RSS and CPU are measured
		// as the bare QEMU's are; the engine's figure is kept beside.
		pid := c.State.Pid
		if _, err := procUsage(pid, "qemu-system"); err != nil {
			return nil
		}
		r.sample = func(ctx context.Context) (isoUsage, error) {
			u, err := procUsage(pid, "qemu-system")
			if err != nil {
				return u, err
			}
			if e, err := engineUsage(ctx, f.drv, id); err == nil {
				u.engineMem = e.mem
			}
			return u, nil
		}
		return nil
	}
	return r, nil
}

// down deletes the group and waits until its containers and the group
// itself are gone.
func (f *isoFlotilla) down(ctx context.Context, name string) error {
	if err := f.ctrl.DeleteGroup(ctx, name); err != nil && !errors.Is(err, controller.ErrNotFound) {
		return err
	}
	return isoEvery(ctx, 50*time.Millisecond, time.Minute, func() error {
		if err := countIs(ctx, f.drv, 0); err != nil {
			return err
		}
		if _, err := f.ctrl.Group(name); !errors.Is(err, controller.ErrNotFound) {
			return fmt.Errorf("group %s still known (%v)", name, err)
		}
		return nil
	})
}

package conformance_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/faults"
	"github.com/flotilla/flotilla/orchestrator/images"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// benchWay is one way of running the same replicas: Flotilla on a runtime,
// through its API, or plain `docker service` commands.
type benchWay interface {
	// up asks for n replicas and returns their addresses, reachable from
	// the host, once n run and have one.
	up(ctx context.Context, n int) ([]string, error)
	// down asks for none and waits until none runs.
	down(ctx context.Context) error
	// heal kills the i-th of the replicas up made and returns the time
	// from the kill to a replacement answering /readyz.
	heal(ctx context.Context, i int) (time.Duration, error)
}

// BenchmarkSwarm measures, in one run, a scale-out from 0 to 20 replicas
// until every one answers /readyz from the host, and the time from killing
// a replica to its replacement answering, three ways in alternating order:
// Flotilla on the local engine, Flotilla on Swarm mode (both through the
// API), and the peer, `docker service create` and `docker service scale`
// of the same image with Swarm healing it. It prints the medians and the
// ratios of each Flotilla runtime to the peer. A way that cannot run here
// is shown as n/a, saying why.
func BenchmarkSwarm(b *testing.B) {
	const replicas = 20
	rounds := dockertest.EnvInt(b, "FLOTILLA_BENCH_ROUNDS", 3)
	ctx := context.Background()

	names := []string{"flotilla-engine", "flotilla-swarm", "swarm-peer"}
	ways := map[string]benchWay{}
	missing := map[string]string{}

	engine := newFlotilla(b, engineRuntime, false)
	if err := engine.start(); err != nil {
		b.Fatal(err)
	}
	ways["flotilla-engine"] = newFlotillaWay(b, engine)
	if sw, why := startSwarm(b); sw != nil {
		ways["flotilla-swarm"] = newFlotillaWay(b, sw)
	} else {
		missing["flotilla-swarm"] = why
	}
	if peer, why := newPeer(b, engine); peer != nil {
		ways["swarm-peer"] = peer
	} else {
		missing["swarm-peer"] = why
	}
	var run []string
	for _, n := range names {
		if ways[n] != nil {
			run = append(run, n)
		}
	}

	scale := map[string][]time.Duration{}
	b.ResetTimer()
	for round := range rounds {
		for i := range run {
			name := run[(i+round)%len(run)]
			w := ways[name]
			start := time.Now()
			addrs, err := w.up(ctx, replicas)
			if err == nil {
				err = dockertest.WaitReadyz(ctx, addrs, time.Minute)
			}
			elapsed := time.Since(start)
			if err != nil {
				b.Fatalf("%s round %d: scale out: %v", name, round, err)
			}
			scale[name] = append(scale[name], elapsed)
			if err := w.down(ctx); err != nil {
				b.Fatalf("%s round %d: scale in: %v", name, round, err)
			}
		}
	}
	heal := map[string][]time.Duration{}
	for _, name := range run {
		w := ways[name]
		addrs, err := w.up(ctx, 3)
		if err == nil {
			err = dockertest.WaitReadyz(ctx, addrs, time.Minute)
		}
		if err != nil {
			b.Fatalf("%s: 3 replicas before the kills: %v", name, err)
		}
		for i := range rounds {
			d, err := w.heal(ctx, i)
			if err != nil {
				b.Fatalf("%s kill %d: %v", name, i, err)
			}
			heal[name] = append(heal[name], d)
		}
		if err := w.down(ctx); err != nil {
			b.Fatalf("%s: scale in after the kills: %v", name, err)
		}
	}
	b.StopTimer()

	fmt.Printf("\nswarm bench: scale-out 0 -> %d until every replica answers /readyz from the host, and kill -> replacement answering\n", replicas)
	fmt.Printf("(medians of %d rounds, scale-outs in alternating order; the peer is `docker service create/scale` with Swarm's defaults,\n", rounds)
	fmt.Printf(" so it heals after Swarm's default restart delay of 5s; Flotilla's services set their own)\n")
	fmt.Printf("  %-16s %11s %11s   %s\n", "way", "scale-out", "kill->ready", "all rounds (scale-out | kill)")
	for _, name := range names {
		if why, ok := missing[name]; ok {
			fmt.Printf("  %-16s %11s %11s   %s\n", name, "n/a", "n/a", why)
			continue
		}
		fmt.Printf("  %-16s %11s %11s   %s | %s\n", name, dockertest.Median(scale[name]).Round(time.Millisecond), dockertest.Median(heal[name]).Round(time.Millisecond),
			roundAll(scale[name]), roundAll(heal[name]))
		b.ReportMetric(dockertest.Median(scale[name]).Seconds(), name+"-scale-s")
		b.ReportMetric(dockertest.Median(heal[name]).Seconds(), name+"-heal-s")
	}
	for _, name := range names[:2] {
		if _, ok := ways[name]; !ok || ways["swarm-peer"] == nil {
			fmt.Printf("  %-16s / peer: n/a\n", name)
			continue
		}
		rs := ratio(scale[name], scale["swarm-peer"])
		rh := ratio(heal[name], heal["swarm-peer"])
		fmt.Printf("  %-16s / peer: scale-out %.2fx, kill->ready %.2fx\n", name, rs, rh)
		b.ReportMetric(rs, name+"/peer-scale")
		b.ReportMetric(rh, name+"/peer-heal")
	}
	fmt.Println()
}

// flotillaWay is a Flotilla controller's group "web" of monolith
// replicas, without a balancer, driven through the API.
type flotillaWay struct{ f *flotilla }

func newFlotillaWay(b *testing.B, f *flotilla) *flotillaWay {
	b.Helper()
	if _, _, err := f.c.PutGroup(context.Background(), spec.Group{Name: web, Service: "monolith", Replicas: 0, Balancer: spec.Balancer{Policy: spec.PolicyNone}}); err != nil {
		b.Fatalf("%s: PUT group: %v", f.runtime, err)
	}
	return &flotillaWay{f: f}
}

func (w *flotillaWay) up(ctx context.Context, n int) ([]string, error) {
	if _, err := w.f.c.Scale(ctx, web, n); err != nil {
		return nil, err
	}
	var addrs []string
	err := pollFast(time.Minute, func() error {
		gs, err := w.f.c.Group(ctx, web)
		if err != nil {
			return err
		}
		addrs = addrs[:0]
		for _, r := range gs.Replicas {
			if r.State == "running" && r.Address != "" {
				addrs = append(addrs, r.Address)
			}
		}
		if len(addrs) != n {
			return fmt.Errorf("%d of %d replicas run with an address", len(addrs), n)
		}
		return nil
	})
	return addrs, err
}

func (w *flotillaWay) down(ctx context.Context) error {
	if _, err := w.f.c.Scale(ctx, web, 0); err != nil {
		return err
	}
	return dockertest.PollErr(time.Minute, func() error {
		gs, err := w.f.c.Group(ctx, web)
		if err != nil {
			return err
		}
		if len(gs.Replicas) != 0 {
			return fmt.Errorf("%d replicas left", len(gs.Replicas))
		}
		return nil
	})
}

func (w *flotillaWay) heal(ctx context.Context, i int) (time.Duration, error) {
	gs, err := w.f.c.Group(ctx, web)
	if err != nil {
		return 0, err
	}
	if len(gs.Replicas) == 0 {
		return 0, errors.New("no replica to kill")
	}
	victim := gs.Replicas[i%len(gs.Replicas)]
	start := time.Now()
	if _, err := w.f.c.InjectFault(ctx, faults.Spec{Kind: faults.Kill, Group: web, Replica: victim.Name}); err != nil {
		return 0, err
	}
	err = pollFast(time.Minute, func() error {
		gs, err := w.f.c.Group(ctx, web)
		if err != nil {
			return err
		}
		for _, r := range gs.Replicas {
			if r.Name == victim.Name && r.ID != victim.ID && r.State == "running" && r.Address != "" {
				return dockertest.WaitReadyz(ctx, []string{r.Address}, time.Minute)
			}
		}
		return fmt.Errorf("no replacement for %s yet", victim.Name)
	})
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	// Every replica ready again before the next kill.
	return elapsed, dockertest.PollErr(time.Minute, func() error {
		gs, err := w.f.c.Group(ctx, web)
		if err != nil {
			return err
		}
		if gs.Ready != 3 {
			return fmt.Errorf("%d of 3 ready", gs.Ready)
		}
		return nil
	})
}

// peerWay is a plain Swarm service of the monolith's image, made and
// scaled with the docker command as a learner would, on an attachable
// overlay network so that the host reaches its tasks on docker_gwbridge.
// The service, its containers and its network carry the labels of an
// instance of their own and are removed when the benchmark ends.
type peerWay struct {
	service string
	drv     *docker.Driver
}

// newPeer creates the peer's network and service, with no replica yet, or
// says why it cannot run here. It takes the image from the controller
// engine, which has built it.
func newPeer(b *testing.B, engine *flotilla) (*peerWay, string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := readSwarmState(ctx)
	if err != nil {
		return nil, fmt.Sprintf("the engine's swarm state cannot be read: %v", err)
	}
	if !st.active() || !st.Manager {
		return nil, fmt.Sprintf("swarm mode is %s (manager %v) on this engine; the peer needs an active manager", st.Node, st.Manager)
	}
	refs, err := images.Ensure(ctx, engine.ctl.Driver, images.Options{Repository: runImages.repository, Labels: map[string]string{dockertest.RunLabel: runImages.run}})
	if err != nil {
		b.Fatalf("find the shop image: %v", err)
	}
	drv := dockertest.New(b)
	p := &peerWay{service: drv.Project() + "-peer", drv: drv}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := removeServices(ctx, drv, drv.Instance()); err != nil {
			b.Errorf("cleanup: %v", err)
		}
	})
	owner := []string{"--label", docker.LabelManaged + "=true", "--label", docker.LabelInstance + "=" + drv.Instance()}
	if _, err := dockerCmd(ctx, append(append([]string{"network", "create", "--driver", "overlay", "--attachable"}, owner...), drv.Project())...); err != nil {
		b.Fatal(err)
	}
	g := spec.Group{Name: web, Service: "monolith"}.WithDefaults()
	svc, _ := spec.LookupService(g.Service)
	args := []string{"service", "create", "--detach", "--no-resolve-image", "--name", p.service, "--replicas", "0",
		"--network", drv.Project(), "--endpoint-mode", "dnsrr",
		"--container-label", docker.LabelManaged + "=true", "--container-label", docker.LabelInstance + "=" + drv.Instance(),
		"--user", "65534:65534", "--cap-drop", "ALL", "--read-only", "--mount", "type=tmpfs,destination=/tmp",
		"--limit-cpu", strconv.FormatFloat(float64(g.Resources.MilliCPU)/1000, 'f', -1, 64),
		"--limit-memory", strconv.FormatInt(g.Resources.MemoryMiB, 10) + "M", "--limit-pids", strconv.FormatInt(g.Resources.Pids, 10),
		"--env", "FLOTILLA_ROLE=" + svc.Role, "--env", "PORT=" + strconv.Itoa(spec.ShopPort)}
	args = append(append(args, owner...), refs["shop"])
	if _, err := dockerCmd(ctx, args...); err != nil {
		b.Fatal(err)
	}
	return p, ""
}

// peerTask is one running container of the peer's service.
type peerTask struct {
	id, slot, addr string
}

// tasks lists the service's running containers with their slot and
// their address on docker_gwbridge (empty until the engine gives one).
func (p *peerWay) tasks(ctx context.Context) ([]peerTask, error) {
	out, err := dockerCmd(ctx, "ps", "--no-trunc", "--filter", "label=com.docker.swarm.service.name="+p.service,
		"--filter", "status=running", "--format", `{{.ID}} {{.Label "com.docker.swarm.task.name"}}`)
	if err != nil {
		return nil, err
	}
	raw, err := dockerCmd(ctx, "network", "inspect", "docker_gwbridge", "--format", "{{json .Containers}}")
	if err != nil {
		return nil, err
	}
	var gw map[string]struct{ IPv4Address string }
	if err := json.Unmarshal([]byte(raw), &gw); err != nil {
		return nil, fmt.Errorf("docker_gwbridge's containers: %w", err)
	}
	var ts []peerTask
	for _, line := range strings.Split(out, "\n") {
		id, task, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		t := peerTask{id: id}
		if parts := strings.Split(task, "."); len(parts) >= 2 {
			t.slot = parts[1]
		}
		if ip, _, ok := strings.Cut(gw[id].IPv4Address, "/"); ok {
			t.addr = ip + ":" + strconv.Itoa(spec.ShopPort)
		}
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b peerTask) int { return strings.Compare(a.slot, b.slot) })
	return ts, nil
}

func (p *peerWay) up(ctx context.Context, n int) ([]string, error) {
	if _, err := dockerCmd(ctx, "service", "scale", "--detach", p.service+"="+strconv.Itoa(n)); err != nil {
		return nil, err
	}
	var addrs []string
	err := pollFast(time.Minute, func() error {
		ts, err := p.tasks(ctx)
		if err != nil {
			return err
		}
		addrs = addrs[:0]
		for _, t := range ts {
			if t.addr != "" {
				addrs = append(addrs, t.addr)
			}
		}
		if len(addrs) != n {
			return fmt.Errorf("%d of %d tasks run with an address", len(addrs), n)
		}
		return nil
	})
	return addrs, err
}

func (p *peerWay) down(ctx context.Context) error {
	if _, err := dockerCmd(ctx, "service", "scale", "--detach", p.service+"=0"); err != nil {
		return err
	}
	return dockertest.PollErr(time.Minute, func() error {
		ts, err := p.tasks(ctx)
		if err != nil {
			return err
		}
		if len(ts) != 0 {
			return fmt.Errorf("%d tasks still run", len(ts))
		}
		return nil
	})
}

func (p *peerWay) heal(ctx context.Context, i int) (time.Duration, error) {
	ts, err := p.tasks(ctx)
	if err != nil {
		return 0, err
	}
	if len(ts) == 0 {
		return 0, errors.New("no task to kill")
	}
	victim := ts[i%len(ts)]
	start := time.Now()
	if _, err := dockerCmd(ctx, "kill", victim.id); err != nil {
		return 0, err
	}
	err = pollFast(time.Minute, func() error {
		ts, err := p.tasks(ctx)
		if err != nil {
			return err
		}
		for _, t := range ts {
			if t.slot == victim.slot && t.id != victim.id && t.addr != "" {
				return dockertest.WaitReadyz(ctx, []string{t.addr}, time.Minute)
			}
		}
		return fmt.Errorf("no replacement in slot %s yet", victim.slot)
	})
	return time.Since(start), err
}

// pollFast is dockertest.PollErr at a steady 20 ms, so that a measured
// wait is not rounded up by a growing pause.
func pollFast(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still failing after %s: %w", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ratio(a, b []time.Duration) float64 {
	if dockertest.Median(b) == 0 {
		return 0
	}
	return float64(dockertest.Median(a)) / float64(dockertest.Median(b))
}

func roundAll(ts []time.Duration) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, t.Round(10*time.Millisecond).String())
	}
	return strings.Join(parts, " ")
}

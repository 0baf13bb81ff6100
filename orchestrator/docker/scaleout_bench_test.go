package docker_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/images/imagestest"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/orchestrator/store"
)

// BenchmarkScaleOut measures a scale-out from 0 to 20 replicas until every
// replica answers /readyz on its published port, three ways in the same
// run, in alternating order: Flotilla's controller, the raw engine (the
// same containers created and started in parallel with the SDK), and
// docker-compose up --scale. It prints the medians and their ratios, and
// the time from killing a replica to its replacement answering.
func BenchmarkScaleOut(b *testing.B) {
	const replicas = 20
	rounds := dockertest.EnvInt(b, "FLOTILLA_BENCH_ROUNDS", 5)
	refs := imagestest.Images(b)
	image := refs["shop"]
	g := spec.Group{Name: "web", Service: "monolith"}.WithDefaults()

	// Flotilla.
	drv := dockertest.New(b)
	st, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctrl := controller.New(controller.Options{Runtime: drv, Store: st, Images: refs, StopTimeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { ctrl.Run(ctx); close(runDone) }()
	// Stop the controller before the cleanups remove what it made, or it
	// would heal what they remove.
	b.Cleanup(func() { cancel(); <-runDone })

	// Raw engine: a second instance, its own network, labelled so that its
	// cleanup removes exactly what it made.
	rawDrv := dockertest.New(b)
	if err := rawDrv.EnsureNetwork(ctx); err != nil {
		b.Fatal(err)
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()

	// docker-compose: a third instance's labels on its containers and network.
	cp, haveCompose := newComposeProject(b, image, g)

	if _, _, err := ctrl.PutGroup(ctx, g); err != nil {
		b.Fatal(err)
	}

	ways := []struct {
		name string
		up   func() ([]string, error) // returns the published addresses
		down func() error
	}{
		{"flotilla", func() ([]string, error) {
			if _, err := ctrl.Scale(ctx, "web", replicas); err != nil {
				return nil, err
			}
			var addrs []string
			err := dockertest.PollErr(time.Minute, func() error {
				gs, err := ctrl.Group("web")
				if err != nil {
					return err
				}
				addrs = addrs[:0]
				for _, r := range gs.Replicas {
					if r.State == replica.StateRunning && r.Address != "" {
						addrs = append(addrs, r.Address)
					}
				}
				if len(addrs) != replicas {
					return fmt.Errorf("%d of %d replicas have an address", len(addrs), replicas)
				}
				return nil
			})
			return addrs, err
		}, func() error {
			if _, err := ctrl.Scale(ctx, "web", 0); err != nil {
				return err
			}
			return dockertest.PollErr(time.Minute, func() error { return countIs(ctx, drv, 0) })
		}},
		{"raw-engine", func() ([]string, error) {
			return rawScaleOut(ctx, cli, rawDrv, image, g, replicas)
		}, func() error {
			return removeAll(ctx, rawDrv)
		}},
		{"docker-compose", func() ([]string, error) {
			return cp.up(ctx, replicas)
		}, func() error {
			return cp.down(ctx)
		}},
	}
	if !haveCompose {
		b.Log("docker-compose is not installed: skipping that column")
		ways = ways[:2]
	}

	times := map[string][]time.Duration{}
	b.ResetTimer()
	for round := range rounds {
		for i := range ways {
			w := ways[(i+round)%len(ways)]
			start := time.Now()
			addrs, err := w.up()
			if err == nil {
				err = dockertest.WaitReadyz(ctx, addrs, time.Minute)
			}
			elapsed := time.Since(start)
			if err != nil {
				b.Fatalf("%s round %d: %v", w.name, round, err)
			}
			if len(addrs) != replicas {
				b.Fatalf("%s round %d: %d replicas answered, want %d", w.name, round, len(addrs), replicas)
			}
			times[w.name] = append(times[w.name], elapsed)
			if err := w.down(); err != nil {
				b.Fatalf("%s round %d: scale in: %v", w.name, round, err)
			}
		}
	}
	b.StopTimer()

	// Kill to replacement ready.
	if _, err := ctrl.Scale(ctx, "web", 3); err != nil {
		b.Fatal(err)
	}
	if _, err := ready(ctx, ctrl, 3); err != nil {
		b.Fatal(err)
	}
	var heal []time.Duration
	for i := range rounds {
		gs, _ := ctrl.Group("web")
		victim := gs.Replicas[i%len(gs.Replicas)]
		start := time.Now()
		if err := drv.Kill(ctx, victim.ID, "SIGKILL"); err != nil {
			b.Fatal(err)
		}
		err := dockertest.PollErr(time.Minute, func() error {
			gs, err := ctrl.Group("web")
			if err != nil {
				return err
			}
			for _, r := range gs.Replicas {
				if r.Name == victim.Name && r.ID != victim.ID && r.State == replica.StateRunning && r.Address != "" {
					return dockertest.WaitReadyz(ctx, []string{r.Address}, time.Minute)
				}
			}
			return fmt.Errorf("no replacement for %s yet", victim.Name)
		})
		if err != nil {
			b.Fatal(err)
		}
		heal = append(heal, time.Since(start))
		if _, err := ready(ctx, ctrl, 3); err != nil {
			b.Fatal(err)
		}
	}

	med := map[string]time.Duration{}
	for name, ts := range times {
		med[name] = dockertest.Median(ts)
	}
	fmt.Printf("\nscale-out 0 -> %d replicas until every /readyz answers on its published port (median of %d, alternating order)\n", replicas, rounds)
	fmt.Printf("  %-16s %10s   %s\n", "way", "median", "all rounds")
	for _, w := range ways {
		fmt.Printf("  %-16s %10s   %v\n", w.name, med[w.name].Round(time.Millisecond), roundAll(times[w.name]))
	}
	ratioRaw := float64(med["flotilla"]) / float64(med["raw-engine"])
	fmt.Printf("  flotilla / raw engine     = %.2fx (target <= 1.15x)\n", ratioRaw)
	b.ReportMetric(med["flotilla"].Seconds(), "flotilla-s")
	b.ReportMetric(med["raw-engine"].Seconds(), "raw-s")
	b.ReportMetric(ratioRaw, "flotilla/raw")
	if haveCompose {
		speedup := float64(med["docker-compose"]) / float64(med["flotilla"])
		fmt.Printf("  docker-compose / flotilla = %.2fx faster (target >= 2x)\n", speedup)
		b.ReportMetric(med["docker-compose"].Seconds(), "compose-s")
		b.ReportMetric(speedup, "compose/flotilla")
	}
	fmt.Printf("kill to replacement ready: median %s over %d kills %v\n\n", dockertest.Median(heal).Round(time.Millisecond), len(heal), roundAll(heal))
	b.ReportMetric(dockertest.Median(heal).Seconds(), "heal-s")
}

// composeProject is docker-compose v1 running one service, shop, as a
// group's replicas: the same image, role, policy and limits, and the labels
// of its own instance, so that the instance's cleanup removes what compose
// made.
type composeProject struct {
	drv           *docker.Driver
	file, project string
}

// newComposeProject writes the compose file for g's replicas of image and
// reports whether docker-compose is installed; the project is taken down
// when b ends.
func newComposeProject(b *testing.B, image string, g spec.Group) (*composeProject, bool) {
	b.Helper()
	cp := &composeProject{drv: dockertest.New(b)}
	cp.file = filepath.Join(b.TempDir(), "docker-compose.yml")
	if err := os.WriteFile(cp.file, []byte(composeYAML(image, cp.drv.Instance(), g)), 0o600); err != nil {
		b.Fatal(err)
	}
	cp.project = cp.drv.Project()
	if exec.Command("docker-compose", "version").Run() != nil {
		return cp, false
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cp.run(ctx, "down", "-t", "1")
	})
	return cp, true
}

func (cp *composeProject) run(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "docker-compose", append([]string{"-p", cp.project, "-f", cp.file}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("docker-compose %v: %v\n%s", args, err, out)
	}
	return nil
}

// up is `docker-compose up -d --scale shop=n`; it returns the replicas'
// published addresses once compose has started them.
func (cp *composeProject) up(ctx context.Context, n int) ([]string, error) {
	if err := cp.run(ctx, "up", "-d", "--scale", "shop="+strconv.Itoa(n)); err != nil {
		return nil, err
	}
	reps, err := cp.drv.List(ctx)
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, r := range reps {
		addrs = append(addrs, r.Address)
	}
	return addrs, nil
}

// down stops and removes the project's containers, keeping its network.
func (cp *composeProject) down(ctx context.Context) error {
	return cp.run(ctx, "rm", "-s", "-f")
}

// composeYAML is the compose file of g's replicas: its service's role, with
// Flotilla's policy and g's limits.
func composeYAML(image, instance string, g spec.Group) string {
	svc, _ := spec.LookupService(g.Service)
	return fmt.Sprintf(`version: "2.4"
services:
  shop:
    image: %s
    environment: [FLOTILLA_ROLE=%s, PORT=%d]
    user: "65534:65534"
    read_only: true
    cap_drop: [ALL]
    security_opt: ["no-new-privileges:true"]
    tmpfs: ["/tmp:rw,noexec,nosuid,size=16m"]
    mem_limit: %dm
    memswap_limit: %dm
    cpus: %g
    pids_limit: %d
    restart: "no"
    ports: ["127.0.0.1::%d"]
    labels:
      %s: "true"
      %s: %q
networks:
  default:
    labels:
      %s: "true"
      %s: %q
`, image, svc.Role, spec.ShopPort, g.Resources.MemoryMiB, g.Resources.MemoryMiB, float64(g.Resources.MilliCPU)/1000, g.Resources.Pids,
		spec.ShopPort, docker.LabelManaged, docker.LabelInstance, instance, docker.LabelManaged, docker.LabelInstance, instance)
}

// rawScaleOut creates and starts n containers in parallel with the SDK,
// with the same policy, labels and network as Flotilla's, and returns
// their published addresses.
func rawScaleOut(ctx context.Context, cli *client.Client, owner *docker.Driver, image string, g spec.Group, n int) ([]string, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		addrs []string
		errs  []error
	)
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr, err := rawOne(ctx, cli, owner, image, g, i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			addrs = append(addrs, addr)
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return addrs, nil
}

func rawOne(ctx context.Context, cli *client.Client, owner *docker.Driver, image string, g spec.Group, i int) (string, error) {
	port := nat.Port("8080/tcp")
	pids := g.Resources.Pids
	name := owner.ContainerName("raw", i)
	resp, err := cli.ContainerCreate(ctx,
		&container.Config{
			Image: image, User: "65534:65534", Hostname: fmt.Sprintf("raw-%d", i),
			Env:          []string{"FLOTILLA_ROLE=monolith", "PORT=8080"},
			ExposedPorts: nat.PortSet{port: {}},
			Labels:       map[string]string{docker.LabelManaged: "true", docker.LabelInstance: owner.Instance()},
		},
		&container.HostConfig{
			NetworkMode:    container.NetworkMode(owner.Project()),
			PortBindings:   nat.PortMap{port: {{HostIP: "127.0.0.1"}}},
			CapDrop:        []string{"ALL"},
			SecurityOpt:    []string{"no-new-privileges:true"},
			ReadonlyRootfs: true,
			Tmpfs:          map[string]string{"/tmp": "rw,noexec,nosuid,size=16m"},
			Resources: container.Resources{Memory: g.Resources.MemoryMiB << 20, MemorySwap: g.Resources.MemoryMiB << 20,
				NanoCPUs: g.Resources.MilliCPU * 1e6, PidsLimit: &pids},
		},
		&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{owner.Project(): {}}},
		nil, name)
	if err != nil {
		return "", err
	}
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return "", err
	}
	info, err := cli.ContainerInspect(ctx, resp.ID)
	if err != nil {
		return "", err
	}
	for _, b := range info.NetworkSettings.Ports[port] {
		return "127.0.0.1:" + b.HostPort, nil
	}
	return "", fmt.Errorf("%s has no published port", name)
}

func removeAll(ctx context.Context, d *docker.Driver) error {
	reps, err := d.List(ctx)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, r := range reps {
		wg.Add(1)
		go func() { defer wg.Done(); d.Remove(ctx, r.ID) }()
	}
	wg.Wait()
	return dockertest.PollErr(time.Minute, func() error { return countIs(ctx, d, 0) })
}

func countIs(ctx context.Context, d *docker.Driver, n int) error {
	reps, err := d.List(ctx)
	if err != nil {
		return err
	}
	if len(reps) != n {
		return fmt.Errorf("%d containers, want %d", len(reps), n)
	}
	return nil
}

var probeClient = &http.Client{Timeout: time.Second}

func ready(ctx context.Context, ctrl *controller.Controller, n int) (controller.GroupStatus, error) {
	var gs controller.GroupStatus
	err := dockertest.PollErr(time.Minute, func() error {
		var err error
		gs, err = ctrl.Group("web")
		if err != nil {
			return err
		}
		if gs.Ready != n || len(gs.Replicas) != n {
			return fmt.Errorf("%d/%d ready", gs.Ready, n)
		}
		return nil
	})
	return gs, err
}

func roundAll(ts []time.Duration) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, t.Round(10*time.Millisecond).String())
	}
	return strings.Join(parts, " ")
}

package docker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/images/imagestest"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/google/uuid"
)

// TestMain removes the images imagestest.Images built for this package.
func TestMain(m *testing.M) {
	imagestest.MainThen(m, leaveTheSwarm)
}

// rawClient is the SDK, for looking behind the driver's back: the tests
// check what the engine really did and make objects the driver must ignore.
func rawClient(t *testing.T) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func shopSpec(image, group string, index int) replica.Spec {
	return replica.Spec{
		Group: group, Index: index, Service: "monolith", Image: image, Port: 8080,
		Env:         []string{"FLOTILLA_ROLE=monolith"},
		Aliases:     []string{group},
		MemoryBytes: 64 << 20, NanoCPUs: 500_000_000, PidsLimit: 64,
		TemplateHash: "t1",
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// startReplica creates and starts one replica and waits until List shows it
// running with a published address.
func startReplica(t *testing.T, ctx context.Context, d *docker.Driver, s replica.Spec) replica.Replica {
	t.Helper()
	r, err := d.Create(ctx, s)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := d.Start(ctx, r.ID); err != nil {
		t.Fatalf("Start: %v", err)
	}
	var got replica.Replica
	dockertest.Poll(t, 20*time.Second, "replica running with an address", func() error {
		rs, err := d.List(ctx)
		if err != nil {
			return err
		}
		for _, x := range rs {
			if x.ID == r.ID && x.State == replica.StateRunning && x.Address != "" {
				got = x
				return nil
			}
		}
		return fmt.Errorf("not yet running: %+v", rs)
	})
	return got
}

// ownedObjects lists, through the SDK, whatever still carries instance's label.
func ownedObjects(t *testing.T, ctx context.Context, cli *client.Client, instance string) []string {
	t.Helper()
	f := filters.NewArgs(filters.Arg("label", docker.LabelInstance+"="+instance))
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, "container "+strings.Join(c.Names, ","))
	}
	for _, n := range nets {
		out = append(out, "network "+n.Name)
	}
	vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols.Volumes {
		out = append(out, "volume "+v.Name)
	}
	return out
}

func TestIntegrationReplicaLifecycle(t *testing.T) {
	refs := imagestest.Images(t)
	d := dockertest.New(t)
	cli := rawClient(t)
	ctx := ctxFor(t, 2*time.Minute)

	if err := d.EnsureNetwork(ctx); err != nil {
		t.Fatalf("EnsureNetwork: %v", err)
	}
	if err := d.EnsureNetwork(ctx); err != nil {
		t.Fatalf("EnsureNetwork again (reuse): %v", err)
	}

	s := shopSpec(refs["shop"], "web", 1)
	r := startReplica(t, ctx, d, s)
	if r.Name != "web-1" || r.Group != "web" || r.Index != 1 || r.Service != "monolith" || r.TemplateHash != "t1" {
		t.Errorf("listed replica = %+v", r)
	}
	if !strings.HasPrefix(r.Address, "127.0.0.1:") || r.Address == "127.0.0.1:0" {
		t.Errorf("Address = %q, want 127.0.0.1:PORT", r.Address)
	}
	if !strings.HasSuffix(r.NetworkAddress, ":8080") {
		t.Errorf("NetworkAddress = %q, want IP:8080", r.NetworkAddress)
	}

	httpc := &http.Client{Timeout: 2 * time.Second}
	dockertest.Poll(t, 20*time.Second, "GET /readyz", func() error {
		resp, err := httpc.Get("http://" + r.Address + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	})

	// The engine, not the driver's word, must show every policy item.
	raw, err := cli.ContainerInspect(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	hc := raw.HostConfig
	if raw.Name != "/"+d.ContainerName("web", 1) {
		t.Errorf("container name = %q", raw.Name)
	}
	if raw.Config.Hostname != "web-1" {
		t.Errorf("hostname = %q", raw.Config.Hostname)
	}
	if raw.Config.User != "65534:65534" {
		t.Errorf("user = %q", raw.Config.User)
	}
	if !slices.Equal([]string(hc.CapDrop), []string{"ALL"}) || len(hc.CapAdd) != 0 {
		t.Errorf("CapDrop = %v, CapAdd = %v", hc.CapDrop, hc.CapAdd)
	}
	if !slices.Contains(hc.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("SecurityOpt = %v", hc.SecurityOpt)
	}
	if !hc.ReadonlyRootfs {
		t.Error("root filesystem is writable")
	}
	if hc.Tmpfs["/tmp"] != "rw,noexec,nosuid,size=16m" {
		t.Errorf("Tmpfs = %v", hc.Tmpfs)
	}
	if hc.Memory != 64<<20 || hc.MemorySwap != 64<<20 || hc.NanoCPUs != 500_000_000 || hc.PidsLimit == nil || *hc.PidsLimit != 64 {
		t.Errorf("resources: memory %d swap %d nanocpus %d pids %v", hc.Memory, hc.MemorySwap, hc.NanoCPUs, hc.PidsLimit)
	}
	if len(raw.Mounts) != 0 || len(hc.Binds) != 0 || len(hc.Mounts) != 0 {
		t.Errorf("mounts = %v, binds %v, host mounts %v", raw.Mounts, hc.Binds, hc.Mounts)
	}
	if hc.RestartPolicy.Name != container.RestartPolicyDisabled {
		t.Errorf("restart policy = %q", hc.RestartPolicy.Name)
	}
	if hc.Privileged {
		t.Error("privileged")
	}
	for port, bindings := range raw.NetworkSettings.Ports {
		for _, b := range bindings {
			if b.HostIP != "127.0.0.1" {
				t.Errorf("port %s is published on %q", port, b.HostIP)
			}
		}
	}
	if bs := raw.NetworkSettings.Ports["8080/tcp"]; len(bs) != 1 || "127.0.0.1:"+bs[0].HostPort != r.Address {
		t.Errorf("port 8080 bindings = %v, listed address %s", bs, r.Address)
	}
	for _, b := range hc.PortBindings {
		for _, pb := range b {
			if pb.HostIP != "127.0.0.1" {
				t.Errorf("port binding %v is not on 127.0.0.1", pb)
			}
		}
	}
	for k, v := range map[string]string{
		docker.LabelManaged: "true", docker.LabelInstance: d.Instance(), docker.LabelGroup: "web",
		docker.LabelReplica: "1", docker.LabelService: "monolith", docker.LabelTemplateHash: "t1",
	} {
		if raw.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, raw.Config.Labels[k], v)
		}
	}
	for _, e := range []string{"FLOTILLA_ROLE=monolith", "FLOTILLA_REPLICA=web-1", "PORT=8080"} {
		if !slices.Contains(raw.Config.Env, e) {
			t.Errorf("env lacks %s", e)
		}
	}
	ep := raw.NetworkSettings.Networks[d.Project()]
	if ep == nil || len(raw.NetworkSettings.Networks) != 1 {
		t.Fatalf("networks = %v, want only %s", raw.NetworkSettings.Networks, d.Project())
	}
	for _, alias := range []string{"web", "web-1"} {
		if !slices.Contains(ep.Aliases, alias) {
			t.Errorf("aliases %v lack %s", ep.Aliases, alias)
		}
	}

	in, err := d.Inspect(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if in.State != replica.StateRunning || in.StartedAt.IsZero() || !in.FinishedAt.IsZero() || in.Address != r.Address || in.NetworkAddress != r.NetworkAddress {
		t.Errorf("Inspect = %+v", in)
	}

	if _, err := d.Create(ctx, s); !errors.Is(err, replica.ErrConflict) {
		t.Errorf("second Create of web-1 = %v, want ErrConflict", err)
	}

	if err := d.Pause(ctx, r.ID); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if in, _ := d.Inspect(ctx, r.ID); in.State != replica.StatePaused {
		t.Errorf("after Pause: state %q", in.State)
	}
	if err := d.Pause(ctx, r.ID); !errors.Is(err, replica.ErrConflict) {
		t.Errorf("Pause of a paused replica = %v, want ErrConflict", err)
	}
	if err := d.Unpause(ctx, r.ID); err != nil {
		t.Fatalf("Unpause: %v", err)
	}

	if err := d.Stop(ctx, r.ID, 5*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	in, err = d.Inspect(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The shop exits cleanly on SIGTERM: a graceful stop, not a kill.
	if in.State != replica.StateExited || in.FinishedAt.IsZero() || in.ExitCode != 0 || in.OOMKilled || in.Address != "" {
		t.Errorf("after Stop: %+v", in)
	}
	if err := d.Kill(ctx, r.ID, ""); !errors.Is(err, replica.ErrConflict) {
		t.Errorf("Kill of a stopped replica = %v, want ErrConflict", err)
	}

	if err := d.Remove(ctx, r.ID); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := d.Remove(ctx, r.ID); !errors.Is(err, replica.ErrNotFound) {
		t.Errorf("second Remove = %v, want ErrNotFound", err)
	}
	if _, err := d.Inspect(ctx, r.ID); !errors.Is(err, replica.ErrNotFound) {
		t.Errorf("Inspect after Remove = %v, want ErrNotFound", err)
	}
	if rs, err := d.List(ctx); err != nil || len(rs) != 0 {
		t.Errorf("List after Remove = %v, %v", rs, err)
	}

	// Down takes running and stopped replicas and the network.
	startReplica(t, ctx, d, shopSpec(refs["shop"], "web", 2))
	if _, err := d.Create(ctx, shopSpec(refs["shop"], "api", 1)); err != nil {
		t.Fatal(err)
	}
	if err := d.Down(ctx); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if left := ownedObjects(t, ctx, cli, d.Instance()); len(left) != 0 {
		t.Errorf("after Down, still labelled with the instance: %v", left)
	}
	if err := d.Down(ctx); err != nil {
		t.Errorf("Down with nothing to do: %v", err)
	}
}

func TestIntegrationListOrderAndAddresses(t *testing.T) {
	refs := imagestest.Images(t)
	d := dockertest.New(t)
	ctx := ctxFor(t, 2*time.Minute)

	// Created (not started) replicas are cheap; order must be group, then
	// numeric index.
	for _, gi := range []struct {
		g string
		i int
	}{{"b", 1}, {"a", 10}, {"a", 2}} {
		if _, err := d.Create(ctx, shopSpec(refs["shop"], gi.g, gi.i)); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rs {
		names = append(names, r.Name)
		if r.State != replica.StateCreated || r.Address != "" || r.NetworkAddress != "" || r.Created.IsZero() {
			t.Errorf("created replica = %+v", r)
		}
	}
	if want := []string{"a-2", "a-10", "b-1"}; !slices.Equal(names, want) {
		t.Errorf("List order = %v, want %v", names, want)
	}
}

func TestIntegrationForeignObjectsUntouched(t *testing.T) {
	refs := imagestest.Images(t)
	d := dockertest.New(t)
	cli := rawClient(t)
	ctx := ctxFor(t, 2*time.Minute)

	ours, err := d.Create(ctx, shopSpec(refs["shop"], "web", 1))
	if err != nil {
		t.Fatal(err)
	}

	// A container with no labels at all, and one of another instance.
	foreign := map[string]map[string]string{
		dockertest.UniqueName("flotilla-foreign-"): nil,
		dockertest.UniqueName("flotilla-other-"): {
			docker.LabelManaged: "true", docker.LabelInstance: uuid.NewString(),
			docker.LabelGroup: "web", docker.LabelReplica: "1",
		},
	}
	ids := map[string]string{} // name → ID
	for name, labels := range foreign {
		resp, err := cli.ContainerCreate(ctx, &container.Config{Image: refs["shop"], Labels: labels},
			&container.HostConfig{NetworkMode: "none"}, nil, nil, name)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = resp.ID
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := cli.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true}); err != nil {
				t.Errorf("cleanup: remove %s: %v", name, err)
			}
		})
	}

	rs, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].ID != ours.ID {
		t.Errorf("List = %+v, want only our replica %s", rs, ours.ID)
	}

	for name, id := range ids {
		for _, ref := range []string{id, id[:12], name} {
			if _, err := d.Inspect(ctx, ref); !errors.Is(err, replica.ErrNotFound) {
				t.Errorf("Inspect(%s) = %v, want ErrNotFound", ref, err)
			}
			if err := d.Remove(ctx, ref); !errors.Is(err, replica.ErrNotFound) {
				t.Errorf("Remove(%s) = %v, want ErrNotFound", ref, err)
			}
			if err := d.Start(ctx, ref); !errors.Is(err, replica.ErrNotFound) {
				t.Errorf("Start(%s) = %v, want ErrNotFound", ref, err)
			}
			if err := d.Stop(ctx, ref, time.Second); !errors.Is(err, replica.ErrNotFound) {
				t.Errorf("Stop(%s) = %v, want ErrNotFound", ref, err)
			}
			if err := d.Kill(ctx, ref, "SIGKILL"); !errors.Is(err, replica.ErrNotFound) {
				t.Errorf("Kill(%s) = %v, want ErrNotFound", ref, err)
			}
			if err := d.Pause(ctx, ref); !errors.Is(err, replica.ErrNotFound) {
				t.Errorf("Pause(%s) = %v, want ErrNotFound", ref, err)
			}
		}
	}

	if err := d.Down(ctx); err != nil {
		t.Fatalf("Down: %v", err)
	}
	for name, id := range ids {
		c, err := cli.ContainerInspect(ctx, id)
		if err != nil {
			t.Errorf("%s did not survive Down: %v", name, err)
			continue
		}
		if c.State.Status != "created" {
			t.Errorf("%s was touched: state %s", name, c.State.Status)
		}
	}
	if left := ownedObjects(t, ctx, cli, d.Instance()); len(left) != 0 {
		t.Errorf("after Down, still labelled with the instance: %v", left)
	}
}

func TestIntegrationForeignNetworkIsAConflict(t *testing.T) {
	opts := dockertest.NewOptions()
	d := dockertest.NewWith(t, opts)
	cli := rawClient(t)
	ctx := ctxFor(t, time.Minute)

	// Someone else's network holds our project's name.
	resp, err := cli.NetworkCreate(ctx, opts.Project, network.CreateOptions{Driver: "bridge"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cli.NetworkRemove(ctx, resp.ID); err != nil {
			t.Errorf("cleanup: remove network: %v", err)
		}
	})

	if err := d.EnsureNetwork(ctx); !errors.Is(err, replica.ErrConflict) {
		t.Fatalf("EnsureNetwork = %v, want ErrConflict", err)
	}
	if _, err := d.Create(ctx, shopSpec("flotilla-shop:none", "web", 1)); !errors.Is(err, replica.ErrConflict) {
		t.Errorf("Create on a foreign network = %v, want ErrConflict", err)
	}
	if err := d.Down(ctx); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if _, err := cli.NetworkInspect(ctx, resp.ID, network.InspectOptions{}); err != nil {
		t.Errorf("the foreign network did not survive: %v", err)
	}

	// The same name with another instance's labels is foreign too.
	other := dockertest.NewWith(t, docker.Options{Instance: uuid.NewString(), Project: opts.Project})
	if err := other.EnsureNetwork(ctx); !errors.Is(err, replica.ErrConflict) {
		t.Errorf("EnsureNetwork of another instance = %v, want ErrConflict", err)
	}
}

func TestIntegrationEventsDie(t *testing.T) {
	refs := imagestest.Images(t)
	d := dockertest.New(t)
	ctx := ctxFor(t, 2*time.Minute)

	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	events := d.Events(watchCtx)
	next := func(what string, match func(replica.Event) bool) replica.Event {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case e, ok := <-events:
				if !ok {
					t.Fatalf("waiting for %s: the event channel closed", what)
				}
				if match(e) {
					return e
				}
			case <-timeout:
				t.Fatalf("no %s event within 30s", what)
			}
		}
	}
	next("resync", func(e replica.Event) bool { return e.Action == replica.ActionResync })

	r := startReplica(t, ctx, d, shopSpec(refs["shop"], "web", 3))
	start := next("start", func(e replica.Event) bool { return e.Action == "start" && e.ID == r.ID })
	if start.Group != "web" || start.Index != 3 || start.Time.IsZero() {
		t.Errorf("start event = %+v", start)
	}
	if err := d.Kill(ctx, r.ID, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	die := next("die", func(e replica.Event) bool { return e.Action == "die" && e.ID == r.ID })
	if die.Group != "web" || die.Index != 3 {
		t.Errorf("die event = %+v", die)
	}
	in, err := d.Inspect(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if in.State != replica.StateExited || in.ExitCode != 137 {
		t.Errorf("after SIGKILL: state %s, exit code %d", in.State, in.ExitCode)
	}

	stop()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the event channel did not close after its context ended")
		}
	}
}

func TestIntegrationBuildImage(t *testing.T) {
	d := dockertest.New(t)
	ctx := ctxFor(t, 2*time.Minute)
	run := map[string]string{dockertest.RunLabel: uuid.NewString()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := d.RemoveImages(ctx, run); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	tag := dockertest.UniqueName("flotilla-test-") + ":v1"

	// A value with quotes and a dollar must arrive verbatim.
	labels := map[string]string{dockertest.RunLabel: run[dockertest.RunLabel], "io.flotilla.test-quote": `a "b" $c`}
	var progress strings.Builder
	id, err := d.BuildImage(ctx, docker.BuildRequest{
		Tag:        tag,
		Dockerfile: []byte("FROM scratch\nCOPY data/hello.txt /hello.txt\n"),
		Files:      map[string]docker.FileSpec{"data/hello.txt": {Data: []byte("hello\n")}},
		Labels:     labels,
		Progress:   &progress,
	})
	if err != nil {
		t.Fatalf("BuildImage: %v\n%s", err, progress.String())
	}
	if !strings.HasPrefix(id, "sha256:") || !strings.Contains(progress.String(), "Step 2/") {
		t.Errorf("id %q, progress %q", id, progress.String())
	}
	got, err := d.FindImage(ctx, tag, labels)
	if err != nil || got != id {
		t.Errorf("FindImage = %q, %v; want %q", got, err, id)
	}
	if _, err := d.FindImage(ctx, tag, map[string]string{"io.flotilla.test-quote": "other"}); !errors.Is(err, replica.ErrNotFound) {
		t.Errorf("FindImage with a wrong label = %v, want ErrNotFound", err)
	}
	if _, err := d.FindImage(ctx, dockertest.UniqueName("flotilla-test-")+":none", nil); !errors.Is(err, replica.ErrNotFound) {
		t.Errorf("FindImage of a missing tag = %v, want ErrNotFound", err)
	}

	_, err = d.BuildImage(ctx, docker.BuildRequest{
		Tag:        dockertest.UniqueName("flotilla-test-") + ":broken",
		Dockerfile: []byte("FROM scratch\nCOPY missing.txt /x\n"),
		Labels:     run,
	})
	if err == nil || !strings.Contains(err.Error(), "build failed") {
		t.Errorf("a failing build returned %v", err)
	}

	if err := d.RemoveImages(ctx, run); err != nil {
		t.Fatal(err)
	}
	if _, err := d.FindImage(ctx, tag, nil); !errors.Is(err, replica.ErrNotFound) {
		t.Errorf("after RemoveImages: FindImage = %v, want ErrNotFound", err)
	}
}

// cutProxy forwards 127.0.0.1 TCP connections to the engine's unix socket
// and can cut them all, which is what an engine restart looks like to a client.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCutProxy(t *testing.T) *cutProxy {
	t.Helper()
	socket := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		var ok bool
		if socket, ok = strings.CutPrefix(h, "unix://"); !ok {
			t.Skipf("the proxy needs a unix socket engine, DOCKER_HOST is %s", h)
		}
	}
	if _, err := os.Stat(socket); err != nil {
		dockertest.SkipOrFail(t, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("unix", socket)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func TestIntegrationEventsResyncAfterReconnect(t *testing.T) {
	refs := imagestest.Images(t)
	proxy := newCutProxy(t)
	t.Setenv("DOCKER_HOST", "tcp://"+proxy.ln.Addr().String())
	d := dockertest.New(t)
	ctx := ctxFor(t, 2*time.Minute)

	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	events := d.Events(watchCtx)
	next := func(what string, match func(replica.Event) bool) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case e, ok := <-events:
				if !ok {
					t.Fatalf("waiting for %s: the event channel closed", what)
				}
				if match(e) {
					return
				}
			case <-timeout:
				t.Fatalf("no %s event within 30s", what)
			}
		}
	}
	next("first resync", func(e replica.Event) bool { return e.Action == replica.ActionResync })
	proxy.cut()
	next("resync after the stream broke", func(e replica.Event) bool { return e.Action == replica.ActionResync })

	// The new subscription delivers events.
	r := startReplica(t, ctx, d, shopSpec(refs["shop"], "web", 1))
	if err := d.Kill(ctx, r.ID, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	next("die after reconnecting", func(e replica.Event) bool { return e.Action == "die" && e.ID == r.ID })
}

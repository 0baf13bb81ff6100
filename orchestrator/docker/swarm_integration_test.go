package docker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/images/imagestest"
	"github.com/flotilla/flotilla/orchestrator/replica"
)

// The swarm runtime is a placing runtime with faults and logs, and a node
// runtime.
var (
	_ controller.PlacingRuntime = (*docker.Swarm)(nil)
	_ controller.Faulter        = (*docker.Swarm)(nil)
	_ controller.LogReader      = (*docker.Swarm)(nil)
	_ interface {
		Nodes(context.Context) ([]replica.Node, error)
		SetNodeAvailability(ctx context.Context, id, availability string) error
	} = (*docker.Swarm)(nil)
)

// theSwarm is the swarm the tests of this binary share: the engine's own,
// or one initialised by the first test that needs it and left by TestMain
// once every test ran, so that a run makes and leaves at most one swarm.
var theSwarm struct {
	sync.Mutex
	locked bool
	unlock func()
	driver *docker.Driver
	rec    docker.SwarmRecord
}

// leaveTheSwarm leaves the swarm a test of this binary initialised, if
// any, and releases the swarm lock; TestMain calls it.
func leaveTheSwarm() error {
	theSwarm.Lock()
	defer theSwarm.Unlock()
	if !theSwarm.locked {
		return nil
	}
	defer theSwarm.unlock()
	if !theSwarm.rec.Initialised {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer theSwarm.driver.Close()
	if err := docker.LeaveSwarm(ctx, theSwarm.driver, theSwarm.rec); err != nil && !docker.OnlyStale(err) {
		return err
	} else if err != nil {
		fmt.Fprintf(os.Stderr, "leave the swarm: %v\n", err)
	}
	return nil
}

// newSwarm returns the swarm runtime of a fresh instance whose objects are
// all removed when t ends, pass or fail. Without an active swarm it skips,
// unless FLOTILLA_REQUIRE_DOCKER=1: then the first test initialises one,
// which TestMain leaves at the end. A swarm that was there before is never
// left.
func newSwarm(t *testing.T) *docker.Swarm {
	t.Helper()
	dockertest.SkipSwarmLater(t)
	theSwarm.Lock()
	if !theSwarm.locked {
		unlock, err := dockertest.LockSwarmProcess()
		if err != nil {
			theSwarm.Unlock()
			t.Fatal(err)
		}
		theSwarm.locked, theSwarm.unlock = true, unlock
	}
	theSwarm.Unlock()
	d := dockertest.New(t)
	ctx := ctxFor(t, 30*time.Second)
	sw, err := docker.NewSwarm(ctx, d)
	if errors.Is(err, docker.ErrSwarmInactive) {
		if !dockertest.Required() {
			t.Skipf("swarm mode is not active on this engine (%v); %s=1 makes the tests initialise one", err, dockertest.RequireEnv)
		}
		theSwarm.Lock()
		if theSwarm.driver == nil {
			theSwarm.driver, err = docker.New(ctx, dockertest.NewOptions())
			if err != nil {
				theSwarm.Unlock()
				t.Fatal(err)
			}
		}
		rec, ierr := docker.InitSwarm(ctx, theSwarm.driver)
		if rec.Initialised {
			theSwarm.rec = rec
		}
		theSwarm.Unlock()
		if ierr != nil {
			t.Fatalf("InitSwarm: %v", ierr)
		}
		sw, err = docker.NewSwarm(ctx, d)
	}
	if err != nil {
		t.Fatalf("NewSwarm: %v", err)
	}
	// Registered after dockertest's cleanup, so it runs first: the driver's
	// Down alone would remove tasks' containers that Swarm then replaces.
	t.Cleanup(func() {
		if err := sw.Down(ctxFor(t, 2*time.Minute)); err != nil {
			t.Errorf("cleanup: swarm down: %v", err)
		}
	})
	return sw
}

func swarmTemplate(image, hash string) replica.Spec {
	s := shopSpec(image, "web", 0)
	s.TemplateHash = hash
	return s
}

// running polls List until group has n running replicas with an address,
// and returns them by index.
func running(t *testing.T, ctx context.Context, sw *docker.Swarm, group string, n int, ok func(replica.Replica) bool) []replica.Replica {
	t.Helper()
	var got []replica.Replica
	err := dockertest.PollErr(90*time.Second, func() error {
		rs, err := sw.List(ctx)
		if err != nil {
			return err
		}
		got = got[:0]
		all := 0
		for _, r := range rs {
			if r.Group != group {
				continue
			}
			all++
			if r.State == replica.StateRunning && r.Address != "" && (ok == nil || ok(r)) {
				got = append(got, r)
			}
		}
		if len(got) != n || all != n {
			return fmt.Errorf("%d of %d listed are running: %+v", len(got), all, rs)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%d replicas of %s running: %v\n%s", n, group, err, taskReport(ctx, sw, group))
	}
	return got
}

// taskReport says what Swarm did of group's service: its update status and
// its tasks' states and errors.
func taskReport(ctx context.Context, sw *docker.Swarm, group string) string {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err.Error()
	}
	defer cli.Close()
	var b strings.Builder
	name := sw.ServiceName(group)
	if svc, _, err := cli.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{}); err == nil && svc.UpdateStatus != nil {
		fmt.Fprintf(&b, "service %s update: %+v\n", name, *svc.UpdateStatus)
	}
	tasks, err := cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", name))})
	if err != nil {
		return b.String() + err.Error()
	}
	for _, tk := range tasks {
		fmt.Fprintf(&b, "task %s slot %d created %s desired %s state %s %q err %q container %+v\n", tk.ID, tk.Slot,
			tk.CreatedAt.Format(time.StampMilli), tk.DesiredState, tk.Status.State, tk.Status.Message, tk.Status.Err, tk.Status.ContainerStatus)
	}
	return b.String()
}

func indexes(rs []replica.Replica) []int {
	var out []int
	for _, r := range rs {
		out = append(out, r.Index)
	}
	slices.Sort(out)
	return out
}

func getOK(t *testing.T, addr, path string) {
	t.Helper()
	httpc := &http.Client{Timeout: 2 * time.Second}
	dockertest.Poll(t, 30*time.Second, "GET "+addr+path, func() error {
		resp, err := httpc.Get("http://" + addr + path)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
}

func serviceVersion(t *testing.T, ctx context.Context, cli *client.Client, name string) uint64 {
	t.Helper()
	svc, _, err := cli.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatalf("inspect service %s: %v", name, err)
	}
	return svc.Version.Index
}

// One service through its life: placed, reached from the host, audited,
// scaled, left alone when nothing changed, rolled to a new template, a task
// killed and healed by Swarm, paused, sampled, read and removed.
func TestIntegrationSwarmService(t *testing.T) {
	refs := imagestest.Images(t)
	sw := newSwarm(t)
	d := sw.Driver()
	cli := rawClient(t)
	ctx := ctxFor(t, 6*time.Minute)
	svcName := sw.ServiceName("web")

	// The project's network: an attachable overlay with our labels.
	for range 2 {
		if err := sw.EnsureNetwork(ctx); err != nil {
			t.Fatalf("EnsureNetwork: %v", err)
		}
	}
	n, err := cli.NetworkInspect(ctx, d.Project(), network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Driver != "overlay" || !n.Attachable || n.Labels[docker.LabelInstance] != d.Instance() || n.Labels[docker.LabelManaged] != "true" {
		t.Errorf("network %s: driver %s, attachable %v, labels %v", n.Name, n.Driver, n.Attachable, n.Labels)
	}

	events := sw.Events(ctx)
	select {
	case e := <-events:
		if e.Action != replica.ActionResync {
			t.Errorf("first event = %+v, want a resync", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no first event")
	}

	// Place 2: slots 1 and 2, on this node, answering from the host.
	tmpl := swarmTemplate(refs["shop"], "t1")
	if err := sw.Place(ctx, "web", 2, tmpl); err != nil {
		t.Fatalf("Place 2: %v", err)
	}
	rs := running(t, ctx, sw, "web", 2, nil)
	if got := indexes(rs); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("slots = %v, want [1 2]", got)
	}
	for _, r := range rs {
		if r.Name != replica.Name("web", r.Index) || r.Service != "monolith" || r.TemplateHash != "t1" || r.Node != sw.NodeID() ||
			r.NetworkAddress != r.Address || !strings.HasSuffix(r.Address, ":8080") {
			t.Errorf("listed replica = %+v", r)
		}
		getOK(t, r.Address, "/healthz")
	}

	t.Run("policy", func(t *testing.T) { auditTask(t, ctx, cli, sw, rs[0]) })

	// The same desire again: no update.
	v := serviceVersion(t, ctx, cli, svcName)
	if err := sw.Place(ctx, "web", 2, tmpl); err != nil {
		t.Fatalf("Place again: %v", err)
	}
	if got := serviceVersion(t, ctx, cli, svcName); got != v {
		t.Errorf("placing the same desire updated the service: version %d → %d", v, got)
	}

	// Scale to 3, then to 1.
	if err := sw.Place(ctx, "web", 3, tmpl); err != nil {
		t.Fatalf("Place 3: %v", err)
	}
	if got := indexes(running(t, ctx, sw, "web", 3, nil)); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("slots after scaling to 3 = %v", got)
	}
	if err := sw.Place(ctx, "web", 1, tmpl); err != nil {
		t.Fatalf("Place 1: %v", err)
	}
	running(t, ctx, sw, "web", 1, nil)

	// A new template: the service is updated and Swarm rolls its tasks.
	v = serviceVersion(t, ctx, cli, svcName)
	tmpl2 := swarmTemplate(refs["shop"], "t2")
	tmpl2.Env = append(tmpl2.Env, "FLOTILLA_TEST_TEMPLATE=2")
	if err := sw.Place(ctx, "web", 2, tmpl2); err != nil {
		t.Fatalf("Place a new template: %v", err)
	}
	if got := serviceVersion(t, ctx, cli, svcName); got <= v {
		t.Errorf("a new template did not update the service: version %d → %d", v, got)
	}
	rs = running(t, ctx, sw, "web", 2, func(r replica.Replica) bool { return r.TemplateHash == "t2" })

	// Kill: an event, and Swarm replaces the task at the same slot.
	victim := rs[0]
	if err := sw.Kill(ctx, victim.ID, ""); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	waitEvent(t, events, func(e replica.Event) bool {
		return e.Action == replica.ActionDie && e.ID == victim.ID && e.Group == "web" && e.Index == victim.Index
	})
	healed := running(t, ctx, sw, "web", 2, func(r replica.Replica) bool { return r.ID != victim.ID && r.TemplateHash == "t2" })
	if got := indexes(healed); !slices.Equal(got, indexes(rs)) {
		t.Errorf("slots after the kill = %v, want %v", got, indexes(rs))
	}
	if err := sw.Kill(ctx, victim.ID, ""); err == nil {
		t.Error("killing the dead task's container again succeeded")
	}

	// Pause and unpause, as List and the events show them.
	r := healed[0]
	if err := sw.Pause(ctx, r.ID); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	waitEvent(t, events, func(e replica.Event) bool {
		return e.Action == replica.ActionPause && e.ID == r.ID && e.Index == r.Index
	})
	if got := listed(t, ctx, sw, r.ID); got.State != replica.StatePaused || got.Address == "" {
		t.Errorf("paused replica listed as %+v", got)
	}
	if err := sw.Pause(ctx, r.ID); !errors.Is(err, replica.ErrConflict) {
		t.Errorf("Pause a paused task: %v, want ErrConflict", err)
	}
	if err := sw.Unpause(ctx, r.ID); err != nil {
		t.Fatalf("Unpause: %v", err)
	}
	if err := sw.Unpause(ctx, r.ID); !errors.Is(err, replica.ErrConflict) {
		t.Errorf("Unpause a running task: %v, want ErrConflict", err)
	}
	if got := listed(t, ctx, sw, r.ID); got.State != replica.StateRunning {
		t.Errorf("unpaused replica listed as %+v", got)
	}
	getOK(t, r.Address, "/healthz")

	// Stats and logs of a task's container.
	u, err := sw.Stats(ctx, r.ID)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if u.MemLimit != 64<<20 || u.CPUNanos == 0 || u.MemBytes == 0 {
		t.Errorf("Stats = %+v, want a 64 MiB limit and some use", u)
	}
	if _, err := sw.Logs(ctx, r.ID, 20); err != nil {
		t.Errorf("Logs: %v", err)
	}

	// What is not a task of ours is not there.
	t.Run("others", func(t *testing.T) { refuseOthers(t, ctx, cli, sw, refs["shop"]) })

	// Unplace: the service and its tasks go; unplacing again is fine.
	if err := sw.Unplace(ctx, "web"); err != nil {
		t.Fatalf("Unplace: %v", err)
	}
	if _, _, err := cli.ServiceInspectWithRaw(ctx, svcName, swarm.ServiceInspectOptions{}); err == nil {
		t.Errorf("service %s still there after Unplace", svcName)
	}
	dockertest.Poll(t, 30*time.Second, "no replica listed", func() error {
		rs, err := sw.List(ctx)
		if err != nil || len(rs) > 0 {
			return fmt.Errorf("%+v, %v", rs, err)
		}
		return nil
	})
	if err := sw.Unplace(ctx, "web"); err != nil {
		t.Errorf("Unplace an unknown group: %v", err)
	}
}

// listed is the listed replica with id.
func listed(t *testing.T, ctx context.Context, sw *docker.Swarm, id string) replica.Replica {
	t.Helper()
	rs, err := sw.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, r := range rs {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("%s is not listed: %+v", id, rs)
	return replica.Replica{}
}

// waitEvent reads events until one matches, for at most 30 seconds.
func waitEvent(t *testing.T, events <-chan replica.Event, match func(replica.Event) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	var seen []replica.Event
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("events closed; seen %+v", seen)
			}
			if match(e) {
				return
			}
			seen = append(seen, e)
		case <-deadline:
			t.Fatalf("no matching event in 30s; seen %+v", seen)
		}
	}
}

// auditTask checks a task's container as the engine made it: the policy
// of a replica as far as a service of API 1.41 can say it.
func auditTask(t *testing.T, ctx context.Context, cli *client.Client, sw *docker.Swarm, r replica.Replica) {
	c, err := cli.ContainerInspect(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	hc, cfg := c.HostConfig, c.Config
	if cfg.User != "65534:65534" {
		t.Errorf("user %q, want 65534:65534", cfg.User)
	}
	if hc.Privileged || !slices.Equal(hc.CapDrop, []string{"ALL"}) || len(hc.CapAdd) != 0 {
		t.Errorf("privileged %v, CapDrop %v, CapAdd %v", hc.Privileged, hc.CapDrop, hc.CapAdd)
	}
	if !hc.ReadonlyRootfs {
		t.Error("root filesystem is writable")
	}
	if hc.Memory != 64<<20 || hc.NanoCPUs != 500_000_000 || hc.PidsLimit == nil || *hc.PidsLimit != 64 {
		t.Errorf("limits: memory %d, NanoCPUs %d, pids %v", hc.Memory, hc.NanoCPUs, hc.PidsLimit)
	}
	if hc.Init == nil || !*hc.Init {
		t.Errorf("Init = %v, want true", hc.Init)
	}
	want := map[string]string{
		docker.LabelManaged: "true", docker.LabelInstance: sw.Driver().Instance(), docker.LabelGroup: "web",
		docker.LabelService: "monolith", docker.LabelTemplateHash: r.TemplateHash,
	}
	for k, v := range want {
		if cfg.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cfg.Labels[k], v)
		}
	}
	published := false
	for _, bs := range c.NetworkSettings.Ports {
		published = published || len(bs) > 0
	}
	if len(hc.PortBindings) != 0 || hc.PublishAllPorts || published {
		t.Errorf("ports published: bindings %v, all %v, settings %v", hc.PortBindings, hc.PublishAllPorts, c.NetworkSettings.Ports)
	}
	if len(hc.Binds) != 0 || len(hc.VolumesFrom) != 0 {
		t.Errorf("binds %v, volumes from %v", hc.Binds, hc.VolumesFrom)
	}
	for _, m := range c.Mounts {
		if m.Type != mount.TypeTmpfs || m.Destination != "/tmp" {
			t.Errorf("mount %+v, want only the /tmp tmpfs", m)
		}
	}
	if len(hc.Mounts) != 1 || hc.Mounts[0].Type != mount.TypeTmpfs || hc.Mounts[0].Target != "/tmp" {
		t.Errorf("asked mounts %+v, want only the /tmp tmpfs", hc.Mounts)
	}
	if hc.NetworkMode.IsHost() || hc.PidMode.IsHost() || hc.IpcMode.IsHost() || len(hc.Devices) != 0 {
		t.Errorf("host namespaces or devices: network %q, pid %q, ipc %q, devices %v", hc.NetworkMode, hc.PidMode, hc.IpcMode, hc.Devices)
	}
	if name := replica.Name("web", r.Index); cfg.Hostname != name || !slices.Contains(cfg.Env, "FLOTILLA_REPLICA="+name) {
		t.Errorf("hostname %q, env %v, want %s", cfg.Hostname, cfg.Env, name)
	}
	// API 1.41 cannot ask it of a service: documented, and shown here.
	if slices.ContainsFunc(hc.SecurityOpt, func(o string) bool { return strings.HasPrefix(o, "no-new-privileges") }) {
		t.Logf("no-new-privileges is set (%v): this engine expresses it after all", hc.SecurityOpt)
	} else {
		t.Logf("no-new-privileges is not set on task containers (SecurityOpt %v): a service spec of API 1.41 cannot ask for it", hc.SecurityOpt)
	}
	// The shop sets it on itself instead (package privs): the kernel says
	// so of the container's service process, the child of its init.
	shop, err := childOf(c.State.Pid)
	if err != nil {
		t.Fatalf("the task's service process: %v", err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", shop))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status), "NoNewPrivs:\t1") {
		t.Errorf("the task's shop (pid %d) runs without no_new_privs:\n%s", shop, status)
	}
}

// childOf finds the one child process of pid (a container's init's
// service), in this host's /proc.
func childOf(pid int) (int, error) {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return 0, err
		}
		for _, e := range entries {
			child, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
			if err != nil {
				continue
			}
			// pid (comm) state ppid ...: comm may hold spaces, so read after its ")".
			rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
			if f := strings.Fields(rest); len(f) > 1 && f[1] == strconv.Itoa(pid) {
				return child, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no child of pid %d in /proc", pid)
		}
	}
}

// refuseOthers checks that a container without our labels, and one of our
// instance that is no task of ours, are not the swarm runtime's to touch.
func refuseOthers(t *testing.T, ctx context.Context, cli *client.Client, sw *docker.Swarm, image string) {
	name := dockertest.UniqueName("flotilla-test-foreign-")
	stranger, err := cli.ContainerCreate(ctx, &container.Config{Image: image, Labels: map[string]string{docker.LabelManaged: "true", dockertest.RunLabel: "foreign"}}, nil, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cli.ContainerRemove(context.Background(), stranger.ID, container.RemoveOptions{Force: true})
	})
	// A container of this very instance, made by the engine runtime.
	plain, err := sw.Driver().Create(ctx, shopSpec(image, "plain", 1))
	if err != nil {
		t.Fatal(err)
	}
	for what, id := range map[string]string{"a stranger": stranger.ID, "a container of the engine runtime": plain.ID} {
		if err := sw.Kill(ctx, id, ""); !errors.Is(err, replica.ErrNotFound) {
			t.Errorf("Kill %s: %v, want ErrNotFound", what, err)
		}
		if err := sw.Pause(ctx, id); !errors.Is(err, replica.ErrNotFound) {
			t.Errorf("Pause %s: %v, want ErrNotFound", what, err)
		}
		if _, err := sw.Stats(ctx, id); !errors.Is(err, replica.ErrNotFound) {
			t.Errorf("Stats %s: %v, want ErrNotFound", what, err)
		}
		if _, err := sw.Logs(ctx, id, 5); !errors.Is(err, replica.ErrNotFound) {
			t.Errorf("Logs %s: %v, want ErrNotFound", what, err)
		}
	}
	if err := sw.Kill(ctx, "task:nothere", ""); !errors.Is(err, replica.ErrConflict) {
		t.Errorf("Kill a task without a container: %v, want ErrConflict", err)
	}
	if err := sw.Driver().Remove(ctx, plain.ID); err != nil {
		t.Errorf("remove the engine runtime's container: %v", err)
	}
}

// The swarm's nodes: this engine's node, a manager and the leader, with its
// resources; its availability set to pause and back.
func TestIntegrationSwarmNodes(t *testing.T) {
	sw := newSwarm(t)
	ctx := ctxFor(t, time.Minute)
	nodes, err := sw.Nodes(ctx)
	if err != nil {
		t.Fatalf("Nodes: %v", err)
	}
	i := slices.IndexFunc(nodes, func(n replica.Node) bool { return n.ID == sw.NodeID() })
	if i < 0 {
		t.Fatalf("this engine's node %s is not among %+v", sw.NodeID(), nodes)
	}
	me := nodes[i]
	if me.Role != replica.RoleManager || !me.Leader || me.State != "ready" || me.Name == "" ||
		me.NanoCPUs <= 0 || me.MemoryBytes <= 0 || me.EngineVersion == "" || me.Addr == "" {
		t.Errorf("this node = %+v", me)
	}
	if !replica.ValidAvailability(me.Availability) {
		t.Errorf("availability %q", me.Availability)
	}
	if me.Availability != replica.AvailabilityActive {
		t.Skipf("this node is %s, not active: someone else is using it", me.Availability)
	}

	// Pause (not drain: other tests share this node), by name, then back
	// by ID; restored even if the test fails.
	t.Cleanup(func() {
		if err := sw.SetNodeAvailability(ctxFor(t, 30*time.Second), me.ID, replica.AvailabilityActive); err != nil {
			t.Errorf("restore node %s to active: %v", me.ID, err)
		}
	})
	availability := func() string {
		ns, err := sw.Nodes(ctx)
		if err != nil {
			t.Fatalf("Nodes: %v", err)
		}
		for _, n := range ns {
			if n.ID == me.ID {
				return n.Availability
			}
		}
		t.Fatalf("node %s gone", me.ID)
		return ""
	}
	if err := sw.SetNodeAvailability(ctx, me.Name, replica.AvailabilityPause); err != nil {
		t.Fatalf("SetNodeAvailability pause: %v", err)
	}
	if got := availability(); got != replica.AvailabilityPause {
		t.Errorf("availability after pause = %s", got)
	}
	if err := sw.SetNodeAvailability(ctx, me.ID, replica.AvailabilityPause); err != nil {
		t.Errorf("pausing a paused node: %v", err)
	}
	if err := sw.SetNodeAvailability(ctx, me.ID, replica.AvailabilityActive); err != nil {
		t.Fatalf("SetNodeAvailability active: %v", err)
	}
	if got := availability(); got != replica.AvailabilityActive {
		t.Errorf("availability after activate = %s", got)
	}
	if err := sw.SetNodeAvailability(ctx, "no-such-node-"+dockertest.UniqueName(""), replica.AvailabilityActive); !errors.Is(err, replica.ErrNotFound) {
		t.Errorf("an unknown node: %v, want ErrNotFound", err)
	}
	if err := sw.SetNodeAvailability(ctx, me.ID, "sleep"); err == nil {
		t.Error("availability sleep accepted")
	}
}

// Down removes services, tasks, the network and the store volumes of the
// instance, and leaves a network and a service of the same name that are
// not ours alone.
func TestIntegrationSwarmDown(t *testing.T) {
	refs := imagestest.Images(t)
	sw := newSwarm(t)
	d := sw.Driver()
	cli := rawClient(t)
	ctx := ctxFor(t, 4*time.Minute)

	// A bus with a store: its volume is the slot's, labelled as ours.
	bus := busSpec(refs["bus"], 0)
	if err := sw.Place(ctx, "bus", 1, bus); err != nil {
		t.Fatalf("Place bus: %v", err)
	}
	rs := running(t, ctx, sw, "bus", 1, nil)
	getOK(t, rs[0].Address, "/readyz") // JetStream wrote its store as nobody
	vol, err := cli.VolumeInspect(ctx, d.VolumeName("bus", 1))
	if err != nil {
		t.Fatalf("store volume: %v", err)
	}
	if want := map[string]string{docker.LabelManaged: "true", docker.LabelInstance: d.Instance(), docker.LabelGroup: "bus", docker.LabelReplica: "1"}; !hasAll(vol.Labels, want) {
		t.Errorf("store volume labels = %v, want %v", vol.Labels, want)
	}

	if err := sw.Down(ctx); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if left := swarmObjects(t, ctx, cli, d.Instance()); len(left) > 0 {
		t.Errorf("left after Down: %v", left)
	}
	if err := sw.Down(ctx); err != nil {
		t.Errorf("Down with nothing left: %v", err)
	}

	// A network of the project's name without our labels is never reused.
	if _, err := cli.NetworkCreate(ctx, d.Project(), network.CreateOptions{Driver: "overlay", Attachable: true, Labels: map[string]string{docker.LabelManaged: "true", dockertest.RunLabel: "foreign"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.NetworkRemove(context.Background(), d.Project()) })
	if err := sw.EnsureNetwork(ctx); !errors.Is(err, replica.ErrConflict) {
		t.Errorf("EnsureNetwork over a foreign network: %v, want ErrConflict", err)
	}
	if err := sw.Down(ctx); err != nil {
		t.Errorf("Down beside a foreign network: %v", err)
	}
	if _, err := cli.NetworkInspect(ctx, d.Project(), network.InspectOptions{}); err != nil {
		t.Errorf("Down removed the foreign network: %v", err)
	}

	// A service of a group's name without our labels is never changed or
	// removed, by Place, Unplace or Down.
	zero := uint64(0)
	foreign, err := cli.ServiceCreate(ctx, swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: sw.ServiceName("web"), Labels: map[string]string{docker.LabelManaged: "true", dockertest.RunLabel: "foreign"}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: refs["shop"], Labels: map[string]string{dockertest.RunLabel: "foreign"}}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}},
	}, swarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.ServiceRemove(context.Background(), foreign.ID) })
	before, _, err := cli.ServiceInspectWithRaw(ctx, foreign.ID, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tmpl := replica.Spec{Group: "web", Service: "monolith", Image: refs["shop"], Port: 8080, TemplateHash: "h1", MemoryBytes: 64 << 20, NanoCPUs: 250_000_000, PidsLimit: 64}
	if err := sw.Place(ctx, "web", 1, tmpl); !errors.Is(err, replica.ErrConflict) {
		t.Errorf("Place over a foreign service: %v, want ErrConflict", err)
	}
	if err := sw.Unplace(ctx, "web"); err != nil {
		t.Errorf("Unplace beside a foreign service: %v", err)
	}
	if err := sw.Down(ctx); err != nil {
		t.Errorf("Down beside a foreign service: %v", err)
	}
	after, _, err := cli.ServiceInspectWithRaw(ctx, foreign.ID, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatalf("the foreign service is gone: %v", err)
	}
	if after.Version.Index != before.Version.Index {
		t.Errorf("the foreign service was changed: version %d, was %d", after.Version.Index, before.Version.Index)
	}
}

func hasAll(labels, want map[string]string) bool {
	for k, v := range want {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// swarmObjects is ownedObjects plus the services with instance's label.
func swarmObjects(t *testing.T, ctx context.Context, cli *client.Client, instance string) []string {
	t.Helper()
	out := ownedObjects(t, ctx, cli, instance)
	svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", docker.LabelInstance+"="+instance))})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		out = append(out, "service "+s.Spec.Name)
	}
	return out
}

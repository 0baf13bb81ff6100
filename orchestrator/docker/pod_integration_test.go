package docker_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/images/imagestest"
	"github.com/flotilla/flotilla/orchestrator/replica"
)

func podSpec(image, group string, index int) replica.Spec {
	s := shopSpec(image, group, index)
	s.Isolation = docker.IsolationPod
	return s
}

// TestIntegrationPodLifecycle runs one pod replica through the driver and
// looks behind its back: three members sharing namespaces, each under the
// container policy, one replica in List, whole-pod kill, pause and remove.
func TestIntegrationPodLifecycle(t *testing.T) {
	refs := imagestest.Images(t)
	d := dockertest.New(t)
	cli := rawClient(t)
	ctx := ctxFor(t, 3*time.Minute)

	r := startReplica(t, ctx, d, podSpec(refs["shop"], "web", 1))
	if r.Name != "web-1" || r.Group != "web" || r.Index != 1 || r.TemplateHash != "t1" || !strings.HasSuffix(r.NetworkAddress, ":8080") {
		t.Errorf("listed pod replica = %+v", r)
	}
	rs, err := d.List(ctx)
	if err != nil || len(rs) != 1 {
		t.Fatalf("List = %+v, %v; want one replica for the pod", rs, err)
	}

	f := filters.NewArgs(filters.Arg("label", docker.LabelInstance+"="+d.Instance()))
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	members := map[string]string{} // member -> container ID
	for _, c := range cs {
		members[c.Labels[docker.LabelMember]] = c.ID
	}
	if len(cs) != 3 || members[docker.MemberInfra] != r.ID || members[docker.MemberService] == "" || members[docker.MemberAgent] == "" {
		t.Fatalf("pod containers %v, want infra (the replica's ID %s), service and agent", members, r.ID)
	}
	var memSum int64
	for m, id := range members {
		c, err := cli.ContainerInspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		l, h := c.Config.Labels, c.HostConfig
		if l[docker.LabelManaged] != "true" || l[docker.LabelGroup] != "web" || l[docker.LabelReplica] != "1" || l[docker.LabelMember] != m {
			t.Errorf("%s labels %v", m, l)
		}
		if m != docker.MemberInfra && l[docker.LabelPod] != r.ID {
			t.Errorf("%s label %s = %q, want the infra ID", m, docker.LabelPod, l[docker.LabelPod])
		}
		if c.Config.User != "65534:65534" || !h.ReadonlyRootfs || h.Privileged || len(h.CapDrop) != 1 || h.CapDrop[0] != "ALL" ||
			len(h.SecurityOpt) != 1 || h.SecurityOpt[0] != "no-new-privileges:true" || len(h.Mounts) != 0 || len(h.Binds) != 0 ||
			h.Memory <= 0 || h.NanoCPUs <= 0 || h.PidsLimit == nil || *h.PidsLimit <= 0 {
			t.Errorf("%s breaks the container policy: user %q, host config %+v", m, c.Config.User, h)
		}
		memSum += h.Memory
		if c.Config.Hostname != "web-1" {
			t.Errorf("%s hostname %q, want the pod's web-1", m, c.Config.Hostname)
		}
		switch m {
		case docker.MemberInfra:
			if len(h.PortBindings) != 1 || h.IpcMode != "shareable" {
				t.Errorf("infra: ports %v, ipc %q; want the one published port and a shareable IPC", h.PortBindings, h.IpcMode)
			}
			for _, b := range h.PortBindings["8080/tcp"] {
				if b.HostIP != "127.0.0.1" {
					t.Errorf("infra publishes on %q, want 127.0.0.1 only", b.HostIP)
				}
			}
		default:
			join := "container:" + r.ID
			if string(h.NetworkMode) != join || string(h.PidMode) != join || string(h.IpcMode) != join || len(h.PortBindings) != 0 {
				t.Errorf("%s: network %q, pid %q, ipc %q, ports %v; want all in %s and no port", m, h.NetworkMode, h.PidMode, h.IpcMode, h.PortBindings, join)
			}
		}
		if m == docker.MemberInfra && (h.Init == nil || !*h.Init) {
			t.Errorf("the pod runs without an init")
		}
	}
	if err := d.AuditPolicy(ctx, r.ID); err != nil {
		t.Errorf("AuditPolicy of the pod: %v", err)
	}
	if memSum != 64<<20 {
		t.Errorf("members' memory sums to %d, want the replica's %d", memSum, 64<<20)
	}

	// The shop answers through the infra container's published port.
	httpc := &http.Client{Timeout: 2 * time.Second}
	dockertest.Poll(t, 20*time.Second, "GET /readyz through the pod", func() error {
		resp, err := httpc.Get("http://" + r.Address + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})

	// One PID namespace: the agent sees every member's processes, and
	// reaches the service on its localhost.
	seen := regexp.MustCompile(`healthz=200 ms=[0-9.]+ processes=(\d+)`)
	dockertest.Poll(t, 20*time.Second, "agent sees the service and the pod's processes", func() error {
		logs, err := cli.ContainerLogs(ctx, members[docker.MemberAgent], container.LogsOptions{ShowStdout: true})
		if err != nil {
			return err
		}
		defer logs.Close()
		var out bytes.Buffer
		if _, err := stdcopy.StdCopy(&out, io.Discard, logs); err != nil {
			return err
		}
		m := seen.FindAllStringSubmatch(out.String(), -1)
		if len(m) == 0 {
			return fmt.Errorf("agent printed %q", out.String())
		}
		// docker-init, pause, the shop and the agent; alone in its
		// namespace the agent would see itself only.
		if n, _ := strconv.Atoi(m[len(m)-1][1]); n < 4 {
			return fmt.Errorf("agent sees %d processes, want at least 4: %q", n, out.String())
		}
		return nil
	})
	// The engine's process list of the infra container: the pod's init
	// and the pause process under it.
	top, err := cli.ContainerTop(ctx, members[docker.MemberInfra], nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Processes) != 2 || !strings.Contains(strings.Join(top.Processes[0], " "), "docker-init") {
		t.Errorf("infra member runs %v, want docker-init and the pause process", top.Processes)
	}

	// Stats cover the whole pod.
	u, err := d.Stats(ctx, r.ID)
	if err != nil || u.MemLimit < 60<<20 || u.MemBytes == 0 {
		t.Errorf("pod stats %+v, %v; want the members' sum", u, err)
	}

	// Pause and unpause act on every member.
	if err := d.Pause(ctx, r.ID); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if rs, _ := d.List(ctx); len(rs) != 1 || rs[0].State != replica.StatePaused {
		t.Errorf("after Pause, List = %+v, want one paused replica", rs)
	}
	if err := d.Unpause(ctx, r.ID); err != nil {
		t.Fatalf("Unpause: %v", err)
	}

	// Killing the replica kills the service; the pod is then exited as a
	// whole, with the service's code, and every event names the replica.
	events := d.Events(ctx)
	if err := d.Kill(ctx, r.ID, ""); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	dockertest.Poll(t, 20*time.Second, "pod exited after its service was killed", func() error {
		rs, err := d.List(ctx)
		if err != nil {
			return err
		}
		if len(rs) != 1 || rs[0].ID != r.ID || rs[0].State != replica.StateExited || rs[0].Address != "" {
			return fmt.Errorf("List = %+v", rs)
		}
		return nil
	})
	info, err := d.Inspect(ctx, r.ID)
	if err != nil || info.State != replica.StateExited || info.ExitCode != 137 && info.ExitCode != 143 {
		t.Errorf("Inspect = %+v, %v; want exited with the kill's code", info, err)
	}
	deadline := time.After(20 * time.Second)
	for died := false; !died; {
		select {
		case ev := <-events:
			if ev.Action == replica.ActionDie {
				if ev.ID != r.ID || ev.Group != "web" || ev.Index != 1 {
					t.Fatalf("die event %+v, want it to name the replica %s", ev, r.ID)
				}
				died = true
			}
		case <-deadline:
			t.Fatal("no die event after the kill")
		}
	}

	// Remove takes every member; the replica is then gone.
	if err := d.Remove(ctx, r.ID); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if left := ownedObjects(t, ctx, cli, d.Instance()); len(left) != 1 || !strings.HasPrefix(left[0], "network ") {
		t.Errorf("after Remove, owned objects %v, want only the network", left)
	}
	if err := d.Remove(ctx, r.ID); !errors.Is(err, replica.ErrNotFound) {
		t.Errorf("Remove again = %v, want ErrNotFound", err)
	}
}

// TestIntegrationPodCreateLeavesNoHalf: a pod whose member cannot be made
// leaves nothing behind.
func TestIntegrationPodCreateLeavesNoHalf(t *testing.T) {
	refs := imagestest.Images(t)
	d := dockertest.New(t)
	cli := rawClient(t)
	ctx := ctxFor(t, time.Minute)
	s := podSpec(refs["shop"], "web", 1)
	if err := d.EnsureNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	// An owned plain container already holds the agent's name.
	clash := shopSpec(refs["shop"], "web", 1)
	if _, err := d.Create(ctx, clash); err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerRename(ctx, d.ContainerName("web", 1), d.ContainerName("web", 1)+"."+docker.MemberAgent); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Create(ctx, s); !errors.Is(err, replica.ErrConflict) {
		t.Fatalf("Create with the agent's name taken = %v, want ErrConflict", err)
	}
	left := ownedObjects(t, ctx, cli, d.Instance())
	if len(left) != 2 {
		t.Errorf("after a failed pod create, owned objects %v, want only the clash and the network", left)
	}
}

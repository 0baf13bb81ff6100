package docker_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/images/vmboot"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// isoWay is one way of running a kind's replica: Flotilla's, or its floor.
type isoWay struct {
	name string
	// up starts the replica and returns where it will answer; the clock
	// runs from before up until that address first answers 200.
	up func(ctx context.Context) (*isoReplica, error)
}

// isoReplica is one running replica under measurement.
type isoReplica struct {
	addr string // where start to 200 and req/s are measured
	// ready, if set, is called once addr answered: it fills what is only
	// known then (direct, sample, policy).
	ready  func(ctx context.Context) error
	direct string // the replica's own address, if addr is a balancer
	sample func(ctx context.Context) (isoUsage, error)
	// policy, if set, describes each container the replica is made of.
	policy func(ctx context.Context) (map[string]string, error)
	down   func(ctx context.Context) error
}

// isoUsage is one resource sample.
type isoUsage struct {
	at        time.Time
	cpuNanos  uint64
	mem       uint64
	engineMem uint64 // the engine's figure where mem is a process's RSS
}

// isoResult is what one trial measured.
type isoResult struct {
	start      time.Duration
	mem        uint64
	engineMem  uint64
	idleCPU    float64 // percent of one core
	loadCPU    float64 // cores used under the load through addr
	rps        float64 // through addr
	rpsDirect  float64 // direct to the replica (rps for a floor)
	ok, failed int64
	errors     map[string]int64 // failed GETs by kind
	policy     map[string]string
}

// isoTrial runs one replica from start to removal, measuring it on the way.
func isoTrial(ctx context.Context, w isoWay) (res isoResult, err error) {
	start := time.Now()
	r, err := w.up(ctx)
	if r != nil && r.down != nil {
		defer func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			if derr := r.down(ctx); derr != nil && err == nil {
				err = fmt.Errorf("remove: %w", derr)
			}
		}()
	}
	if err != nil {
		return res, err
	}
	// A guest's boot under TCG takes up to ten seconds on a busy machine.
	answered, err := first200(ctx, r.addr, "/catalog", 3*time.Minute)
	if err != nil {
		return res, err
	}
	res.start = answered.Sub(start)
	if r.ready != nil {
		if err := r.ready(ctx); err != nil {
			return res, err
		}
	}
	time.Sleep(isoSettle)
	u0, err := r.sample(ctx)
	if err != nil {
		return res, err
	}
	time.Sleep(isoIdle)
	u1, err := r.sample(ctx)
	if err != nil {
		return res, err
	}
	res.mem, res.engineMem = u1.mem, u1.engineMem
	res.idleCPU = 100 * cpuShare(u0, u1)
	load, err := closedLoop(ctx, r.addr, isoConns, isoLoad)
	if err != nil {
		return res, err
	}
	u2, err := r.sample(ctx)
	if err != nil {
		return res, err
	}
	res.loadCPU = cpuShare(u1, u2)
	res.rps, res.ok, res.failed, res.errors = load.rps, load.ok, load.failed, load.errors
	res.rpsDirect = res.rps
	if r.direct != "" && r.direct != r.addr {
		direct, err := closedLoop(ctx, r.direct, isoConns, isoLoad)
		if err != nil {
			return res, err
		}
		res.rpsDirect = direct.rps
		res.ok, res.failed = res.ok+direct.ok, res.failed+direct.failed
		for k, n := range direct.errors {
			res.errors[k] += n
		}
	}
	if r.policy != nil {
		if res.policy, err = r.policy(ctx); err != nil {
			return res, err
		}
	}
	return res, nil
}

// cpuShare is the cores a replica used between two samples.
func cpuShare(a, b isoUsage) float64 {
	wall := b.at.Sub(a.at)
	if wall <= 0 || b.cpuNanos < a.cpuNanos {
		return 0
	}
	return float64(b.cpuNanos-a.cpuNanos) / float64(wall)
}

// isoEvery calls cond every period until it returns nil, for at most timeout.
func isoEvery(ctx context.Context, period, timeout time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still failing after %s: %w", timeout, err)
		case <-time.After(period):
		}
	}
}

// first200 sends GET path to addr every 10 ms until one answers 200,
// and returns when that answer arrived. Attempts overlap: a forwarding
// port (docker-proxy's, QEMU's) accepts before the replica listens and may
// hold an attempt until its timeout, which must not delay the next one.
// Each attempt has the readiness probe's default timeout, so a floor is
// polled no more patiently than Flotilla probes its replica.
func first200(ctx context.Context, addr, path string, timeout time.Duration) (time.Time, error) {
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		return time.Time{}, fmt.Errorf("%s is not on 127.0.0.1", addr)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	// A fresh connection each time: a kept one may be to a listener that
	// was not yet the replica.
	c := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	var (
		won     = make(chan time.Time, 1)
		slots   = make(chan struct{}, 64) // more than a timeout's worth of ticks
		mu      sync.Mutex
		lastErr error = errors.New("no answer yet")
	)
	attempt := func() {
		defer wg.Done()
		defer func() { <-slots }()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		resp, err := c.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("GET %s: %s", path, resp.Status)
			}
		}
		if err == nil {
			select {
			case won <- time.Now():
			default:
			}
			return
		}
		mu.Lock()
		lastErr = err
		mu.Unlock()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case at := <-won:
			return at, nil
		case <-ctx.Done():
			mu.Lock()
			defer mu.Unlock()
			return time.Time{}, fmt.Errorf("GET %s%s: no 200 within %s: %w", addr, path, timeout, lastErr)
		case <-tick.C:
			select {
			case slots <- struct{}{}:
				wg.Add(1)
				go attempt()
			default:
			}
		}
	}
}

type loadResult struct {
	ok, failed int64
	rps        float64
	errors     map[string]int64 // failed GETs by status or error
}

// closedLoop sends GET /catalog from conns keep-alive connections to addr,
// each its next request as soon as the last answered, for d (and at most a
// million requests), and returns the successful requests per second.
func closedLoop(ctx context.Context, addr string, conns int, d time.Duration) (loadResult, error) {
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		return loadResult{}, fmt.Errorf("%s is not on 127.0.0.1", addr)
	}
	const maxRequests = 1_000_000
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var ok, failed, sent atomic.Int64
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   = map[string]int64{}
		record = func(kind string) {
			failed.Add(1)
			mu.Lock()
			errs[kind]++
			mu.Unlock()
		}
	)
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && sent.Add(1) <= maxRequests {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/catalog", nil)
				resp, err := c.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						record(errorKind(err))
					}
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case ctx.Err() != nil && err != nil:
					// cut by the end of the run: neither
				case err != nil:
					record(errorKind(err))
				case resp.StatusCode == http.StatusOK:
					ok.Add(1)
				default:
					record(resp.Status)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := loadResult{ok: ok.Load(), failed: failed.Load(), rps: float64(ok.Load()) / elapsed.Seconds(), errors: errs}
	if res.ok == 0 {
		return res, fmt.Errorf("no GET /catalog to %s succeeded in %s (%d failed)", addr, d, res.failed)
	}
	return res, nil
}

// errorKind shortens a transport error to what went wrong.
func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed early"
	}
	return err.Error()
}

// engineUsage is the engine's sample of an owned replica (a pod's is the
// sum of its members').
func engineUsage(ctx context.Context, d *docker.Driver, id string) (isoUsage, error) {
	u, err := d.Stats(ctx, id)
	if err != nil {
		return isoUsage{}, err
	}
	at := u.Time
	if at.IsZero() {
		at = time.Now()
	}
	return isoUsage{at: at, cpuNanos: u.CPUNanos, mem: u.MemBytes}, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times on Linux.
const clockTicks = 100

// procUsage samples a process from /proc: its RSS and its CPU time, every
// thread's, user and system. It checks the process's name starts with
// comm, so a reused PID is not measured.
func procUsage(pid int, comm string) (isoUsage, error) {
	at := time.Now()
	name, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return isoUsage{}, err
	}
	if !strings.HasPrefix(string(name), comm) {
		return isoUsage{}, fmt.Errorf("process %d is %q, not %s", pid, strings.TrimSpace(string(name)), comm)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return isoUsage{}, err
	}
	// Fields after the name, which is in parentheses and may hold spaces:
	// state is field 3 of stat(5), so utime (14) and stime (15) are the
	// 12th and 13th here.
	i := bytes.LastIndexByte(stat, ')')
	fields := strings.Fields(string(stat[i+1:]))
	if i < 0 || len(fields) < 13 {
		return isoUsage{}, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, stat)
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return isoUsage{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return isoUsage{}, err
	}
	var rssKiB uint64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKiB, err = strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return isoUsage{}, fmt.Errorf("/proc/%d/status VmRSS: %w", pid, err)
			}
		}
	}
	if rssKiB == 0 {
		return isoUsage{}, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
	}
	return isoUsage{at: at, cpuNanos: (utime + stime) * (1e9 / clockTicks), mem: rssKiB << 10}, nil
}

// isoPolicies describes every container of d's instance by its pod member
// ("" for a plain container): what it runs and under which policy and
// limits, with the names of things that differ by instance left out.
func isoPolicies(ctx context.Context, cli *client.Client, d *docker.Driver) (map[string]string, error) {
	f := filters.NewArgs(filters.Arg("label", docker.LabelInstance+"="+d.Instance()))
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, c := range cs {
		in, err := cli.ContainerInspect(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		h, cfg := in.HostConfig, in.Config
		env := slices.Clone(cfg.Env)
		slices.Sort(env)
		mode := func(m string) string {
			if strings.HasPrefix(m, "container:") {
				return "the pod's"
			}
			if m == d.Project() {
				return "project"
			}
			return m
		}
		pids := int64(0)
		if h.PidsLimit != nil {
			pids = *h.PidsLimit
		}
		out[c.Labels[docker.LabelMember]] = fmt.Sprintf("image=%s user=%s hostname=%s env=%v ro=%v capdrop=%v secopt=%v tmpfs=%v init=%v restart=%s mem=%d swap=%d nano=%d pids=%d net=%s pid=%s ipc=%s ports=%v",
			cfg.Image, cfg.User, cfg.Hostname, env, h.ReadonlyRootfs, h.CapDrop, h.SecurityOpt, h.Tmpfs, h.Init != nil && *h.Init,
			h.RestartPolicy.Name, h.Memory, h.MemorySwap, h.NanoCPUs, pids,
			mode(string(h.NetworkMode)), mode(string(h.PidMode)), mode(string(h.IpcMode)), len(h.PortBindings))
	}
	return out, nil
}

// isoPort is the shop's port in every replica (spec's monolith).
const isoPort = 8080

// floorConfig is what `docker run` of the shop takes to match a Flotilla
// replica: the same image, user, read-only root, dropped capabilities,
// private /tmp, limits, environment and labels Flotilla's cleanup finds.
func floorConfig(owner *docker.Driver, image, group, role string, env []string, res container.Resources) (*container.Config, *container.HostConfig) {
	pids := *res.PidsLimit
	res.PidsLimit = &pids
	return &container.Config{
			Image: image, User: "65534:65534",
			Env:    append([]string{"FLOTILLA_ROLE=" + role}, env...),
			Labels: map[string]string{docker.LabelManaged: "true", docker.LabelInstance: owner.Instance()},
		}, &container.HostConfig{
			RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyDisabled},
			CapDrop:        []string{"ALL"},
			SecurityOpt:    []string{"no-new-privileges:true"},
			ReadonlyRootfs: true,
			Tmpfs:          map[string]string{"/tmp": "rw,noexec,nosuid,size=16m"},
			Resources:      res,
		}
}

// publish gives a floor's container the project network, a hostname, and
// its port on 127.0.0.1, as Flotilla gives a replica.
func publish(owner *docker.Driver, cfg *container.Config, host *container.HostConfig, group string) *network.NetworkingConfig {
	port := nat.Port(strconv.Itoa(isoPort) + "/tcp")
	cfg.Hostname = replicaName(group)
	cfg.ExposedPorts = nat.PortSet{port: {}}
	host.NetworkMode = container.NetworkMode(owner.Project())
	host.PortBindings = nat.PortMap{port: {{HostIP: "127.0.0.1"}}}
	return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		owner.Project(): {Aliases: []string{group, replicaName(group)}},
	}}
}

func replicaName(group string) string { return group + "-1" }

// serviceEnv is the environment Flotilla gives a monolith replica, its
// role aside.
func serviceEnv(group string) []string {
	return []string{"FLOTILLA_GROUP=" + group, "ADMIN_PORT=" + strconv.Itoa(spec.AdminPort),
		"FLOTILLA_REPLICA=" + replicaName(group), "PORT=" + strconv.Itoa(isoPort)}
}

// groupResources are a default group's limits.
func groupResources() container.Resources {
	r := spec.DefaultResources
	pids := r.Pids
	return container.Resources{Memory: r.MemoryMiB << 20, MemorySwap: r.MemoryMiB << 20, NanoCPUs: r.MilliCPU * 1e6, PidsLimit: &pids}
}

// containerFloor is `docker run` of a container replica: create and start.
func containerFloor(ctx context.Context, cli *client.Client, owner *docker.Driver, image, group string) (*isoReplica, error) {
	cfg, host := floorConfig(owner, image, group, "monolith", serviceEnv(group), groupResources())
	netCfg := publish(owner, cfg, host, group)
	resp, err := cli.ContainerCreate(ctx, cfg, host, netCfg, nil, owner.ContainerName(group, 1))
	if err != nil {
		return nil, err
	}
	r := floorReplica(cli, owner, resp.ID)
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return r, err
	}
	r.addr, err = publishedAddr(ctx, cli, resp.ID)
	return r, err
}

// podFloor is the pod's three containers made and joined by hand, as
// `docker run --network container:… --pid container:… --ipc container:…`
// would: the infra container (the shop's pause role, with the pod's init,
// network and published port), then the service, then the agent sidecar.
// The limits are split as the driver splits them (an eighth of the memory
// and pids and a tenth of the CPU to each helper); the benchmark checks
// the floor's policies against Flotilla's pod.
func podFloor(ctx context.Context, cli *client.Client, owner *docker.Driver, image, group string) (*isoReplica, error) {
	all := groupResources()
	helperMem := max(all.Memory/8, 8<<20)
	helperPids := max(*all.PidsLimit/8, 8)
	helperNano := max(all.NanoCPUs/10, 10_000_000)
	helper := container.Resources{Memory: helperMem, MemorySwap: helperMem, NanoCPUs: helperNano, PidsLimit: &helperPids}
	svcPids := *all.PidsLimit - 2*helperPids
	service := container.Resources{Memory: all.Memory - 2*helperMem, MemorySwap: all.Memory - 2*helperMem,
		NanoCPUs: max(all.NanoCPUs-2*helperNano, 10_000_000), PidsLimit: &svcPids}
	helperEnv := []string{"FLOTILLA_REPLICA=" + replicaName(group), "PORT=" + strconv.Itoa(isoPort), "GOMAXPROCS=1"}

	yes := true
	cfg, host := floorConfig(owner, image, group, "pause", helperEnv, helper)
	cfg.Labels[docker.LabelMember] = docker.MemberInfra
	host.IpcMode = "shareable"
	host.Init = &yes
	netCfg := publish(owner, cfg, host, group)
	name := owner.ContainerName(group, 1)
	resp, err := cli.ContainerCreate(ctx, cfg, host, netCfg, nil, name)
	if err != nil {
		return nil, err
	}
	infra := resp.ID
	r := floorReplica(cli, owner, infra)
	ids := []string{infra}
	for _, m := range []struct {
		member, role string
		env          []string
		res          container.Resources
	}{
		{docker.MemberService, "monolith", serviceEnv(group), service},
		{docker.MemberAgent, "agent", helperEnv, helper},
	} {
		cfg, host := floorConfig(owner, image, group, m.role, m.env, m.res)
		cfg.Labels[docker.LabelMember] = m.member
		cfg.Labels[docker.LabelPod] = infra
		join := "container:" + infra
		host.NetworkMode, host.PidMode, host.IpcMode = container.NetworkMode(join), container.PidMode(join), container.IpcMode(join)
		resp, err := cli.ContainerCreate(ctx, cfg, host, nil, nil, name+"."+m.member)
		if err != nil {
			return r, err
		}
		ids = append(ids, resp.ID)
	}
	for _, id := range ids {
		if err := cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
			return r, err
		}
	}
	r.addr, err = publishedAddr(ctx, cli, infra)
	return r, err
}

// floorReplica measures a floor made of owner's containers, id the
// (infra) container, and removes every one of them afterwards.
func floorReplica(cli *client.Client, owner *docker.Driver, id string) *isoReplica {
	return &isoReplica{
		sample: func(ctx context.Context) (isoUsage, error) { return engineUsage(ctx, owner, id) },
		policy: func(ctx context.Context) (map[string]string, error) { return isoPolicies(ctx, cli, owner) },
		down:   func(ctx context.Context) error { return removeAll(ctx, owner) },
	}
}

func publishedAddr(ctx context.Context, cli *client.Client, id string) (string, error) {
	info, err := cli.ContainerInspect(ctx, id)
	if err != nil {
		return "", err
	}
	for _, b := range info.NetworkSettings.Ports[nat.Port(strconv.Itoa(isoPort)+"/tcp")] {
		if b.HostIP == "127.0.0.1" {
			return "127.0.0.1:" + b.HostPort, nil
		}
	}
	return "", fmt.Errorf("container %s has no port published on 127.0.0.1", id)
}

// bareVM boots the VM replica's guest with the host's QEMU, outside any
// container: the floor of a VM replica.
type bareVM struct {
	tb      testing.TB
	machine vmboot.Machine
}

// newBareVM copies the kernel, the initramfs and the firmware out of the
// VM image, so the bare QEMU boots exactly what the replica boots.
func newBareVM(tb testing.TB, ctx context.Context, cli *client.Client, owner *docker.Driver, image, qemu string) *bareVM {
	tb.Helper()
	dir := tb.TempDir()
	resp, err := cli.ContainerCreate(ctx, &container.Config{
		Image:  image,
		Labels: map[string]string{docker.LabelManaged: "true", docker.LabelInstance: owner.Instance()},
	}, &container.HostConfig{NetworkMode: "none"}, nil, nil, owner.ContainerName("vm-files", 1))
	if err != nil {
		tb.Fatal(err)
	}
	defer cli.ContainerRemove(context.WithoutCancel(ctx), resp.ID, container.RemoveOptions{Force: true})
	for _, p := range []string{vmboot.InImage.Kernel, vmboot.InImage.Initrd, vmboot.InImage.Firmware} {
		if err := copyOut(ctx, cli, resp.ID, p, dir); err != nil {
			tb.Fatalf("copy %s out of the VM image: %v", p, err)
		}
	}
	return &bareVM{tb: tb, machine: vmboot.Machine{
		QEMU:   qemu,
		Kernel: filepath.Join(dir, filepath.Base(vmboot.InImage.Kernel)),
		Initrd: filepath.Join(dir, filepath.Base(vmboot.InImage.Initrd)),
		// The folder's own name, as the image's tar of it is rooted there.
		Firmware:  filepath.Join(dir, filepath.Base(vmboot.InImage.Firmware)),
		NoForward: true,
	}}
}

// copyOut writes the regular files and folders of the container's path
// into dir, as `docker cp` does.
func copyOut(ctx context.Context, cli *client.Client, id, path, dir string) error {
	rc, _, err := cli.CopyFromContainer(ctx, id, path)
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}

// up boots a bare QEMU with the machine arguments QEMUArgs gives a replica
// whose container has environment env, its ports forwarded from free ones
// on 127.0.0.1 instead of the container's own.
func (v *bareVM) up(ctx context.Context, env []string) (*isoReplica, error) {
	if env == nil {
		return nil, errors.New("no environment of Flotilla's VM replica to boot the bare QEMU with")
	}
	args, err := vmboot.QEMUArgs(v.machine, env)
	if err != nil {
		return nil, err
	}
	guest := vmboot.Default.Addr.Addr().String()
	fwd, addr := "", ""
	for _, key := range []string{"PORT", "ADMIN_PORT"} {
		port := envValue(env, key)
		if port == "" {
			return nil, fmt.Errorf("the replica's environment has no %s", key)
		}
		free, err := freePort()
		if err != nil {
			return nil, err
		}
		fwd += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-%s:%s", free, guest, port)
		if key == "PORT" {
			addr = "127.0.0.1:" + strconv.Itoa(free)
		}
	}
	i := slices.Index(args, "-netdev")
	if i < 0 || i+1 >= len(args) {
		return nil, fmt.Errorf("no -netdev in QEMU's arguments %q", args)
	}
	args[i+1] += fwd

	cmd := exec.Command(args[0], args[1:]...)
	out := &tailBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	// QEMU dies with the benchmark, even if the benchmark is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	v.tb.Cleanup(stop)
	pid := cmd.Process.Pid
	return &isoReplica{
		addr: addr,
		sample: func(context.Context) (isoUsage, error) {
			select {
			case <-exited:
				return isoUsage{}, fmt.Errorf("bare QEMU exited: %s", out.String())
			default:
			}
			return procUsage(pid, "qemu-system")
		},
		down: func(context.Context) error { stop(); return nil },
	}, nil
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// freePort is a port on 127.0.0.1 nothing listened on a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

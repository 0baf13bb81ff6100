package docker

import (
	"context"
	"errors"
	"fmt"
	cerrdefs "github.com/containerd/errdefs"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// Container policy. Every replica runs unprivileged, as nobody, with no
// capabilities, a read-only root and a small private /tmp; it cannot restart
// itself, because restarting is the reconciler's job and must be visible.
const (
	replicaUser  = "65534:65534"
	tmpfsOptions = "rw,noexec,nosuid,size=16m"
	// publishIP is the only host address a replica's port is published on.
	publishIP = "127.0.0.1"
)

// containerConfig turns a spec into the engine's three create arguments. It
// is pure so the policy can be tested without an engine.
func (d *Driver) containerConfig(s replica.Spec) (*container.Config, *container.HostConfig, *network.NetworkingConfig) {
	port := nat.Port(strconv.Itoa(s.Port) + "/tcp")
	env := append(append([]string(nil), s.Env...),
		"FLOTILLA_REPLICA="+s.Name(),
		"PORT="+strconv.Itoa(s.Port),
	)
	cfg := &container.Config{
		Hostname:     s.Name(),
		User:         replicaUser,
		Env:          env,
		Image:        s.Image,
		Labels:       replicaLabels(d.instance, s),
		ExposedPorts: nat.PortSet{port: struct{}{}},
	}
	pids := s.PidsLimit
	host := &container.HostConfig{
		NetworkMode: container.NetworkMode(d.project),
		PortBindings: nat.PortMap{
			port: []nat.PortBinding{{HostIP: publishIP, HostPort: ""}},
		},
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyDisabled},
		Privileged:     false,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges:true"},
		ReadonlyRootfs: true,
		Tmpfs:          map[string]string{"/tmp": tmpfsOptions},
		Mounts:         d.storeMounts(s),
		Resources: container.Resources{
			Memory:     s.MemoryBytes,
			MemorySwap: s.MemoryBytes,
			NanoCPUs:   s.NanoCPUs,
			PidsLimit:  &pids,
		},
	}
	aliases := append(append([]string(nil), s.Aliases...), s.Name())
	netCfg := &network.NetworkingConfig{
		EndpointsConfig: map[string]*network.EndpointSettings{
			d.project: {Aliases: aliases},
		},
	}
	return cfg, host, netCfg
}

// validateSpec rejects specs that would create a container outside the
// policy (an unlimited replica is a policy violation, not a default).
func validateSpec(s replica.Spec) error {
	var problems []string
	if s.Group == "" {
		problems = append(problems, "group is empty")
	}
	if s.Index < 1 {
		problems = append(problems, fmt.Sprintf("index %d is not positive", s.Index))
	}
	if s.Image == "" {
		problems = append(problems, "image is empty")
	}
	if s.Port < 1 || s.Port > 65535 {
		problems = append(problems, fmt.Sprintf("port %d is out of range", s.Port))
	}
	if s.MemoryBytes <= 0 {
		problems = append(problems, "memory limit is not set")
	}
	if s.NanoCPUs <= 0 {
		problems = append(problems, "CPU limit is not set")
	}
	if s.PidsLimit <= 0 {
		problems = append(problems, "pids limit is not set")
	}
	if s.Store != "" {
		if why := validStore(s.Store); why != "" {
			problems = append(problems, why)
		}
		if s.Isolation != "" && s.Isolation != "container" {
			problems = append(problems, fmt.Sprintf("a store needs a container replica, not %s", s.Isolation))
		}
	}
	switch s.Isolation {
	case "", "container":
	case IsolationPod:
		if err := validatePod(s); err != nil {
			problems = append(problems, err.Error())
		}
	case IsolationVM:
		// One container whose image is QEMU: the same policy as any.
	default:
		problems = append(problems, fmt.Sprintf("isolation %q is not one this driver runs (container, pod or vm)", s.Isolation))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// Create creates (but does not start) the container of one replica, named
// <project>-<group>-<index>, on the project network, with its port published
// on 127.0.0.1. It creates the project network if needed. A taken name is
// replica.ErrConflict.
func (d *Driver) Create(ctx context.Context, s replica.Spec) (replica.Replica, error) {
	name := d.ContainerName(s.Group, s.Index)
	if err := validateSpec(s); err != nil {
		return replica.Replica{}, fmt.Errorf("create %s: invalid replica spec: %w", name, err)
	}
	if err := d.EnsureNetwork(ctx); err != nil {
		return replica.Replica{}, fmt.Errorf("create %s: %w", name, err)
	}
	if s.Isolation == IsolationPod {
		return d.createPod(ctx, s)
	}
	if s.Store != "" {
		if err := d.ensureVolume(ctx, s); err != nil {
			return replica.Replica{}, fmt.Errorf("create %s: %w", name, err)
		}
	}
	cfg, host, netCfg := d.containerConfig(s)
	if s.Isolation == IsolationVM && slices.Contains(s.Env, "FLOTILLA_VM_ACCEL=kvm") {
		if err := passKVM(host); err != nil {
			return replica.Replica{}, fmt.Errorf("create %s: %w", name, err)
		}
	}
	mctx, cancel := making(ctx)
	defer cancel()
	resp, err := d.cli.ContainerCreate(mctx, cfg, host, netCfg, nil, name)
	if err != nil {
		return replica.Replica{}, translate("create "+name, err)
	}
	return replica.Replica{
		ID:           resp.ID,
		Name:         s.Name(),
		Group:        s.Group,
		Index:        s.Index,
		Service:      s.Service,
		TemplateHash: s.TemplateHash,
		State:        replica.StateCreated,
		Created:      time.Now(),
	}, nil
}

// IsolationVM is replica.Spec.Isolation for a virtual machine: one
// container whose image runs QEMU and the guest.
const IsolationVM = "vm"

// passKVM lets a VM replica open /dev/kvm: the device, and the device's
// group, since the replica runs as nobody with no capabilities.
func passKVM(host *container.HostConfig) error {
	fi, err := os.Stat("/dev/kvm")
	if err != nil {
		return fmt.Errorf("pass /dev/kvm: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return errors.New("pass /dev/kvm: no owner group on this system")
	}
	host.Devices = append(host.Devices, container.DeviceMapping{PathOnHost: "/dev/kvm", PathInContainer: "/dev/kvm", CgroupPermissions: "rw"})
	host.GroupAdd = append(host.GroupAdd, strconv.FormatUint(uint64(st.Gid), 10))
	return nil
}

// owned resolves id (an ID, a prefix of one, or a name) to an owned
// container's inspect data. A container without our labels is replica.ErrNotFound:
// to this driver, other people's containers do not exist.
func (d *Driver) owned(ctx context.Context, op, id string) (container.InspectResponse, error) {
	c, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		return c, translate(op+" "+id, err)
	}
	if c.Config == nil || !ownedBy(c.Config.Labels, d.instance) {
		return c, fmt.Errorf("%s %s: %w: not a container of this Flotilla instance", op, id, replica.ErrNotFound)
	}
	return c, nil
}

// Start starts an owned container, or every member of a pod in order.
// Starting a running container is not an error.
func (d *Driver) Start(ctx context.Context, id string) error {
	c, podID, pod, err := d.resolve(ctx, "start", id)
	if err != nil {
		return err
	}
	if pod {
		// A member that fails to start stops the rest: a half-started pod
		// would look running to nobody and hold its name.
		return d.eachMember(ctx, "start", podID, false, func(m container.Summary) error {
			if err != nil {
				return nil
			}
			err = translate("start "+podID, d.cli.ContainerStart(ctx, m.ID, container.StartOptions{}))
			return err
		})
	}
	return translate("start "+id, d.cli.ContainerStart(ctx, c.ID, container.StartOptions{}))
}

// Stop sends the container its stop signal (SIGTERM) and kills it if it has
// not exited after timeout. Stopping a stopped container is not an error.
func (d *Driver) Stop(ctx context.Context, id string, timeout time.Duration) error {
	c, podID, pod, err := d.resolve(ctx, "stop", id)
	if err != nil {
		return err
	}
	// The engine counts in whole seconds; round up so a short timeout is not zero.
	secs := int(math.Ceil(timeout.Seconds()))
	if secs < 0 {
		secs = 0
	}
	if pod {
		// The infra container last: the others live in its namespaces.
		return d.eachMember(ctx, "stop", podID, true, func(m container.Summary) error {
			return translate("stop "+podID, d.cli.ContainerStop(ctx, m.ID, container.StopOptions{Timeout: &secs}))
		})
	}
	return translate("stop "+id, d.cli.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &secs}))
}

// Remove force-removes an owned container, running or not, with its
// anonymous volumes; for a pod, every member, the infra container last. A
// container that is gone (or not ours) is replica.ErrNotFound.
func (d *Driver) Remove(ctx context.Context, id string) error {
	c, podID, pod, err := d.resolve(ctx, "remove", id)
	if err != nil {
		return err
	}
	if pod {
		return d.eachMember(ctx, "remove", podID, true, func(m container.Summary) error {
			if err := d.remove(ctx, m.ID); err != nil && !isNotFound(err) {
				return err
			}
			return nil
		})
	}
	return d.remove(ctx, c.ID)
}

func (d *Driver) remove(ctx context.Context, id string) error {
	err := d.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress") {
		// Someone else (a concurrent reconcile or down) is removing it: the
		// outcome we want is already under way.
		return nil
	}
	return translate("remove "+id, err)
}

// Kill sends signal (a name such as "SIGKILL" or a number; default SIGKILL)
// to an owned container's main process, or to a pod's service member, whose
// end ends the pod. A container that is not running is replica.ErrConflict.
func (d *Driver) Kill(ctx context.Context, id, signal string) error {
	c, podID, pod, err := d.resolve(ctx, "kill", id)
	if err != nil {
		return err
	}
	if signal == "" {
		signal = "SIGKILL"
	}
	if pod {
		return d.podSignal(ctx, podID, signal)
	}
	return translate("kill "+id, d.cli.ContainerKill(ctx, c.ID, signal))
}

// Pause freezes every process of an owned container, or of every member of
// a pod. Pausing a container that is not running is replica.ErrConflict.
func (d *Driver) Pause(ctx context.Context, id string) error {
	c, podID, pod, err := d.resolve(ctx, "pause", id)
	if err != nil {
		return err
	}
	if pod {
		return d.eachMember(ctx, "pause", podID, false, func(m container.Summary) error {
			return translate("pause "+podID, d.cli.ContainerPause(ctx, m.ID))
		})
	}
	return translate("pause "+id, d.cli.ContainerPause(ctx, c.ID))
}

// Unpause thaws a paused owned container. Unpausing a container that is not
// paused is replica.ErrConflict.
func (d *Driver) Unpause(ctx context.Context, id string) error {
	c, podID, pod, err := d.resolve(ctx, "unpause", id)
	if err != nil {
		return err
	}
	if pod {
		return d.eachMember(ctx, "unpause", podID, false, func(m container.Summary) error {
			return translate("unpause "+podID, d.cli.ContainerUnpause(ctx, m.ID))
		})
	}
	return translate("unpause "+id, d.cli.ContainerUnpause(ctx, c.ID))
}

// ownedFilter selects the objects of this instance.
func (d *Driver) ownedFilter() filters.Args {
	return filters.NewArgs(
		filters.Arg("label", LabelManaged+"="+managedValue),
		filters.Arg("label", LabelInstance+"="+d.instance),
	)
}

// List returns every container of this instance, stopped ones included,
// sorted by group then index. A container whose replica labels are damaged
// is still listed, with Index 0, so the caller can see and remove it.
func (d *Driver) List(ctx context.Context) ([]replica.Replica, error) {
	cs, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: d.ownedFilter()})
	if err != nil {
		return nil, translate("list replicas", err)
	}
	// The engine filtered already; check again because an object without
	// our labels must never reach the caller.
	cs = slices.DeleteFunc(cs, func(c container.Summary) bool { return !ownedBy(c.Labels, d.instance) })
	out, plain := d.podList(cs)
	for _, c := range plain {
		out = append(out, d.replicaFromSummary(c))
	}
	replica.Sort(out)
	return out, nil
}

func replicaFromLabels(id string, labels map[string]string) replica.Replica {
	ident, _ := parseReplicaLabels(labels)
	r := replica.Replica{
		ID:           id,
		Group:        ident.Group,
		Index:        ident.Index,
		Service:      ident.Service,
		TemplateHash: ident.TemplateHash,
	}
	if r.Index > 0 {
		r.Name = replica.Name(r.Group, r.Index)
	}
	return r
}

func (d *Driver) replicaFromSummary(c container.Summary) replica.Replica {
	r := replicaFromLabels(c.ID, c.Labels)
	if r.Name == "" && len(c.Names) > 0 {
		r.Name = strings.TrimPrefix(c.Names[0], "/")
	}
	r.State = string(c.State)
	r.Created = time.Unix(c.Created, 0)
	if !reachable(r.State) {
		return r
	}
	for _, p := range c.Ports {
		if p.Type != "tcp" || p.PublicPort == 0 || p.IP != publishIP {
			continue
		}
		r.Address = net.JoinHostPort(publishIP, strconv.Itoa(int(p.PublicPort)))
		if c.NetworkSettings != nil {
			if ep := c.NetworkSettings.Networks[d.project]; ep != nil && ep.IPAddress != "" {
				r.NetworkAddress = net.JoinHostPort(ep.IPAddress, strconv.Itoa(int(p.PrivatePort)))
			}
		}
		break
	}
	return r
}

// Inspect returns one owned container with its timestamps and exit status.
// A container without our labels is replica.ErrNotFound.
func (d *Driver) Inspect(ctx context.Context, id string) (replica.Replica, error) {
	c, podID, pod, err := d.resolve(ctx, "inspect", id)
	if err != nil {
		return replica.Replica{}, err
	}
	if pod {
		return d.podInspect(ctx, c, podID)
	}
	return d.replicaFromInspect(c), nil
}

func (d *Driver) replicaFromInspect(c container.InspectResponse) replica.Replica {
	r := replicaFromLabels(c.ID, c.Config.Labels)
	if r.Name == "" {
		r.Name = strings.TrimPrefix(c.Name, "/")
	}
	r.Created = parseTime(c.Created)
	if st := c.State; st != nil {
		r.State = string(st.Status)
		r.ExitCode = st.ExitCode
		r.OOMKilled = st.OOMKilled
		r.StartedAt = parseTime(st.StartedAt)
		r.FinishedAt = parseTime(st.FinishedAt)
	}
	if !reachable(r.State) || c.NetworkSettings == nil {
		return r
	}
	for port, bindings := range c.NetworkSettings.Ports {
		if port.Proto() != "tcp" {
			continue
		}
		for _, b := range bindings {
			if b.HostIP != publishIP || b.HostPort == "" {
				continue
			}
			r.Address = net.JoinHostPort(publishIP, b.HostPort)
			if ep := c.NetworkSettings.Networks[d.project]; ep != nil && ep.IPAddress != "" {
				r.NetworkAddress = net.JoinHostPort(ep.IPAddress, port.Port())
			}
			return r
		}
	}
	return r
}

// parseTime reads the engine's RFC 3339 timestamps; the engine's "never"
// (0001-01-01T00:00:00Z) and garbage both become the zero time.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// reachable reports whether a replica in state has an address: a running
// one, and a paused one, which keeps its ports and answers once unpaused.
func reachable(state string) bool {
	return state == replica.StateRunning || state == replica.StatePaused
}

// Down removes every container, the network and the volumes of this
// instance, and nothing else. It is safe to call when there is nothing to remove.
func (d *Driver) Down(ctx context.Context) error {
	// Containers first, until none is left: a removal someone else started
	// may still be under way, and a create the engine was finishing when
	// Down listed shows up only on a later list.
	var errs []error
	for {
		cs, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: d.ownedFilter()})
		if err != nil {
			return translate("down: list containers", err)
		}
		var ids []string
		for _, c := range cs {
			if ownedBy(c.Labels, d.instance) {
				ids = append(ids, c.ID)
			}
		}
		if len(ids) == 0 {
			break
		}
		errs = d.removeAll(ctx, ids)
		select {
		case <-ctx.Done():
			return fmt.Errorf("down: %d containers left: %w", len(ids), errors.Join(append(errs, ctx.Err())...))
		case <-time.After(50 * time.Millisecond):
		}
	}
	// Volumes before networks: a network the engine will not let go of
	// must not leave the volumes behind too.
	if err := d.removeVolumes(ctx); err != nil {
		errs = append(errs, err)
	}
	nets, err := d.cli.NetworkList(ctx, network.ListOptions{Filters: d.ownedFilter()})
	if err != nil {
		errs = append(errs, translate("down: list networks", err))
	}
	for _, n := range nets {
		if ownedBy(n.Labels, d.instance) {
			if err := d.removeNetwork(ctx, n); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("down: %w", errors.Join(errs...))
	}
	return nil
}

// removeAll removes the containers ids, 8 at a time, and returns what
// failed other than not-found.
func (d *Driver) removeAll(ctx context.Context, ids []string) []error {
	var (
		errs []error
		mu   sync.Mutex
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 8)
	)
	for _, id := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := d.remove(ctx, id); err != nil && !errors.Is(err, replica.ErrNotFound) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errs
}

// removeNetwork removes an owned network. The engine refuses while an
// endpoint of a container being removed is still attached (or, for an
// overlay, a task still uses it); it retries until ctx ends.
func (d *Driver) removeNetwork(ctx context.Context, n network.Summary) error {
	for {
		err := d.cli.NetworkRemove(ctx, n.ID)
		if err == nil || isSDKNotFound(err) {
			return nil
		}
		// A swarm manager refuses an overlay network while a task of a
		// removed service still uses it: the same wait.
		if !strings.Contains(err.Error(), "active endpoints") && !strings.Contains(err.Error(), "in use by task") {
			return translate("remove network "+n.Name, err)
		}
		select {
		case <-ctx.Done():
			if stale(n.ID, d) {
				return fmt.Errorf("remove network %s: %w", n.Name, ErrStaleEndpoint)
			}
			return translate("remove network "+n.Name, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ErrStaleEndpoint: the engine refuses to remove a network for an active
// endpoint no container holds. Docker 20.10 can keep one after a container
// create is cut short, or on docker_gwbridge after leaving a swarm; it
// goes with a restart of dockerd, sometimes by itself later.
var ErrStaleEndpoint = errors.New("the engine keeps an endpoint of no container on it (a fault of the engine; restarting dockerd clears it)")

// OnlyStale reports whether every error in err (as Down returns them) is
// ErrStaleEndpoint: all else was removed.
func OnlyStale(err error) bool {
	if err == nil {
		return false
	}
	var joined interface{ Unwrap() []error }
	for {
		if errors.As(err, &joined) {
			for _, e := range joined.Unwrap() {
				if !errors.Is(e, ErrStaleEndpoint) {
					return false
				}
			}
			return true
		}
		if u := errors.Unwrap(err); u != nil {
			err = u
			continue
		}
		return errors.Is(err, ErrStaleEndpoint)
	}
}

// stale reports whether network id has no container on it, as the engine
// says, although removing it fails for active endpoints.
func stale(id string, d *Driver) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := d.cli.NetworkInspect(ctx, id, network.InspectOptions{})
	return err == nil && len(n.Containers) == 0
}

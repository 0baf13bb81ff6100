package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flotilla/flotilla/orchestrator/bus"
	"github.com/flotilla/flotilla/orchestrator/health"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/sample-services/bus/access"
)

// Store persists the desired groups.
type Store interface {
	// Groups returns every stored group.
	Groups() ([]spec.Group, error)
	// PutGroup stores a group, replacing one of the same name.
	PutGroup(g spec.Group) error
	// DeleteGroup removes a group; a missing one is not an error.
	DeleteGroup(name string) error
	// SetScenario records the scenario last applied ("" for none).
	SetScenario(name string) error
	// Scenario returns the scenario last applied, or "".
	Scenario() (string, error)
	// PutHistory keeps a group's revisions and rollouts (rollout.go);
	// History returns them, nil if none. DeleteGroup removes them too.
	PutHistory(group string, data []byte) error
	History(group string) ([]byte, error)
}

// Options configure a Controller.
type Options struct {
	// Runtime runs the replicas: a ReplicaRuntime (*docker.Driver) or a
	// PlacingRuntime.
	Runtime Runtime
	// RuntimeName names the runtime for people: RuntimeEngine (the
	// default) or RuntimeSwarm.
	RuntimeName string
	Store       Store
	// Images maps an image name of the catalogue ("shop") to the reference
	// replicas are created from.
	// Images[VMImage], if set, is the VM image: vm groups need it.
	Images map[string]string
	// NoVM says why there is no VM image (what to install); a vm group is
	// refused with it.
	NoVM error
	// VMAccel is the accelerator VM replicas use: "tcg" (the default) or
	// "kvm", chosen once at start by a probe boot.
	VMAccel string
	// VMMemoryMiB is the memory all VM replicas together may take, each
	// counted at its container's limit (the group's memory plus the guest's
	// and QEMU's); 0 sets no bound. A vm group whose count would pass it is
	// refused, since VMs that do not fit would only thrash or be killed.
	VMMemoryMiB int64
	MaxReplicas int
	// Parallelism bounds the creates and removes applied at once.
	Parallelism int
	// StopTimeout is how long a leaving replica gets to finish its requests.
	StopTimeout time.Duration
	// Resync is the period of the full re-observe of every group.
	Resync time.Duration
	// UnhealthyGrace is how long a replica may fail its probes before it is replaced.
	UnhealthyGrace time.Duration
	Probe          health.Config
	// DataPath is how balancers reach replicas: DataPathAuto (default),
	// DataPathNetwork or DataPathPublished.
	DataPath string
	// Metrics, if set, gets the controller's and the balancers' metrics.
	Metrics prometheus.Registerer
	// Events, if set, receives what happens, for people to watch.
	Events Publisher
	Log    *slog.Logger
	// BusSecret derives the bus's passwords (bus.go); it must stay the same
	// across restarts of the controller while the bus runs. Empty makes a
	// random one, good for this process only.
	BusSecret string
}

// Controller owns the desired state and converges the runtime towards it.
type Controller struct {
	opt      Options
	log      *slog.Logger
	replicas ReplicaRuntime // one of replicas and placing is set
	placing  PlacingRuntime
	prober   *health.Prober
	metrics  *metrics
	stats    statsState

	poke chan struct{}

	mu       sync.Mutex
	groups   map[string]*group
	notes    map[string]*note // by replica ID
	boots    map[string]*boot // by replica ID
	scenario string
	onReady  []func(group, id string)
	// The bus's last reading (bus.go); busMu is taken without mu.
	busReader *bus.Reader
	busPort   int // the bus's client port on the project network; tests change it
	busMu     sync.Mutex
	busStatus bus.Status
	busSeen   uint64 // the newest dead letter announced
	busRead   bool   // a reading of a running bus was taken
	// The nodes (nodes.go): local is the one node of a runtime without
	// nodes; nodeRT is the runtime when it has nodes, read every second
	// into nodes. nodesMu is taken without mu; nodesReadMu makes one
	// reading at a time.
	local       replica.Node
	nodeRT      NodeRuntime
	nodesReadMu sync.Mutex
	nodesMu     sync.Mutex
	nodes       []replica.Node
	nodesAt     time.Time // when last read, well or not
	nodesWhy    string    // why the last reading failed
	nodesRead   bool      // a reading succeeded
	// direct: balancers dial the project network; known once decided.
	direct, dataPathKnown bool
	ctx                   context.Context // the Run context, for probes and balancers; nil before Run
}

// New returns a controller; call Run to start reconciling.
func New(opt Options) *Controller {
	if opt.MaxReplicas <= 0 {
		opt.MaxReplicas = spec.DefaultMaxReplicas
	}
	if opt.Parallelism <= 0 {
		opt.Parallelism = 32
	}
	if opt.StopTimeout <= 0 {
		opt.StopTimeout = 5 * time.Second
	}
	if opt.Resync <= 0 {
		opt.Resync = 10 * time.Second
	}
	if opt.UnhealthyGrace <= 0 {
		opt.UnhealthyGrace = 10 * time.Second
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Events == nil {
		opt.Events = discard{}
	}
	if opt.RuntimeName == "" {
		opt.RuntimeName = RuntimeEngine
	}
	if len(opt.BusSecret) < access.MinSecretLen {
		opt.BusSecret = newBusSecret()
	}
	c := &Controller{
		opt:       opt,
		log:       opt.Log,
		poke:      make(chan struct{}, 1),
		groups:    map[string]*group{},
		notes:     map[string]*note{},
		boots:     map[string]*boot{},
		metrics:   newMetrics(),
		busReader: bus.NewReader(opt.BusSecret),
		busPort:   spec.BusClientPort,
		stats: statsState{
			byName:  map[string]ReplicaStats{},
			traffic: map[string]trafficSample{},
			usage:   map[string]replica.Usage{},
			cpu:     map[string]float64{},
		},
	}
	// A placing runtime that could also run replicas one by one is left
	// to place: it heals better than the controller can.
	if p, ok := opt.Runtime.(PlacingRuntime); ok {
		c.placing = p
	} else if r, ok := opt.Runtime.(ReplicaRuntime); ok {
		c.replicas = r
	}
	c.local = localNode()
	if n, ok := opt.Runtime.(NodeRuntime); ok {
		c.nodeRT = n
	}
	if opt.Metrics != nil {
		opt.Metrics.MustRegister(c.Collector(), balancersCollector{c}, busCollector{c})
	}
	c.prober = c.newProber()
	return c
}

// VMImage is the name under which Options.Images holds the VM image.
const VMImage = "vm"

// VMUnavailable is the validation error for a vm group on a controller
// without a VM image; why, if set, says what is missing and what to install.
func VMUnavailable(why error) error {
	reason := "this controller has no VM image"
	if why != nil {
		reason += " (" + why.Error() + ")"
	}
	return &spec.ValidationError{Field: "isolation", Reason: fmt.Sprintf("%q cannot run here: %s; use %q or %q", spec.IsolationVM, reason, spec.IsolationContainer, spec.IsolationPod)}
}

// validate checks g (with its defaults) against the catalogue and what this
// controller can run: the spec accepts vm, this controller only with a VM
// image.
func (c *Controller) validate(g spec.Group) error {
	if err := g.Validate(c.opt.MaxReplicas); err != nil {
		return err
	}
	if c.placing != nil {
		if err := placingRefuses(g); err != nil {
			return err
		}
	} else if !g.Placement.Empty() {
		return &spec.ValidationError{Field: "placement", Reason: "places replicas over the nodes of a swarm, and the engine runtime is one machine: leave placement out, or run the controller with --runtime swarm"}
	}
	if g.Isolation == spec.IsolationVM && c.opt.Images[VMImage] == "" {
		return VMUnavailable(c.opt.NoVM)
	}
	if g.Isolation == spec.IsolationVM && c.opt.VMMemoryMiB > 0 {
		return c.vmsFit(g)
	}
	return nil
}

// vmsFit refuses a vm group whose replicas, with those of the other vm
// groups, would need more memory than VMMemoryMiB.
func (c *Controller) vmsFit(g spec.Group) error {
	each := vmReplicaMiB(g)
	var others int64
	c.mu.Lock()
	for name, o := range c.groups {
		if name != g.Name && o.desired != nil && o.desired.Isolation == spec.IsolationVM {
			others += int64(o.desired.Replicas) * vmReplicaMiB(*o.desired)
		}
	}
	c.mu.Unlock()
	need := int64(g.Replicas) * each
	if others+need <= c.opt.VMMemoryMiB {
		return nil
	}
	fit := max(0, (c.opt.VMMemoryMiB-others)/each)
	return &spec.ValidationError{Field: "replicas", Reason: fmt.Sprintf(
		"%d VMs need %d MiB (each %d: the group's %d, the guest's %d and QEMU's %d), and this machine allows %d MiB for VMs, %d of them taken by other vm groups: at most %d fit",
		g.Replicas, need, each, g.Resources.MemoryMiB, vmGuestMiB, vmQEMUMiB, c.opt.VMMemoryMiB, others, fit)}
}

// Load reads the desired state from the store. Run calls it; tests and the
// API may call it earlier to serve before the first reconcile.
func (c *Controller) Load() error {
	groups, err := c.opt.Store.Groups()
	if err != nil {
		return fmt.Errorf("load desired state: %w", err)
	}
	scenario, err := c.opt.Store.Scenario()
	if err != nil {
		return fmt.Errorf("load desired state: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scenario = scenario
	for _, g := range groups {
		// Groups stored by an older controller lack newer fields.
		g = g.WithDefaults()
		c.groupLocked(g.Name).desired = &g
	}
	if err := c.loadHistoriesLocked(); err != nil {
		c.log.Warn("load rollout history", "err", err)
	}
	now := time.Now()
	for name, g := range c.groups {
		if g.hist.current() == nil && g.desired != nil {
			// A group from before revisions: what it runs is revision 1.
			g.hist.addRevision(*g.desired, c.templateHash(*g.desired), now)
			c.saveHistoryLocked(name, g)
		}
	}
	return nil
}

// Services returns the catalogue of runnable services.
func (c *Controller) Services() []spec.Service { return spec.Services() }

// PutGroup creates or updates a group. Unset resources get defaults. A
// change of template while the group has replicas starts a rollout; one
// while a rollout runs is refused (ErrRolloutRunning).
func (c *Controller) PutGroup(ctx context.Context, g spec.Group) (GroupStatus, bool, error) {
	return c.PutGroupWith(ctx, g, false)
}

// PutGroupWith is PutGroup; with supersede, a template change while a
// rollout runs ends that rollout and starts one to the new template.
func (c *Controller) PutGroupWith(ctx context.Context, g spec.Group, supersede bool) (GroupStatus, bool, error) {
	g = g.WithDefaults()
	if err := c.validate(g); err != nil {
		return GroupStatus{}, false, err
	}
	c.mu.Lock()
	gr := c.groupLocked(g.Name)
	if gr.hist == nil {
		gr.hist = &history{}
	}
	if err := c.rolloutRefusesLocked(gr, g, supersede); err != nil {
		c.mu.Unlock()
		return GroupStatus{}, false, err
	}
	if err := c.opt.Store.PutGroup(g); err != nil {
		c.mu.Unlock()
		return GroupStatus{}, false, fmt.Errorf("store group %q: %w", g.Name, err)
	}
	var old spec.Group
	existed := gr.desired != nil
	if existed {
		old = *gr.desired
	}
	gr.desired = &g
	started, _ := c.noteTemplateLocked(g.Name, gr, g, supersede, time.Now())
	c.saveHistoryLocked(g.Name, gr)
	var rolled RolloutStatus
	if started != nil {
		rolled = *started
	}
	c.markDirtyLocked(g.Name)
	var cur BalancerState
	if gr.balancer != nil {
		cur = BalancerState{Running: true, Policy: gr.balancer.b.Policy(), Port: gr.balancer.port}
	}
	c.mu.Unlock()
	// A policy switch takes effect at once; the reconcile does the rest.
	if a := planBalancer(&g, cur, 0); a.Kind == BalancerSetPolicy {
		if err := c.applyBalancer(ctx, g.Name, a); err != nil {
			c.log.Warn("switch balancer policy", "group", g.Name, "err", err)
		}
	}
	if started != nil {
		c.publish(hub.RolloutStarted, g.Name, "", "", "rollout of %s to revision %d started: %s → %s, %s", g.Name, rolled.Revision, rolled.FromVersion, rolled.Version, rolled.Strategy)
	}
	switch {
	case !existed:
		c.publish(hub.GroupCreated, g.Name, "", "", "group %s created: %d × %s, balancer %s", g.Name, g.Replicas, g.Service, g.Balancer.Policy)
	case old.Replicas != g.Replicas && old.Service == g.Service && old.Resources == g.Resources && old.Balancer == g.Balancer:
		c.publish(hub.GroupScaled, g.Name, "", "", "group %s scaled from %d to %d", g.Name, old.Replicas, g.Replicas)
	case old.Balancer.Policy != g.Balancer.Policy:
		c.publish(hub.BalancerPolicy, g.Name, "", "", "group %s balancer policy: %s → %s", g.Name, old.Balancer.Policy, g.Balancer.Policy)
	case !old.Equal(g):
		c.publish(hub.GroupUpdated, g.Name, "", "", "group %s updated", g.Name)
	}
	st, _ := c.Group(g.Name)
	return st, !existed, nil
}

// CheckGroup says whether PutGroupWith would take g, without changing
// anything: the same validation and the same refusal of a template change
// while a rollout runs. Between a check and a put the world may move on
// (another group may take the memory a vm group needed), so a put can
// still refuse what a check passed.
func (c *Controller) CheckGroup(g spec.Group, supersede bool) error {
	g = g.WithDefaults()
	if err := c.validate(g); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	gr := c.groups[g.Name]
	if gr == nil || gr.hist == nil {
		return nil
	}
	return c.rolloutRefusesLocked(gr, g, supersede)
}

// rolloutRefusesLocked refuses a change of g's template while a rollout of
// the group runs, unless supersede.
func (c *Controller) rolloutRefusesLocked(gr *group, g spec.Group, supersede bool) error {
	if ro := gr.hist.rollout(); ro.active() && !supersede && gr.hist.current() != nil && gr.hist.current().Hash != c.templateHash(g) {
		return fmt.Errorf("%w (to revision %d, %s, %s): wait for it to end, roll it back, or supersede it", ErrRolloutRunning, ro.Revision, ro.Version, ro.Progress)
	}
	return nil
}

// desired returns a copy of a group's desired spec.
func (c *Controller) desired(name string) (spec.Group, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.groups[name]; g != nil && g.desired != nil {
		return *g.desired, true
	}
	return spec.Group{}, false
}

// Scale changes a group's desired replica count.
func (c *Controller) Scale(ctx context.Context, name string, replicas int) (GroupStatus, error) {
	g, ok := c.desired(name)
	if !ok {
		return GroupStatus{}, fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	if g.Autoscale != nil {
		// Scaling by hand would fight the autoscaler, which would undo it
		// within a second: the learner changes the bounds instead.
		return GroupStatus{}, fmt.Errorf("%w (%s), so its count follows its load: change its autoscale min and max, or remove autoscale to scale it by hand", ErrAutoscaled, g.Autoscale)
	}
	g.Replicas = replicas
	st, _, err := c.PutGroup(ctx, g)
	return st, err
}

// DeleteGroup removes a group from desired state; its replicas are drained
// and removed by the reconcile.
func (c *Controller) DeleteGroup(ctx context.Context, name string) error {
	if _, ok := c.desired(name); !ok {
		return fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	if err := c.opt.Store.DeleteGroup(name); err != nil {
		return fmt.Errorf("delete group %q: %w", name, err)
	}
	c.mu.Lock()
	gr := c.groupLocked(name)
	gr.desired, gr.hist, gr.rotation = nil, nil, rotationView{} // the store dropped its history too
	c.markDirtyLocked(name)
	c.mu.Unlock()
	c.publish(hub.GroupDeleted, name, "", "", "group %s deleted; its replicas drain and stop", name)
	return nil
}

// Down deletes every group and removes every object this instance owns.
func (c *Controller) Down(ctx context.Context) error {
	c.mu.Lock()
	var names []string
	for name, g := range c.groups {
		if g.desired != nil {
			names = append(names, name)
		}
	}
	c.mu.Unlock()
	for _, name := range names {
		if err := c.opt.Store.DeleteGroup(name); err != nil {
			return fmt.Errorf("delete group %q: %w", name, err)
		}
		c.mu.Lock()
		if g := c.groups[name]; g != nil {
			g.desired = nil
		}
		c.mu.Unlock()
	}
	// A reconcile already applying a plan could create a replica after the
	// runtime-wide removal below has listed; let those finish first. With
	// nothing desired, any later reconcile only removes.
	c.waitIdle(ctx, 30*time.Second)
	// The network goes too; the next Create makes it again.
	if err := c.opt.Runtime.Down(ctx); err != nil {
		return err
	}
	c.resyncAll(ctx)
	return nil
}

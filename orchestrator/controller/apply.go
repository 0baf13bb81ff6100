package controller

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/lb"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/sample-services/version"
)

// apply carries out a plan made from obs: it records what was observed,
// then moves the balancer, the prober and the runtime. It is the only step
// of a reconcile with side effects.
func (c *Controller) apply(ctx context.Context, p Plan, obs Observed) error {
	name := p.Group
	c.mu.Lock()
	g := c.groupLocked(name)
	g.observed = obs.Replicas
	c.pruneNotesLocked(obs.Listed)
	c.pruneBootsLocked(obs.Listed)
	if p.Crashes != nil {
		g.crashes = p.Crashes
	}
	wasHeld := len(g.held) > 0
	g.held = p.Held
	if !p.RetryAt.IsZero() {
		g.retryAt = p.RetryAt
	}
	g.probes = p.Probes
	runCtx := c.ctx
	c.mu.Unlock()
	if runCtx == nil {
		runCtx = ctx
	}
	if !wasHeld && len(p.Held) > 0 {
		c.publish(hub.GroupCrashLoop, name, "", "", "group %s is in a crash loop: %s", name, p.Held[0])
	}

	c.syncProbes(runCtx, name, p)
	c.detectDataPath(obs.Replicas)
	if err := c.applyBalancer(ctx, name, p.Balancer); err != nil {
		return err
	}
	c.mu.Lock()
	var as *spec.Autoscale
	if g.desired != nil {
		as = g.desired.Autoscale
	}
	c.mu.Unlock()
	if b := c.balancer(name); b != nil {
		b.SetActivation(c.activation(name, as))
	}
	c.syncUpstreams(name)
	if p.Forget {
		c.forget(name)
		return nil
	}
	if len(p.Actions) == 0 {
		return nil
	}
	c.log.Info("reconcile", "plan", p.String())
	if c.placing != nil {
		return c.applyPlacement(ctx, p)
	}
	sem := make(chan struct{}, c.opt.Parallelism)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, a := range p.Actions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := c.applyOne(ctx, name, a, p.Template); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// applyOne carries out one replica step: removes and replacements drain
// the replica first; replacements and creates then make a fresh one.
func (c *Controller) applyOne(ctx context.Context, group string, a Action, tmpl replica.Spec) error {
	name := replica.Name(group, a.Index)
	if a.Kind == Remove || a.Kind == Replace {
		c.drain(ctx, group, a.ID)
		c.forgetProbe(a.ID)
		timeout := c.opt.StopTimeout
		if a.Kind == Replace {
			timeout = time.Second // it is broken or outdated; its replacement is waiting
		}
		var words []string
		if a.Kind == Replace && a.Reason.broken() {
			words = c.lastWords(ctx, a.ID)
		}
		if err := c.replicas.Stop(ctx, a.ID, timeout); err != nil && !errors.Is(err, replica.ErrNotFound) {
			c.log.Warn("stop replica", "replica", name, "err", err)
		}
		if err := c.replicas.Remove(ctx, a.ID); err != nil && !errors.Is(err, replica.ErrNotFound) {
			return fmt.Errorf("remove %s: %w", name, err)
		}
		c.publish(hub.ReplicaRemoved, group, name, a.ID, "%s removed: %s", name, a.Why())
		if a.Kind == Replace && a.Reason.broken() {
			c.mu.Lock()
			if g := c.groups[group]; g != nil {
				if cs, ok := g.crashes[a.Index]; ok {
					cs.restarts++
					cs.lastWords = words
					g.crashes[a.Index] = cs
				}
			}
			c.mu.Unlock()
		}
	}
	if a.Kind == Create || a.Kind == Replace {
		s := tmpl
		s.Index = a.Index
		began := time.Now()
		r, err := c.replicas.Create(ctx, s)
		if err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		created := time.Now()
		c.creating(r.ID, began)
		c.publish(hub.ReplicaCreated, group, name, r.ID, "%s created: %s", name, a.Why())
		if err := c.replicas.Start(ctx, r.ID); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		c.autoCreated(group, r.ID, began, created, time.Now())
	}
	return nil
}

// lastWordsLines is how many of a dead replica's last lines are kept.
const lastWordsLines = 8

// lastWords reads the last lines a dead replica wrote, where the runtime
// can; nil if it cannot.
func (c *Controller) lastWords(ctx context.Context, id string) []string {
	lr, ok := c.replicas.(LogReader)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	logs, err := lr.Logs(ctx, id, 64)
	if err != nil {
		c.log.Debug("last words", "id", id, "err", err)
		return nil
	}
	return tailLines(logs, lastWordsLines, 300)
}

// tailLines is what matters of the end of a dead replica's output: its
// lines that speak of a panic (a Go panic, a guest kernel's), else its last
// lines; at most n non-blank lines, each cut to width bytes and without its
// carriage return. A panic's line is what a stack dump buries.
func tailLines(s string, n, width int) []string {
	var lines, panics []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimRight(l, "\r \t")
		if strings.TrimSpace(l) == "" {
			continue
		}
		if len(l) > width {
			l = l[:width]
		}
		if strings.Contains(strings.ToLower(l), "panic") {
			panics = append(panics, l)
		}
		lines = append(lines, l)
	}
	if len(panics) > 0 {
		lines = panics
	}
	return lines[max(len(lines)-n, 0):]
}

// applyPlacement tells a placing runtime the group's new desire.
func (c *Controller) applyPlacement(ctx context.Context, p Plan) error {
	for _, a := range p.Actions {
		var placed Placement
		switch a.Kind {
		case SetCount:
			if err := c.placing.Place(ctx, p.Group, a.Count, p.Template); err != nil {
				return fmt.Errorf("place %s: %w", p.Group, err)
			}
			placed = Placement{Count: a.Count, Hash: p.Template.TemplateHash}
			c.publish(hub.GroupScaled, p.Group, "", "", "group %s placed: %d replicas (%s)", p.Group, a.Count, a.Why())
		case Unplace:
			if err := c.placing.Unplace(ctx, p.Group); err != nil {
				return fmt.Errorf("unplace %s: %w", p.Group, err)
			}
			placed = Placement{Removed: true}
		default:
			return fmt.Errorf("a placing runtime cannot %s", a.Kind)
		}
		c.mu.Lock()
		c.groupLocked(p.Group).placed = &placed
		c.mu.Unlock()
	}
	return nil
}

// drain takes a leaving replica out of its balancer's rotation and waits,
// up to StopTimeout, for its requests in flight to finish.
func (c *Controller) drain(ctx context.Context, group, id string) {
	c.mu.Lock()
	c.noteLocked(id).leaving = true
	c.mu.Unlock()
	b := c.balancer(group)
	if b == nil {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, c.opt.StopTimeout)
	defer cancel()
	if err := b.Drain(dctx, id); err != nil && !errors.Is(err, lb.ErrUnknownUpstream) {
		c.log.Warn("drain", "group", group, "err", err)
	}
}

// forget drops a group that is gone from desire and runtime.
func (c *Controller) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.groups[name]; g != nil && g.desired == nil && len(g.observed) == 0 && g.balancer == nil {
		delete(c.groups, name)
	}
}

// versionEnv tells a replica which release of its service to be; the
// default release needs no word.
func versionEnv(g spec.Group) []string {
	var env []string
	if g.Version != "" && g.Version != version.Default {
		env = append(env, version.Env+"="+g.Version)
	}
	if g.Flaw != "" {
		env = append(env, version.FlawEnv+"="+g.Flaw)
	}
	return env
}

// template is what a group's replicas are made from; Index is left unset.
func template(g spec.Group, image string) replica.Spec {
	svc, _ := spec.LookupService(g.Service)
	return replica.Spec{
		Store:        svc.Store,
		Group:        g.Name,
		Service:      g.Service,
		Image:        image,
		Port:         svc.Port,
		Env:          append(append([]string{"FLOTILLA_ROLE=" + svc.Role, "FLOTILLA_GROUP=" + g.Name, "ADMIN_PORT=" + strconv.Itoa(spec.AdminPort)}, svc.Env(g.Settings)...), versionEnv(g)...),
		Aliases:      []string{g.Name},
		MemoryBytes:  g.Resources.MemoryMiB << 20,
		NanoCPUs:     g.Resources.MilliCPU * 1_000_000,
		PidsLimit:    g.Resources.Pids,
		TemplateHash: g.TemplateHash(image),
		Isolation:    g.Isolation,
		Constraints:  placementOf(g).Constraints,
		Spread:       placementOf(g).Spread,
	}
}

// placementOf is g's placement, empty when it has none.
func placementOf(g spec.Group) spec.Placement {
	if g.Placement == nil {
		return spec.Placement{}
	}
	return *g.Placement
}

// Sizing of a VM replica's container, which holds QEMU and the guest's
// memory. The guest gets a fixed vmGuestMiB (its kernel, initramfs and the
// shop); the container's limit is the group's memory on top of that plus
// vmQEMUMiB for QEMU itself (its code, TCG's translation cache, device
// buffers): a 64 MiB group gets 512 MiB, what a booted guest was measured to
// fit in with room (about 290 MiB used). The group's pids limit counts QEMU's
// threads here, not the guest's processes; vmMinPids leaves room for them.
const (
	vmGuestMiB = 256
	vmQEMUMiB  = 192
	vmMinPids  = 64
)

// vmAccel is the accelerator of this controller's VM replicas.
func (c *Controller) vmAccel() string {
	if c.opt.VMAccel == "" {
		return "tcg"
	}
	return c.opt.VMAccel
}

// vmTemplate is template for a vm group: the VM image, whose entrypoint
// (vmlaunch) hands the shop's environment to the guest and boots it under
// accel with vmGuestMiB of memory.
func vmTemplate(g spec.Group, image, accel string) replica.Spec {
	s := template(g, image)
	s.Env = append(s.Env, "FLOTILLA_VM_ACCEL="+accel, "FLOTILLA_VM_MEMORY="+strconv.Itoa(vmGuestMiB))
	s.MemoryBytes = vmReplicaMiB(g) << 20
	// The guest's CPU is the group's; QEMU's own threads (its main loop,
	// I/O and timers) get vmQEMUMilliCPU beside it, as its memory does.
	// The engine refuses more CPUs than the machine has.
	s.NanoCPUs = min(s.NanoCPUs+vmQEMUMilliCPU*1_000_000, int64(runtime.NumCPU())*1_000_000_000)
	s.PidsLimit = max(g.Resources.Pids, vmMinPids)
	return s
}

// vmQEMUMilliCPU is the CPU a VM replica's container gets beyond the
// group's, for QEMU's threads other than the guest's vCPU.
const vmQEMUMilliCPU = 500

// vmReplicaMiB is the memory limit of one VM replica's container.
func vmReplicaMiB(g spec.Group) int64 {
	return g.Resources.MemoryMiB + vmGuestMiB + vmQEMUMiB
}

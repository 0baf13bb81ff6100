// Package demo walks a learner through the stages of the story on a running
// controller: each demo applies its scenario, runs shopper journeys, breaks
// something, says in plain words what is happening and where to look in the
// dashboard, and then checks that the lesson really happened. A demo whose
// lesson did not show returns an error, so the demos double as end-to-end
// checks.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/faults"
	"github.com/flotilla/flotilla/orchestrator/load"
)

// Demo is one lesson.
type Demo struct {
	Name  string
	Title string
	run   func(ctx context.Context, d *run) error
}

// All are the demos, in the order of the story.
var All = []Demo{
	{"monolith", "Stage 1: one bad feature takes down the whole monolith", monolith},
	{"scaling", "Stages 2 and 3: a scaling group without, then with, a load balancer", scaling},
	{"microservices", "Stage 4: a broken-out service fails alone", microservices},
	{"vms", "Stage 5: VMs vs containers, the same shop as a container, a pod and a virtual machine", vms},
	{"clusters", "Stage 6: services as clusters, found by DNS, and a dependency outage that restarts nothing", clusters},
	{"events", "Stage 7: services that talk through a message bus: fanout, a work queue, dead letters and shared carts", events},
	{"serverless", "Stage 8: serverless functions that sleep at zero, wake on a request or a message, and scale out under a burst", serverless},
	{"rollout", "Stage 9: deployment without downtime: recreate, a rolling update, a canary rolled back on its own, blue-green and back", rollouts},
	{"swarm", "Past one machine: the same group on Docker Swarm mode, placed, healed, updated and drained by Swarm", swarmDemo},
}

// Names lists the demos.
func Names() []string {
	var out []string
	for _, d := range All {
		out = append(out, d.Name)
	}
	return out
}

// Run runs the named demo against the controller c, narrating to out.
func Run(ctx context.Context, name string, c *api.Client, out io.Writer) error {
	for _, d := range All {
		if d.Name == name {
			r := &run{api: c, out: out, dashboard: "http://" + c.Addr + "/"}
			fmt.Fprintf(out, "\n=== %s ===\n", d.Title)
			fmt.Fprintf(out, "Open the dashboard to watch: %s\n\n", r.dashboard)
			err := d.run(ctx, r)
			r.stopLoads()
			if err == nil && len(r.failed) > 0 {
				err = fmt.Errorf("the lesson did not show: %s", strings.Join(r.failed, "; "))
			}
			if err != nil {
				fmt.Fprintf(out, "\nFAILED: %v\n", err)
				return fmt.Errorf("demo %s: %w", name, err)
			}
			fmt.Fprintf(out, "\nPASSED: every check of the %s demo held.\n", name)
			return nil
		}
	}
	return fmt.Errorf("no demo %q: one of %s", name, strings.Join(Names(), ", "))
}

type run struct {
	api       *api.Client
	out       io.Writer
	dashboard string
	loads     []string
	failed    []string
}

func (r *run) say(format string, args ...any) {
	fmt.Fprintf(r.out, "▶ "+format+"\n", args...)
}

func (r *run) look(format string, args ...any) {
	fmt.Fprintf(r.out, "  👀 In the dashboard: "+format+"\n", args...)
}

// check records whether a lesson showed.
func (r *run) check(ok bool, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if ok {
		fmt.Fprintf(r.out, "  ✓ %s\n", msg)
		return
	}
	fmt.Fprintf(r.out, "  ✗ %s\n", msg)
	r.failed = append(r.failed, msg)
}

func (r *run) stopLoads() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range r.loads {
		r.api.StopLoad(ctx, id)
	}
}

// scenario applies a scenario and waits until every group is ready.
func (r *run) scenario(ctx context.Context, name string) error {
	res, err := r.api.ApplyScenario(ctx, name)
	if err != nil {
		return fmt.Errorf("apply scenario %s: %w", name, err)
	}
	r.say("Scenario %q applied (created %v, updated %v, deleted %v).", name, res.Created, res.Updated, res.Deleted)
	return r.converged(ctx, 2*time.Minute)
}

// converged waits until every group has all its replicas ready and, where
// it has a balancer, in rotation.
func (r *run) converged(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		gs, err := r.api.Groups(ctx)
		if err != nil {
			return err
		}
		var waiting []string
		for _, g := range gs {
			if g.Status != controller.StatusConverged || g.Ready != g.Desired {
				waiting = append(waiting, fmt.Sprintf("%s %d/%d %s", g.Name, g.Ready, g.Desired, g.Status))
				continue
			}
			if g.Balancer.Policy != "none" && g.Endpoint == "" {
				waiting = append(waiting, g.Name+" has no balancer yet")
				continue
			}
			for _, rep := range g.Replicas {
				if g.Endpoint != "" && (rep.Traffic == nil || rep.Traffic.State != "ready") {
					waiting = append(waiting, rep.Name+" not in rotation")
				}
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("groups not ready after %s: %s", timeout, strings.Join(waiting, ", "))
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

func (r *run) group(ctx context.Context, name string) (controller.GroupStatus, error) {
	return r.api.Group(ctx, name)
}

// startLoad starts a load run and remembers it to stop at the end.
func (r *run) startLoad(ctx context.Context, spec map[string]any) (string, error) {
	rep, err := r.api.StartLoad(ctx, spec)
	if err != nil {
		return "", fmt.Errorf("start load: %w", err)
	}
	r.loads = append(r.loads, rep.ID)
	return rep.ID, nil
}

func (r *run) report(ctx context.Context, id string) (load.Report, error) {
	return r.api.Load(ctx, id)
}

func (r *run) inject(ctx context.Context, spec faults.Spec) (faults.Fault, error) {
	f, err := r.api.InjectFault(ctx, spec)
	if err != nil {
		return f, fmt.Errorf("inject %s: %w", spec.Kind, err)
	}
	r.say("Fault injected: %s.", f.Message)
	return f, nil
}

func (r *run) revert(ctx context.Context, id string) error {
	if _, err := r.api.RevertFault(ctx, id); err != nil {
		return fmt.Errorf("revert fault %s: %w", id, err)
	}
	r.say("Fault %s reverted.", id)
	return nil
}

// window is what happened to a journey load between two reports.
type window struct {
	steps    map[string][2]int64 // ok, failed
	journeys [2]int64            // succeeded, failed
	complete [2]int64            // cart ok, incomplete
	byTarget map[string][2]int64 // succeeded, failed
	replicas map[string]int64
	span     time.Duration // between the two reports
}

func stepsOf(rep load.Report) map[string][2]int64 {
	out := map[string][2]int64{}
	if s := rep.Steps; s != nil {
		out["browse"] = [2]int64{s.Browse.OK, s.Browse.Failed}
		out["deals"] = [2]int64{s.Deals.OK, s.Deals.Failed}
		out["add"] = [2]int64{s.Add.OK, s.Add.Failed}
		out["cart"] = [2]int64{s.Cart.OK, s.Cart.Failed}
		out["checkout"] = [2]int64{s.Checkout.OK, s.Checkout.Failed}
	}
	return out
}

func diff(a, b load.Report) window {
	w := window{steps: map[string][2]int64{}, byTarget: map[string][2]int64{}, replicas: map[string]int64{}}
	sa, sb := stepsOf(a), stepsOf(b)
	for k, v := range sb {
		w.steps[k] = [2]int64{v[0] - sa[k][0], v[1] - sa[k][1]}
	}
	if a.Journeys != nil && b.Journeys != nil {
		w.journeys = [2]int64{b.Journeys.Succeeded - a.Journeys.Succeeded, b.Journeys.Failed - a.Journeys.Failed}
	}
	if a.Steps != nil && b.Steps != nil {
		w.complete = [2]int64{b.Steps.Cart.OK - a.Steps.Cart.OK, b.Steps.Cart.Incomplete - a.Steps.Cart.Incomplete}
	}
	for t, c := range b.ByTarget {
		p := a.ByTarget[t]
		w.byTarget[t] = [2]int64{c.Succeeded - p.Succeeded, c.Failed - p.Failed}
	}
	for name, n := range b.ByReplica {
		w.replicas[name] = n - a.ByReplica[name]
	}
	return w
}

// perSecond is how many requests of a step succeeded a second in the window.
func (w window) perSecond(step string) float64 {
	if w.span <= 0 {
		return 0
	}
	return float64(w.steps[step][0]) / w.span.Seconds()
}

// rate is ok/(ok+failed) of a step in the window, and whether it ran at all.
func (w window) rate(step string) (float64, bool) {
	v := w.steps[step]
	if v[0]+v[1] == 0 {
		return 0, false
	}
	return float64(v[0]) / float64(v[0]+v[1]), true
}

func (w window) completeRate() float64 {
	if w.complete[0] == 0 {
		return 0
	}
	return float64(w.complete[0]-w.complete[1]) / float64(w.complete[0])
}

func (w window) journeyRate() float64 {
	if n := w.journeys[0] + w.journeys[1]; n > 0 {
		return float64(w.journeys[0]) / float64(n)
	}
	return 0
}

func (w window) summary() string {
	var parts []string
	for _, s := range []string{"browse", "deals", "add", "cart", "checkout"} {
		if rate, ran := w.rate(s); ran {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", s, rate*100))
		} else {
			parts = append(parts, s+" –")
		}
	}
	return strings.Join(parts, ", ")
}

// measure waits d and returns what happened to the load meanwhile.
func (r *run) measure(ctx context.Context, id string, d time.Duration) (window, load.Report, error) {
	before, err := r.report(ctx, id)
	if err != nil {
		return window{}, before, err
	}
	start := time.Now()
	if err := sleep(ctx, d); err != nil {
		return window{}, before, err
	}
	after, err := r.report(ctx, id)
	if err != nil {
		return window{}, after, err
	}
	w := diff(before, after)
	w.span = time.Since(start)
	return w, after, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

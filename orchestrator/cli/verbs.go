package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// Version is set at build time with -ldflags "-X .../cli.Version=v1.2.3".
var Version = "dev"

func runPs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("ps", "[flags]", `
List the groups with their ready and desired replica counts and status, then
every replica with its container state, health and address.`, stdout, stderr)
	cf := addClientFlags(c.fs)
	asJSON := c.fs.Bool("json", false, "print the API's JSON instead of tables")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return c.usageError("takes no arguments, got %q", pos)
	}
	groups, err := cf.client().Groups(ctx)
	if err != nil {
		return explain(err)
	}
	if *asJSON {
		if groups == nil {
			groups = []api.Group{}
		}
		return printJSON(stdout, api.GroupsResponse{Groups: groups})
	}
	if len(groups) == 0 {
		fmt.Fprintln(stdout, `no groups yet: create some with "flotilla apply FILE"`)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tSERVICE\tISOLATION\tREADY/DESIRED\tSTATUS")
	for _, g := range groups {
		isolation := g.Isolation
		if isolation == "" {
			isolation = spec.IsolationContainer
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\n", g.Name, g.Service, isolation, g.Ready, g.Desired, g.Status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, g := range groups {
		if g.Message != "" {
			fmt.Fprintf(stdout, "%s: %s\n", g.Name, g.Message)
		}
	}
	for _, g := range groups {
		printAutoscale(stdout, g.Name, g.Autoscale)
		if ro := g.Rollout; ro != nil && (ro.Status == controller.RolloutProgressing || ro.Status == controller.RolloutPaused) {
			fmt.Fprintf(stdout, "%s: rolling out revision %d (%s → %s, %s): %s\n", g.Name, ro.Revision, ro.FromVersion, ro.Version, ro.Strategy, ro.Progress)
		}
	}
	var replicas []controller.ReplicaStatus
	for _, g := range groups {
		replicas = append(replicas, g.Replicas...)
	}
	if len(replicas) == 0 {
		return nil
	}
	fmt.Fprintln(stdout)
	// On a runtime of several nodes, each replica's node too.
	nodes := slices.ContainsFunc(replicas, func(r controller.ReplicaStatus) bool { return r.Node != "" })
	head := "NAME\tSTATE\tHEALTH\tVERSION\tADDRESS\tRESTARTS"
	if nodes {
		head += "\tNODE"
	}
	fmt.Fprintln(tw, head)
	for _, r := range replicas {
		health := r.Health
		switch {
		case r.Pooled:
			health = "pooled" // paused in the warm pool, out of rotation
		case r.Waking:
			health = "waking (" + dash(health) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d", r.Name, dash(r.State), dash(health), dash(r.Version), dash(r.Address), r.Restarts)
		if nodes {
			fmt.Fprintf(tw, "\t%.12s", dash(r.Node))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// printAutoscale prints an autoscaled group's settings, count and its
// latest decisions and cold start.
func printAutoscale(w io.Writer, group string, a *controller.AutoscaleStatus) {
	if a == nil {
		return
	}
	fmt.Fprintf(w, "%s: autoscaled %s; wants %d", group, a.Settings, a.Want)
	if a.Settings.WarmPool > 0 {
		fmt.Fprintf(w, " + warm pool %d (%s paused)", a.Settings.WarmPool, plural(len(a.Pool), "replica"))
	}
	if a.Panicking {
		fmt.Fprint(w, ", panicking")
	}
	fmt.Fprintf(w, "; %s held now; starts: %d cold, %d from the pool, %d warm\n", plural(a.Held, "request"), a.Starts.Cold, a.Starts.Pooled, a.Starts.Warm)
	for _, d := range a.Decisions[max(len(a.Decisions)-3, 0):] {
		fmt.Fprintf(w, "  %s %s: %s\n", d.At.Local().Format("15:04:05"), d.Mode, d.Reason)
	}
	if n := len(a.ColdStarts); n > 0 {
		cs := a.ColdStarts[n-1]
		fmt.Fprintf(w, "  last cold start %s: %.0f ms from %s:", cs.At.Local().Format("15:04:05"), cs.TotalMs, cs.From)
		for _, p := range cs.Phases {
			fmt.Fprintf(w, " %s +%.0f ms;", p.Name, p.Ms)
		}
		fmt.Fprintln(w)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runScale(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("scale", "[flags] GROUP N", `
Set the desired number of replicas of an existing group to N (0 or more).
The controller then starts or removes replicas until N are running; watch it
with "flotilla ps".`, stdout, stderr)
	cf := addClientFlags(c.fs)
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return c.usageError("takes a GROUP and a number N, got %d %s", len(pos), plural(len(pos), "argument"))
	}
	name := pos[0]
	if err := checkGroupName(name); err != nil {
		return err
	}
	n, err := strconv.Atoi(pos[1])
	if err != nil || n < 0 {
		return fmt.Errorf("N must be a non-negative integer (the number of replicas), got %q", pos[1])
	}
	st, err := cf.client().Scale(ctx, name, n)
	if err != nil {
		return explain(err)
	}
	fmt.Fprintf(stdout, "scaled %s to %d %s (%d ready, %s)\n", st.Name, st.Desired, plural(st.Desired, "replica"), st.Ready, st.Status)
	return nil
}

func checkGroupName(name string) error {
	if err := spec.ValidName(name); err != nil {
		var ve *spec.ValidationError
		if errors.As(err, &ve) {
			return fmt.Errorf("group name %s", ve.Reason)
		}
		return err
	}
	return nil
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func runDown(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("down", "[flags]", `
Delete every group and remove every container and network this controller
made. Nothing else on the Docker engine is touched. The controller keeps
running; stop it with Ctrl-C.

With --leave-swarm, on the swarm runtime, the node then leaves the swarm the
controller initialised (serve --swarm-init), and the controller stops. A
swarm that was active before is never left.`, stdout, stderr)
	cf := addClientFlags(c.fs)
	leave := c.fs.Bool("leave-swarm", false, "also leave the swarm this controller initialised (serve --runtime swarm --swarm-init); the controller stops")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return c.usageError("takes no arguments, got %q", pos)
	}
	cl := cf.client()
	groups, err := cl.Groups(ctx)
	if err != nil {
		return explain(err)
	}
	var left bool
	if *leave {
		resp, err := cl.DownLeavingSwarm(ctx)
		if err != nil {
			return explain(err)
		}
		left = resp.LeftSwarm
	} else if err := cl.Down(ctx); err != nil {
		return explain(err)
	}
	if len(groups) == 0 {
		fmt.Fprintln(stdout, "there were no groups")
	} else {
		names := make([]string, len(groups))
		for i, g := range groups {
			names[i] = g.Name
		}
		fmt.Fprintf(stdout, "deleted %d %s: %s\n", len(groups), plural(len(groups), "group"), strings.Join(names, ", "))
	}
	fmt.Fprintln(stdout, "removed everything the controller owns")
	if left {
		fmt.Fprintln(stdout, "left the swarm the controller had initialised; the controller stops")
	}
	return nil
}

func runServices(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("services", "[flags]", `
List the catalogue: the services a group can run, and which other services
each one calls.`, stdout, stderr)
	cf := addClientFlags(c.fs)
	asJSON := c.fs.Bool("json", false, "print the API's JSON instead of a table")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return c.usageError("takes no arguments, got %q", pos)
	}
	svcs, err := cf.client().Services(ctx)
	if err != nil {
		return explain(err)
	}
	if *asJSON {
		if svcs == nil {
			svcs = []spec.Service{}
		}
		return printJSON(stdout, api.ServicesResponse{Services: svcs})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tNEEDS\tDESCRIPTION")
	for _, s := range svcs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, dash(strings.Join(s.Needs, ",")), s.Description)
	}
	return tw.Flush()
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("version", "", "Print the version of flotilla and of the Go it was built with.", stdout, stderr)
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return c.usageError("takes no arguments, got %q", pos)
	}
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	fmt.Fprintf(stdout, "flotilla %s (%s, %s/%s)\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

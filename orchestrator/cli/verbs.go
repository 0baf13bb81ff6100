package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
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
	var replicas []controller.ReplicaStatus
	for _, g := range groups {
		replicas = append(replicas, g.Replicas...)
	}
	if len(replicas) == 0 {
		return nil
	}
	fmt.Fprintln(stdout)
	fmt.Fprintln(tw, "NAME\tSTATE\tHEALTH\tADDRESS\tRESTARTS")
	for _, r := range replicas {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", r.Name, dash(r.State), dash(r.Health), dash(r.Address), r.Restarts)
	}
	return tw.Flush()
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
running; stop it with Ctrl-C.`, stdout, stderr)
	cf := addClientFlags(c.fs)
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
	if err := cl.Down(ctx); err != nil {
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

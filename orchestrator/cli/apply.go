package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// maxApplyFile bounds a groups file; a real one is a few lines.
const maxApplyFile = 1 << 20

// localMaxReplicas is the replica bound apply checks before sending. The
// controller may have been started with a --max-replicas above the default,
// and it enforces its own bound, so the check here only catches what no
// controller accepts.
const localMaxReplicas = math.MaxInt

func applyScenario(ctx context.Context, cl *api.Client, name string, stdout io.Writer) error {
	res, err := cl.ApplyScenario(ctx, name)
	if err != nil {
		return explain(err)
	}
	fmt.Fprintf(stdout, "scenario %s applied\n", res.Scenario)
	for _, part := range []struct {
		what  string
		names []string
	}{{"created", res.Created}, {"updated", res.Updated}, {"deleted", res.Deleted}, {"unchanged", res.Unchanged}} {
		if len(part.names) > 0 {
			fmt.Fprintf(stdout, "  %-9s %s\n", part.what, strings.Join(part.names, ", "))
		}
	}
	return nil
}

func runScenarios(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("scenarios", "[flags]", `
List the stages of the story a controller can switch to with "flotilla apply
scenario NAME", with what each shows.`, stdout, stderr)
	cf := addClientFlags(c.fs)
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return c.usageError("takes no arguments, got %q", pos)
	}
	res, err := cf.client().Scenarios(ctx)
	if err != nil {
		return explain(err)
	}
	for _, sc := range res.Scenarios {
		mark := " "
		if sc.Name == res.Current {
			mark = "*"
		}
		fmt.Fprintf(stdout, "%s %-14s %s\n", mark, sc.Name, sc.Title)
	}
	return nil
}

func runApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("apply", "[flags] FILE", `
Create or update every group of a YAML file, one after another; "-" reads the
file from standard input. The file is checked first, strictly: an unknown
field, a wrong type or an invalid group stops it before anything is sent.
Then the controller checks each group (as PUT ?dryRun=true), so one it would
refuse (a port taken, a rollout running, a kind its runtime cannot run)
stops the file before any group is applied.

A file looks like this (resources are optional):

  groups:
    - name: shop
      service: monolith
      replicas: 3
      resources:
        memoryMiB: 64
        milliCPU: 500
        pids: 64

"flotilla services" lists the services a group can run.

"flotilla apply scenario NAME" switches to one of the stages of the story
instead ("flotilla scenarios" lists them): groups the scenario lacks are
deleted, and only what changes is touched.`, stdout, stderr)
	cf := addClientFlags(c.fs)
	dryRun := c.fs.Bool("dry-run", false, "check the file and print its groups without sending them")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 2 && pos[0] == "scenario" {
		return applyScenario(ctx, cf.client(), pos[1], stdout)
	}
	if len(pos) != 1 {
		return c.usageError("takes one FILE (or - for standard input), or scenario NAME; got %d %s", len(pos), plural(len(pos), "argument"))
	}
	file, data, err := readApplyFile(pos[0])
	if err != nil {
		return err
	}
	groups, err := spec.ParseGroups(file, data, localMaxReplicas)
	if err != nil {
		return err
	}
	if err := checkOwnPort(file, cf.addr, groups); err != nil {
		return err
	}
	if *dryRun {
		for _, g := range groups {
			fmt.Fprintf(stdout, "group %s: %d %s of %s (not sent: --dry-run)\n", g.Name, g.Replicas, plural(g.Replicas, "replica"), g.Service)
		}
		return nil
	}
	cl := cf.client()
	// The controller checks every group before any is sent, so a group it
	// would refuse stops the file with nothing applied.
	for _, g := range groups {
		err := cl.CheckGroup(ctx, g)
		if errors.Is(err, api.ErrNoController) {
			return err
		}
		if err != nil {
			return fmt.Errorf("apply group %q: %w (nothing in %s was applied)", g.Name, explain(err), file)
		}
	}
	for _, g := range groups {
		st, created, err := cl.PutGroup(ctx, g)
		if errors.Is(err, api.ErrNoController) {
			return err
		}
		if err != nil {
			return fmt.Errorf("apply group %q: %w", g.Name, explain(err))
		}
		what := "updated"
		if created {
			what = "created"
		}
		fmt.Fprintf(stdout, "%s group %s: %d %s of %s\n", what, st.Name, st.Desired, plural(st.Desired, "replica"), st.Service)
	}
	return nil
}

// checkOwnPort refuses, before anything is sent, a group whose balancer
// would take the port of the controller apply talks to. The API refuses it
// as well, but only when that group's turn comes, after the groups before it
// in the file were applied. Only a controller on this machine is known to
// listen on that port of 127.0.0.1, where balancers listen.
func checkOwnPort(file, addr string, groups []spec.Group) error {
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		addr = u.Host // a base URL
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !api.IsLoopbackHost(host) {
		return nil
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil
	}
	for _, g := range groups {
		if g.Balancer.Port == p {
			return fmt.Errorf("%s: group %q: balancer.port: %d is the port of the controller's API at %s; pick another, or leave it out for a free one", file, g.Name, p, addr)
		}
	}
	return nil
}

func readApplyFile(path string) (name string, data []byte, err error) {
	var r io.Reader
	if path == "-" {
		name, r = "<stdin>", Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return "", nil, err
		}
		defer f.Close()
		name, r = path, f
	}
	data, err = io.ReadAll(io.LimitReader(r, maxApplyFile+1))
	if err != nil {
		return "", nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxApplyFile {
		return "", nil, fmt.Errorf("%s is larger than %d bytes; a groups file is a few lines", name, maxApplyFile)
	}
	return name, data, nil
}

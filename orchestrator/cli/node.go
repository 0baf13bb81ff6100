package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/replica"
)

// nodeVerbs are the availabilities "flotilla node" sets, by subcommand.
var nodeVerbs = map[string]struct{ availability, done string }{
	"drain":    {replica.AvailabilityDrain, "drained: its replicas move to other nodes, and it takes no new ones"},
	"pause":    {replica.AvailabilityPause, "paused: it keeps its replicas and takes no new ones"},
	"activate": {replica.AvailabilityActive, "active: it takes new replicas again (the runtime does not move running ones back by itself)"},
}

func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("node", "[flags] ls | drain NODE | pause NODE | activate NODE", `
Show the machines the runtime places replicas on, with the replicas each
holds, and change whether a node takes replicas. On the swarm runtime
(flotilla serve --runtime swarm) these are the swarm's nodes; on the
engine runtime there is one, the local engine, and nothing to drain.

  flotilla node ls              every node: role, state, availability,
                                CPUs, memory and its replicas
  flotilla node drain NODE      move NODE's replicas to other nodes; it
                                takes no new ones (maintenance)
  flotilla node pause NODE      NODE keeps its replicas and takes no new ones
  flotilla node activate NODE   NODE takes new replicas again

NODE is a node's name or ID, as "flotilla node ls" lists them.`, stdout, stderr)
	cf := addClientFlags(c.fs)
	asJSON := c.fs.Bool("json", false, "print the API's JSON instead of a table")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return c.usageError("takes ls, drain NODE, pause NODE or activate NODE")
	}
	cl := cf.client()
	sub := pos[0]
	if sub == "ls" || sub == "list" {
		if len(pos) != 1 {
			return c.usageError("ls takes no arguments; got %q", pos[1:])
		}
		st, err := cl.Nodes(ctx)
		if err != nil {
			return explain(err)
		}
		if *asJSON {
			return printJSON(stdout, st)
		}
		return printNodes(stdout, st)
	}
	verb, ok := nodeVerbs[sub]
	if !ok {
		return c.usageError("unknown subcommand %q: ls, drain, pause or activate", sub)
	}
	if len(pos) != 2 {
		return c.usageError("%s takes one NODE, its name or ID as \"flotilla node ls\" lists them", sub)
	}
	node := pos[1]
	n, err := cl.SetNodeAvailability(ctx, node, verb.availability)
	if err != nil {
		return explainNode(err, sub, node)
	}
	if *asJSON {
		return printJSON(stdout, n)
	}
	fmt.Fprintf(stdout, "node %s is %s\n", n.Name, verb.done)
	if sub == "drain" && len(n.Replicas) > 0 {
		fmt.Fprintf(stdout, "%s still on it; watch them move with \"flotilla node ls\" or on the dashboard\n", count(len(n.Replicas), "replica is", "replicas are"))
	}
	return nil
}

// explainNode says what went wrong with a node command and how to go on.
func explainNode(err error, sub, node string) error {
	var apiErr *api.APIError
	if !errors.As(err, &apiErr) {
		return explain(err)
	}
	switch apiErr.StatusCode {
	case http.StatusConflict:
		return fmt.Errorf("cannot %s node %s: %w\n(this controller runs every replica on the one local engine; a swarm has nodes to %s)", sub, node, err, sub)
	case http.StatusNotFound:
		return fmt.Errorf("cannot %s node %s: %w; \"flotilla node ls\" lists them", sub, node, err)
	}
	return explain(err)
}

func printNodes(w io.Writer, st controller.NodesStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tSTATE\tAVAILABILITY\tCPUS\tMEMORY\tREPLICAS")
	for _, n := range st.Nodes {
		role := n.Role
		if n.Leader {
			role += " (leader)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, role, dash(n.State), dash(n.Availability), cpus(n.NanoCPUs), memory(n.MemoryBytes), replicaList(n.Replicas))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.Unassigned) > 0 {
		fmt.Fprintf(w, "\n%s: %s\n", count(len(st.Unassigned), "replica waits for a node it may run on", "replicas wait for a node they may run on"), replicaNames(st.Unassigned))
	}
	if st.Error != "" {
		fmt.Fprintf(w, "\nthe last reading of the nodes failed, so these are the one before: %s\n", st.Error)
	}
	if st.Runtime == controller.RuntimeEngine {
		fmt.Fprintln(w, "\nthe engine runtime runs every replica on this one local engine: nothing to drain; flotilla serve --runtime swarm spreads them over a swarm's nodes")
	}
	return nil
}

// replicaList is a node's replicas for a table cell: their count, then
// their names.
func replicaList(reps []controller.NodeReplica) string {
	if len(reps) == 0 {
		return "0"
	}
	return strconv.Itoa(len(reps)) + ": " + replicaNames(reps)
}

// replicaNames names the first few replicas, with their state if they do
// not run.
func replicaNames(reps []controller.NodeReplica) string {
	const show = 6
	var names []string
	for i, r := range reps {
		if i == show {
			names = append(names, fmt.Sprintf("+%d more", len(reps)-show))
			break
		}
		name := r.Name
		if r.State != "" && r.State != replica.StateRunning {
			name += " (" + r.State + ")"
		}
		names = append(names, name)
	}
	return strings.Join(names, " ")
}

func cpus(nano int64) string {
	if nano <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(nano)/1e9, 'f', -1, 64)
}

func memory(b int64) string {
	if b <= 0 {
		return "-"
	}
	return byteSize(uint64(b))
}

// count is n with one or many after it, by n.
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/flotilla/flotilla/orchestrator/faults"
)

func runFault(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("fault", "[flags] KIND GROUP | ls | revert ID", `
Break something on purpose, and put it right again.

Kinds: `+strings.Join(faults.Kinds, ", ")+`.
  kill, pause, partition   act on one replica (--replica, or the highest number)
  crash-feature            the next request to --feature panics and kills the process
  latency                  --latency-ms added to --feature (or every path)
  errors                   --error-rate of requests to --feature (or every path) answer 500
  poison                   a subscriber of the bus (notifications, inventory, analytics,
                           fulfillment) fails its next --messages events at every attempt:
                           after their attempts they end as dead letters
  slow-consumer            a subscriber takes --latency-ms more per event

  flotilla fault crash-feature shop --feature deals
  flotilla fault latency cart --feature cart --latency-ms 300
  flotilla fault poison notifications --messages 2
  flotilla fault slow-consumer inventory --latency-ms 500
  flotilla fault ls
  flotilla fault revert f-1a2b3c4d5e6f`, stdout, stderr)
	cf := addClientFlags(c.fs)
	replica := c.fs.String("replica", "", "the replica to break, like web-2")
	feature := c.fs.String("feature", "", "the shop feature: "+strings.Join(faults.Features, ", "))
	latency := c.fs.Int("latency-ms", 0, "added latency in milliseconds, for latency (per request) and slow-consumer (per event)")
	messages := c.fs.Int("messages", 0, "how many events fail, for poison")
	rate := c.fs.Float64("error-rate", 0, "share of requests that fail, from 0 to 1, for errors")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	cl := cf.client()
	switch {
	case len(pos) == 1 && pos[0] == "ls":
		faults, err := cl.Faults(ctx)
		if err != nil {
			return explain(err)
		}
		if len(faults) == 0 {
			fmt.Fprintln(stdout, "no faults")
		}
		for _, f := range faults {
			state := "active"
			if !f.Active {
				state = "done"
			}
			fmt.Fprintf(stdout, "%s  %-13s %-8s %-6s %s\n", f.ID, f.Kind, f.Group, state, f.Message)
		}
		return nil
	case len(pos) == 2 && pos[0] == "revert":
		f, err := cl.RevertFault(ctx, pos[1])
		if err != nil {
			return explain(err)
		}
		fmt.Fprintf(stdout, "reverted %s: %s\n", f.ID, f.Message)
		return nil
	case len(pos) != 2:
		return c.usageError("takes KIND GROUP, or ls, or revert ID")
	}
	f, err := cl.InjectFault(ctx, faults.Spec{Kind: pos[0], Group: pos[1], Replica: *replica, Feature: *feature, LatencyMs: *latency, ErrorRate: *rate, Messages: *messages})
	if err != nil {
		return explain(err)
	}
	fmt.Fprintf(stdout, "fault %s: %s\n", f.ID, f.Message)
	if f.Active {
		fmt.Fprintf(stdout, "revert it with: flotilla fault revert %s\n", f.ID)
	}
	return nil
}

package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/load"
)

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("load", "[flags] GROUP | stop ID | ls", `
Send load at a group from the controller's load generator, on 127.0.0.1
only: at the group's balancer, or, for a group without one, at its replicas
with each shopper pinned to one. By default it waits for the run to end and
prints its report; --detach returns at once with the run's id.

  flotilla load shop --rate 200 --duration 30s
  flotilla load gateway --journey --shoppers 10
  flotilla load stop ld-1a2b3c
  flotilla load ls`, stdout, stderr)
	cf := addClientFlags(c.fs)
	rate := c.fs.Int("rate", 50, "requests per second")
	conc := c.fs.Int("concurrency", 16, "requests in flight at most")
	dur := c.fs.Duration("duration", 10*time.Second, "how long to run")
	paths := c.fs.String("paths", "/catalog", "comma-separated `paths` to cycle through")
	shoppers := c.fs.Int("shoppers", 0, "act as this many shoppers, each with its own cookie")
	journey := c.fs.Bool("journey", false, "shoppers walk journeys: browse, deals, add to cart, cart, checkout")
	detach := c.fs.Bool("detach", false, "start the run and return its id without waiting")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	cl := cf.client()
	switch {
	case len(pos) == 1 && pos[0] == "ls":
		var out api.LoadsResponse
		if err := cl.Get(ctx, "/api/v1/load", &out); err != nil {
			return explain(err)
		}
		for _, r := range out.Runs {
			fmt.Fprintf(stdout, "%s  %-8s  %s  sent %d, ok %d, failed %d\n", r.ID, r.State, target(r), r.Sent, r.Succeeded, r.Failed)
		}
		return nil
	case len(pos) == 2 && pos[0] == "stop":
		rep, err := cl.StopLoad(ctx, pos[1])
		if err != nil {
			return explain(err)
		}
		printReport(stdout, rep)
		return nil
	case len(pos) != 1:
		return c.usageError("takes a GROUP, or stop ID, or ls")
	}
	req := map[string]any{"group": pos[0], "rate": *rate, "concurrency": *conc, "duration": dur.String()}
	if *shoppers > 0 {
		req["shoppers"] = *shoppers
	}
	if *journey {
		req["journey"] = true
	} else {
		req["paths"] = strings.Split(*paths, ",")
	}
	rep, err := cl.StartLoad(ctx, req)
	if err != nil {
		return explain(err)
	}
	fmt.Fprintf(stdout, "load run %s started at %s\n", rep.ID, target(rep))
	if *detach {
		return nil
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for rep.State == "running" {
		select {
		case <-ctx.Done():
			rep, err = cl.StopLoad(context.Background(), rep.ID)
			if err != nil {
				return explain(err)
			}
		case <-tick.C:
			if rep, err = cl.Load(ctx, rep.ID); err != nil {
				return explain(err)
			}
			fmt.Fprintf(stdout, "  %s sent %d, ok %d, failed %d, p99 %.1f ms\n", rep.State, rep.Sent, rep.Succeeded, rep.Failed, rep.LatencyMs.P99)
		}
	}
	printReport(stdout, rep)
	return nil
}

func target(r load.Report) string {
	if r.Spec.Target != "" {
		return r.Spec.Target
	}
	return strings.Join(r.Spec.Targets, ",")
}

func printReport(w io.Writer, r load.Report) {
	fmt.Fprintf(w, "run %s %s: sent %d, ok %d, failed %d, %.0f req/s; latency p50 %.2f ms, p99 %.2f ms\n",
		r.ID, r.State, r.Sent, r.Succeeded, r.Failed, r.RatePerSec, r.LatencyMs.P50, r.LatencyMs.P99)
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "  errors: %v\n", r.Errors)
	}
	names := make([]string, 0, len(r.ByReplica))
	for n := range r.ByReplica {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %d\n", n, r.ByReplica[n])
	}
	if r.Journeys != nil && r.Steps != nil {
		s := r.Steps
		fmt.Fprintf(w, "  journeys: %d succeeded, %d failed (%.0f%%)\n", r.Journeys.Succeeded, r.Journeys.Failed, r.Journeys.SuccessRate*100)
		fmt.Fprintf(w, "  steps: browse %.0f%%, deals %.0f%%, add %.0f%%, cart %.0f%% (%.0f%% complete), checkout %.0f%%\n",
			s.Browse.SuccessRate*100, s.Deals.SuccessRate*100, s.Add.SuccessRate*100, s.Cart.SuccessRate*100, s.Cart.CompleteRate*100, s.Checkout.SuccessRate*100)
	}
}

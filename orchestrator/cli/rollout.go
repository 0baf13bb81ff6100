package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/controller"
)

// watchEvery is how often "rollout status --watch" asks; watchFor how long
// it watches at most. Tests shorten both.
var (
	watchEvery = time.Second
	watchFor   = 5 * time.Minute
)

func runRollout(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("rollout", "[flags] status|history|undo|pause|resume GROUP", `
Follow and steer the rollouts of a group. A change of a group's template
(its version, flaw, resources, settings, isolation or service) while it has
replicas starts a rollout, shaped by the group's "rollout" settings.

  flotilla rollout status GROUP     the latest rollout in one line: strategy,
                                    status, revision from→to, versions,
                                    progress, share of traffic on the new
                                    version and each version's error rate;
                                    --watch redraws it until the rollout ends
                                    (at most 5 minutes), then exits 0 if it
                                    completed, 1 if it failed or was rolled back
  flotilla rollout history GROUP    the rollouts, newest first, then the
                                    revisions the group ran (the last 10)
  flotilla rollout undo GROUP       roll back to the revision before, or to
                                    revision N with --to N: a rollout back,
                                    with the same guarantees
  flotilla rollout pause GROUP      hold the running rollout where it is
  flotilla rollout resume GROUP     let it go on`, stdout, stderr)
	cf := addClientFlags(c.fs)
	asJSON := c.fs.Bool("json", false, "print the API's JSON instead of text")
	watch := c.fs.Bool("watch", false, "status: redraw the progress until the rollout ends")
	to := c.fs.Int("to", 0, "undo: the `revision` to roll back to (default: the one before)")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	subs := []string{"status", "history", "undo", "pause", "resume"}
	switch {
	case len(pos) == 0:
		return c.usageError("takes a subcommand (%s) and a GROUP, e.g. \"flotilla rollout status web\"", strings.Join(subs, ", "))
	case !slices.Contains(subs, pos[0]):
		return c.usageError("unknown subcommand %q; one of %s", pos[0], strings.Join(subs, ", "))
	case len(pos) != 2:
		return c.usageError("%s takes one GROUP, e.g. \"flotilla rollout %s web\"; got %d %s", pos[0], pos[0], len(pos)-1, plural(len(pos)-1, "argument"))
	}
	sub, name := pos[0], pos[1]
	set := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["to"] && sub != "undo" {
		return c.usageError("--to is for undo only: \"flotilla rollout undo %s --to N\"", name)
	}
	if set["to"] && *to < 1 {
		return c.usageError("--to takes a revision number, 1 or more, as \"flotilla rollout history %s\" lists them; got %d", name, *to)
	}
	if *watch && sub != "status" {
		return c.usageError("--watch is for status only: \"flotilla rollout status %s --watch\"", name)
	}
	if *watch && *asJSON {
		return c.usageError("--watch draws a live line; leave out --json, or --watch for the JSON")
	}
	if err := checkGroupName(name); err != nil {
		return err
	}
	cl := cf.client()
	var ro controller.RolloutStatus
	switch sub {
	case "status":
		if *watch {
			return watchRollout(ctx, cl, name, stdout)
		}
		h, err := cl.Rollouts(ctx, name)
		if err != nil {
			return explain(err)
		}
		if *asJSON {
			if len(h.Rollouts) == 0 {
				return printJSON(stdout, struct{}{})
			}
			return printJSON(stdout, h.Rollouts[0])
		}
		fmt.Fprintln(stdout, rolloutLine(name, h))
		return nil
	case "history":
		h, err := cl.Rollouts(ctx, name)
		if err != nil {
			return explain(err)
		}
		if *asJSON {
			return printJSON(stdout, h)
		}
		return printRolloutHistory(stdout, name, h)
	case "undo":
		ro, err = cl.Rollback(ctx, name, *to)
		if errors.Is(err, controller.ErrConflict) {
			return fmt.Errorf("%w; \"flotilla rollout history %s\" lists its revisions", explain(err), name)
		}
	case "pause":
		ro, err = cl.PauseRollout(ctx, name)
	case "resume":
		ro, err = cl.ResumeRollout(ctx, name)
	}
	if err != nil {
		return explain(err)
	}
	if *asJSON {
		return printJSON(stdout, ro)
	}
	switch sub {
	case "undo":
		if ro.Revision == 0 {
			fmt.Fprintf(stdout, "%s rolled back: its replicas are remade as they were\n", name)
			return nil
		}
		fmt.Fprintf(stdout, "%s rolling back to %s as revision %d (from revision %d, %s): %s\n", name, ro.Version, ro.Revision, ro.From, ro.Strategy, dash(ro.Reason))
		fmt.Fprintf(stdout, "follow it with \"flotilla rollout status %s --watch\"\n", name)
	default:
		fmt.Fprintf(stdout, "rollout of %s to revision %d (%s) %sd: %s\n", name, ro.Revision, ro.Version, sub, dash(ro.Progress))
	}
	return nil
}

// rolloutLine is a group's latest rollout in one line.
func rolloutLine(name string, h api.RolloutsResponse) string {
	if len(h.Rollouts) == 0 {
		if len(h.Revisions) == 0 {
			return name + ": no revision yet"
		}
		r := h.Revisions[0]
		return fmt.Sprintf("%s: revision %d (%s), no rollout yet: change its version to start one", name, r.Revision, r.Version)
	}
	return statusLine(name, h.Rollouts[0])
}

func statusLine(name string, ro controller.RolloutStatus) string {
	var b strings.Builder
	what := "rollout"
	if ro.Rollback {
		what = "rollback"
	}
	fmt.Fprintf(&b, "%s: %s %s %s, revision %s→%d (%s→%s)", name, ro.Strategy, what, ro.Status, fromRevision(ro), ro.Revision, dash(ro.FromVersion), ro.Version)
	if ro.Progress != "" {
		fmt.Fprintf(&b, ": %s", ro.Progress)
	}
	if len(ro.Steps) > 0 && ro.Step > 0 {
		fmt.Fprintf(&b, "; step %d of %d", ro.Step, len(ro.Steps))
	}
	fmt.Fprintf(&b, "; share %d%%", ro.Share)
	if len(ro.ErrorRates) > 0 {
		var rates []string
		for _, v := range slices.Sorted(maps.Keys(ro.ErrorRates)) {
			rates = append(rates, fmt.Sprintf("%s %.1f%%", v, 100*ro.ErrorRates[v]))
		}
		fmt.Fprintf(&b, "; errors %s", strings.Join(rates, ", "))
	}
	if ro.Reason != "" && ro.Status != controller.RolloutProgressing && ro.Status != controller.RolloutPaused {
		fmt.Fprintf(&b, " (%s)", ro.Reason)
	}
	return b.String()
}

func fromRevision(ro controller.RolloutStatus) string {
	if ro.From == 0 {
		return "-"
	}
	return strconv.Itoa(ro.From)
}

// watchRollout redraws the latest rollout's line until it ends or watchFor
// passes. It fails unless the rollout completed.
func watchRollout(ctx context.Context, cl *api.Client, name string, w io.Writer) error {
	h, err := cl.Rollouts(ctx, name)
	if err != nil {
		return explain(err)
	}
	if len(h.Rollouts) == 0 {
		fmt.Fprintln(w, rolloutLine(name, h))
		return nil
	}
	watched := h.Rollouts[0].Revision
	deadline := time.Now().Add(watchFor)
	tick := time.NewTicker(watchEvery)
	defer tick.Stop()
	last := ""
	for {
		i := slices.IndexFunc(h.Rollouts, func(r controller.RolloutStatus) bool { return r.Revision == watched })
		if i < 0 {
			fmt.Fprintln(w)
			return fmt.Errorf("rollout to revision %d of %s is no longer in its history", watched, name)
		}
		ro := h.Rollouts[i]
		if line := statusLine(name, ro); line != last {
			// Redraw in place; pad over what a longer line left.
			fmt.Fprintf(w, "\r%s%s", line, strings.Repeat(" ", max(len(last)-len(line), 0)))
			last = line
		}
		switch ro.Status {
		case controller.RolloutComplete:
			fmt.Fprintln(w)
			return nil
		case controller.RolloutFailed, controller.RolloutRolledBack, controller.RolloutSuperseded:
			fmt.Fprintln(w)
			if i > 0 {
				fmt.Fprintln(w, statusLine(name, h.Rollouts[0]))
			}
			return fmt.Errorf("rollout of %s to revision %d (%s) %s: %s", name, ro.Revision, ro.Version, ro.Status, dash(ro.Reason))
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(w)
			return fmt.Errorf("rollout of %s to revision %d still %s after %s; watch on with \"flotilla rollout status %s --watch\"", name, ro.Revision, ro.Status, watchFor, name)
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(w)
			return ctx.Err()
		case <-tick.C:
		}
		if h, err = cl.Rollouts(ctx, name); err != nil {
			fmt.Fprintln(w)
			return explain(err)
		}
	}
}

func printRolloutHistory(w io.Writer, name string, h api.RolloutsResponse) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(h.Rollouts) == 0 {
		fmt.Fprintf(w, "%s has not rolled out yet: change its version to start a rollout\n", name)
	} else {
		fmt.Fprintln(tw, "REVISION\tFROM\tVERSION\tSTRATEGY\tSTATUS\tSTARTED\tREASON")
		for _, ro := range h.Rollouts {
			status := ro.Status
			if ro.Rollback {
				status += " (rollback)"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", ro.Revision, fromRevision(ro), ro.Version, ro.Strategy, status, ro.Started.Local().Format("15:04:05"), dash(ro.Reason))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "REVISION\tVERSION\tCREATED")
	for i, r := range h.Revisions {
		cur := ""
		if i == 0 {
			cur = " (current)"
		}
		fmt.Fprintf(tw, "%d%s\t%s\t%s\n", r.Revision, cur, r.Version, r.Created.Local().Format("15:04:05"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(h.Revisions) > 1 {
		fmt.Fprintf(w, "\nroll back with \"flotilla rollout undo %s\", or to one of these with --to N\n", name)
	}
	return nil
}

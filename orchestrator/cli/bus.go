package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/flotilla/flotilla/orchestrator/bus"
)

func runBus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("bus", "[flags] [deadletters | replay SEQ]", `
Show the shop's message bus as the controller reads it: each stream with
its messages and publish rate, each consumer (a subscriber service, whose
replicas share it) with its lag (messages not yet delivered), the messages
delivered and waiting for an ack, those delivered more than once, and the
dead letters: messages a consumer gave up on after its MaxDeliver attempts.

  flotilla bus                  streams, consumers and a count of dead letters
  flotilla bus deadletters      every dead letter, with its reason and event
  flotilla bus replay SEQ       publish dead letter SEQ's message again to its
                                subject (as a new message, so the stream does
                                not drop it as a repeat) and delete it; the
                                subscribers that already applied it count a
                                duplicate, the one that failed applies it`, stdout, stderr)
	cf := addClientFlags(c.fs)
	asJSON := c.fs.Bool("json", false, "print the API's JSON instead of tables")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	cl := cf.client()
	switch {
	case len(pos) == 2 && pos[0] == "replay":
		seq, err := strconv.ParseUint(pos[1], 10, 64)
		if err != nil || seq == 0 {
			return c.usageError("replay takes the SEQ of a dead letter, a number from 1, as \"flotilla bus deadletters\" lists them; got %q", pos[1])
		}
		res, err := cl.ReplayDeadLetter(ctx, seq)
		if err != nil {
			return explain(err)
		}
		if *asJSON {
			return printJSON(stdout, res)
		}
		d := res.Replayed
		fmt.Fprintf(stdout, "replayed dead letter %d: %s (event %s, %s seq %d) published again to %s as %s\n",
			d.Seq, dash(d.Subject), dash(d.EventID), d.Stream, d.StreamSeq, res.Subject, res.MsgID)
		fmt.Fprintf(stdout, "%s gets it again; the subscribers that already applied %s count it as a duplicate\n", dash(d.Consumer), dash(d.EventID))
		return nil
	case len(pos) == 1 && pos[0] == "replay":
		return c.usageError("replay takes the SEQ of a dead letter, as \"flotilla bus deadletters\" lists them")
	case len(pos) == 1 && pos[0] == "deadletters", len(pos) == 0:
	default:
		return c.usageError("takes nothing, deadletters, or replay SEQ; got %q", pos)
	}

	st, err := cl.Bus(ctx)
	if err != nil {
		return explain(err)
	}
	if *asJSON {
		if len(pos) == 1 {
			if st.Dead == nil {
				st.Dead = []bus.DeadLetter{}
			}
			return printJSON(stdout, struct {
				Dead []bus.DeadLetter `json:"deadLetters"`
			}{st.Dead})
		}
		return printJSON(stdout, st)
	}
	if !st.Up {
		fmt.Fprintf(stdout, "the bus cannot be read: %s\n", st.Error)
		return nil
	}
	if len(pos) == 1 {
		return printDeadLetters(stdout, st.Dead)
	}
	return printBus(stdout, st)
}

func printBus(w io.Writer, st bus.Status) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tSUBJECTS\tKIND\tMESSAGES\tBYTES\tFIRST-LAST\tPUBLISHED/S")
	for _, s := range st.Streams {
		kind := "fanout"
		if s.WorkQueue {
			kind = "work queue"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d-%d\t%.1f\n", s.Name, strings.Join(s.Subjects, ","), kind, s.Messages, byteSize(s.Bytes), s.FirstSeq, s.LastSeq, s.PublishedPerSec)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "CONSUMER\tGROUP\tLAG\tACK PENDING\tREDELIVERED\tWAITING\tDELIVERED\tACK FLOOR\tACKED/S\tMAX DELIVER")
	for _, s := range st.Streams {
		for _, c := range s.Consumers {
			group := c.Group
			if group == "" {
				group = "(none runs)"
			}
			fmt.Fprintf(tw, "%s/%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%d\n", s.Name, c.Name, group, c.Pending, c.AckPending, c.Redelivered, c.Waiting, c.Delivered, c.AckFloor, c.AckedPerSec, c.MaxDeliver)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	switch n := len(st.Dead); n {
	case 0:
		fmt.Fprintln(w, "no dead letters")
	default:
		by := map[string]int{}
		var order []string
		for _, d := range st.Dead {
			k := d.Stream + "/" + d.Consumer
			if by[k] == 0 {
				order = append(order, k)
			}
			by[k]++
		}
		var parts []string
		for _, k := range order {
			parts = append(parts, fmt.Sprintf("%d of %s", by[k], k))
		}
		fmt.Fprintf(w, "%d dead letters (%s): list them with \"flotilla bus deadletters\", replay one with \"flotilla bus replay SEQ\"\n", n, strings.Join(parts, ", "))
	}
	return nil
}

func printDeadLetters(w io.Writer, dead []bus.DeadLetter) error {
	if len(dead) == 0 {
		fmt.Fprintln(w, "no dead letters: no consumer gave up on a message")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tCONSUMER\tMESSAGE\tEVENT\tREASON\tDATA")
	for _, d := range dead {
		data := d.Data
		if len(data) > 40 {
			data = data[:40] + "…"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s/%s\t%s seq %d\t%s\t%s\t%s\n", d.Seq, d.Time.Local().Format("15:04:05"), d.Stream, dash(d.Consumer), dash(d.Subject), d.StreamSeq, dash(d.EventID), d.Reason, dash(strings.ReplaceAll(data, "\n", " ")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nreplay one with \"flotilla bus replay SEQ\" once what made it fail is put right")
	return nil
}

// byteSize is n bytes for people: 512B, 3.1KiB, 2.0MiB.
func byteSize(n uint64) string {
	switch {
	case n < 1<<10:
		return strconv.FormatUint(n, 10) + "B"
	case n < 1<<20:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
}

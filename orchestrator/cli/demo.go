package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/demo"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("demo", "[flags] NAME|all", `
Walk through a stage of the story on a real controller: apply its scenario,
run shopper journeys, break something, narrate what happens and where to look
in the dashboard, and check that the lesson really happened (a demo whose
lesson did not show fails).

The demos are: `+fmt.Sprint(demo.Names())+`.

A demo uses the controller at --addr. If none answers there, it starts one
(with a state directory of its own), and when it ends it removes what that
controller made and stops it. A running controller is left running, but its
groups are switched to the demo's scenario.`, stdout, stderr)
	cf := addClientFlags(c.fs)
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return c.usageError("takes one demo name, or all")
	}
	names := pos
	if pos[0] == "all" {
		names = demo.Names()
	}
	cl := cf.client()
	demo.SwarmController = startSwarmController
	stop, err := ensureController(ctx, cl, stdout)
	if err != nil {
		return err
	}
	defer stop()
	var failed []string
	for _, name := range names {
		if err := demo.Run(ctx, name, cl, stdout); err != nil {
			if ctx.Err() != nil {
				return err
			}
			failed = append(failed, name)
		}
	}
	fmt.Fprintf(stdout, "\ndemos: %d passed, %d failed\n", len(names)-len(failed), len(failed))
	if len(failed) > 0 {
		return fmt.Errorf("the lesson did not show in: %s", strings.Join(failed, ", "))
	}
	return nil
}

// ensureController returns at once if a controller answers; otherwise it
// starts one from this binary and returns a function that removes what that
// controller made and stops it.
func ensureController(ctx context.Context, cl *api.Client, stdout io.Writer) (func(), error) {
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := cl.Healthz(hctx)
	cancel()
	if err == nil {
		fmt.Fprintf(stdout, "Using the controller at %s.\n", cl.Addr)
		return func() {}, nil
	}
	if !errors.Is(err, api.ErrNoController) {
		return nil, err
	}
	return startController(ctx, cl, stdout, false)
}

// startSwarmController starts a controller on the swarm runtime at a free
// loopback port, for the swarm demo under a controller of the engine
// runtime. It initialises a single-node swarm if none is active, and its
// stop leaves only that swarm.
func startSwarmController(ctx context.Context, say func(format string, args ...any)) (*api.Client, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cl := &api.Client{Addr: addr}
	stop, err := startController(ctx, cl, sayWriter(say), true)
	if err != nil {
		return nil, nil, err
	}
	return cl, stop, nil
}

// sayWriter turns a narrator into a writer of whole lines.
type sayWriter func(format string, args ...any)

func (w sayWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w("%s", line)
	}
	return len(p), nil
}

// startController starts a controller from this binary at cl.Addr, with
// a state directory and project of its own (on the swarm runtime, with
// --swarm-init), and returns a function that removes what it made (and
// leaves the swarm it initialised) and stops it.
func startController(ctx context.Context, cl *api.Client, stdout io.Writer, swarm bool) (func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to start a controller: %w", err)
	}
	dir, err := os.MkdirTemp("", "flotilla-demo-")
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "controller.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// A project of its own, so it never meets another controller's network.
	project := "flotilla-demo-" + strings.TrimPrefix(filepath.Base(dir), "flotilla-demo-")
	args := []string{"serve", "--addr", cl.Addr, "--state-dir", filepath.Join(dir, "state"), "--project", project}
	if swarm {
		args = append(args, "--runtime", RuntimeSwarm, "--swarm-init")
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start a controller: %w", err)
	}
	if swarm {
		fmt.Fprintf(stdout, "Started a controller on the swarm runtime at %s (log: %s).\n", cl.Addr, logPath)
	} else {
		fmt.Fprintf(stdout, "No controller answered at %s: started one (log: %s).\n", cl.Addr, logPath)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		select {
		case <-exited:
			// It died under the demo: what it said last is the only clue,
			// and the folder goes below.
			log, _ := os.ReadFile(logPath)
			fmt.Fprintf(stdout, "The controller the demo started exited early; the end of its log:\n%s\n", lastLines(log, 40))
		default:
		}
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if swarm {
			// Leaves the swarm only if this controller initialised it;
			// one that was active before gets a 409 and a plain down.
			resp, err := cl.DownLeavingSwarm(dctx)
			var ae *api.APIError
			switch {
			case err == nil && resp.LeftSwarm:
				fmt.Fprintln(stdout, "The controller removed what it made and left the swarm it had initialised.")
			case errors.As(err, &ae) && ae.StatusCode == 409:
				err = cl.Down(dctx)
			}
			if err != nil {
				fmt.Fprintf(stdout, "removing the demo's services: %v\n", err)
			}
		} else if err := cl.Down(dctx); err != nil {
			fmt.Fprintf(stdout, "removing the demo's containers: %v\n", err)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		os.RemoveAll(dir)
		fmt.Fprintln(stdout, "Stopped the controller the demo started, and removed what it made.")
	}
	deadline := time.Now().Add(5 * time.Minute) // the first start builds the images
	for {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := cl.Healthz(hctx)
		cancel()
		if err == nil {
			return stop, nil
		}
		select {
		case <-exited:
			deadline = time.Time{}
		default:
		}
		if time.Now().After(deadline) {
			stop()
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("the controller did not come up: %v\n%s", err, log)
		}
		select {
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// lastLines is the last n lines of b.
func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

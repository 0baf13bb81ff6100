package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

// Roles that are not the shop: the members of a pod around the service.
const (
	// rolePause holds a pod's namespaces: it does nothing until it is told
	// to stop, so the pod's network, PID and IPC namespaces outlive any
	// other member's restart.
	rolePause = "pause"
	// roleAgent is a pod's visible sidecar: it polls the service on the
	// pod's localhost and prints one line per poll, with the number of
	// processes it sees, so a learner sees that the members share one PID
	// namespace.
	roleAgent = "agent"
)

// pause waits for ctx, which a stop signal cancels.
func pause(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// agentPeriod is how often the agent polls the service.
const agentPeriod = 2 * time.Second

// agent polls http://127.0.0.1:PORT/healthz until ctx is done, printing a
// line per poll to stdout.
func agent(ctx context.Context, stdout io.Writer, period time.Duration) error {
	url := "http://127.0.0.1:" + envOr("PORT", "8080") + "/healthz"
	replica := envOr("FLOTILLA_REPLICA", "?")
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		status := "unreachable"
		start := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err == nil {
			if resp, err := client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				status = strconv.Itoa(resp.StatusCode)
			}
		}
		fmt.Fprintf(stdout, "agent replica=%s healthz=%s ms=%.1f processes=%d\n",
			replica, status, float64(time.Since(start).Microseconds())/1000, countProcesses("/proc"))
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// countProcesses counts the numeric entries of a proc file system: the
// processes of the PID namespace it belongs to. -1 if it cannot be read.
func countProcesses(proc string) int {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() {
			n++
		}
	}
	return n
}

package shop

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
)

// dependency is a service a role calls, probed at baseURL + "/healthz",
// or by check when it is not reached over HTTP (the bus).
type dependency struct {
	name     string
	baseURL  string
	check    func(ctx context.Context) error
	optional bool // reported, but the role is ready without it
}

// readiness answers GET /readyz: ready when every dependency that is not
// optional answers 200 on /healthz. A balancer may probe often, so one
// result is reused for a while instead of probing the dependencies on every
// request.
type readiness struct {
	deps   []dependency
	client *http.Client // carries the probe timeout
	ttl    time.Duration

	mu      sync.Mutex // held while probing, so concurrent requests share one probe
	checked time.Time
	last    readyReport
}

// readyReport is the body of a /readyz reply.
type readyReport struct {
	Status       string            `json:"status"`                 // "ready" or "unavailable"
	Error        string            `json:"error,omitempty"`        // names the failing required dependencies
	Failing      []string          `json:"failing,omitempty"`      // the failing required dependencies, by name alone
	Dependencies map[string]string `json:"dependencies,omitempty"` // name: "ok" or what failed
}

func newReadiness(deps []dependency, client *http.Client, ttl time.Duration) *readiness {
	return &readiness{deps: deps, client: client, ttl: ttl}
}

func (rd *readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rep := rd.report(r.Context())
	status := http.StatusOK
	if rep.Error != "" {
		status = http.StatusServiceUnavailable
	}
	httpjson.Write(w, status, rep)
}

// report returns the cached result if fresh, else probes every dependency.
func (rd *readiness) report(ctx context.Context) readyReport {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if !rd.checked.IsZero() && time.Since(rd.checked) < rd.ttl {
		return rd.last
	}

	// The result is shared, so one caller hanging up must not fail it.
	ctx = context.WithoutCancel(ctx)
	rep := readyReport{Status: "ready"}
	if len(rd.deps) > 0 {
		rep.Dependencies = make(map[string]string, len(rd.deps))
	}
	// Probe all at once, so the reply takes one probe timeout at most.
	errs := make([]error, len(rd.deps))
	var wg sync.WaitGroup
	for i, d := range rd.deps {
		wg.Go(func() { errs[i] = rd.probe(ctx, d) })
	}
	wg.Wait()

	var failing []string
	for i, d := range rd.deps {
		if err := errs[i]; err != nil {
			rep.Dependencies[d.name] = err.Error()
			if !d.optional {
				failing = append(failing, fmt.Sprintf("%s: %v", d.name, err))
				rep.Failing = append(rep.Failing, d.name)
			}
			continue
		}
		rep.Dependencies[d.name] = "ok"
	}
	if len(failing) > 0 {
		rep.Status = "unavailable"
		rep.Error = "dependency not ready: " + strings.Join(failing, "; ")
	}
	rd.last, rd.checked = rep, time.Now()
	return rep
}

func (rd *readiness) probe(ctx context.Context, d dependency) error {
	if d.check != nil {
		if t := rd.client.Timeout; t > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, t)
			defer cancel()
		}
		return d.check(ctx)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(d.baseURL, "/")+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := rd.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // lets the connection be reused
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz answered %s", resp.Status)
	}
	return nil
}

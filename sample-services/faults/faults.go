// Package faults lets the controller break a running shop on purpose, so a
// learner can watch what a failure does to a monolith, to microservices and
// to a gateway. Faults are set per feature over a separate admin handler and
// applied by a middleware in front of the feature handlers; the same code
// runs in every role, so only the deployment decides how far a fault spreads.
//
// The admin handler answers:
//
//	GET    /faults            the current faults, e.g. {"deals":{"crash":true}}
//	PUT    /faults/{feature}  set one feature's fault to the body, e.g. {"latencyMs":300}
//	DELETE /faults/{feature}  clear one feature's fault
//	DELETE /faults            clear every fault
//
// Each answers 200 with the current faults, or 400 {"error": "..."} for an
// unknown feature or a bad body. A feature is a shop feature's name, or All
// ("*") for every request the role serves. PUT replaces the feature's fault;
// a body with every field zero clears it.
//
// A subscriber service (notifications, inventory, analytics, fulfillment)
// takes two more faults under its own name, applied to the events it
// processes rather than to HTTP requests: poison (the next N events fail,
// every time they come back, until the fault is cleared) and slowMs (each
// event takes that much longer).
package faults

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
)

// All names the fault that applies to every request, whatever its feature.
const All = "*"

// MaxLatency caps an injected delay.
const MaxLatency = 30 * time.Second

// Fault is what goes wrong in requests to one feature. The zero Fault is no
// fault. Several fields may be set; they apply in the order below.
type Fault struct {
	// Crash kills the whole process on the next request.
	Crash bool `json:"crash,omitempty"`
	// LatencyMs delays every request by this many milliseconds.
	LatencyMs int `json:"latencyMs,omitempty"`
	// ErrorRate is the fraction of requests, 0 to 1, answered with a 500.
	ErrorRate float64 `json:"errorRate,omitempty"`
	// Poison makes a subscriber fail the next Poison events it has not
	// applied yet, and every later attempt at them, while the fault stands.
	Poison int `json:"poison,omitempty"`
	// SlowMs makes a subscriber take this many more milliseconds per event.
	SlowMs int `json:"slowMs,omitempty"`
}

// MaxPoison caps a poison fault's count of events.
const MaxPoison = 10000

func (f Fault) validate() error {
	switch {
	case f.LatencyMs < 0 || f.LatencyMs > int(MaxLatency.Milliseconds()):
		return fmt.Errorf("latencyMs must be between 0 and %d", MaxLatency.Milliseconds())
	case !(f.ErrorRate >= 0 && f.ErrorRate <= 1): // also rejects NaN
		return errors.New("errorRate must be between 0 and 1")
	case f.Poison < 0 || f.Poison > MaxPoison:
		return fmt.Errorf("poison must be between 0 and %d", MaxPoison)
	case f.SlowMs < 0 || f.SlowMs > int(MaxLatency.Milliseconds()):
		return fmt.Errorf("slowMs must be between 0 and %d", MaxLatency.Milliseconds())
	}
	return nil
}

// Injector holds the current faults. Its methods are safe for concurrent use.
type Injector struct {
	features []string // the names PUT accepts, besides All

	// crash ends the process; tests replace it to survive.
	crash func(msg string)

	mu     sync.Mutex
	faults map[string]Fault // by feature; never holds a zero Fault
	// poisonLeft is how many more new events a poison fault takes, and
	// poisoned the events it took, by feature.
	poisonLeft map[string]int
	poisoned   map[string]map[string]bool
}

// New returns an injector with no faults, accepting faults for the named
// features and All.
func New(features ...string) *Injector {
	return &Injector{
		features:   slices.Clone(features),
		crash:      crash,
		faults:     make(map[string]Fault),
		poisonLeft: make(map[string]int),
		poisoned:   make(map[string]map[string]bool),
	}
}

// crash panics in a new goroutine, outside any recover, so the runtime
// prints the panic and ends the process with exit code 2, as a real bug
// would. A panic in the handler itself would not do: net/http recovers
// panics in handlers, logs them and only closes that one connection, so the
// process, and every other feature in it, would carry on.
func crash(msg string) {
	go func() { panic(msg) }()
	select {} // reply nothing: the process is about to end
}

// Wrap returns next with the faults applied to its requests. Only faults
// of the served features and All apply: a feature's fault never fires in a
// role that does not serve that feature. The feature of a request is the
// first segment of its path: /cart/items is "cart". A request under both
// its feature's fault and All's gets both, All's first.
//
// Health probes (/healthz, /readyz) and the diagnostic /diag are never faulted: they tell the
// controller whether the process is alive and can reach what it needs, and
// a latency demo should slow the shop, not pull every replica out of its
// balancer. A crash still fails them, since it ends the process.
func (in *Injector) Wrap(next http.Handler, served ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/diag" {
			next.ServeHTTP(w, r)
			return
		}
		feature, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if !slices.Contains(served, feature) {
			feature = "" // not ours: only All applies
		}
		for _, f := range in.take(All, feature) {
			if f.Crash {
				in.crash(fmt.Sprintf("injected crash on %s %s", r.Method, r.URL.Path))
			}
			if !sleep(r.Context(), time.Duration(f.LatencyMs)*time.Millisecond) {
				return // the client hung up
			}
			if rand.Float64() < f.ErrorRate {
				httpjson.Error(w, http.StatusInternalServerError, "injected fault")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// take returns the faults set for the given features, and clears their
// crash flags: a crash fires once, on the next request only.
func (in *Injector) take(features ...string) []Fault {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []Fault
	for _, name := range features {
		f, ok := in.faults[name]
		if !ok {
			continue
		}
		out = append(out, f)
		if f.Crash {
			f.Crash = false
			in.set(name, f)
		}
	}
	return out
}

// set stores f for feature, or removes it if f is no fault; in.mu is held.
func (in *Injector) set(feature string, f Fault) {
	if f == (Fault{}) {
		delete(in.faults, feature)
		return
	}
	in.faults[feature] = f
}

// sleep waits for d, or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Poisoned reports whether a poison fault of feature fails the event id.
// The first Poison events it is asked about are poisoned, and stay so,
// until the fault is cleared. An event delivered again (redelivered) while
// the fault stands fails too, even if this replica never saw it: the
// replicas of a service keep their own count, and the other replica that
// poisoned it may have been the one to see it first, so it stays poison
// wherever it goes and ends as a dead letter.
func (in *Injector) Poisoned(feature, id string, redelivered bool) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.faults[feature].Poison == 0 {
		return false
	}
	if in.poisoned[feature][id] {
		return true
	}
	if in.poisonLeft[feature] > 0 {
		in.poisonLeft[feature]--
		if in.poisoned[feature] == nil {
			in.poisoned[feature] = map[string]bool{}
		}
		in.poisoned[feature][id] = true
		return true
	}
	return redelivered
}

// Delay is how much longer a slow-consumer fault of feature makes each
// event take.
func (in *Injector) Delay(feature string) time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	return time.Duration(in.faults[feature].SlowMs) * time.Millisecond
}

// Admin returns the handler of the admin API described in the package
// comment. Serve it on its own port, never on the shop's: faults are for
// the controller, not for clients or the balancer.
func (in *Injector) Admin() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /faults", in.handleList)
	mux.HandleFunc("PUT /faults/{feature}", in.handlePut)
	mux.HandleFunc("DELETE /faults/{feature}", in.handleClear)
	mux.HandleFunc("DELETE /faults", in.handleClearAll)
	return mux
}

func (in *Injector) handleList(w http.ResponseWriter, r *http.Request) {
	in.reply(w)
}

func (in *Injector) handlePut(w http.ResponseWriter, r *http.Request) {
	feature, ok := in.feature(w, r)
	if !ok {
		return
	}
	var f Fault
	if err := httpjson.Decode(w, r, &f); err != nil {
		return
	}
	if err := f.validate(); err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	in.mu.Lock()
	if in.faults[feature].Poison != f.Poison {
		// A new poison counts afresh; the same one, sent again with
		// another field changed, keeps its count and its poisoned events.
		in.poisonLeft[feature] = f.Poison
		delete(in.poisoned, feature)
	}
	in.set(feature, f)
	in.mu.Unlock()
	in.reply(w)
}

func (in *Injector) handleClear(w http.ResponseWriter, r *http.Request) {
	feature, ok := in.feature(w, r)
	if !ok {
		return
	}
	in.mu.Lock()
	delete(in.faults, feature)
	delete(in.poisonLeft, feature)
	delete(in.poisoned, feature)
	in.mu.Unlock()
	in.reply(w)
}

func (in *Injector) handleClearAll(w http.ResponseWriter, r *http.Request) {
	in.mu.Lock()
	clear(in.faults)
	clear(in.poisonLeft)
	clear(in.poisoned)
	in.mu.Unlock()
	in.reply(w)
}

// feature returns the request's {feature}, or answers 400 if it is unknown.
func (in *Injector) feature(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("feature")
	if name != All && !slices.Contains(in.features, name) {
		httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("unknown feature %q: want %s or %s",
			name, strings.Join(in.features, ", "), All))
		return "", false
	}
	return name, true
}

// reply answers with the current faults.
func (in *Injector) reply(w http.ResponseWriter) {
	in.mu.Lock()
	faults := maps.Clone(in.faults)
	in.mu.Unlock()
	httpjson.Write(w, http.StatusOK, faults)
}

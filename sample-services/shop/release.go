package shop

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
	"github.com/flotilla/flotilla/sample-services/version"
)

// DefaultCrashAfter is how long a bad release with the crash flaw lives.
const DefaultCrashAfter = 8 * time.Second

// release applies a replica's version to all it serves: it names the
// version on every reply and, for the bad release, does what its flaw
// says. It wraps the whole role, so every role gets the same release
// behaviour from one place.
type release struct {
	version, flaw string
	next          http.Handler
	requests      atomic.Uint64 // requests open to the errors flaw, for its share
}

// withRelease returns next under the release of cfg, whose Version and Flaw
// are resolved; for the crash flaw it also schedules the crash.
func withRelease(cfg Config, next http.Handler) http.Handler {
	if cfg.Flaw == version.FlawCrash {
		msg := fmt.Sprintf("%s is a bad release: crashed %s after start (%s=%s)",
			cfg.Version, cfg.CrashAfter, version.FlawEnv, cfg.Flaw)
		t := time.AfterFunc(cfg.CrashAfter, func() {
			if cfg.Context.Err() == nil {
				cfg.Crash(msg)
			}
		})
		context.AfterFunc(cfg.Context, func() { t.Stop() })
	}
	return &release{version: cfg.Version, flaw: cfg.Flaw, next: next}
}

// crashProcess panics outside any recover (it runs in a timer's own
// goroutine), so the runtime prints the message and ends the process with
// exit code 2, as a real bug would.
func crashProcess(msg string) { panic(msg) }

func (rl *release) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(version.Header, rl.version)
	switch rl.flaw {
	case version.FlawUnready:
		if r.URL.Path == "/readyz" {
			httpjson.Write(w, http.StatusServiceUnavailable, readyReport{
				Status: "unavailable",
				Error: fmt.Sprintf("%s is a bad release: it never becomes ready (%s=%s)",
					rl.version, version.FlawEnv, rl.flaw),
			})
			return
		}
	case version.FlawErrors:
		if !spared(r.URL.Path) && rl.fails() {
			httpjson.Error(w, http.StatusInternalServerError, rl.version+" is a bad release: this request failed")
			return
		}
	}
	rl.next.ServeHTTP(w, r)
}

// spared says whether a path is kept from the errors flaw: probes and
// figures tell the controller and the learner about the replica, and must
// keep doing so while it fails its requests.
func spared(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/diag", "/stats":
		return true
	}
	return false
}

// fails reports whether this request is among the ErrorPercent that fail.
// It counts rather than rolls dice, so the share is exact over every
// hundred requests and spread evenly through them.
func (rl *release) fails() bool {
	n := rl.requests.Add(1)
	return n*version.ErrorPercent%100 < version.ErrorPercent
}

// versionOfBackend wraps the gateway's writer so that a reply passed on
// from a service carries that service's version, and only it, while a reply
// the gateway makes itself (a 404, a 502) carries the gateway's.
type versionOfBackend struct {
	http.ResponseWriter
	own         string
	wroteHeader bool
}

func (w *versionOfBackend) WriteHeader(code int) {
	if !w.wroteHeader {
		w.wroteHeader = true
		if w.Header().Get(version.Header) == "" {
			w.Header().Set(version.Header, w.own)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *versionOfBackend) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer beneath, for the
// proxy's flushes.
func (w *versionOfBackend) Unwrap() http.ResponseWriter { return w.ResponseWriter }

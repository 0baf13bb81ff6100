// Package dockertest holds helpers for tests that run against the real
// Docker engine: a driver scoped to a fresh instance that cleans up after
// itself, the skip-or-fail rule for a missing engine, and polling with a
// deadline instead of sleeping.
package dockertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/google/uuid"
)

// RunLabel marks the images one test run builds, so it removes exactly those.
const RunLabel = "io.flotilla.test-run"

// RequireEnv names the variable that turns a missing engine from a skip
// into a failure (CI sets it to 1).
const RequireEnv = "FLOTILLA_REQUIRE_DOCKER"

// Required reports whether tests must fail rather than skip without an engine.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// SkipOrFail ends t because the engine did not answer: a skip, unless
// FLOTILLA_REQUIRE_DOCKER=1, where it is a failure.
func SkipOrFail(t testing.TB, err error) {
	t.Helper()
	if Required() {
		t.Fatalf("Docker engine required (%s=1) but unavailable: %v", RequireEnv, err)
	}
	t.Skipf("no Docker engine: %v", err)
}

// UniqueName returns prefix followed by a short random suffix, usable in
// container, network and image names.
func UniqueName(prefix string) string {
	return prefix + strings.ReplaceAll(uuid.NewString(), "-", "")[:10]
}

// NewOptions returns driver options for a fresh instance UUID and a unique
// project name, so a test never sees another test's objects.
func NewOptions() docker.Options {
	return docker.Options{Instance: uuid.NewString(), Project: UniqueName("flotilla-test-")}
}

// New returns a driver for a fresh instance and project. It skips or fails
// t if the engine does not answer, and removes everything the instance made
// when t ends, pass or fail.
func New(t testing.TB) *docker.Driver {
	t.Helper()
	return NewWith(t, NewOptions())
}

// NewWith is New with chosen options.
func NewWith(t testing.TB, opts docker.Options) *docker.Driver {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	d, err := docker.New(ctx, opts)
	if errors.Is(err, replica.ErrUnavailable) {
		SkipOrFail(t, err)
	}
	if err != nil {
		t.Fatalf("docker.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		switch err := d.Down(ctx); {
		case docker.OnlyStale(err):
			// Everything of ours is gone but a network the engine
			// itself will not let go of; no test can do better.
			t.Logf("cleanup: down instance %s: %v", opts.Instance, err)
		case err != nil:
			t.Errorf("cleanup: down instance %s: %v", opts.Instance, err)
		}
		_ = d.Close()
	})
	return d
}

// Poll calls cond until it returns nil or timeout passes, then fails t with
// cond's last error. It returns as soon as cond succeeds.
func Poll(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := PollErr(timeout, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// PollErr is Poll without a test: it returns cond's last error after timeout.
func PollErr(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	wait := 10 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still failing after %s: %w", timeout, err)
		}
		time.Sleep(wait)
		wait = min(wait*2, 250*time.Millisecond)
	}
}

// Controller is what a test needs to run a whole controller (in process or
// as `flotilla serve`) on a fresh instance: a state directory that already
// holds the instance's UUID, the project, and a label for the images that
// controller builds. Everything it makes is removed when t ends: its
// containers and network, then its images.
type Controller struct {
	Options  docker.Options
	StateDir string
	// ImageLabel is the label, key=value, to build images under (as
	// FLOTILLA_IMAGE_LABEL or server.Config.ImageLabels).
	ImageLabelKey, ImageLabelValue string
	// Driver sees the instance's objects, to check and clean them.
	Driver *docker.Driver
}

// NewController prepares a fresh controller instance for t.
func NewController(t testing.TB) *Controller {
	t.Helper()
	c := &Controller{Options: NewOptions(), StateDir: t.TempDir(), ImageLabelKey: RunLabel, ImageLabelValue: uuid.NewString()}
	if err := os.WriteFile(filepath.Join(c.StateDir, "instance-id"), []byte(c.Options.Instance+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Registered first so it runs last, after the containers are gone.
	t.Cleanup(func() {
		if c.Driver == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Driver.RemoveImages(ctx, map[string]string{c.ImageLabelKey: c.ImageLabelValue}); err != nil {
			t.Errorf("remove images: %v", err)
		}
	})
	c.Driver = NewWith(t, c.Options)
	return c
}

// readyzClient asks replicas for /readyz; each try is bounded.
var readyzClient = &http.Client{Timeout: time.Second}

// WaitReadyz polls every address's /readyz, every 5 ms, until each answers
// 200 or timeout passes.
func WaitReadyz(ctx context.Context, addrs []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	errs := make(chan error, len(addrs))
	for _, a := range addrs {
		go func() {
			for {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a+"/readyz", nil)
				resp, err := readyzClient.Do(req)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						errs <- nil
						return
					}
				}
				select {
				case <-ctx.Done():
					errs <- fmt.Errorf("%s never answered /readyz: %v", a, err)
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
	}
	for range addrs {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

// RemoveRunImages removes the images labelled with run (RunLabel), as a
// test binary's TestMain does with the images it built.
func RemoveRunImages(run string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := docker.New(ctx, NewOptions())
	if err != nil {
		return err
	}
	defer d.Close()
	return d.RemoveImages(ctx, map[string]string{RunLabel: run})
}

// Median is the middle of ts (the upper one of an even count), 0 for none.
func Median(ts []time.Duration) time.Duration {
	s := slices.Clone(ts)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// EnvInt is the positive whole number in the environment variable name
// (a benchmark's trials, rounds or sizes), or def when it is unset; any
// other value stops tb saying what it wants.
func EnvInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive whole number", name, s)
	}
	return n
}

// Package imagestest builds Flotilla's images once per test binary for
// tests that run replicas on the real engine, and removes them afterwards.
// It lives beside images, not in dockertest, so that the engine's test
// helpers do not depend on the image builder, which depends on the engine.
package imagestest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/images"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/google/uuid"
)

// RequireVMEnv turns a machine without QEMU or a guest kernel from a skip
// into a failure.
const RequireVMEnv = "FLOTILLA_REQUIRE_VM"

// VMSource returns the source root, or skips (fails under
// FLOTILLA_REQUIRE_VM=1) when this machine cannot boot guests. It skips
// under -short: a guest's boot is slow.
func VMSource(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a virtual machine")
	}
	source, err := images.FindSource(".")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := images.FindVMHost(source); err != nil {
		if os.Getenv(RequireVMEnv) == "1" {
			t.Fatalf("%s=1 but this machine cannot build VM images: %v", RequireVMEnv, err)
		}
		t.Skipf("%v (%s=1 makes this a failure)", err, RequireVMEnv)
	}
	return source
}

var builtVM struct {
	once sync.Once
	ref  string
	err  error
}

// VMImage builds the VM image once per test binary, beside the images of
// Images and removed with them by Main, and returns its reference. It
// skips or fails t as VMSource does, and as Images does without an engine.
func VMImage(t testing.TB) string {
	t.Helper()
	source := VMSource(t)
	Images(t)
	builtVM.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		d, err := docker.New(ctx, dockertest.NewOptions())
		if err != nil {
			builtVM.err = err
			return
		}
		defer d.Close()
		var progress bytes.Buffer
		builtVM.ref, err = images.EnsureVM(ctx, d, images.Options{
			Source:     source,
			Progress:   &progress,
			Repository: dockertest.UniqueName("flotilla-test-") + "-",
			Labels:     map[string]string{dockertest.RunLabel: built.run},
		})
		if err != nil {
			builtVM.err = fmt.Errorf("%w\n%s", err, progress.String())
		}
	})
	if builtVM.err != nil {
		t.Fatalf("build the VM image: %v", builtVM.err)
	}
	return builtVM.ref
}

var built struct {
	once   sync.Once
	run    string
	refs   map[string]string
	err    error
	engine bool // the engine answered, so there may be something to remove
}

// Images builds Flotilla's images once per test binary, under a repository
// and a dockertest.RunLabel unique to the process, and returns each image's reference
// by name. It skips or fails t without an engine. Call Main from TestMain
// so they are removed afterwards.
func Images(t testing.TB) map[string]string {
	t.Helper()
	built.once.Do(buildImages)
	if errors.Is(built.err, replica.ErrUnavailable) {
		dockertest.SkipOrFail(t, built.err)
	}
	if built.err != nil {
		t.Fatalf("build images: %v", built.err)
	}
	return built.refs
}

func buildImages() {
	built.run = uuid.NewString()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d, err := docker.New(ctx, dockertest.NewOptions())
	if err != nil {
		built.err = err
		return
	}
	defer d.Close()
	built.engine = true
	var progress bytes.Buffer
	built.refs, err = images.Ensure(ctx, d, images.Options{
		Progress:   &progress,
		Repository: dockertest.UniqueName("flotilla-test-") + "-",
		Labels:     map[string]string{dockertest.RunLabel: built.run},
	})
	if err != nil {
		built.err = fmt.Errorf("%w\n%s", err, progress.String())
	}
}

// Main runs the tests of m, then removes the images Images built, and exits.
// Use it as TestMain's body.
func Main(m *testing.M) { MainThen(m) }

// MainThen is Main that also runs each of after once the tests ran; an
// error from one fails the run.
func MainThen(m *testing.M, after ...func() error) {
	code := m.Run()
	for _, f := range after {
		if err := f(); err != nil {
			fmt.Fprintf(os.Stderr, "after the tests: %v\n", err)
			code = max(code, 1)
		}
	}
	if err := RemoveRunImages(); err != nil {
		fmt.Fprintf(os.Stderr, "imagestest: remove test images: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// RemoveRunImages removes the images Images built in this process, if any.
func RemoveRunImages() error {
	if !built.engine {
		return nil
	}
	return dockertest.RemoveRunImages(built.run)
}

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
func Main(m *testing.M) {
	code := m.Run()
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := docker.New(ctx, dockertest.NewOptions())
	if err != nil {
		return err
	}
	defer d.Close()
	return d.RemoveImages(ctx, map[string]string{dockertest.RunLabel: built.run})
}

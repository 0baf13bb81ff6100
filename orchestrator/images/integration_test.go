package images_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/images"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/google/uuid"
)

// countingBuilder tells whether Ensure built or reused.
type countingBuilder struct {
	*docker.Driver
	builds int
}

func (c *countingBuilder) BuildImage(ctx context.Context, req docker.BuildRequest) (string, error) {
	c.builds++
	return c.Driver.BuildImage(ctx, req)
}

func TestIntegrationEnsureBuildsShop(t *testing.T) {
	d := dockertest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	source, err := images.FindSource(".")
	if err != nil {
		t.Fatal(err)
	}
	run := map[string]string{dockertest.RunLabel: uuid.NewString()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := d.RemoveImages(ctx, run); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	opts := images.Options{Source: source, Repository: dockertest.UniqueName("flotilla-test-") + "-", Labels: run}

	var shop images.Image
	for _, img := range images.All {
		if img.Name == "shop" {
			shop = img
		}
	}
	hash, err := images.ContentHash(source, shop)
	if err != nil {
		t.Fatal(err)
	}
	tag := images.Tag(opts.Repository, "shop", hash)
	labels := images.Labels("shop", hash, run)

	if _, err := d.FindImage(ctx, tag, labels); !errors.Is(err, replica.ErrNotFound) {
		t.Fatalf("before Ensure: FindImage(%s) = %v, want ErrNotFound", tag, err)
	}

	b := &countingBuilder{Driver: d}
	var progress bytes.Buffer
	opts.Progress = &progress
	start := time.Now()
	refs, err := images.Ensure(ctx, b, opts)
	if err != nil {
		t.Fatalf("Ensure: %v\n%s", err, progress.String())
	}
	t.Logf("first Ensure took %s:\n%s", time.Since(start).Round(time.Millisecond), progress.String())
	if refs["shop"] != tag {
		t.Fatalf("refs = %v, want shop → %s", refs, tag)
	}
	if b.builds != len(images.All) {
		t.Errorf("%d builds, want one per image (%d)", b.builds, len(images.All))
	}
	for _, img := range images.All {
		h, err := images.ContentHash(source, img)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.FindImage(ctx, refs[img.Name], images.Labels(img.Name, h, run)); err != nil {
			t.Errorf("image %s (%s) not found after Ensure: %v", img.Name, refs[img.Name], err)
		}
	}
	id, err := d.FindImage(ctx, tag, labels)
	if err != nil {
		t.Fatalf("after Ensure: FindImage: %v", err)
	}
	if !strings.HasPrefix(id, "sha256:") {
		t.Errorf("image ID = %q", id)
	}
	if !strings.Contains(progress.String(), "Step 1/") {
		t.Errorf("the builder's output did not reach Progress:\n%s", progress.String())
	}
	// A different content hash under the same tag must not be taken for it.
	stale := images.Labels("shop", strings.Repeat("0", 64), run)
	if _, err := d.FindImage(ctx, tag, stale); !errors.Is(err, replica.ErrNotFound) {
		t.Errorf("FindImage with another content hash = %v, want ErrNotFound", err)
	}

	progress.Reset()
	refs2, err := images.Ensure(ctx, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	if b.builds != len(images.All) || refs2["shop"] != tag {
		t.Errorf("second Ensure: %d builds, refs %v; want no rebuild", b.builds, refs2)
	}
	if !strings.Contains(progress.String(), "image "+tag+" is up to date") {
		t.Errorf("progress = %q", progress.String())
	}
}

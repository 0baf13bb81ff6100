package docker_test

import (
	"slices"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/google/uuid"
)

// TestIntegrationPruneImages: of three images of one kind, the one a
// container uses and the current one stay; only the unused old one goes.
func TestIntegrationPruneImages(t *testing.T) {
	d := dockertest.New(t)
	cli := rawClient(t)
	ctx := ctxFor(t, 3*time.Minute)
	run := map[string]string{dockertest.RunLabel: uuid.NewString(), docker.LabelImage: "prune"}
	t.Cleanup(func() {
		ctx := ctxFor(t, time.Minute)
		if err := d.RemoveImages(ctx, run); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	prefix := dockertest.UniqueName("flotilla-test-") + "-prune:"
	ids := map[string]string{}
	for _, v := range []string{"old", "used", "current"} {
		id, err := d.BuildImage(ctx, docker.BuildRequest{
			Tag:        prefix + v,
			Dockerfile: []byte("FROM scratch\nCOPY f /f\nCMD [\"/f\"]\n"),
			Files:      map[string]docker.FileSpec{"f": {Data: []byte(v)}},
			Labels:     run,
		})
		if err != nil {
			t.Fatalf("build %s: %v", v, err)
		}
		ids[v] = id
	}
	labels := map[string]string{docker.LabelManaged: "true", docker.LabelInstance: d.Instance(), dockertest.RunLabel: run[dockertest.RunLabel]}
	c, err := cli.ContainerCreate(ctx, &container.Config{Image: prefix + "used", Labels: labels}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.ContainerRemove(ctxFor(t, time.Minute), c.ID, container.RemoveOptions{Force: true}) })

	removed, err := d.PruneImages(ctx, docker.PruneRequest{Prefix: prefix, Keep: prefix + "current", Labels: run})
	if err != nil {
		t.Fatalf("PruneImages: %v", err)
	}
	if want := []string{prefix + "old"}; !slices.Equal(removed, want) {
		t.Errorf("removed %q, want %q", removed, want)
	}
	for v, id := range ids {
		_, err := cli.ImageInspect(ctx, id)
		if gone := err != nil; gone != (v == "old") {
			t.Errorf("image %s: inspect error %v; only old should be gone", v, err)
		}
	}
	if _, err := d.PruneImages(ctx, docker.PruneRequest{Prefix: "no-colon"}); err == nil {
		t.Error("a prefix without ':' was accepted")
	}
}

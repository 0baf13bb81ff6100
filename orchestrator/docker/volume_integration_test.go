package docker_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"

	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/images/imagestest"
	"github.com/flotilla/flotilla/orchestrator/replica"
)

func busSpec(image string, index int) replica.Spec {
	return replica.Spec{
		Group: "bus", Index: index, Service: "bus", Image: image, Port: 8080,
		Env:         []string{"FLOTILLA_BUS_SECRET=an-integration-test-secret-0123456789"},
		Aliases:     []string{"bus"},
		MemoryBytes: 64 << 20, NanoCPUs: 500_000_000, PidsLimit: 64,
		TemplateHash: "t1",
		Store:        "/data",
	}
}

// waitReady polls a replica's /readyz through its published address.
func pollReady(t *testing.T, r replica.Replica) {
	t.Helper()
	httpc := &http.Client{Timeout: 2 * time.Second}
	dockertest.Poll(t, 30*time.Second, r.Name+" ready", func() error {
		resp, err := httpc.Get("http://" + r.Address + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
}

// A replica with a store gets a labelled named volume of its own, writable
// by the replica's unprivileged user under a read-only root, kept across a
// replacement and removed by Down; a volume of that name that is not ours
// is never adopted.
func TestIntegrationStoreVolume(t *testing.T) {
	refs := imagestest.Images(t)
	d := dockertest.New(t)
	cli := rawClient(t)
	ctx := ctxFor(t, 3*time.Minute)

	// Someone else's volume under the name replica bus-9 would use.
	foreign := d.VolumeName("bus", 9)
	if _, err := cli.VolumeCreate(ctx, volume.CreateOptions{Name: foreign, Labels: map[string]string{docker.LabelManaged: "true", dockertest.RunLabel: "foreign"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.VolumeRemove(ctxFor(t, 30*time.Second), foreign, true) })
	if _, err := d.Create(ctx, busSpec(refs["bus"], 9)); !errors.Is(err, replica.ErrConflict) || !strings.Contains(err.Error(), "not this Flotilla instance's") {
		t.Errorf("Create over a foreign volume: err = %v, want ErrConflict", err)
	}

	r := startReplica(t, ctx, d, busSpec(refs["bus"], 1))
	// Ready means JetStream wrote its store in /data as nobody.
	pollReady(t, r)
	if err := d.AuditPolicy(ctx, r.ID); err != nil {
		t.Errorf("the bus replica breaks the policy: %v", err)
	}
	name := d.VolumeName("bus", 1)
	vols, err := d.Volumes(ctx)
	if err != nil || !slices.Equal(vols, []string{name}) {
		t.Fatalf("Volumes = %v, %v; want [%s] (the foreign one is not ours)", vols, err, name)
	}
	v, err := cli.VolumeInspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{docker.LabelManaged: "true", docker.LabelGroup: "bus", docker.LabelReplica: "1", docker.LabelService: "bus"} {
		if v.Labels[k] != want {
			t.Errorf("volume label %s = %q, want %q", k, v.Labels[k], want)
		}
	}
	c, err := cli.ContainerInspect(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !c.HostConfig.ReadonlyRootfs || len(c.HostConfig.Binds) != 0 || len(c.Mounts) != 1 || c.Mounts[0].Name != name || !c.Mounts[0].RW {
		t.Errorf("root read-only %v, binds %v, mounts %+v; want one writable mount of %s", c.HostConfig.ReadonlyRootfs, c.HostConfig.Binds, c.Mounts, name)
	}
	// Only the probes' port is published; NATS's are on the project network.
	for port, bindings := range c.HostConfig.PortBindings {
		if port.Port() != "8080" || len(bindings) != 1 || bindings[0].HostIP != "127.0.0.1" {
			t.Errorf("port %s is published on %v", port, bindings)
		}
	}

	// Killed and replaced: the new container of bus-1 mounts the same
	// volume and starts on the store the first one left.
	if err := d.Kill(ctx, r.ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if vols, _ := d.Volumes(ctx); !slices.Equal(vols, []string{name}) {
		t.Errorf("after removing the replica: volumes %v, want %s kept", vols, name)
	}
	r2 := startReplica(t, ctx, d, busSpec(refs["bus"], 1))
	pollReady(t, r2)
	c2, err := cli.ContainerInspect(ctx, r2.ID)
	if err != nil || len(c2.Mounts) != 1 || c2.Mounts[0].Name != name {
		t.Errorf("the replacement mounts %+v (%v), want %s", c2.Mounts, err, name)
	}

	if err := d.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if left := ownedObjects(t, ctx, cli, d.Instance()); len(left) != 0 {
		t.Errorf("after Down: %v", left)
	}
	if _, err := cli.VolumeInspect(ctx, foreign); err != nil {
		t.Errorf("Down touched the foreign volume: %v", err)
	}
}

// The audit accepts no mount but the replica's own store volume: not a
// volume under another name, not an anonymous one, not one given as a
// bind. The container is made behind the driver's back, with this
// instance's labels, as a broken driver would make it.
func TestIntegrationAuditRefusesOtherMounts(t *testing.T) {
	refs := imagestest.Images(t)
	d := dockertest.New(t)
	cli := rawClient(t)
	ctx := ctxFor(t, 2*time.Minute)
	if err := d.EnsureNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{
		docker.LabelManaged: "true", docker.LabelInstance: d.Instance(),
		docker.LabelGroup: "bus", docker.LabelReplica: "2", docker.LabelService: "bus", docker.LabelTemplateHash: "t1",
	}
	other := d.VolumeName("bus", 1) // another replica's name, and not labelled as bus-2's
	for _, name := range []string{other, d.VolumeName("bus", 2), d.VolumeName("bus", 3)} {
		// Ours, but labelled as no replica's.
		if _, err := cli.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: map[string]string{docker.LabelManaged: "true", docker.LabelInstance: d.Instance()}}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := cli.ContainerCreate(ctx, &container.Config{Image: refs["bus"], User: "65534:65534", Labels: labels},
		&container.HostConfig{
			NetworkMode: container.NetworkMode(d.Project()),
			Binds:       []string{d.VolumeName("bus", 3) + ":/extra"},
			Mounts: []mount.Mount{
				{Type: mount.TypeVolume, Source: d.VolumeName("bus", 2), Target: "/data"},
				{Type: mount.TypeVolume, Source: other, Target: "/other"},
				{Type: mount.TypeVolume, Target: "/anonymous"},
			},
		}, nil, nil, d.ContainerName("bus", 2))
	if err != nil {
		t.Fatal(err)
	}
	err = d.AuditPolicy(ctx, resp.ID)
	if err == nil {
		t.Fatal("a container with foreign mounts passes the audit")
	}
	for _, want := range []string{
		"has bind mounts",
		"mount /other of volume \"" + other + "\" is not the replica's store volume " + d.VolumeName("bus", 2),
		"volume " + d.VolumeName("bus", 2) + " lacks the replica's labels",
		"mount /anonymous of volume",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("audit: %v\nlacks %q", err, want)
		}
	}
	// Down removes the container first, then every volume of the instance,
	// anonymous ones included (they went with their container).
	if err := d.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if left := ownedObjects(t, ctx, cli, d.Instance()); len(left) != 0 {
		t.Errorf("after Down: %v", left)
	}
}

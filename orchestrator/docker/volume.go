package docker

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// Stores. A replica whose spec has a Store (the bus's JetStream files) gets
// a named volume of its own, <project>-<group>-<index>-store, mounted
// there: the only writable place of its container beside the /tmp tmpfs,
// with the root still read-only. The volume carries the replica's
// ownership labels, so only this instance sees it; it is made on the
// replica's first create and found again by its replacements, which is
// what lets a store outlive a killed container. Removing a replica keeps
// it; Down removes it with the rest of the instance. Never a bind mount:
// the engine manages the data, nothing of the host is exposed.

// VolumeName is the name of the store volume of replica index of group.
func (d *Driver) VolumeName(group string, index int) string {
	return d.ContainerName(group, index) + "-store"
}

// volumeLabels are the labels of a replica's store volume.
func volumeLabels(instance string, s replica.Spec) map[string]string {
	l := ownerLabels(instance)
	l[LabelGroup] = s.Group
	l[LabelReplica] = strconv.Itoa(s.Index)
	l[LabelService] = s.Service
	return l
}

// validStore reports why store cannot be a replica's store path, or "".
func validStore(store string) string {
	switch {
	case !path.IsAbs(store) || path.Clean(store) != store:
		return fmt.Sprintf("store %q is not a clean absolute path", store)
	case store == "/" || store == "/tmp" || strings.HasPrefix(store, "/tmp/"):
		return fmt.Sprintf("store %q would cover the root or /tmp", store)
	}
	return ""
}

// storeMounts is the mount of s's store volume, if it has one.
func (d *Driver) storeMounts(s replica.Spec) []mount.Mount {
	if s.Store == "" {
		return nil
	}
	// The engine copies the image's directory at Target into a new, empty
	// volume, ownership included: that is how the replica's user, not
	// root, owns its store.
	return []mount.Mount{{Type: mount.TypeVolume, Source: d.VolumeName(s.Group, s.Index), Target: s.Store}}
}

// ensureVolume makes s's store volume unless it exists. A volume of that
// name that is not this instance's is replica.ErrConflict: it is never
// adopted.
func (d *Driver) ensureVolume(ctx context.Context, s replica.Spec) error {
	name := d.VolumeName(s.Group, s.Index)
	v, err := d.cli.VolumeInspect(ctx, name)
	if err == nil {
		if !ownedBy(v.Labels, d.instance) {
			return fmt.Errorf("volume %s: %w: it exists and is not this Flotilla instance's", name, replica.ErrConflict)
		}
		return nil
	}
	if !isSDKNotFound(err) {
		return translate("inspect volume "+name, err)
	}
	mctx, cancel := making(ctx)
	defer cancel()
	_, err = d.cli.VolumeCreate(mctx, volume.CreateOptions{Name: name, Driver: "local", Labels: volumeLabels(d.instance, s)})
	return translate("create volume "+name, err)
}

// Volumes returns the names of this instance's volumes, sorted.
func (d *Driver) Volumes(ctx context.Context) ([]string, error) {
	vs, err := d.ownedVolumes(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(vs))
	for _, v := range vs {
		names = append(names, v.Name)
	}
	return names, nil
}

func (d *Driver) ownedVolumes(ctx context.Context) ([]*volume.Volume, error) {
	resp, err := d.cli.VolumeList(ctx, volume.ListOptions{Filters: d.ownedFilter()})
	if err != nil {
		return nil, translate("list volumes", err)
	}
	var out []*volume.Volume
	for _, v := range resp.Volumes {
		// The engine filtered already; an unowned volume must never pass.
		if v != nil && ownedBy(v.Labels, d.instance) {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b *volume.Volume) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// removeVolumes removes every volume of this instance; Down calls it once
// the containers that used them are gone.
func (d *Driver) removeVolumes(ctx context.Context) error {
	vs, err := d.ownedVolumes(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, v := range vs {
		if err := d.cli.VolumeRemove(ctx, v.Name, false); err != nil && !isSDKNotFound(err) {
			errs = append(errs, translate("remove volume "+v.Name, err))
		}
	}
	return errors.Join(errs...)
}

// auditMounts checks a container's mounts: none but its own store volume,
// which must be a named volume of this instance, labelled as the
// replica's. It returns the violations.
func (d *Driver) auditMounts(ctx context.Context, c container.InspectResponse) []string {
	hc := c.HostConfig
	if hc == nil || c.Config == nil {
		return nil // audit reports the missing configuration
	}
	var bad []string
	if len(hc.Binds) > 0 {
		bad = append(bad, fmt.Sprintf("has bind mounts %v", hc.Binds))
	}
	if len(hc.VolumesFrom) > 0 {
		bad = append(bad, fmt.Sprintf("mounts the volumes of %v", hc.VolumesFrom))
	}
	if len(hc.Mounts) == 0 && len(c.Mounts) == 0 {
		return bad
	}
	ident, err := parseReplicaLabels(c.Config.Labels)
	if err != nil || c.Config.Labels[LabelMember] != "" {
		return append(bad, fmt.Sprintf("has mounts %v but is not a replica's only container", c.Mounts))
	}
	want := d.VolumeName(ident.Group, ident.Index)
	// What was asked (HostConfig.Mounts) and what the engine mounted
	// (Mounts, binds included) are both checked; each path is named once.
	seen := map[string]bool{}
	notStore := func(target string, kind any, name string) {
		if !seen[target] {
			seen[target] = true
			bad = append(bad, fmt.Sprintf("mount %s of %s %q is not the replica's store volume %s", target, kind, name, want))
		}
	}
	for _, m := range hc.Mounts {
		if m.Type != mount.TypeVolume || m.Source != want || validStore(m.Target) != "" {
			notStore(m.Target, m.Type, m.Source)
		}
	}
	for _, m := range c.Mounts {
		if m.Type != mount.TypeVolume || m.Name != want || m.Driver != "local" {
			notStore(m.Destination, m.Type, m.Name)
			continue
		}
		v, err := d.cli.VolumeInspect(ctx, m.Name)
		if err != nil {
			bad = append(bad, fmt.Sprintf("volume %s: %v", m.Name, translate("inspect", err)))
			continue
		}
		if !ownedBy(v.Labels, d.instance) || v.Labels[LabelGroup] != ident.Group || v.Labels[LabelReplica] != strconv.Itoa(ident.Index) {
			bad = append(bad, fmt.Sprintf("volume %s lacks the replica's labels: %v", m.Name, v.Labels))
		}
	}
	return bad
}

package docker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/container"
)

// AuditPolicy reads an owned replica back from the engine and checks every
// item of the container policy: unprivileged user, no capabilities,
// no-new-privileges, read-only root with a tmpfs, memory, CPU and pids
// limits, no mounts but the replica's own store volume (a named volume of
// this instance, labelled as the replica's; never a bind mount), ports on
// 127.0.0.1 only, no restart policy. It returns nil if the container
// complies, or an error naming each violation.
//
// A pod is audited member by member: each must comply, and every member but
// the infra container must live in the infra container's namespaces.
func (d *Driver) AuditPolicy(ctx context.Context, id string) error {
	c, podID, pod, err := d.resolve(ctx, "audit", id)
	if err != nil {
		return err
	}
	if pod {
		return d.eachMember(ctx, "audit", podID, false, func(m container.Summary) error {
			mc, err := d.owned(ctx, "audit", m.ID)
			if err != nil {
				return err
			}
			return d.audit(mc, podID, d.auditMounts(ctx, mc))
		})
	}
	return d.audit(c, "", d.auditMounts(ctx, c))
}

// audit checks one container; infraID is the pod's infra container for a
// pod member, else empty; mounts are the violations auditMounts found.
func (d *Driver) audit(c container.InspectResponse, infraID string, mounts []string) error {
	id := c.ID
	var bad []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			bad = append(bad, fmt.Sprintf(format, args...))
		}
	}
	hc := c.HostConfig
	if c.Config == nil || hc == nil {
		return fmt.Errorf("audit %s: engine returned no configuration", id)
	}
	check(c.Config.User == replicaUser, "user is %q, want %q", c.Config.User, replicaUser)
	check(!hc.Privileged, "privileged")
	check(slices.Equal(hc.CapDrop, []string{"ALL"}), "CapDrop is %v, want [ALL]", hc.CapDrop)
	check(len(hc.CapAdd) == 0, "CapAdd is %v, want none", hc.CapAdd)
	check(slices.Contains(hc.SecurityOpt, "no-new-privileges:true") || slices.Contains(hc.SecurityOpt, "no-new-privileges"), "SecurityOpt %v lacks no-new-privileges", hc.SecurityOpt)
	check(hc.ReadonlyRootfs, "root filesystem is writable")
	_, hasTmp := hc.Tmpfs["/tmp"]
	check(hasTmp, "no tmpfs on /tmp")
	check(hc.Memory > 0, "no memory limit")
	check(hc.NanoCPUs > 0 || hc.CPUQuota > 0, "no CPU limit")
	check(hc.PidsLimit != nil && *hc.PidsLimit > 0, "no pids limit")
	bad = append(bad, mounts...)
	check(hc.RestartPolicy.Name == "" || hc.RestartPolicy.Name == "no", "restart policy is %q, want no", hc.RestartPolicy.Name)
	if join := "container:" + infraID; infraID != "" && c.ID != infraID {
		check(string(hc.NetworkMode) == join && string(hc.PidMode) == join && string(hc.IpcMode) == join,
			"namespaces network %q, pid %q, ipc %q, want all %q", hc.NetworkMode, hc.PidMode, hc.IpcMode, join)
	} else {
		check(hc.NetworkMode.NetworkName() == d.project, "network mode is %q, want the project network %q", hc.NetworkMode, d.project)
	}
	check(!hc.PidMode.IsHost() && !hc.IpcMode.IsHost() && !hc.NetworkMode.IsHost(), "shares a namespace with the host")
	check(len(hc.Devices) == 0, "has devices %v", hc.Devices)
	for port, bindings := range hc.PortBindings {
		for _, b := range bindings {
			check(b.HostIP == publishIP, "port %s is published on %q, want %s", port, b.HostIP, publishIP)
		}
	}
	check(ownedBy(c.Config.Labels, d.instance), "missing ownership labels")
	if len(bad) > 0 {
		return fmt.Errorf("container %s breaks the policy: %w", strings.TrimPrefix(c.Name, "/"), errors.New(strings.Join(bad, "; ")))
	}
	return nil
}

package docker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// AuditPolicy reads an owned replica back from the engine and checks every
// item of the container policy: unprivileged user, no capabilities,
// no-new-privileges, read-only root with a tmpfs, memory, CPU and pids
// limits, no mounts, ports on 127.0.0.1 only, no restart policy. It returns
// nil if the container complies, or an error naming each violation.
func (d *Driver) AuditPolicy(ctx context.Context, id string) error {
	c, err := d.owned(ctx, "audit", id)
	if err != nil {
		return err
	}
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
	check(len(hc.Binds) == 0 && len(hc.Mounts) == 0 && len(c.Mounts) == 0, "has mounts: %v %v", hc.Binds, c.Mounts)
	check(hc.RestartPolicy.Name == "" || hc.RestartPolicy.Name == "no", "restart policy is %q, want no", hc.RestartPolicy.Name)
	check(hc.NetworkMode.NetworkName() == d.project, "network mode is %q, want the project network %q", hc.NetworkMode, d.project)
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

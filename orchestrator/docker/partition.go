package docker

import (
	"context"
	"strings"

	"github.com/docker/docker/api/types/network"
)

// Disconnect cuts an owned replica off the project network: it keeps
// running, but nothing reaches it and it reaches nothing.
func (d *Driver) Disconnect(ctx context.Context, id string) error {
	c, err := d.owned(ctx, "disconnect", id)
	if err != nil {
		return err
	}
	return translate("disconnect "+id, d.cli.NetworkDisconnect(ctx, d.project, c.ID, true))
}

// Reconnect puts a disconnected replica back on the project network under
// its group's and its own name.
func (d *Driver) Reconnect(ctx context.Context, id string) error {
	c, err := d.owned(ctx, "reconnect", id)
	if err != nil {
		return err
	}
	r := d.replicaFromInspect(c)
	aliases := []string{r.Group, r.Name}
	err = d.cli.NetworkConnect(ctx, d.project, c.ID, &network.EndpointSettings{Aliases: aliases})
	if err != nil && strings.Contains(err.Error(), "already exists") {
		return nil
	}
	return translate("reconnect "+id, err)
}

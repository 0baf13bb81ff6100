package docker

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// EnsureNetwork makes sure the project's bridge network exists and is ours.
// A network of that name that lacks our instance label belongs to someone
// else: it is left alone and EnsureNetwork returns an error wrapping replica.ErrConflict.
func (d *Driver) EnsureNetwork(ctx context.Context) error {
	_, err := d.ensureNetwork(ctx)
	return err
}

// ensureNetwork returns the network's ID.
func (d *Driver) ensureNetwork(ctx context.Context) (string, error) {
	id, err := d.findNetwork(ctx)
	if err == nil || !isNotFound(err) {
		return id, err
	}
	mctx, cancel := making(ctx)
	defer cancel()
	resp, err := d.cli.NetworkCreate(mctx, d.project, network.CreateOptions{
		Driver: "bridge",
		Labels: ownerLabels(d.instance),
	})
	if err == nil {
		return resp.ID, nil
	}
	// Another caller may have created it between our look and our create;
	// if so it is ours and fine to use.
	if id, ferr := d.findNetwork(ctx); ferr == nil {
		return id, nil
	}
	return "", translate("create network "+d.project, err)
}

// findNetwork returns the ID of the project network if it exists and is
// ours, replica.ErrNotFound if there is none, replica.ErrConflict if it is someone else's.
func (d *Driver) findNetwork(ctx context.Context) (string, error) {
	// The name filter matches substrings, so compare names exactly.
	nets, err := d.cli.NetworkList(ctx, network.ListOptions{
		Filters: filters.NewArgs(filters.Arg("name", d.project)),
	})
	if err != nil {
		return "", translate("list networks", err)
	}
	for _, n := range nets {
		if n.Name != d.project {
			continue
		}
		if !ownedBy(n.Labels, d.instance) {
			return "", fmt.Errorf("network %q exists but does not belong to this Flotilla instance (labels %s=%q, %s=%q); remove it or choose another project name: %w",
				d.project, LabelManaged, n.Labels[LabelManaged], LabelInstance, n.Labels[LabelInstance], replica.ErrConflict)
		}
		return n.ID, nil
	}
	return "", fmt.Errorf("network %q: %w", d.project, replica.ErrNotFound)
}

// making is the context of an engine call that makes an object (a
// container, a network, a volume). The call is not abandoned when ctx
// ends: the engine would finish making the object anyway, after its caller
// has moved on, and a Down that had already listed the instance's objects
// would leave it behind. It has a deadline of its own instead.
func making(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), makeTimeout)
}

// makeTimeout bounds one engine call that makes an object.
const makeTimeout = 30 * time.Second

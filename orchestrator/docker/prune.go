package docker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// PruneRequest names the images of one kind that may go: every image tagged
// <Prefix><hash> that carries LabelManaged=true and all of Labels, except
// Keep and any image a container still uses.
type PruneRequest struct {
	// Prefix is the tag up to the hash, e.g. "flotilla-shop:". Images with a
	// tag outside it (another repository, a test run's) are never pruned.
	Prefix string
	// Keep is the current tag; its image stays.
	Keep string
	// Labels must all be on an image for it to be pruned.
	Labels map[string]string
}

// PruneImages removes the outdated images req names and returns their
// tags. Every container on the engine counts as a user, ours or not (they
// are only read), so an image in use is never removed; an image that a
// container starts using while pruning makes the engine refuse, and it stays.
func (d *Driver) PruneImages(ctx context.Context, req PruneRequest) ([]string, error) {
	if req.Prefix == "" || !strings.HasSuffix(req.Prefix, ":") {
		return nil, fmt.Errorf("prune images: prefix %q must end with ':'", req.Prefix)
	}
	want := map[string]string{LabelManaged: managedValue}
	f := filters.NewArgs(filters.Arg("label", LabelManaged+"="+managedValue))
	for k, v := range req.Labels {
		want[k] = v
		f.Add("label", k+"="+v)
	}
	imgs, err := d.cli.ImageList(ctx, image.ListOptions{Filters: f})
	if err != nil {
		return nil, translate("list images", err)
	}
	ctrs, err := d.cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return nil, translate("list containers", err)
	}
	used := make(map[string]bool, len(ctrs))
	for _, c := range ctrs {
		used[c.ImageID] = true
	}

	var removed []string
	var errs []error
	for _, img := range imgs {
		if !hasLabels(img.Labels, want) || used[img.ID] || !prunable(img.RepoTags, req) {
			continue
		}
		for _, tag := range img.RepoTags {
			if _, err := d.cli.ImageRemove(ctx, tag, image.RemoveOptions{PruneChildren: true}); err != nil {
				if !isSDKNotFound(err) {
					if terr := translate("remove image "+tag, err); !errors.Is(terr, replica.ErrConflict) {
						errs = append(errs, terr)
					}
				}
				continue
			}
			removed = append(removed, tag)
		}
	}
	sort.Strings(removed)
	return removed, errors.Join(errs...)
}

// prunable: every tag of the image is under the prefix and none is kept.
func prunable(tags []string, req PruneRequest) bool {
	if len(tags) == 0 {
		return false
	}
	for _, t := range tags {
		if t == req.Keep || !strings.HasPrefix(t, req.Prefix) || len(t) == len(req.Prefix) {
			return false
		}
	}
	return true
}

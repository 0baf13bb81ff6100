package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
	"github.com/google/uuid"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// DefaultProject names the network and prefixes container names unless
// Options.Project says otherwise.
const DefaultProject = "flotilla"

// Options configure a Driver.
type Options struct {
	// Instance is the controller's UUID, stored as LabelInstance on every
	// container and network. Required.
	Instance string
	// Project names the network and prefixes container names:
	// <project>-<group>-<n>. Default DefaultProject.
	Project string
	// Logger receives what the driver cannot return, such as a broken
	// event stream it is reconnecting. Default: discard.
	Logger *slog.Logger
}

// projectPattern keeps the project usable both as a network name and as the
// first part of a container name and a DNS label.
var projectPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9_.-]{0,62}[a-z0-9])?$`)

// Driver talks to one Docker engine on behalf of one controller instance.
// It is safe for concurrent use.
type Driver struct {
	cli      *client.Client
	instance string
	project  string
	log      *slog.Logger
}

// New connects to the engine named by the environment (DOCKER_HOST and
// friends), negotiates the API version and pings it. An unreachable engine
// is an error wrapping replica.ErrUnavailable.
func New(ctx context.Context, opts Options) (*Driver, error) {
	if opts.Instance == "" {
		return nil, errors.New("docker driver: an instance UUID is required")
	}
	if _, err := uuid.Parse(opts.Instance); err != nil {
		return nil, fmt.Errorf("docker driver: instance %q is not a UUID: %w", opts.Instance, err)
	}
	if opts.Project == "" {
		opts.Project = DefaultProject
	}
	if !projectPattern.MatchString(opts.Project) {
		return nil, fmt.Errorf("docker driver: project %q must be lowercase letters, digits, '.', '_' or '-'", opts.Project)
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	ping, err := cli.Ping(ctx)
	if err != nil {
		host := cli.DaemonHost()
		_ = cli.Close()
		// The SDK's generic message repeats ours; keep only specific causes
		// such as "permission denied".
		detail := ": " + err.Error()
		if strings.HasPrefix(err.Error(), "Cannot connect to the Docker daemon") {
			detail = ""
		}
		return nil, fmt.Errorf("cannot reach the Docker engine at %s: %w%s; is it running? (set DOCKER_HOST to point elsewhere)", host, replica.ErrUnavailable, detail)
	}
	// Negotiate now, before the driver is shared: left to the first
	// request, the SDK negotiates lazily and the requests racing it read
	// the version while it is written.
	cli.NegotiateAPIVersionPing(ping)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Driver{cli: cli, instance: opts.Instance, project: opts.Project, log: opts.Logger}, nil
}

// Close releases the client's connections.
func (d *Driver) Close() error { return d.cli.Close() }

// Instance is the instance UUID this driver owns objects for.
func (d *Driver) Instance() string { return d.instance }

// Project is the network name and container name prefix.
func (d *Driver) Project() string { return d.project }

// ContainerName is the engine-side name of a replica: <project>-<group>-<index>.
func (d *Driver) ContainerName(group string, index int) string {
	return d.project + "-" + replica.Name(group, index)
}

// translate maps an SDK error onto the driver's sentinels, keeping the
// engine's message for humans but not its types, so callers never need the SDK.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", op, err)
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%s: %w: %v", op, replica.ErrNotFound, err)
	case cerrdefs.IsConflict(err), cerrdefs.IsAlreadyExists(err),
		// An engine of API 1.41 answers unpausing a running container
		// with a plain server error.
		strings.Contains(err.Error(), "is not paused"):
		return fmt.Errorf("%s: %w: %v", op, replica.ErrConflict, err)
	case client.IsErrConnectionFailed(err), cerrdefs.IsUnavailable(err):
		return fmt.Errorf("%s: %w: %v", op, replica.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %v", op, err)
}

func isNotFound(err error) bool { return errors.Is(err, replica.ErrNotFound) }

func isSDKNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

package conformance_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
)

// The suite reaches Swarm only through the docker command: to read the
// engine's swarm state, to clean up services by label after a failure,
// and, in the benchmark, as the peer a learner would type. Only the
// objects of the run's instance label are touched.

// dockerCmd runs the docker command and returns its trimmed output.
func dockerCmd(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// swarmState is the engine's swarm mode as `docker info` shows it.
type swarmState struct {
	// Node is "inactive", "pending", "active", "error" or "locked".
	Node    string
	Manager bool
}

func (s swarmState) active() bool { return s.Node == "active" }

func readSwarmState(ctx context.Context) (swarmState, error) {
	out, err := dockerCmd(ctx, "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}")
	if err != nil {
		return swarmState{}, err
	}
	node, manager, ok := strings.Cut(out, " ")
	if !ok {
		return swarmState{}, fmt.Errorf("docker info: unexpected swarm state %q", out)
	}
	return swarmState{Node: node, Manager: manager == "true"}, nil
}

// instanceFilter selects the objects of one run.
func instanceFilter(instance string) string {
	return "label=" + docker.LabelInstance + "=" + instance
}

// removeServices removes the swarm services carrying instance's label, if
// any are left, and waits until their containers are gone. With swarm
// mode inactive there is nothing to remove.
func removeServices(ctx context.Context, drv *docker.Driver, instance string) error {
	st, err := readSwarmState(ctx)
	if err != nil || !st.active() || !st.Manager {
		return nil
	}
	out, err := dockerCmd(ctx, "service", "ls", "-q", "--filter", instanceFilter(instance))
	if err != nil {
		return err
	}
	if ids := strings.Fields(out); len(ids) > 0 {
		if _, err := dockerCmd(ctx, append([]string{"service", "rm"}, ids...)...); err != nil {
			return err
		}
	}
	return dockertest.PollErr(time.Minute, func() error {
		reps, err := drv.List(ctx)
		if err != nil {
			return err
		}
		if len(reps) > 0 {
			return fmt.Errorf("%d containers of the run's services are still there", len(reps))
		}
		return nil
	})
}

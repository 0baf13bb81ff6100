package docker

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/container"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// taskContainer resolves id to the container of a task of this instance's
// services on this engine. A task without a container yet is
// replica.ErrConflict (it is not running); a container that is not ours, or
// ours but not a task of our group's service, is replica.ErrNotFound.
func (s *Swarm) taskContainer(ctx context.Context, op, id string) (container.InspectResponse, error) {
	if strings.HasPrefix(id, taskIDPrefix) {
		return container.InspectResponse{}, fmt.Errorf("%s %s: %w: the task has no container yet", op, id, replica.ErrConflict)
	}
	c, err := s.d.owned(ctx, op, id)
	if err != nil {
		return c, err
	}
	if !s.isTask(c.Config.Labels) {
		return c, fmt.Errorf("%s %s: %w: not a task of this Flotilla instance's services", op, id, replica.ErrNotFound)
	}
	return c, nil
}

// isTask reports whether a container's labels are those of a task of one
// of this instance's services.
func (s *Swarm) isTask(labels map[string]string) bool {
	g := labels[LabelGroup]
	return ownedBy(labels, s.d.instance) && g != "" && labels[swarmServiceNameLabel] == s.ServiceName(g)
}

// Kill sends signal (default SIGKILL) to a task's container; Swarm sees it
// end and replaces it at the same slot. One not running is replica.ErrConflict.
func (s *Swarm) Kill(ctx context.Context, id, signal string) error {
	c, err := s.taskContainer(ctx, "kill", id)
	if err != nil {
		return err
	}
	if signal == "" {
		signal = "SIGKILL"
	}
	return translate("kill "+id, s.d.cli.ContainerKill(ctx, c.ID, signal))
}

// Pause freezes a task's container. Swarm does not notice: the task stays
// running to it, and List shows the replica paused.
func (s *Swarm) Pause(ctx context.Context, id string) error {
	c, err := s.taskContainer(ctx, "pause", id)
	if err != nil {
		return err
	}
	return translate("pause "+id, s.d.cli.ContainerPause(ctx, c.ID))
}

// Unpause thaws a paused task's container; one not paused is replica.ErrConflict.
func (s *Swarm) Unpause(ctx context.Context, id string) error {
	c, err := s.taskContainer(ctx, "unpause", id)
	if err != nil {
		return err
	}
	return translate("unpause "+id, s.d.cli.ContainerUnpause(ctx, c.ID))
}

// Stats takes one resource sample of a task's container on this engine;
// replica.ErrNotFound if it is gone or has no container.
func (s *Swarm) Stats(ctx context.Context, id string) (replica.Usage, error) {
	if strings.HasPrefix(id, taskIDPrefix) {
		return replica.Usage{}, fmt.Errorf("stats %s: %w: the task has no container yet", id, replica.ErrNotFound)
	}
	c, err := s.taskContainer(ctx, "stats", id)
	if err != nil {
		return replica.Usage{}, err
	}
	return s.d.stats(ctx, c.ID)
}

// Logs returns the last tail lines a task's container on this engine wrote
// (at most 1 MiB, as the driver's Logs).
func (s *Swarm) Logs(ctx context.Context, id string, tail int) (string, error) {
	if strings.HasPrefix(id, taskIDPrefix) {
		return "", fmt.Errorf("logs of %s: %w: the task has no container yet", id, replica.ErrNotFound)
	}
	c, err := s.taskContainer(ctx, "logs of", id)
	if err != nil {
		return "", err
	}
	return s.d.logs(ctx, c, id, tail)
}

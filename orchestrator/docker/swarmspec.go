package docker

import (
	"strconv"
	"time"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// slotTemplate is Swarm's placeholder for a task's slot, which it expands
// in a container's hostname, environment and mounts (not in its labels).
const slotTemplate = "{{.Task.Slot}}"

// Swarm's handling of a service's tasks.
const (
	// swarmRestartDelay is how long Swarm waits before replacing a task
	// that ended. Short, because healing is what learners watch; Swarm has
	// no crash-loop backoff, so a crashing service restarts at this pace.
	swarmRestartDelay = time.Second
	// swarmMonitor is how long after an update a new task that fails counts
	// as the update's failure, which rolls the service back.
	swarmMonitor = 5 * time.Second
	// swarmStopGrace is how long a task gets between SIGTERM and SIGKILL.
	swarmStopGrace = 10 * time.Second
	// tmpfsBytes is the size of a task's /tmp, as tmpfsOptions' size=16m.
	tmpfsBytes = 16 << 20
)

// serviceLabels are the labels of a group's service and of its tasks'
// containers: a replica's, without the replica number, which is the slot
// of the task (a container label cannot be templated).
func serviceLabels(instance string, t replica.Spec) map[string]string {
	l := ownerLabels(instance)
	l[LabelGroup] = t.Group
	l[LabelService] = t.Service
	l[LabelTemplateHash] = t.TemplateHash
	return l
}

// serviceSpec is the service that runs count replicas of t. It is pure so
// the policy can be tested without an engine.
//
// The container policy is the engine runtime's (containerConfig) as far as
// a service spec of API 1.41 can say it: user nobody, every capability
// dropped, a read-only root with a tmpfs /tmp (the engine mounts a tmpfs
// noexec, nosuid and nodev), an init process, memory, CPU and pids limits,
// no reservations, no published port, no mount but the store volume. Two
// items cannot be expressed and are not: no-new-privileges (a service's
// Privileges gained NoNewPrivileges in API 1.44, Docker 25; an engine of
// API 1.41 does not know the field, so it is not sent and the task's
// container runs without it; the shop and the bus set it on their own
// process as they start, package privs) and swap (the engine runtime sets swap equal
// to the memory limit; no service spec up to API 1.51 can set swap, so a
// task may swap as much as the engine's default allows).
func (s *Swarm) serviceSpec(count int, t replica.Spec) swarm.ServiceSpec {
	replicas := uint64(count)
	labels := serviceLabels(s.d.instance, t)
	hostname := t.Group + "-" + slotTemplate
	env := append(append([]string(nil), t.Env...),
		"FLOTILLA_REPLICA="+hostname,
		"PORT="+strconv.Itoa(t.Port),
	)
	init := true
	grace := swarmStopGrace
	delay := swarmRestartDelay
	update := updateConfig(t.Update)
	rollback := *update
	// A rollback that fails stops where it is: rolling back a rollback
	// would loop.
	rollback.FailureAction = swarm.UpdateFailureActionPause
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: s.ServiceName(t.Group), Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image:           t.Image,
				Labels:          copyLabels(labels),
				Hostname:        hostname,
				Env:             env,
				User:            replicaUser,
				Init:            &init,
				ReadOnly:        true,
				CapabilityDrop:  []string{"ALL"},
				Mounts:          s.serviceMounts(t),
				StopGracePeriod: &grace,
			},
			Resources: &swarm.ResourceRequirements{
				Limits: &swarm.Limit{NanoCPUs: t.NanoCPUs, MemoryBytes: t.MemoryBytes, Pids: t.PidsLimit},
			},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: &delay},
			Placement:     placement(t),
			Networks: []swarm.NetworkAttachmentConfig{{
				Target:  s.d.project,
				Aliases: append([]string(nil), t.Aliases...),
			}},
		},
		Mode:           swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		UpdateConfig:   update,
		RollbackConfig: &rollback,
		// DNS round robin: the group's alias resolves to its tasks, with no
		// virtual IP and nothing published (no ingress, no host port).
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}
}

// updateConfig is how Swarm rolls the service's tasks to a new spec: as
// the controller's update policy says (from the group's rollout), by
// default one task at a time, the new one started before the old one
// stops, each watched for swarmMonitor, and the service rolled back if one
// fails.
func updateConfig(p replica.UpdatePolicy) *swarm.UpdateConfig {
	u := &swarm.UpdateConfig{
		Parallelism:   1,
		FailureAction: swarm.UpdateFailureActionRollback,
		Monitor:       swarmMonitor,
		Order:         swarm.UpdateOrderStartFirst,
	}
	if p == (replica.UpdatePolicy{}) {
		return u
	}
	u.Parallelism, u.Delay = uint64(max(p.Parallelism, 0)), p.Delay
	if p.Monitor > 0 {
		u.Monitor = p.Monitor
	}
	if p.Order == replica.UpdateStopFirst {
		u.Order = swarm.UpdateOrderStopFirst
	}
	if p.FailureAction == replica.UpdatePause {
		u.FailureAction = swarm.UpdateFailureActionPause
	}
	return u
}

// placement is where the group's tasks may run: its constraints, and its
// spread over a node label; nil places them anywhere.
func placement(t replica.Spec) *swarm.Placement {
	if len(t.Constraints) == 0 && t.Spread == "" {
		return nil
	}
	p := &swarm.Placement{Constraints: append([]string(nil), t.Constraints...)}
	if t.Spread != "" {
		p.Preferences = []swarm.PlacementPreference{{Spread: &swarm.SpreadOver{SpreadDescriptor: t.Spread}}}
	}
	return p
}

// serviceMounts are a task's /tmp and, if t has a store, its store volume:
// <project>-<group>-<slot>-store, labelled as the engine runtime labels a
// replica's (the slot expanded by Swarm), made by the node's engine when
// the task starts there if it does not exist.
func (s *Swarm) serviceMounts(t replica.Spec) []mount.Mount {
	ms := []mount.Mount{{Type: mount.TypeTmpfs, Target: "/tmp", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: tmpfsBytes}}}
	if t.Store == "" {
		return ms
	}
	v := t
	v.Index = 0
	labels := volumeLabels(s.d.instance, v)
	labels[LabelReplica] = slotTemplate
	return append(ms, mount.Mount{
		Type:   mount.TypeVolume,
		Source: s.d.project + "-" + t.Group + "-" + slotTemplate + "-store",
		Target: t.Store,
		VolumeOptions: &mount.VolumeOptions{
			Labels:       labels,
			DriverConfig: &mount.Driver{Name: "local"},
		},
	})
}

func copyLabels(l map[string]string) map[string]string {
	out := make(map[string]string, len(l))
	for k, v := range l {
		out[k] = v
	}
	return out
}

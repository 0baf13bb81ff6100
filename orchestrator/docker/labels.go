package docker

import (
	"fmt"
	"strconv"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// Labels are how Flotilla owns objects on a shared engine. They are declared
// here once; every list the driver makes filters on LabelManaged and, for
// containers, networks and volumes, on LabelInstance.
const (
	// LabelManaged is "true" on every container, network, volume and image Flotilla makes.
	LabelManaged = "io.flotilla.managed"
	// LabelInstance is the controller instance's UUID, so two controllers (or
	// two test runs) on one engine never touch each other's objects.
	LabelInstance = "io.flotilla.instance"
	// LabelGroup is the scaling group a replica belongs to.
	LabelGroup = "io.flotilla.group"
	// LabelReplica is the replica's index within its group, from 1.
	LabelReplica = "io.flotilla.replica"
	// LabelService is the catalogued service a replica runs.
	LabelService = "io.flotilla.service"
	// LabelTemplateHash identifies the template a replica was created from.
	LabelTemplateHash = "io.flotilla.template-hash"
	// LabelMember is a pod member's part: MemberInfra, MemberService or
	// MemberAgent. A replica that is one container has none.
	LabelMember = "io.flotilla.member"
	// LabelPod is, on a pod's service and agent, the ID of the pod's infra
	// container: the replica's ID, so a member's events and a member left
	// behind map to their replica.
	LabelPod = "io.flotilla.pod"
	// LabelImage is the name of a Flotilla image (images/<name>).
	LabelImage = "io.flotilla.image"
	// LabelContentHash is the hash of the sources an image was built from.
	LabelContentHash = "io.flotilla.content-hash"
)

const managedValue = "true"

// ownerLabels are the labels every owned container and network carries.
func ownerLabels(instance string) map[string]string {
	return map[string]string{LabelManaged: managedValue, LabelInstance: instance}
}

// ownedBy reports whether labels mark an object as owned by instance.
func ownedBy(labels map[string]string, instance string) bool {
	return labels[LabelManaged] == managedValue && instance != "" && labels[LabelInstance] == instance
}

// replicaLabels are the labels of a replica's container.
func replicaLabels(instance string, s replica.Spec) map[string]string {
	l := ownerLabels(instance)
	l[LabelGroup] = s.Group
	l[LabelReplica] = strconv.Itoa(s.Index)
	l[LabelService] = s.Service
	l[LabelTemplateHash] = s.TemplateHash
	return l
}

// replicaIdentity is what a container's labels say about the replica it is.
type replicaIdentity struct {
	Group        string
	Index        int
	Service      string
	TemplateHash string
}

// parseReplicaLabels reads a replica's identity from its labels. It fails on
// a missing group or an index that is not a positive integer, so a damaged
// container is reported rather than silently treated as replica 0.
func parseReplicaLabels(labels map[string]string) (replicaIdentity, error) {
	id := replicaIdentity{
		Group:        labels[LabelGroup],
		Service:      labels[LabelService],
		TemplateHash: labels[LabelTemplateHash],
	}
	if id.Group == "" {
		return id, fmt.Errorf("label %s is missing", LabelGroup)
	}
	raw, ok := labels[LabelReplica]
	if !ok {
		return id, fmt.Errorf("label %s is missing", LabelReplica)
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		return id, fmt.Errorf("label %s=%q is not a replica number", LabelReplica, raw)
	}
	id.Index = n
	return id, nil
}

// hasLabels reports whether labels carries every key=value of want.
func hasLabels(labels, want map[string]string) bool {
	for k, v := range want {
		got, ok := labels[k]
		if !ok || got != v {
			return false
		}
	}
	return true
}

package docker

import (
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

const testInstance = "0b5f6a5e-8d0e-4a8e-9a55-1c1f3b7a2a11"

func testSwarm() *Swarm {
	return &Swarm{d: &Driver{instance: testInstance, project: "proj"}, node: "node-a"}
}

func testTemplate() replica.Spec {
	t := testSpec()
	t.Index = 0
	return t
}

// TestServiceSpecPolicy pins the service a template becomes: the container
// policy as far as API 1.41 says it, labels without a replica number, the
// slot templates, the network, and Swarm's own update handling.
func TestServiceSpecPolicy(t *testing.T) {
	s := testSwarm()
	spec := s.serviceSpec(3, testTemplate())

	if spec.Name != "proj-web" {
		t.Errorf("Name = %q, want proj-web", spec.Name)
	}
	wantLabels := map[string]string{
		LabelManaged: "true", LabelInstance: testInstance, LabelGroup: "web",
		LabelService: "monolith", LabelTemplateHash: "h1",
	}
	if !maps.Equal(spec.Labels, wantLabels) {
		t.Errorf("service labels = %v, want %v", spec.Labels, wantLabels)
	}
	cs := spec.TaskTemplate.ContainerSpec
	if cs == nil {
		t.Fatal("no ContainerSpec")
	}
	if !maps.Equal(cs.Labels, wantLabels) {
		t.Errorf("container labels = %v, want %v", cs.Labels, wantLabels)
	}
	if _, ok := cs.Labels[LabelReplica]; ok {
		t.Errorf("container labels carry a replica number: %v", cs.Labels)
	}
	cs.Labels[LabelGroup] = "changed"
	if spec.Labels[LabelGroup] != "web" {
		t.Error("service and container labels share one map")
	}
	if cs.Image != "flotilla-shop:abc" || cs.User != replicaUser || !cs.ReadOnly || cs.Init == nil || !*cs.Init {
		t.Errorf("image %q, user %q, read-only %v, init %v", cs.Image, cs.User, cs.ReadOnly, cs.Init)
	}
	if !slices.Equal(cs.CapabilityDrop, []string{"ALL"}) || len(cs.CapabilityAdd) != 0 {
		t.Errorf("caps drop %v add %v, want drop [ALL]", cs.CapabilityDrop, cs.CapabilityAdd)
	}
	if cs.Privileges != nil {
		t.Errorf("Privileges = %+v, want none (API 1.41 has no no-new-privileges for services)", cs.Privileges)
	}
	if cs.Hostname != "web-{{.Task.Slot}}" {
		t.Errorf("Hostname = %q", cs.Hostname)
	}
	wantEnv := []string{"FLOTILLA_ROLE=monolith", "FLOTILLA_REPLICA=web-{{.Task.Slot}}", "PORT=8080"}
	if !slices.Equal(cs.Env, wantEnv) {
		t.Errorf("Env = %v, want %v", cs.Env, wantEnv)
	}
	if len(cs.Mounts) != 1 || cs.Mounts[0].Type != mount.TypeTmpfs || cs.Mounts[0].Target != "/tmp" ||
		cs.Mounts[0].TmpfsOptions == nil || cs.Mounts[0].TmpfsOptions.SizeBytes != 16<<20 {
		t.Errorf("Mounts = %+v, want one 16 MiB tmpfs on /tmp", cs.Mounts)
	}
	if cs.StopGracePeriod == nil || *cs.StopGracePeriod <= 0 {
		t.Errorf("StopGracePeriod = %v", cs.StopGracePeriod)
	}

	res := spec.TaskTemplate.Resources
	if res == nil || res.Limits == nil || *res.Limits != (swarm.Limit{NanoCPUs: 500_000_000, MemoryBytes: 64 << 20, Pids: 64}) {
		t.Errorf("Resources = %+v", res)
	}
	if res != nil && res.Reservations != nil {
		t.Errorf("Reservations = %+v, want none", res.Reservations)
	}
	rp := spec.TaskTemplate.RestartPolicy
	if rp == nil || rp.Condition != swarm.RestartPolicyConditionAny || rp.Delay == nil || rp.MaxAttempts != nil {
		t.Errorf("RestartPolicy = %+v, want condition any with a delay and no attempt limit", rp)
	}
	if nets := spec.TaskTemplate.Networks; len(nets) != 1 || nets[0].Target != "proj" || !slices.Equal(nets[0].Aliases, []string{"web"}) {
		t.Errorf("Networks = %+v, want proj with alias web", nets)
	}
	if spec.TaskTemplate.Placement != nil {
		t.Errorf("Placement = %+v, want none", spec.TaskTemplate.Placement)
	}

	if m := spec.Mode.Replicated; m == nil || m.Replicas == nil || *m.Replicas != 3 || spec.Mode.Global != nil {
		t.Errorf("Mode = %+v, want replicated 3", spec.Mode)
	}
	if ep := spec.EndpointSpec; ep == nil || ep.Mode != swarm.ResolutionModeDNSRR || len(ep.Ports) != 0 {
		t.Errorf("EndpointSpec = %+v, want dnsrr without ports", ep)
	}
	u := spec.UpdateConfig
	if u == nil || u.Parallelism != 1 || u.Order != swarm.UpdateOrderStartFirst ||
		u.FailureAction != swarm.UpdateFailureActionRollback || u.Monitor < time.Second || u.Monitor > 30*time.Second {
		t.Errorf("UpdateConfig = %+v", u)
	}
	r := spec.RollbackConfig
	if r == nil || r.Parallelism != 1 || r.Order != swarm.UpdateOrderStartFirst ||
		r.FailureAction != swarm.UpdateFailureActionPause || r.Monitor != u.Monitor {
		t.Errorf("RollbackConfig = %+v", r)
	}
}

func TestServiceSpecStore(t *testing.T) {
	s := testSwarm()
	tmpl := testTemplate()
	tmpl.Store = "/data"
	ms := s.serviceSpec(1, tmpl).TaskTemplate.ContainerSpec.Mounts
	if len(ms) != 2 {
		t.Fatalf("Mounts = %+v, want /tmp and the store", ms)
	}
	m := ms[1]
	if m.Type != mount.TypeVolume || m.Source != "proj-web-{{.Task.Slot}}-store" || m.Target != "/data" || m.ReadOnly {
		t.Errorf("store mount = %+v", m)
	}
	// The slot expanded, the volume is named and labelled as the engine
	// runtime names and labels a replica's (auditMounts checks both).
	if got, want := strings.ReplaceAll(m.Source, slotTemplate, "2"), s.d.VolumeName("web", 2); got != want {
		t.Errorf("expanded source %q, want %q", got, want)
	}
	want := map[string]string{
		LabelManaged: "true", LabelInstance: testInstance, LabelGroup: "web",
		LabelReplica: "{{.Task.Slot}}", LabelService: "monolith",
	}
	if m.VolumeOptions == nil || !maps.Equal(m.VolumeOptions.Labels, want) ||
		m.VolumeOptions.DriverConfig == nil || m.VolumeOptions.DriverConfig.Name != "local" {
		t.Errorf("VolumeOptions = %+v, want labels %v and the local driver", m.VolumeOptions, want)
	}
}

func TestValidateTemplate(t *testing.T) {
	if err := validateTemplate(testTemplate()); err != nil {
		t.Errorf("a good template: %v", err)
	}
	for name, mut := range map[string]func(*replica.Spec){
		"no image":  func(s *replica.Spec) { s.Image = "" },
		"no memory": func(s *replica.Spec) { s.MemoryBytes = 0 },
		"no pids":   func(s *replica.Spec) { s.PidsLimit = 0 },
		"port":      func(s *replica.Spec) { s.Port = 0 },
		"pod":       func(s *replica.Spec) { s.Isolation = IsolationPod },
		"vm":        func(s *replica.Spec) { s.Isolation = IsolationVM },
		"store":     func(s *replica.Spec) { s.Store = "/tmp/x" },
	} {
		tmpl := testTemplate()
		mut(&tmpl)
		if err := validateTemplate(tmpl); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPlaceChange(t *testing.T) {
	s := testSwarm()
	cur := s.serviceSpec(2, testTemplate())
	for _, tc := range []struct {
		name  string
		count int
		hash  string
		want  int
	}{
		{"same desire", 2, "h1", placeNothing},
		{"scale up", 3, "h1", placeCount},
		{"scale to zero", 0, "h1", placeCount},
		{"new template", 2, "h2", placeTemplate},
		{"new template and count", 5, "h2", placeTemplate},
	} {
		if got := placeChange(cur, tc.count, tc.hash); got != tc.want {
			t.Errorf("%s: placeChange = %d, want %d", tc.name, got, tc.want)
		}
	}
	cur.Mode = swarm.ServiceMode{Global: &swarm.GlobalService{}}
	if got := placeChange(cur, 2, "h1"); got != placeTemplate {
		t.Errorf("a service not replicated: placeChange = %d, want the whole spec", got)
	}
}

func TestTaskState(t *testing.T) {
	for st, want := range map[swarm.TaskState]string{
		swarm.TaskStateRunning:   replica.StateRunning,
		swarm.TaskStateNew:       replica.StateCreated,
		swarm.TaskStatePending:   replica.StateCreated,
		swarm.TaskStateAssigned:  replica.StateCreated,
		swarm.TaskStateAccepted:  replica.StateCreated,
		swarm.TaskStatePreparing: replica.StateCreated,
		swarm.TaskStateReady:     replica.StateCreated,
		swarm.TaskStateStarting:  replica.StateCreated,
		swarm.TaskStateComplete:  replica.StateExited,
		swarm.TaskStateShutdown:  replica.StateExited,
		swarm.TaskStateFailed:    replica.StateDead,
		swarm.TaskStateRejected:  replica.StateDead,
		swarm.TaskStateOrphaned:  replica.StateDead,
		swarm.TaskStateRemove:    replica.StateRemoving,
		"something-new":          replica.StateDead,
	} {
		if got := taskState(st); got != want {
			t.Errorf("taskState(%s) = %s, want %s", st, got, want)
		}
	}
}

func TestRefineState(t *testing.T) {
	for _, tc := range []struct{ task, container, want string }{
		{replica.StateRunning, "running", replica.StateRunning},
		{replica.StateRunning, "paused", replica.StatePaused},
		{replica.StateRunning, "exited", replica.StateExited},
		{replica.StateCreated, "running", replica.StateRunning}, // the agent has not told the manager yet
		{replica.StateCreated, "created", replica.StateCreated},
		{replica.StateCreated, "paused", replica.StatePaused}, // started, then paused, before the manager heard
		{replica.StateExited, "running", replica.StateExited},
	} {
		if got := refineState(tc.task, tc.container); got != tc.want {
			t.Errorf("refineState(%s, %s) = %s, want %s", tc.task, tc.container, got, tc.want)
		}
	}
}

func TestSlotFromTaskName(t *testing.T) {
	for name, want := range map[string]int{
		"proj-web.1.k3p9x0a1b2c3":       1,
		"proj-web.12.k3p9x0a1b2c3":      12,
		"flotilla.test-web.3.abcdef":    3, // a project with a dot
		"proj-web.r9p0z8aznn7uu.abcdef": 0, // a global service's task: a node ID
		"proj-web.0.abc":                0,
		"proj-web.-1.abc":               0,
		"proj-web.1.":                   0,
		"proj-web":                      0,
		"":                              0,
	} {
		if got := slotFromTaskName(name); got != want {
			t.Errorf("slotFromTaskName(%q) = %d, want %d", name, got, want)
		}
	}
}

func testTask(s *Swarm) swarm.Task {
	spec := s.serviceSpec(2, testTemplate())
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return swarm.Task{
		ID:           "task1",
		Meta:         swarm.Meta{CreatedAt: created},
		Spec:         spec.TaskTemplate,
		ServiceID:    "svc1",
		Slot:         2,
		NodeID:       "node-a",
		DesiredState: swarm.TaskStateRunning,
		Status: swarm.TaskStatus{
			Timestamp:       created.Add(time.Second),
			State:           swarm.TaskStateRunning,
			ContainerStatus: &swarm.ContainerStatus{ContainerID: "c1", ExitCode: 0},
		},
	}
}

func TestReplicaFromTask(t *testing.T) {
	s := testSwarm()
	task := testTask(s)
	got := replicaFromTask(task)
	want := replica.Replica{
		ID: "c1", Name: "web-2", Group: "web", Index: 2, Service: "monolith", TemplateHash: "h1",
		State: replica.StateRunning, Created: task.CreatedAt, StartedAt: task.Status.Timestamp, Node: "node-a",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("replicaFromTask = %+v\nwant %+v", got, want)
	}
	if p := envPort(task); p != "8080" {
		t.Errorf("envPort = %q, want 8080", p)
	}

	task.Status = swarm.TaskStatus{State: swarm.TaskStatePending}
	got = replicaFromTask(task)
	if got.ID != "task:task1" || got.State != replica.StateCreated || !got.StartedAt.IsZero() {
		t.Errorf("a task without a container: %+v", got)
	}

	task.Status = swarm.TaskStatus{State: swarm.TaskStateFailed, ContainerStatus: &swarm.ContainerStatus{ContainerID: "c1", ExitCode: 137}}
	got = replicaFromTask(task)
	if got.State != replica.StateDead || got.ExitCode != 137 {
		t.Errorf("a failed task: %+v", got)
	}
}

func TestEndpointIPs(t *testing.T) {
	got := endpointIPs(map[string]network.EndpointResource{
		"c1":           {IPv4Address: "172.18.0.3/16"},
		"c2":           {IPv4Address: "172.18.0.4"},
		"ingress-sbox": {IPv4Address: ""},
		"c3":           {IPv4Address: "garbage/16"},
	})
	want := map[string]string{"c1": "172.18.0.3", "c2": "172.18.0.4"}
	if !maps.Equal(got, want) {
		t.Errorf("endpointIPs = %v, want %v", got, want)
	}
}

func TestTaskEventFromMessage(t *testing.T) {
	m := eventsMessage("die", "c1", map[string]string{
		LabelManaged: "true", LabelInstance: testInstance, LabelGroup: "web",
		swarmTaskNameLabel: "proj-web.3.k3p9x0a1b2c3", "exitCode": "137",
	}, 1700000000123456789)
	got := taskEventFromMessage(m)
	want := replica.Event{Action: "die", ID: "c1", Group: "web", Index: 3, Time: time.Unix(0, 1700000000123456789), ExitCode: 137}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestClusterEvent(t *testing.T) {
	s := testSwarm()
	ours := events.Message{Type: events.ServiceEventType, Action: "update", Actor: events.Actor{ID: "svc1", Attributes: map[string]string{"name": "proj-web"}}, Time: 1700000000}
	if e, ok := s.clusterEvent(ours); !ok || e.Action != replica.ActionResync || e.ID != "svc1" || !e.Time.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("our service's event: %+v, %v", e, ok)
	}
	other := ours
	other.Actor.Attributes = map[string]string{"name": "projx-web"}
	if _, ok := s.clusterEvent(other); ok {
		t.Error("another project's service event was read as ours")
	}
	node := events.Message{Type: events.NodeEventType, Action: "update", Actor: events.Actor{ID: "node-b"}, TimeNano: 5}
	if e, ok := s.clusterEvent(node); !ok || e.Action != replica.ActionResync {
		t.Errorf("a node event: %+v, %v", e, ok)
	}
}

func TestIsTask(t *testing.T) {
	s := testSwarm()
	labels := map[string]string{LabelManaged: "true", LabelInstance: testInstance, LabelGroup: "web", swarmServiceNameLabel: "proj-web"}
	if !s.isTask(labels) {
		t.Error("our task's container is not ours")
	}
	for name, mut := range map[string]func(map[string]string){
		"another instance": func(l map[string]string) { l[LabelInstance] = "x" },
		"no service":       func(l map[string]string) { delete(l, swarmServiceNameLabel) },
		"another service":  func(l map[string]string) { l[swarmServiceNameLabel] = "other-web" },
		"no group":         func(l map[string]string) { delete(l, LabelGroup) },
	} {
		l := maps.Clone(labels)
		mut(l)
		if s.isTask(l) {
			t.Errorf("%s: taken as ours", name)
		}
	}
}

func TestNodeFromSwarm(t *testing.T) {
	n := swarm.Node{
		ID: "node-a",
		Spec: swarm.NodeSpec{
			Annotations:  swarm.Annotations{Labels: map[string]string{"zone": "a"}},
			Role:         swarm.NodeRoleManager,
			Availability: swarm.NodeAvailabilityActive,
		},
		Description: swarm.NodeDescription{
			Hostname:  "vm",
			Resources: swarm.Resources{NanoCPUs: 2e9, MemoryBytes: 4 << 30},
			Engine:    swarm.EngineDescription{EngineVersion: "20.10.24"},
		},
		Status:        swarm.NodeStatus{State: swarm.NodeStateReady, Addr: "0.0.0.0"},
		ManagerStatus: &swarm.ManagerStatus{Leader: true, Reachability: swarm.ReachabilityReachable, Addr: "127.0.0.1:2377"},
	}
	got := nodeFromSwarm(n)
	want := replica.Node{
		ID: "node-a", Name: "vm", Role: "manager", State: "ready", Availability: "active", Leader: true,
		Addr: "127.0.0.1", EngineVersion: "20.10.24", NanoCPUs: 2e9, MemoryBytes: 4 << 30,
		Labels: map[string]string{"zone": "a"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("nodeFromSwarm = %+v\nwant %+v", got, want)
	}
	n.Spec.Labels["zone"] = "b"
	if got.Labels["zone"] != "a" {
		t.Error("node labels share the SDK's map")
	}

	w := swarm.Node{ID: "node-b", Spec: swarm.NodeSpec{Annotations: swarm.Annotations{Name: "edge"}, Role: swarm.NodeRoleWorker, Availability: swarm.NodeAvailabilityDrain},
		Description: swarm.NodeDescription{Hostname: "host-b"}, Status: swarm.NodeStatus{Addr: "10.0.0.2"}}
	got = nodeFromSwarm(w)
	if got.Name != "edge" || got.Role != "worker" || got.Availability != "drain" || got.Leader || got.Addr != "10.0.0.2" || got.State != "unknown" || got.Labels != nil {
		t.Errorf("worker node = %+v", got)
	}
}

func TestSwarmUsable(t *testing.T) {
	if err := swarmUsable(swarm.Info{LocalNodeState: swarm.LocalNodeStateActive, ControlAvailable: true}); err != nil {
		t.Errorf("an active manager: %v", err)
	}
	err := swarmUsable(swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive})
	if !errors.Is(err, ErrSwarmInactive) || !strings.Contains(err.Error(), "docker swarm init --advertise-addr 127.0.0.1") || !strings.Contains(err.Error(), "--swarm-init") {
		t.Errorf("inactive: %v, want ErrSwarmInactive saying how to enable it", err)
	}
	if err := swarmUsable(swarm.Info{LocalNodeState: swarm.LocalNodeStateLocked}); !errors.Is(err, ErrSwarmInactive) || !strings.Contains(err.Error(), "unlock") {
		t.Errorf("locked: %v", err)
	}
	err = swarmUsable(swarm.Info{LocalNodeState: swarm.LocalNodeStateActive, NodeID: "w1"})
	if err == nil || errors.Is(err, ErrSwarmInactive) || !strings.Contains(err.Error(), "manager") {
		t.Errorf("a worker: %v, want an error asking for a manager", err)
	}
}

func TestInitDecision(t *testing.T) {
	for _, tc := range []struct {
		state   swarm.LocalNodeState
		init    bool
		wantErr bool
	}{
		{swarm.LocalNodeStateInactive, true, false},
		{"", true, false},
		{swarm.LocalNodeStateActive, false, false},
		{swarm.LocalNodeStateLocked, false, true},
		{swarm.LocalNodeStatePending, false, true},
		{swarm.LocalNodeStateError, false, true},
	} {
		init, err := initDecision(swarm.Info{LocalNodeState: tc.state, ControlAvailable: true})
		if init != tc.init || (err != nil) != tc.wantErr {
			t.Errorf("%q: init %v, err %v; want init %v, error %v", tc.state, init, err, tc.init, tc.wantErr)
		}
	}
}

func TestLeaveDecision(t *testing.T) {
	ours := SwarmRecord{Initialised: true, NodeID: "n1"}
	active := swarm.Info{LocalNodeState: swarm.LocalNodeStateActive, NodeID: "n1", ControlAvailable: true}
	if leave, why := leaveDecision(ours, active); !leave {
		t.Errorf("our swarm, same node: not left (%s)", why)
	}
	for name, tc := range map[string]struct {
		rec SwarmRecord
		sw  swarm.Info
	}{
		"found active, not initialised": {SwarmRecord{NodeID: "n1"}, active},
		"record without a node":         {SwarmRecord{Initialised: true}, active},
		"another swarm since":           {ours, swarm.Info{LocalNodeState: swarm.LocalNodeStateActive, NodeID: "n2"}},
		"already left":                  {ours, swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive}},
	} {
		if leave, why := leaveDecision(tc.rec, tc.sw); leave || why == "" {
			t.Errorf("%s: leave %v (%q), want to stay with a reason", name, leave, why)
		}
	}
}

func TestSwarmRecordJSON(t *testing.T) {
	rec := SwarmRecord{Initialised: true, NodeID: "n1", GWBridgeExisted: true, At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"initialised":true,"nodeID":"n1","gwbridgeExisted":true,"at":"2026-01-02T03:04:05Z"}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	var back SwarmRecord
	if err := json.Unmarshal(b, &back); err != nil || back != rec {
		t.Errorf("round trip = %+v, %v", back, err)
	}
}

func TestUpdateConfigFollowsThePolicy(t *testing.T) {
	def := updateConfig(replica.UpdatePolicy{})
	if def.Parallelism != 1 || def.Order != swarm.UpdateOrderStartFirst || def.FailureAction != swarm.UpdateFailureActionRollback || def.Monitor != swarmMonitor {
		t.Errorf("default update %+v, want one at a time, start first, rollback, monitored", def)
	}
	got := updateConfig(replica.UpdatePolicy{Parallelism: 2, Order: replica.UpdateStopFirst, Delay: 3 * time.Second, Monitor: 8 * time.Second, FailureAction: replica.UpdateRollback})
	if got.Parallelism != 2 || got.Order != swarm.UpdateOrderStopFirst || got.Delay != 3*time.Second || got.Monitor != 8*time.Second || got.FailureAction != swarm.UpdateFailureActionRollback {
		t.Errorf("update %+v, want 2 at a time, stop first, 3 s apart, 8 s watched, rollback", got)
	}
	all := updateConfig(replica.UpdatePolicy{Parallelism: 0, Order: replica.UpdateStopFirst, FailureAction: replica.UpdatePause})
	if all.Parallelism != 0 || all.FailureAction != swarm.UpdateFailureActionPause || all.Monitor != swarmMonitor {
		t.Errorf("recreate-like update %+v, want all at once, pause on failure", all)
	}
	s := testSwarm()
	tmpl := testTemplate()
	tmpl.Update = replica.UpdatePolicy{Parallelism: 3, Order: replica.UpdateStartFirst, FailureAction: replica.UpdateRollback}
	spec := s.serviceSpec(3, tmpl)
	if spec.UpdateConfig.Parallelism != 3 || spec.RollbackConfig.Parallelism != 3 || spec.RollbackConfig.FailureAction != swarm.UpdateFailureActionPause {
		t.Errorf("service update %+v and rollback %+v, want 3 at a time, a rollback that pauses on failure", spec.UpdateConfig, spec.RollbackConfig)
	}
}

func TestPlacementOfTheService(t *testing.T) {
	s := testSwarm()
	if p := s.serviceSpec(1, testTemplate()).TaskTemplate.Placement; p != nil {
		t.Errorf("a group without placement got %+v", p)
	}
	tmpl := testTemplate()
	tmpl.Constraints, tmpl.Spread = []string{"node.labels.zone==a", "node.role!=manager"}, "node.labels.zone"
	p := s.serviceSpec(1, tmpl).TaskTemplate.Placement
	if p == nil || !slices.Equal(p.Constraints, tmpl.Constraints) || len(p.Preferences) != 1 || p.Preferences[0].Spread == nil || p.Preferences[0].Spread.SpreadDescriptor != "node.labels.zone" {
		t.Errorf("placement %+v, want the constraints and a spread over node.labels.zone", p)
	}
}

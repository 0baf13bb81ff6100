package docker

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

func testSpec() replica.Spec {
	return replica.Spec{
		Group: "web", Index: 2, Service: "monolith", Image: "flotilla-shop:abc", Port: 8080,
		Env: []string{"FLOTILLA_ROLE=monolith"}, Aliases: []string{"web"},
		MemoryBytes: 64 << 20, NanoCPUs: 500_000_000, PidsLimit: 64, TemplateHash: "h1",
	}
}

// TestContainerConfigPolicy pins the container policy without an engine;
// the integration test checks the engine applied it.
func TestContainerConfigPolicy(t *testing.T) {
	d := &Driver{instance: "0b5f6a5e-8d0e-4a8e-9a55-1c1f3b7a2a11", project: "proj"}
	s := testSpec()
	cfg, host, netCfg := d.containerConfig(s)

	if cfg.User != "65534:65534" {
		t.Errorf("User = %q", cfg.User)
	}
	if cfg.Hostname != "web-2" {
		t.Errorf("Hostname = %q", cfg.Hostname)
	}
	for _, e := range []string{"FLOTILLA_ROLE=monolith", "FLOTILLA_REPLICA=web-2", "PORT=8080"} {
		if !slices.Contains(cfg.Env, e) {
			t.Errorf("Env %v lacks %s", cfg.Env, e)
		}
	}
	if _, ok := cfg.ExposedPorts["8080/tcp"]; !ok || len(cfg.ExposedPorts) != 1 {
		t.Errorf("ExposedPorts = %v", cfg.ExposedPorts)
	}
	wantLabels := map[string]string{
		LabelManaged: "true", LabelInstance: d.instance, LabelGroup: "web", LabelReplica: "2",
		LabelService: "monolith", LabelTemplateHash: "h1",
	}
	if !hasLabels(cfg.Labels, wantLabels) || len(cfg.Labels) != len(wantLabels) {
		t.Errorf("Labels = %v, want %v", cfg.Labels, wantLabels)
	}

	if got := host.PortBindings[nat.Port("8080/tcp")]; len(got) != 1 || got[0].HostIP != "127.0.0.1" || got[0].HostPort != "" {
		t.Errorf("PortBindings = %v", host.PortBindings)
	}
	if len(host.PortBindings) != 1 || host.PublishAllPorts {
		t.Errorf("only the service port may be published: %v, all=%v", host.PortBindings, host.PublishAllPorts)
	}
	if !slices.Equal(host.CapDrop, []string{"ALL"}) || len(host.CapAdd) != 0 {
		t.Errorf("CapDrop = %v, CapAdd = %v", host.CapDrop, host.CapAdd)
	}
	if !slices.Equal(host.SecurityOpt, []string{"no-new-privileges:true"}) {
		t.Errorf("SecurityOpt = %v", host.SecurityOpt)
	}
	if !host.ReadonlyRootfs || host.Privileged {
		t.Errorf("ReadonlyRootfs = %v, Privileged = %v", host.ReadonlyRootfs, host.Privileged)
	}
	if host.Tmpfs["/tmp"] != "rw,noexec,nosuid,size=16m" || len(host.Tmpfs) != 1 {
		t.Errorf("Tmpfs = %v", host.Tmpfs)
	}
	if host.Memory != 64<<20 || host.MemorySwap != 64<<20 || host.NanoCPUs != 500_000_000 ||
		host.PidsLimit == nil || *host.PidsLimit != 64 {
		t.Errorf("Resources = mem %d swap %d cpu %d pids %v", host.Memory, host.MemorySwap, host.NanoCPUs, host.PidsLimit)
	}
	if len(host.Binds) != 0 || len(host.Mounts) != 0 || len(host.VolumesFrom) != 0 {
		t.Errorf("mounts: binds %v mounts %v volumes-from %v", host.Binds, host.Mounts, host.VolumesFrom)
	}
	if host.RestartPolicy.Name != container.RestartPolicyDisabled {
		t.Errorf("RestartPolicy = %v", host.RestartPolicy)
	}
	if host.NetworkMode != "proj" {
		t.Errorf("NetworkMode = %q", host.NetworkMode)
	}
	ep := netCfg.EndpointsConfig["proj"]
	if ep == nil || !slices.Equal(ep.Aliases, []string{"web", "web-2"}) || len(netCfg.EndpointsConfig) != 1 {
		t.Errorf("EndpointsConfig = %v", netCfg.EndpointsConfig)
	}
	// The spec's slices must not be aliased by the config.
	if len(s.Env) != 1 || len(s.Aliases) != 1 {
		t.Errorf("containerConfig modified the spec: %+v", s)
	}
}

// A replica with a store mounts its own named volume there, and nothing
// else; the rest of the policy is unchanged.
func TestContainerConfigStore(t *testing.T) {
	d := &Driver{instance: "0b5f6a5e-8d0e-4a8e-9a55-1c1f3b7a2a11", project: "proj"}
	s := testSpec()
	s.Store = "/data"
	if err := validateSpec(s); err != nil {
		t.Fatalf("a spec with a store rejected: %v", err)
	}
	_, host, _ := d.containerConfig(s)
	want := []mount.Mount{{Type: mount.TypeVolume, Source: "proj-web-2-store", Target: "/data"}}
	if !reflect.DeepEqual(host.Mounts, want) {
		t.Errorf("Mounts = %+v, want %+v", host.Mounts, want)
	}
	if len(host.Binds) != 0 || !host.ReadonlyRootfs || len(host.Tmpfs) != 1 {
		t.Errorf("binds %v, read-only root %v, tmpfs %v", host.Binds, host.ReadonlyRootfs, host.Tmpfs)
	}
	if got := d.VolumeName("web", 2); got != "proj-web-2-store" {
		t.Errorf("VolumeName = %q", got)
	}
	l := volumeLabels(d.instance, s)
	if !ownedBy(l, d.instance) || l[LabelGroup] != "web" || l[LabelReplica] != "2" || l[LabelService] != "monolith" {
		t.Errorf("volume labels = %v", l)
	}
}

func TestValidateSpec(t *testing.T) {
	if err := validateSpec(testSpec()); err != nil {
		t.Fatalf("valid spec rejected: %v", err)
	}
	vm := testSpec()
	vm.Isolation = IsolationVM
	if err := validateSpec(vm); err != nil {
		t.Fatalf("a vm replica (one container running QEMU) rejected: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*replica.Spec)
		want   string
	}{
		{"no group", func(s *replica.Spec) { s.Group = "" }, "group"},
		{"index zero", func(s *replica.Spec) { s.Index = 0 }, "index"},
		{"no image", func(s *replica.Spec) { s.Image = "" }, "image"},
		{"bad port", func(s *replica.Spec) { s.Port = 70000 }, "port"},
		{"no memory limit", func(s *replica.Spec) { s.MemoryBytes = 0 }, "memory"},
		{"no cpu limit", func(s *replica.Spec) { s.NanoCPUs = 0 }, "CPU"},
		{"no pids limit", func(s *replica.Spec) { s.PidsLimit = 0 }, "pids"},
		{"unknown isolation", func(s *replica.Spec) { s.Isolation = "jail" }, `isolation "jail" is not one this driver runs (container, pod or vm)`},
		{"relative store", func(s *replica.Spec) { s.Store = "data" }, `store "data" is not a clean absolute path`},
		{"unclean store", func(s *replica.Spec) { s.Store = "/data/../etc" }, "not a clean absolute path"},
		{"store over the root", func(s *replica.Spec) { s.Store = "/" }, "would cover the root or /tmp"},
		{"store in /tmp", func(s *replica.Spec) { s.Store = "/tmp/x" }, "would cover the root or /tmp"},
		{"store in a pod", func(s *replica.Spec) { s.Store = "/data"; s.Isolation = IsolationPod }, "a store needs a container replica, not pod"},
		{"store in a vm", func(s *replica.Spec) { s.Store = "/data"; s.Isolation = IsolationVM }, "a store needs a container replica, not vm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSpec()
			tt.mutate(&s)
			err := validateSpec(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestReplicaFromSummary(t *testing.T) {
	d := &Driver{instance: "i", project: "proj"}
	labels := replicaLabels("i", testSpec())
	c := container.Summary{
		ID: "abc", Names: []string{"/proj-web-2"}, Labels: labels, State: "running", Created: 1700000000,
		Ports: []container.Port{
			{PrivatePort: 9999, Type: "tcp"}, // exposed, not published
			{IP: "127.0.0.1", PrivatePort: 8080, PublicPort: 49153, Type: "tcp"},
		},
		NetworkSettings: &container.NetworkSettingsSummary{},
	}
	c.NetworkSettings.Networks = map[string]*network.EndpointSettings{"proj": {IPAddress: "172.18.0.5"}}
	r := d.replicaFromSummary(c)
	if r.Address != "127.0.0.1:49153" || r.NetworkAddress != "172.18.0.5:8080" {
		t.Errorf("addresses = %q, %q", r.Address, r.NetworkAddress)
	}
	if r.Name != "web-2" || r.Group != "web" || r.Index != 2 || r.State != replica.StateRunning || !r.Created.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("replica = %+v", r)
	}

	c.State = "exited"
	if r := d.replicaFromSummary(c); r.Address != "" || r.NetworkAddress != "" {
		t.Errorf("a stopped replica has addresses %q, %q", r.Address, r.NetworkAddress)
	}
}

func TestParseTime(t *testing.T) {
	if got := parseTime("0001-01-01T00:00:00Z"); !got.IsZero() {
		t.Errorf("never = %v", got)
	}
	if got := parseTime(""); !got.IsZero() {
		t.Errorf("empty = %v", got)
	}
	want := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	if got := parseTime("2024-05-06T07:08:09.123456789Z"); !got.Equal(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

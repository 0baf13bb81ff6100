package spec

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/sample-services/bus/access"
)

func TestValidate(t *testing.T) {
	ok := Group{Name: "web", Service: "monolith", Replicas: 3}.WithDefaults()
	if err := ok.Validate(DefaultMaxReplicas); err != nil {
		t.Fatalf("a plain group is refused: %v", err)
	}
	tests := []struct {
		name  string
		edit  func(*Group)
		field string
	}{
		{"empty name", func(g *Group) { g.Name = "" }, "name"},
		{"upper case name", func(g *Group) { g.Name = "Web" }, "name"},
		{"name with underscore", func(g *Group) { g.Name = "my_web" }, "name"},
		{"name ending in dash", func(g *Group) { g.Name = "web-" }, "name"},
		{"name too long", func(g *Group) { g.Name = strings.Repeat("a", 33) }, "name"},
		{"no service", func(g *Group) { g.Service = "" }, "service"},
		{"arbitrary image", func(g *Group) { g.Service = "nginx:latest" }, "service"},
		{"negative replicas", func(g *Group) { g.Replicas = -1 }, "replicas"},
		{"too many replicas", func(g *Group) { g.Replicas = DefaultMaxReplicas + 1 }, "replicas"},
		{"too little memory", func(g *Group) { g.Resources.MemoryMiB = 4 }, "resources.memoryMiB"},
		{"too much CPU", func(g *Group) { g.Resources.MilliCPU = 64000 }, "resources.milliCPU"},
		{"too many pids", func(g *Group) { g.Resources.Pids = 1 << 20 }, "resources.pids"},
		{"unknown policy", func(g *Group) { g.Balancer.Policy = "random" }, "balancer.policy"},
		{"privileged port", func(g *Group) { g.Balancer.Port = 80 }, "balancer.port"},
		{"port without balancer", func(g *Group) { g.Balancer = Balancer{Policy: PolicyNone, Port: 9000} }, "balancer.port"},
		{"probe too often", func(g *Group) { g.Probe.PeriodMs = 10 }, "probe.periodMs"},
		{"probe timeout over period", func(g *Group) { g.Probe.TimeoutMs = 2000 }, "probe.timeoutMs"},
		{"failure threshold zero after defaults", func(g *Group) { g.Probe.FailureThreshold = -1 }, "probe.failureThreshold"},
		{"liveness too often", func(g *Group) { g.Liveness.PeriodMs = 10 }, "liveness.periodMs"},
		{"liveness timeout over period", func(g *Group) { g.Liveness.TimeoutMs = 5000 }, "liveness.timeoutMs"},
		{"liveness success threshold too high", func(g *Group) { g.Liveness.SuccessThreshold = 11 }, "liveness.successThreshold"},
		{"liveness failure threshold negative", func(g *Group) { g.Liveness.FailureThreshold = -2 }, "liveness.failureThreshold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := ok
			tt.edit(&g)
			err := g.Validate(DefaultMaxReplicas)
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want a ValidationError", err)
			}
			if ve.Field != tt.field {
				t.Fatalf("error names field %q (%v), want %q", ve.Field, err, tt.field)
			}
		})
	}
}

func TestProbeDefaults(t *testing.T) {
	g := Group{Name: "web", Service: "cart", Replicas: 1}.WithDefaults()
	if g.Probe != DefaultProbe || g.Liveness != DefaultLiveness {
		t.Fatalf("defaults: probe %+v, liveness %+v", g.Probe, g.Liveness)
	}
	// A group that tunes only its readiness probe, as older files do, keeps
	// the liveness defaults, and a partly set probe keeps the rest.
	g = Group{Name: "web", Service: "cart", Probe: Probe{PeriodMs: 200, TimeoutMs: 100}, Liveness: Probe{FailureThreshold: 5}}.WithDefaults()
	if g.Probe.PeriodMs != 200 || g.Probe.FailureThreshold != DefaultProbe.FailureThreshold {
		t.Errorf("probe %+v", g.Probe)
	}
	if g.Liveness.FailureThreshold != 5 || g.Liveness.PeriodMs != DefaultLiveness.PeriodMs {
		t.Errorf("liveness %+v", g.Liveness)
	}
	if err := g.Validate(DefaultMaxReplicas); err != nil {
		t.Errorf("valid probes refused: %v", err)
	}
	// A period under the default timeout, set alone, shortens the timeout;
	// set both, the timeout must fit the period.
	if g := (Group{Name: "web", Service: "cart", Liveness: Probe{PeriodMs: 500}}.WithDefaults()); g.Liveness.TimeoutMs != 500 || g.Validate(DefaultMaxReplicas) != nil {
		t.Errorf("liveness period 500 alone: %+v", g.Liveness)
	}
	if err := (Group{Name: "web", Service: "cart", Liveness: Probe{PeriodMs: 500, TimeoutMs: 800}}.WithDefaults()).Validate(DefaultMaxReplicas); err == nil ||
		err.Error() != "liveness.timeoutMs: 800 is longer than liveness.periodMs 500" {
		t.Errorf("a liveness timeout over its period: %v", err)
	}
}

func TestBoundsAreInclusive(t *testing.T) {
	for _, n := range []int{0, 7} {
		g := Group{Name: "web", Service: "cart", Replicas: n}.WithDefaults()
		if err := g.Validate(7); err != nil {
			t.Errorf("replicas %d with max 7: %v", n, err)
		}
	}
}

func TestTemplateHash(t *testing.T) {
	g := Group{Name: "web", Service: "monolith", Replicas: 3}.WithDefaults()
	base := g.TemplateHash("img:1")
	scaled, policy := g, g
	scaled.Replicas = 9
	policy.Balancer.Policy = PolicySticky
	if scaled.TemplateHash("img:1") != base || policy.TemplateHash("img:1") != base {
		t.Error("scaling or switching policy would replace replicas")
	}
	mem := g
	mem.Resources.MemoryMiB = 128
	if mem.TemplateHash("img:1") == base || g.TemplateHash("img:2") == base {
		t.Error("a new image or new limits would not replace replicas")
	}
}

func TestCatalogue(t *testing.T) {
	names := strings.Join(ServiceNames(), " ")
	if names != "analytics bus cart catalog checkout deals fulfillment gateway inventory monolith notifications orders receipt recommend" {
		t.Fatalf("catalogue = %s", names)
	}
	for _, s := range Services() {
		if s.Image == "" || s.Port == 0 || s.Ready == "" {
			t.Errorf("service %s is incomplete: %+v", s.Name, s)
		}
	}
	bus, _ := LookupService("bus")
	if bus.Image != "bus" || bus.Port != ShopPort || bus.Store != "/data" || !slices.Equal(bus.InternalPorts, []int{4222, 8222}) {
		t.Errorf("bus = %+v; want its own image, probes on %d, NATS on 4222 and 8222, a store at /data", bus, ShopPort)
	}
	if cart, _ := LookupService("cart"); cart.Image != "shop" || cart.Store != "" || cart.MaxReplicas != 0 {
		t.Errorf("cart = %+v", cart)
	}
	// Every subscriber of the bus's topology is a service of the shop's
	// image whose role has its name, so the controller gives its replicas
	// their bus user.
	for _, name := range access.Shop.Subscribers() {
		s, ok := LookupService(name)
		if !ok || s.Image != "shop" || s.Role != name || !slices.Equal(s.Needs, []string{BusService}) {
			t.Errorf("subscriber %s: %+v, %v", name, s, ok)
		}
	}
}

// The bus is one server with a volume: one replica, in a container.
func TestBusGroup(t *testing.T) {
	g := Group{Name: "bus", Service: "bus", Replicas: 1}.WithDefaults()
	if err := g.Validate(DefaultMaxReplicas); err != nil {
		t.Fatalf("a bus of one is refused: %v", err)
	}
	for _, tt := range []struct {
		change func(*Group)
		want   string
	}{
		{func(g *Group) { g.Replicas = 2 }, "replicas: 2 is more than service bus runs: at most 1"},
		{func(g *Group) { g.Isolation = IsolationPod }, `isolation: "pod" cannot run service bus: its store is a volume`},
		{func(g *Group) { g.Isolation = IsolationVM }, `isolation: "vm" cannot run service bus`},
	} {
		bad := g
		tt.change(&bad)
		err := bad.Validate(DefaultMaxReplicas)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("err = %v, want %q", err, tt.want)
		}
	}
	zero := g
	zero.Replicas = 0
	if err := zero.Validate(DefaultMaxReplicas); err != nil {
		t.Errorf("a bus scaled to 0 is refused: %v", err)
	}
}

func TestParseGroupsLiveness(t *testing.T) {
	gs, err := ParseGroups("g.yaml", []byte("groups:\n  - name: cart\n    service: cart\n    replicas: 2\n    probe:\n      periodMs: 500\n    liveness:\n      periodMs: 2000\n      failureThreshold: 5\n"), DefaultMaxReplicas)
	if err != nil {
		t.Fatal(err)
	}
	if gs[0].Probe.PeriodMs != 500 || gs[0].Liveness.PeriodMs != 2000 || gs[0].Liveness.FailureThreshold != 5 {
		t.Errorf("parsed %+v", gs[0])
	}
	for _, tt := range []struct{ file, want string }{
		{"groups:\n  - name: cart\n    service: cart\n    replicas: 1\n    liveness:\n      path: /\n", `line 6: unknown field "path" in probe or liveness`},
		{"groups:\n  - name: cart\n    service: cart\n    replicas: 1\n    liveness:\n      periodMs: 10\n", "liveness.periodMs: 10 is out of range"},
	} {
		if _, err := ParseGroups("g.yaml", []byte(tt.file), DefaultMaxReplicas); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error %v, want it to say %q", err, tt.want)
		}
	}
}

func TestIsolation(t *testing.T) {
	g := Group{Name: "web", Service: "monolith", Replicas: 1}.WithDefaults()
	if g.Isolation != IsolationContainer {
		t.Fatalf("default isolation %q, want %q", g.Isolation, IsolationContainer)
	}
	pod := g
	pod.Isolation = IsolationPod
	if err := pod.Validate(DefaultMaxReplicas); err != nil {
		t.Fatalf("a pod group is refused: %v", err)
	}
	small := pod
	small.Resources.MemoryMiB = 32
	if err := small.Validate(DefaultMaxReplicas); err == nil || !strings.Contains(err.Error(), "resources.memoryMiB: 32 is too little for a pod") {
		t.Errorf("a 32 MiB pod: error %v, want resources.memoryMiB too little", err)
	}
	small = pod
	small.Resources.Pids = 16
	if err := small.Validate(DefaultMaxReplicas); err == nil || !strings.Contains(err.Error(), "resources.pids: 16 is too few for a pod") {
		t.Errorf("a 16-pid pod: error %v, want resources.pids too few", err)
	}
	// Whether a vm can run is the controller's question; the spec accepts it.
	vm := g
	vm.Isolation = IsolationVM
	if err := vm.Validate(DefaultMaxReplicas); err != nil {
		t.Errorf("a vm group is refused by the spec: %v", err)
	}
	for _, tt := range []struct{ kind, want string }{
		{"jail", `"jail" is not an isolation kind; one of [container pod vm]`},
		{"Pod", "is not an isolation kind"},
	} {
		bad := g
		bad.Isolation = tt.kind
		err := bad.Validate(DefaultMaxReplicas)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != "isolation" || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("isolation %q: error %v, want field isolation saying %q", tt.kind, err, tt.want)
		}
	}
	// The default is left out of the hash: container groups made before
	// isolation existed keep their replicas; a change of kind replaces them.
	empty := g
	empty.Isolation = ""
	if g.TemplateHash("img:1") != empty.TemplateHash("img:1") {
		t.Error("an empty isolation and container hash differently")
	}
	if pod.TemplateHash("img:1") == g.TemplateHash("img:1") {
		t.Error("switching to pod would not replace replicas")
	}
	gs, err := ParseGroups("g.yaml", []byte("groups:\n  - name: cart\n    service: cart\n    replicas: 2\n    isolation: pod\n"), DefaultMaxReplicas)
	if err != nil || gs[0].Isolation != IsolationPod {
		t.Fatalf("parsed %+v, %v; want isolation pod", gs, err)
	}
	if _, err := ParseGroups("g.yaml", []byte("groups:\n  - name: cart\n    service: cart\n    replicas: 2\n    isolation: jail\n"), DefaultMaxReplicas); err == nil || !strings.Contains(err.Error(), "isolation") {
		t.Errorf("a jail group in a file: error %v, want one naming isolation", err)
	}
}

// A group chooses among its service's declared settings: a wrong name or
// value says what there is; a default is the same group as none; another
// value shapes different replicas.
func TestSettings(t *testing.T) {
	g := Group{Name: "checkout", Service: "checkout", Replicas: 1}
	for _, tc := range []struct {
		set  map[string]string
		want string
	}{
		{map[string]string{"colour": "red"}, `settings.colour: service checkout has no setting "colour"; its settings are [events]`},
		{map[string]string{"events": "pigeon"}, `settings.events: "pigeon" is not a value of it; one of [http bus]`},
	} {
		bad := g
		bad.Settings = tc.set
		err := bad.WithDefaults().Validate(10)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("settings %v: %v, want %q", tc.set, err, tc.want)
		}
	}
	cat := Group{Name: "catalog", Service: "catalog", Replicas: 1, Settings: map[string]string{"store": "bus"}}
	if err := cat.WithDefaults().Validate(10); err == nil || !strings.Contains(err.Error(), "service catalog has no settings") {
		t.Errorf("a setting of a service without any: %v", err)
	}

	def := g
	def.Settings = map[string]string{"events": "http"}
	if !def.WithDefaults().Equal(g.WithDefaults()) || def.TemplateHash("shop") != g.TemplateHash("shop") {
		t.Error("naming the default made another group")
	}
	bus := g
	bus.Settings = map[string]string{"events": "bus"}
	if err := bus.WithDefaults().Validate(10); err != nil {
		t.Fatal(err)
	}
	if bus.TemplateHash("shop") == g.TemplateHash("shop") || bus.WithDefaults().Equal(g.WithDefaults()) {
		t.Error("events: bus shapes the same replicas as the default")
	}
	svc, _ := LookupService("checkout")
	if got := svc.Env(bus.Settings); len(got) != 1 || got[0] != "CHECKOUT_EVENTS=bus" {
		t.Errorf("Env(bus) = %q", got)
	}
	if got := svc.Env(nil); len(got) != 1 || got[0] != "CHECKOUT_EVENTS=http" {
		t.Errorf("Env(default) = %q", got)
	}
}

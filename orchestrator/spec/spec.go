// Package spec holds Flotilla's desired state: the catalogue of runnable
// services and the groups a learner asks for, with their validation.
//
// Nothing here does I/O. A Group that passed Validate is safe to hand to the
// controller: it names a catalogued service (never an arbitrary image), its
// replica count is bounded and its resources are within limits.
package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"sort"

	"github.com/flotilla/flotilla/sample-services/version"
)

// ErrInvalid marks a desired state that can never be applied as written.
var ErrInvalid = errors.New("invalid spec")

// ValidationError says which field is wrong and why. It wraps ErrInvalid.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }
func (e *ValidationError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// DefaultMaxReplicas bounds a group's size unless the controller is told otherwise.
const DefaultMaxReplicas = 50

// Resources are the per-replica limits the engine enforces.
type Resources struct {
	// MemoryMiB is the memory limit in MiB.
	MemoryMiB int64 `json:"memoryMiB,omitempty" yaml:"memoryMiB,omitempty"`
	// MilliCPU is the CPU quota in thousandths of a core.
	MilliCPU int64 `json:"milliCPU,omitempty" yaml:"milliCPU,omitempty"`
	// Pids bounds the number of processes and threads.
	Pids int64 `json:"pids,omitempty" yaml:"pids,omitempty"`
}

// DefaultResources fit a sample service comfortably; 50 of them fit this machine.
var DefaultResources = Resources{MemoryMiB: 64, MilliCPU: 500, Pids: 64}

// Limits on what a learner may ask of one replica.
var (
	minResources = Resources{MemoryMiB: 16, MilliCPU: 50, Pids: 16}
	maxResources = Resources{MemoryMiB: 1024, MilliCPU: 2000, Pids: 1024}
)

// Group is one scaling group: identical replicas of one service.
type Group struct {
	Name      string    `json:"name" yaml:"name"`
	Service   string    `json:"service" yaml:"service"`
	Replicas  int       `json:"replicas" yaml:"replicas"`
	Resources Resources `json:"resources" yaml:"resources,omitempty"`
	Balancer  Balancer  `json:"balancer" yaml:"balancer,omitempty"`
	// Probe tunes the readiness probe (GET /readyz): a replica that fails
	// it leaves its balancer's rotation until it passes again.
	Probe Probe `json:"probe" yaml:"probe,omitempty"`
	// Liveness tunes the liveness probe (GET /healthz): a replica that
	// fails it is replaced.
	Liveness Probe `json:"liveness" yaml:"liveness,omitempty"`
	// Isolation is what one replica is: one of Isolations; empty means
	// IsolationContainer.
	Isolation string `json:"isolation" yaml:"isolation,omitempty"`
	// Settings choose among the service's declared behaviours (its
	// Service.Settings), such as checkout's events: bus or http. A
	// setting left out, or set to its default, is the default.
	Settings map[string]string `json:"settings,omitempty" yaml:"settings,omitempty"`
	// Autoscale, if set, makes the replica count follow the load between
	// its bounds; Replicas is then only the count to start from.
	Autoscale *Autoscale `json:"autoscale,omitempty" yaml:"autoscale,omitempty"`
	// Version is the release of the service the replicas run: one of
	// Versions, default v1. Flaw is the kind of bad release v3 is: one of
	// Flaws, default errors.
	Version string `json:"version,omitempty" yaml:"version,omitempty"`
	Flaw    string `json:"flaw,omitempty" yaml:"flaw,omitempty"`
	// Rollout says how a change to the template reaches the replicas;
	// nil is a rolling update with the defaults.
	Rollout *Rollout `json:"rollout,omitempty" yaml:"rollout,omitempty"`
	// Placement constrains and spreads the replicas over the nodes of the
	// swarm runtime; the engine runtime has one node and refuses it.
	Placement *Placement `json:"placement,omitempty" yaml:"placement,omitempty"`
}

// Isolation kinds: what one replica of a group is.
const (
	// IsolationContainer: a replica is one container.
	IsolationContainer = "container"
	// IsolationPod: a replica is a sandbox of several containers sharing
	// one network, PID and IPC namespace and one hostname.
	IsolationPod = "pod"
	// IsolationVM: a replica is a virtual machine with its own kernel.
	IsolationVM = "vm"
)

// Isolations lists every isolation kind, the default first.
var Isolations = []string{IsolationContainer, IsolationPod, IsolationVM}

// Probe tunes one of a group's probes of its replicas, through the
// published port.
type Probe struct {
	PeriodMs         int `json:"periodMs" yaml:"periodMs,omitempty"`
	TimeoutMs        int `json:"timeoutMs" yaml:"timeoutMs,omitempty"`
	SuccessThreshold int `json:"successThreshold" yaml:"successThreshold,omitempty"`
	FailureThreshold int `json:"failureThreshold" yaml:"failureThreshold,omitempty"`
}

// DefaultProbe probes every second with a 500 ms timeout; one success makes
// a replica ready, three failures in a row unhealthy.
var DefaultProbe = Probe{PeriodMs: 1000, TimeoutMs: 500, SuccessThreshold: 1, FailureThreshold: 3}

// DefaultLiveness probes every second and gives a replica a whole second to
// answer: replacing a replica loses what it holds, so the liveness probe
// is the more patient one. Three failures in a row make it not live.
var DefaultLiveness = Probe{PeriodMs: 1000, TimeoutMs: 1000, SuccessThreshold: 1, FailureThreshold: 3}

// withDefaults fills p's unset fields from d.
func (p Probe) withDefaults(d Probe) Probe {
	if p.PeriodMs == 0 {
		p.PeriodMs = d.PeriodMs
	}
	if p.TimeoutMs == 0 {
		// A short period set alone shortens the timeout with it.
		p.TimeoutMs = d.TimeoutMs
		if p.PeriodMs > 0 && p.PeriodMs < p.TimeoutMs {
			p.TimeoutMs = p.PeriodMs
		}
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = d.SuccessThreshold
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = d.FailureThreshold
	}
	return p
}

// validate checks a probe whose fields are named under prefix ("probe").
func (p Probe) validate(prefix string) error {
	if err := checkRange(prefix+".periodMs", int64(p.PeriodMs), 100, 60000); err != nil {
		return err
	}
	if err := checkRange(prefix+".timeoutMs", int64(p.TimeoutMs), 50, 10000); err != nil {
		return err
	}
	if p.TimeoutMs > p.PeriodMs {
		return invalid(prefix+".timeoutMs", "%d is longer than %s.periodMs %d", p.TimeoutMs, prefix, p.PeriodMs)
	}
	if err := checkRange(prefix+".successThreshold", int64(p.SuccessThreshold), 1, 10); err != nil {
		return err
	}
	return checkRange(prefix+".failureThreshold", int64(p.FailureThreshold), 1, 10)
}

// Balancer is how a group's traffic is spread.
type Balancer struct {
	// Policy is one of Policies; PolicyNone means no balancer: clients
	// must pick a replica's own address (stage 2 of the story).
	Policy string `json:"policy" yaml:"policy,omitempty"`
	// Port fixes the balancer's port on 127.0.0.1; 0 picks a free one.
	Port int `json:"port,omitempty" yaml:"port,omitempty"`
}

// Balancer policies.
const (
	PolicyRoundRobin       = "round-robin"
	PolicyLeastConnections = "least-connections"
	PolicyP2C              = "p2c"
	PolicySticky           = "sticky"
	PolicyNone             = "none"
)

// Policies lists every balancer policy, the default first.
var Policies = []string{PolicyRoundRobin, PolicyLeastConnections, PolicyP2C, PolicySticky, PolicyNone}

var namePattern = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$`)

// ValidName reports whether name can name a group: it becomes part of
// container names and DNS aliases, so it is a short lowercase DNS label.
func ValidName(name string) error {
	if !namePattern.MatchString(name) {
		return invalid("name", "%q must be 1 to 32 lowercase letters, digits or '-', starting with a letter and not ending with '-'", name)
	}
	return nil
}

// WithDefaults returns g with unset resources filled in.
func (g Group) WithDefaults() Group {
	if g.Resources.MemoryMiB == 0 {
		g.Resources.MemoryMiB = DefaultResources.MemoryMiB
	}
	if g.Resources.MilliCPU == 0 {
		g.Resources.MilliCPU = DefaultResources.MilliCPU
	}
	if g.Resources.Pids == 0 {
		g.Resources.Pids = DefaultResources.Pids
	}
	if g.Balancer.Policy == "" {
		g.Balancer.Policy = PolicyRoundRobin
	}
	if g.Isolation == "" {
		g.Isolation = IsolationContainer
	}
	if g.Version == "" {
		g.Version = DefaultVersion
	}
	if g.Version == version.Bad && g.Flaw == "" {
		g.Flaw = version.DefaultFlaw
	}
	g.Probe = g.Probe.withDefaults(DefaultProbe)
	g.Liveness = g.Liveness.withDefaults(DefaultLiveness)
	g.Settings = withoutDefaults(g.Service, g.Settings)
	return g
}

// Equal reports whether g and o are the same group spec.
func (g Group) Equal(o Group) bool {
	a, b := g, o
	a.Settings, b.Settings = nil, nil
	return reflect.DeepEqual(a, b) && maps.Equal(g.Settings, o.Settings)
}

// withoutDefaults drops the settings that say what the default says, so
// that naming a default changes no replica.
func withoutDefaults(service string, set map[string]string) map[string]string {
	svc, _ := LookupService(service)
	var out map[string]string
	for k, v := range set {
		if st, ok := svc.setting(k); ok && v == st.Default {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

// Validate checks g against the catalogue and the replica bound. Call it on
// g.WithDefaults().
func (g Group) Validate(maxReplicas int) error {
	if err := ValidName(g.Name); err != nil {
		return err
	}
	if g.Service == "" {
		return invalid("service", "is required; one of %v", ServiceNames())
	}
	if _, ok := LookupService(g.Service); !ok {
		return invalid("service", "%q is not a catalogued service; one of %v", g.Service, ServiceNames())
	}
	if err := g.Placement.Validate(); err != nil {
		return err
	}
	if g.Replicas < 0 || g.Replicas > maxReplicas {
		return invalid("replicas", "%d is out of range: must be 0 to %d", g.Replicas, maxReplicas)
	}
	svc, _ := LookupService(g.Service)
	if svc.MaxReplicas > 0 && g.Replicas > svc.MaxReplicas {
		return invalid("replicas", "%d is more than service %s runs: at most %d (%s)", g.Replicas, svc.Name, svc.MaxReplicas, svc.MaxReason)
	}
	if err := checkRange("resources.memoryMiB", g.Resources.MemoryMiB, minResources.MemoryMiB, maxResources.MemoryMiB); err != nil {
		return err
	}
	if err := checkRange("resources.milliCPU", g.Resources.MilliCPU, minResources.MilliCPU, maxResources.MilliCPU); err != nil {
		return err
	}
	if err := checkRange("resources.pids", g.Resources.Pids, minResources.Pids, maxResources.Pids); err != nil {
		return err
	}
	if !slices.Contains(Policies, g.Balancer.Policy) {
		return invalid("balancer.policy", "%q is not a policy; one of %v", g.Balancer.Policy, Policies)
	}
	if p := g.Balancer.Port; p != 0 && (p < 1024 || p > 65535) {
		return invalid("balancer.port", "%d is out of range: 0 for any free port, or 1024 to 65535", p)
	}
	if g.Balancer.Policy == PolicyNone && g.Balancer.Port != 0 {
		return invalid("balancer.port", "is set but the policy is %q: there is no balancer to listen", PolicyNone)
	}
	if err := validateIsolation(g.Isolation); err != nil {
		return err
	}
	if err := svc.validateSettings(g.Settings); err != nil {
		return err
	}
	if svc.Store != "" && g.Isolation != IsolationContainer {
		return invalid("isolation", "%q cannot run service %s: its store is a volume, which only a container replica mounts", g.Isolation, svc.Name)
	}
	if g.Isolation == IsolationPod {
		// The pod's infra container and sidecar take a share of the limits
		// (at least 8 MiB and 8 pids each); the service needs the rest.
		if g.Resources.MemoryMiB < 48 {
			return invalid("resources.memoryMiB", "%d is too little for a pod: its three containers need at least 48", g.Resources.MemoryMiB)
		}
		if g.Resources.Pids < 32 {
			return invalid("resources.pids", "%d is too few for a pod: its three containers need at least 32", g.Resources.Pids)
		}
	}
	if err := g.Probe.validate("probe"); err != nil {
		return err
	}
	if g.Autoscale != nil {
		if err := g.Autoscale.validate(maxReplicas, svc, g.Balancer.Policy != PolicyNone); err != nil {
			return err
		}
	}
	if err := validateVersion(g.Version, g.Flaw); err != nil {
		return err
	}
	if err := g.Rollout.validate(); err != nil {
		return err
	}
	return g.Liveness.validate("liveness")
}

// validateIsolation accepts every kind of Isolations. Whether this
// controller can run a kind (a vm needs a VM image) is the controller's
// question: the spec does no I/O.
func validateIsolation(kind string) error {
	if kind == "" || slices.Contains(Isolations, kind) {
		return nil
	}
	return invalid("isolation", "%q is not an isolation kind; one of %v", kind, Isolations)
}

func checkRange(field string, v, lo, hi int64) error {
	if v < lo || v > hi {
		return invalid(field, "%d is out of range: must be %d to %d", v, lo, hi)
	}
	return nil
}

// TemplateHash identifies everything that shapes a replica's container. A
// replica whose hash differs from its group's is outdated and gets replaced;
// the replica count is deliberately not part of it.
func (g Group) TemplateHash(image string) string {
	b, _ := json.Marshal(struct {
		Service   string
		Image     string
		Resources Resources
		Isolation string            `json:",omitempty"`
		Settings  map[string]string `json:",omitempty"`
		Version   string            `json:",omitempty"`
		Placement *Placement        `json:",omitempty"`
	}{g.Service, image, g.Resources, isolationKey(g.Isolation), withoutDefaults(g.Service, g.Settings), versionKey(g.Version, g.Flaw), g.Placement.normalised()})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// versionKey leaves the default version out of the template hash, so the
// replicas made before versions existed stay current.
func versionKey(version, flaw string) string {
	if version == "" || version == DefaultVersion {
		return ""
	}
	if flaw != "" {
		return version + "/" + flaw
	}
	return version
}

// isolationKey leaves the default out of the template hash, so the
// replicas of a container group made before isolation existed stay current.
func isolationKey(kind string) string {
	if kind == IsolationContainer {
		return ""
	}
	return kind
}

// Service is one runnable sample program of the catalogue.
type Service struct {
	Name        string `json:"name"`
	Image       string `json:"image"`
	Role        string `json:"role"`
	Port        int    `json:"port"`
	Health      string `json:"health"`
	Ready       string `json:"ready"`
	Description string `json:"description"`
	// Needs lists the services this one calls over the network.
	Needs []string `json:"needs,omitempty"`
	// InternalPorts are ports it listens on beside Port, on the project
	// network only: never published, reached by services and the
	// controller there.
	InternalPorts []int `json:"internalPorts,omitempty"`
	// Store, if set, is the path inside a replica where a named volume of
	// the replica's own holds what must outlive the container; only
	// container replicas mount one.
	Store string `json:"store,omitempty"`
	// MaxReplicas, if set, bounds a group of this service, for the reason
	// MaxReason gives.
	MaxReplicas int    `json:"maxReplicas,omitempty"`
	MaxReason   string `json:"-"`
	// Settings are the behaviours a group of it may choose.
	Settings []Setting `json:"settings,omitempty"`
}

// Setting is one choice a group makes for its service's replicas, given
// to them as the environment variable Env.
type Setting struct {
	Name        string   `json:"name"`
	Env         string   `json:"-"`
	Values      []string `json:"values"`
	Default     string   `json:"default"`
	Description string   `json:"description"`
}

func (s Service) setting(name string) (Setting, bool) {
	for _, st := range s.Settings {
		if st.Name == name {
			return st, true
		}
	}
	return Setting{}, false
}

// validateSettings accepts only the service's declared settings, each set
// to one of its values.
func (s Service) validateSettings(set map[string]string) error {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		st, ok := s.setting(k)
		if !ok {
			var names []string
			for _, x := range s.Settings {
				names = append(names, x.Name)
			}
			if len(names) == 0 {
				return invalid("settings."+k, "service %s has no settings", s.Name)
			}
			return invalid("settings."+k, "service %s has no setting %q; its settings are %v", s.Name, k, names)
		}
		if !slices.Contains(st.Values, set[k]) {
			return invalid("settings."+k, "%q is not a value of it; one of %v", set[k], st.Values)
		}
	}
	return nil
}

// Env is the environment that carries a group's settings to its replicas:
// every declared setting, chosen or default.
func (s Service) Env(set map[string]string) []string {
	var env []string
	for _, st := range s.Settings {
		v, ok := set[st.Name]
		if !ok {
			v = st.Default
		}
		env = append(env, st.Env+"="+v)
	}
	return env
}

// ShopPort is where every role of the shop binary listens inside its container.
const ShopPort = 8080

// AdminPort is where every role of the shop takes fault commands. It is
// never published: only the controller reaches it, over the project network.
const AdminPort = 9090

var catalogue = []Service{
	{Name: "monolith", Role: "monolith", Description: "the whole shop in one process: catalog, deals, cart, orders and checkout call each other in memory"},
	{Name: "catalog", Role: "catalog", Description: "products with prices"},
	{Name: "deals", Role: "deals", Description: "discounted products; reads the catalog over HTTP", Needs: []string{"catalog"}},
	{Name: "cart", Role: "cart", Description: "each shopper's cart, kept in this replica's memory, or in the bus's key-value bucket", Needs: []string{"catalog"},
		Settings: []Setting{{Name: "store", Env: "CART_STORE", Values: []string{"memory", "bus"}, Default: "memory",
			Description: "where carts live: memory (each replica its own) or bus (the bus's key-value bucket carts, shared by every replica)"}}},
	{Name: "orders", Role: "orders", Description: "the placed orders"},
	{Name: "checkout", Role: "checkout", Description: "turns a cart into an order over HTTP, then tells notifications, inventory and analytics", Needs: []string{"cart", "orders"},
		Settings: []Setting{{Name: "events", Env: "CHECKOUT_EVENTS", Values: []string{"http", "bus"}, Default: "http",
			Description: "how checkout tells notifications, inventory and analytics of an order: http (calls each in line, the order waits) or bus (publishes orders.placed and orders.fulfill and answers at once)"}}},
	{Name: "notifications", Role: "notifications", Needs: []string{BusService},
		Description: "a subscriber of orders.placed: would e-mail each shopper about their order (GET /sent); its replicas share one durable consumer"},
	{Name: "inventory", Role: "inventory", Needs: []string{BusService},
		Description: "a subscriber of orders.placed: reserves stock per product (GET /stock); its replicas share one durable consumer"},
	{Name: "analytics", Role: "analytics", Needs: []string{BusService},
		Description: "a subscriber of orders.placed: revenue and counts per product (GET /revenue); its replicas share one durable consumer"},
	{Name: "fulfillment", Role: "fulfillment", Needs: []string{BusService},
		Description: "a worker of the orders.fulfill work queue: ships each order once, taking about 200 ms (GET /done)"},
	{Name: "recommend", Role: "recommend",
		Description: "a function: products like the one asked for (GET /recommend?product=ID), from the catalogue built into it; it calls nothing, so it starts at once, and may scale to zero"},
	{Name: "receipt", Role: "receipt", Needs: []string{BusService},
		Description: "a function the bus wakes: renders a receipt for each order of orders.placed from its own durable consumer (GET /receipts); may scale to zero while the queue is empty",
		Settings: []Setting{{Name: "trigger", Env: "RECEIPT_TRIGGER", Values: []string{"bus", "http"}, Default: "bus",
			Description: "what wakes it: bus (each order of orders.placed, from its durable consumer receipt) or http (POST /receipt with the order, answered with its receipt)"}}},
	{Name: "gateway", Role: "gateway", Description: "one entry point: routes /catalog, /deals, /cart, /orders and /checkout to the service of that name, found by DNS", Needs: []string{"catalog", "deals", "cart", "orders", "checkout"}},
	{
		Name: BusService, Image: "bus", Role: "bus",
		Description: "the message bus: a NATS server with JetStream; clients on port 4222 and its monitoring on 8222, on the project network only; its store on a volume that outlives the container",
		// Its Port serves only the probes (GET /healthz, /readyz); NATS's
		// own ports are never published.
		InternalPorts: []int{BusClientPort, BusMonitorPort},
		Store:         BusStore,
		MaxReplicas:   1,
		MaxReason:     "one NATS server holds the streams; a group of several would be servers that do not share them",
	},
}

// The bus's name, ports and store, as the bus binary (sample-services/bus)
// uses them; its groups are found as nats://<group>:4222.
const (
	BusService     = "bus"
	BusClientPort  = 4222
	BusMonitorPort = 8222
	BusStore       = "/data"
)

func init() {
	for i := range catalogue {
		if catalogue[i].Image == "" {
			catalogue[i].Image = "shop"
		}
		catalogue[i].Port = ShopPort
		catalogue[i].Health = "/healthz"
		catalogue[i].Ready = "/readyz"
	}
}

// Services returns the catalogue, sorted by name.
func Services() []Service {
	out := append([]Service(nil), catalogue...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ServiceNames returns the catalogued names, sorted.
func ServiceNames() []string {
	var names []string
	for _, s := range Services() {
		names = append(names, s.Name)
	}
	return names
}

// LookupService finds a catalogued service by name.
func LookupService(name string) (Service, bool) {
	for _, s := range catalogue {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

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
	"regexp"
	"slices"
	"sort"
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
	g.Probe = g.Probe.withDefaults(DefaultProbe)
	g.Liveness = g.Liveness.withDefaults(DefaultLiveness)
	return g
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
	if g.Replicas < 0 || g.Replicas > maxReplicas {
		return invalid("replicas", "%d is out of range: must be 0 to %d", g.Replicas, maxReplicas)
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
		Isolation string `json:",omitempty"`
	}{g.Service, image, g.Resources, isolationKey(g.Isolation)})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
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
	{Name: "cart", Role: "cart", Description: "each shopper's cart, kept in this replica's memory", Needs: []string{"catalog"}},
	{Name: "orders", Role: "orders", Description: "the placed orders"},
	{Name: "checkout", Role: "checkout", Description: "turns a cart into an order over HTTP", Needs: []string{"cart", "orders"}},
	{Name: "gateway", Role: "gateway", Description: "one entry point: routes /catalog, /deals, /cart, /orders and /checkout to the service of that name, found by DNS", Needs: []string{"catalog", "deals", "cart", "orders", "checkout"}},
}

func init() {
	for i := range catalogue {
		catalogue[i].Image = "shop"
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

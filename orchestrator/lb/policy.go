package lb

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync/atomic"
)

// Policy names.
const (
	PolicyRoundRobin       = "round-robin"
	PolicyLeastConnections = "least-connections"
	PolicyP2C              = "p2c"
	PolicySticky           = "sticky"
)

var policies = map[string]func() selector{
	PolicyRoundRobin:       func() selector { return new(roundRobin) },
	PolicyLeastConnections: func() selector { return new(leastConnections) },
	PolicyP2C:              func() selector { return new(p2c) },
	PolicySticky:           func() selector { return new(sticky) },
}

// Policies returns the names of the selection policies, sorted.
func Policies() []string {
	names := make([]string, 0, len(policies))
	for n := range policies {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// policy is a named selector; it is swapped whole by SetPolicy.
type policy struct {
	name string
	sel  selector
	// keyed is set for policies that hash on the shopper, so the data path
	// reads the header and cookie only when they matter.
	keyed bool
}

func newPolicy(name string) (*policy, error) {
	mk, ok := policies[name]
	if !ok {
		return nil, fmt.Errorf("%w %q: choose one of %s", ErrUnknownPolicy, name, strings.Join(Policies(), ", "))
	}
	return &policy{name: name, sel: mk(), keyed: name == PolicySticky}, nil
}

// pickCtx is what a selector knows of the request: the shopper, if the
// policy is keyed, and which hosts it may not pick.
type pickCtx struct {
	key []byte
	// exclude is the host a retry must avoid.
	exclude *host
	// ignoreEjection lets ejected hosts be picked: the last resort when
	// every usable host is ejected.
	ignoreEjection bool
}

// selector picks one host for a request.
type selector interface {
	// pick returns a host of hosts for which pc.usable is true, or nil if
	// there is none. hosts is a snapshot that pick must not modify; pick is
	// called concurrently and must not allocate.
	pick(hosts []*host, pc pickCtx) *host
}

// roundRobin cycles through the hosts in order, skipping unusable ones.
type roundRobin struct{ next atomic.Uint64 }

func (r *roundRobin) pick(hosts []*host, pc pickCtx) *host {
	n := uint64(len(hosts))
	for range n {
		if h := hosts[(r.next.Add(1)-1)%n]; pc.usable(h) {
			return h
		}
	}
	return nil
}

// leastConnections picks the host with the fewest requests in flight; it
// starts its scan one further each time, so ties go round-robin.
type leastConnections struct{ next atomic.Uint64 }

func (l *leastConnections) pick(hosts []*host, pc pickCtx) *host {
	n := uint64(len(hosts))
	if n == 0 {
		return nil
	}
	start := l.next.Add(1) - 1
	var best *host
	var least int64
	for i := range n {
		h := hosts[(start+i)%n]
		if !pc.usable(h) {
			continue
		}
		if c := h.inflight.Load(); best == nil || c < least {
			best, least = h, c
		}
	}
	return best
}

// p2c takes two distinct hosts at random and picks the one with fewer
// requests in flight ("the power of two random choices", Mitzenmacher):
// nearly the balance of least-connections, without its herd on the one idle
// host, at the cost of two reads.
type p2c struct{ fallback leastConnections }

func (p *p2c) pick(hosts []*host, pc pickCtx) *host {
	n := len(hosts)
	if n < 2 {
		return p.fallback.pick(hosts, pc)
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	a, b := hosts[i], hosts[j]
	switch ua, ub := pc.usable(a), pc.usable(b); {
	case ua && ub:
		if b.inflight.Load() < a.inflight.Load() {
			return b
		}
		return a
	case ua:
		return a
	case ub:
		return b
	}
	// Both drawn hosts are out: scan for any usable one.
	return p.fallback.pick(hosts, pc)
}

// sticky sends a shopper to the same host for as long as that host is in
// rotation, by rendezvous (highest random weight) hashing: each host scores
// hash(shopper, host) and the highest usable score wins. When a host
// leaves, only its own shoppers move, each to its own second choice, so
// they spread over the rest; when one joins, it takes about 1/n of the
// shoppers from every other. A request without a shopper goes round-robin.
type sticky struct{ fallback roundRobin }

func (s *sticky) pick(hosts []*host, pc pickCtx) *host {
	if len(pc.key) == 0 {
		return s.fallback.pick(hosts, pc)
	}
	k := hash64(pc.key)
	var best *host
	var top uint64
	for _, h := range hosts {
		if !pc.usable(h) {
			continue
		}
		if w := mix64(k ^ h.idHash); best == nil || w > top {
			best, top = h, w
		}
	}
	return best
}

// hash64 is FNV-1a: stable across processes, so a restarted balancer sends
// shoppers where the last one did.
func hash64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// mix64 is the SplitMix64 finaliser; it turns the XOR of two FNV hashes into
// a well-spread score.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

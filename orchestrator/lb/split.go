package lb

import (
	"math/rand/v2"
)

// A split sends a share of requests to some of the upstreams in rotation
// (a canary, the new version of a rollout) and the rest to the others,
// each side picked from by the policy. A shopper the sticky policy keys
// stays on one side: the share is taken over shoppers, not requests.

// split is the balancer's split as set by SetSplit.
type split struct {
	ids     map[string]bool
	percent int
}

// SetSplit sends percent (0 to 100) of requests to the upstreams whose IDs
// are listed, and the rest to the other upstreams in rotation. With no ID,
// 0 or 100, or when one side has no upstream in rotation, every request is
// picked from the whole rotation.
func (b *Balancer) SetSplit(ids []string, percent int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	sp := &split{ids: map[string]bool{}, percent: min(max(percent, 0), 100)}
	for _, id := range ids {
		sp.ids[id] = true
	}
	b.split = sp
	b.rotation.Store(b.newSetLocked(b.rotation.Load().hosts))
}

// newSetLocked is the rotation snapshot of hosts, with the split's two
// sides when both have hosts.
func (b *Balancer) newSetLocked(hosts []*host) *set {
	s := &set{hosts: hosts}
	sp := b.split
	if sp == nil || len(sp.ids) == 0 || sp.percent == 0 || sp.percent == 100 {
		return s
	}
	for _, h := range hosts {
		if sp.ids[h.up.ID] {
			s.canary = append(s.canary, h)
		} else {
			s.stable = append(s.stable, h)
		}
	}
	if len(s.canary) == 0 || len(s.stable) == 0 {
		s.canary, s.stable = nil, nil
		return s
	}
	s.percent = sp.percent
	return s
}

// side returns the hosts a request picks from: one side of the split, by
// the shopper's key when there is one, else at random.
func (s *set) side(key []byte) []*host {
	if s.percent == 0 {
		return s.hosts
	}
	var roll int
	if len(key) > 0 {
		roll = int(hash64(key) % 100)
	} else {
		roll = rand.IntN(100)
	}
	if roll < s.percent {
		return s.canary
	}
	return s.stable
}

// Split reports the split in force: the share of requests sent to the
// listed upstreams, 0 when there is none.
func (b *Balancer) Split() int {
	return b.rotation.Load().percent
}

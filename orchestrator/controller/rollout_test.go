package controller

import (
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// TestRolloutFromOnceRevisionsArePruned: past keepRevisions, a new
// revision drops the oldest; each rollout still starts from the revision
// before it, not from itself.
func TestRolloutFromOnceRevisionsArePruned(t *testing.T) {
	c := &Controller{}
	gr := &group{observed: []replica.Replica{{ID: "shop-1", Index: 1}}}
	g := spec.Group{Name: "shop", Service: "monolith", Replicas: 1}
	now := time.Now()
	versions := []string{"v1", "v2"}
	for i := range keepRevisions + 3 {
		g.Version = versions[i%2]
		ro, err := c.noteTemplateLocked("shop", gr, g, true, now)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			continue
		}
		if ro == nil {
			t.Fatalf("revision %d started no rollout", i+1)
		}
		want := versions[(i+1)%2]
		if ro.Revision != i+1 || ro.From != i || ro.FromVersion != want || ro.FromHash == ro.Hash {
			t.Fatalf("rollout %d: from %d (%s), hash %s from %s; want from %d (%s)", ro.Revision, ro.From, ro.FromVersion, ro.Hash, ro.FromHash, i, want)
		}
	}
	if n := len(gr.hist.Revisions); n != keepRevisions {
		t.Fatalf("%d revisions kept, want %d", n, keepRevisions)
	}
}

package controller

import (
	"errors"
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

// TestCheckGroupChangesNothing: CheckGroup refuses what PutGroupWith would
// (an invalid group; a new template while a rollout runs, unless it
// supersedes) and passes the rest, without touching the group.
func TestCheckGroupChangesNothing(t *testing.T) {
	c := &Controller{opt: Options{MaxReplicas: 50}, groups: map[string]*group{}}
	gr := &group{observed: []replica.Replica{{ID: "shop-1", Index: 1}}}
	c.groups["shop"] = gr
	g := spec.Group{Name: "shop", Service: "monolith", Replicas: 1, Version: "v1"}
	if _, err := c.noteTemplateLocked("shop", gr, g.WithDefaults(), false, time.Now()); err != nil {
		t.Fatal(err)
	}
	g.Version = "v2"
	ro, err := c.noteTemplateLocked("shop", gr, g.WithDefaults(), false, time.Now())
	if err != nil || ro == nil || !ro.active() {
		t.Fatalf("v2 started no rollout: %+v, %v", ro, err)
	}
	before := len(gr.hist.Revisions)

	v3 := g
	v3.Version = "v3"
	if err := c.CheckGroup(v3, false); !errors.Is(err, ErrRolloutRunning) {
		t.Errorf("v3 during v2's rollout: %v, want ErrRolloutRunning", err)
	}
	if err := c.CheckGroup(v3, true); err != nil {
		t.Errorf("v3 superseding: %v", err)
	}
	scaled := g
	scaled.Replicas = 3 // the same template: no new rollout
	if err := c.CheckGroup(scaled, false); err != nil {
		t.Errorf("a scale during the rollout: %v", err)
	}
	bad := g
	bad.Replicas = 99
	var ve *spec.ValidationError
	if err := c.CheckGroup(bad, true); !errors.As(err, &ve) || ve.Field != "replicas" {
		t.Errorf("99 replicas: %v, want a validation error on replicas", err)
	}
	if err := c.CheckGroup(spec.Group{Name: "new", Service: "catalog", Replicas: 2}, false); err != nil {
		t.Errorf("a new group: %v", err)
	}
	if len(gr.hist.Revisions) != before || !gr.hist.rollout().active() || c.groups["new"] != nil {
		t.Errorf("checks changed the groups: %d revisions (was %d), rollout active %v, new %v", len(gr.hist.Revisions), before, gr.hist.rollout().active(), c.groups["new"])
	}
}

package api

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/flotilla/flotilla/orchestrator/spec"
)

// fakeLeaver is a swarm the controller may or may not have initialised.
type fakeLeaver struct {
	mu     sync.Mutex
	refuse error
	left   int
}

func (f *fakeLeaver) CanLeave(context.Context) error { return f.refuse }

func (f *fakeLeaver) Leave(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.left++
	return nil
}

func TestDownLeavingSwarm(t *testing.T) {
	t.Run("engine runtime refuses and removes nothing", func(t *testing.T) {
		fake := newFake(spec.Group{Name: "web", Service: "monolith", Replicas: 2})
		h := newHandler(t, Options{Controller: fake})
		w := serve(t, h, req{method: "POST", path: "/api/v1/down", body: `{"leaveSwarm":true}`})
		if w.Code != 409 || !strings.Contains(w.Body.String(), "local engine runtime") {
			t.Fatalf("got %d %s, want 409 naming the engine runtime", w.Code, w.Body)
		}
		if fake.Downs() != 0 || fake.Len() != 1 {
			t.Errorf("a refused down removed something: %d downs, %d groups", fake.Downs(), fake.Len())
		}
	})
	t.Run("a swarm the controller did not make is not left", func(t *testing.T) {
		fake := newFake(spec.Group{Name: "web", Service: "monolith", Replicas: 2})
		sw := &fakeLeaver{refuse: errors.New("the swarm was active before this controller started")}
		h := newHandler(t, Options{Controller: fake, Swarm: sw})
		w := serve(t, h, req{method: "POST", path: "/api/v1/down", body: `{"leaveSwarm":true}`})
		if w.Code != 409 || !strings.Contains(w.Body.String(), "active before") {
			t.Fatalf("got %d %s, want 409 with the reason", w.Code, w.Body)
		}
		if fake.Downs() != 0 || sw.left != 0 {
			t.Errorf("a refused down acted: %d downs, %d leaves", fake.Downs(), sw.left)
		}
	})
	t.Run("its own swarm is left after down", func(t *testing.T) {
		fake := newFake(spec.Group{Name: "web", Service: "monolith", Replicas: 2})
		sw := &fakeLeaver{}
		h := newHandler(t, Options{Controller: fake, Swarm: sw})
		w := serve(t, h, req{method: "POST", path: "/api/v1/down", body: `{"leaveSwarm":true}`})
		if got := decodeBody[DownResponse](t, w); w.Code != 202 || !got.LeftSwarm {
			t.Fatalf("got %d %s, want 202 with leftSwarm", w.Code, w.Body)
		}
		if fake.Downs() != 1 || sw.left != 1 {
			t.Errorf("got %d downs and %d leaves, want 1 and 1", fake.Downs(), sw.left)
		}
		w = serve(t, h, req{method: "POST", path: "/api/v1/down"})
		if w.Code != 202 || sw.left != 1 {
			t.Errorf("a plain down left the swarm: %d, %d leaves", w.Code, sw.left)
		}
	})
	t.Run("a wrong type is a 400", func(t *testing.T) {
		h := newHandler(t, Options{Swarm: &fakeLeaver{}})
		w := serve(t, h, req{method: "POST", path: "/api/v1/down", body: `{"leaveSwarm":"yes"}`})
		if w.Code != 400 || !strings.Contains(w.Body.String(), "leaveSwarm") {
			t.Errorf("got %d %s, want 400 naming leaveSwarm", w.Code, w.Body)
		}
	})
}

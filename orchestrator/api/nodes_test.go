package api

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// swarmNodes is a swarm of a manager and two workers with web's replicas
// spread over them.
func swarmNodes() controller.NodesStatus {
	node := func(id, name, role string, reps ...string) controller.NodeStatus {
		n := controller.NodeStatus{Node: replica.Node{ID: id, Name: name, Role: role, State: "ready", Availability: replica.AvailabilityActive,
			NanoCPUs: 2e9, MemoryBytes: 4 << 30, Leader: role == replica.RoleManager}, Replicas: []controller.NodeReplica{}}
		for _, r := range reps {
			n.Replicas = append(n.Replicas, controller.NodeReplica{Group: "web", Name: r, ID: "c-" + r, State: "running"})
		}
		return n
	}
	return controller.NodesStatus{Runtime: controller.RuntimeSwarm, Nodes: []controller.NodeStatus{
		node("m1id", "m1", replica.RoleManager, "web-1"),
		node("w1id", "w1", replica.RoleWorker, "web-2"),
		node("w2id", "w2", replica.RoleWorker),
	}}
}

func TestNodeRoutesOnTheEngineRuntime(t *testing.T) {
	fake := newFake(spec.Group{Name: "web", Service: "monolith", Replicas: 2})
	h := newHandler(t, Options{Controller: fake})

	w := serve(t, h, req{method: "GET", path: "/healthz"})
	if hr := decodeBody[HealthResponse](t, w); w.Code != 200 || hr.Runtime != "engine" || hr.Status != "ok" {
		t.Errorf("GET /healthz = %d %s; want the engine runtime", w.Code, w.Body)
	}
	w = serve(t, h, req{method: "GET", path: "/api/v1/nodes"})
	st := decodeBody[controller.NodesStatus](t, w)
	if w.Code != 200 || st.Runtime != "engine" || len(st.Nodes) != 1 || st.Nodes[0].ID != "local" || st.Nodes[0].Role != "engine" || len(st.Nodes[0].Replicas) != 2 {
		t.Fatalf("GET /api/v1/nodes = %d %s; want the local engine with web's 2 replicas", w.Code, w.Body)
	}
	for _, want := range []string{`"runtime":"engine"`, `"id":"local"`, `"role":"engine"`, `"nanoCPUs":`, `"memoryBytes":`, `"replicas":[{"group":"web","name":"web-1"`} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("GET /api/v1/nodes lacks %s: %s", want, w.Body)
		}
	}

	// Nothing to drain on one engine: 409, saying what would.
	w = serve(t, h, req{method: "PUT", path: "/api/v1/nodes/local", body: `{"availability":"drain"}`})
	if e := decodeBody[ErrorResponse](t, w); w.Code != 409 || !strings.Contains(e.Error, "flotilla serve --runtime swarm") || !strings.Contains(e.Error, "engine runtime") {
		t.Errorf("drain on the engine runtime = %d %s; want 409 naming the swarm runtime", w.Code, w.Body)
	}
	if got := fake.Availabilities(); len(got) != 0 {
		t.Errorf("availabilities %q on the engine runtime", got)
	}
}

func TestNodeRoutesOnASwarm(t *testing.T) {
	fake := newFake(spec.Group{Name: "web", Service: "monolith", Replicas: 2})
	fake.SetNodes(swarmNodes())
	h := newHandler(t, Options{Controller: fake})

	if hr := decodeBody[HealthResponse](t, serve(t, h, req{method: "GET", path: "/healthz"})); hr.Runtime != "swarm" {
		t.Errorf("GET /healthz says runtime %q, want swarm", hr.Runtime)
	}
	w := serve(t, h, req{method: "GET", path: "/api/v1/nodes"})
	if st := decodeBody[controller.NodesStatus](t, w); w.Code != 200 || len(st.Nodes) != 3 || st.Nodes[2].Replicas == nil || !st.Nodes[0].Leader {
		t.Fatalf("GET /api/v1/nodes = %d %s", w.Code, w.Body)
	}

	for _, tc := range []struct {
		path, body string
		want       int
		says       string
	}{
		{"/api/v1/nodes/w1", `{"availability":"sideways"}`, 400, `"field":"availability"`},
		{"/api/v1/nodes/w1", `{"availability":"Drain"}`, 400, "one of active (takes new replicas), pause"},
		{"/api/v1/nodes/w1", `{"availability":""}`, 400, `"field":"availability"`},
		{"/api/v1/nodes/w1", `{}`, 400, `"field":"availability","reason":"is required`},
		{"/api/v1/nodes/w1", `{"availability":3}`, 400, "availability must be a string"},
		{"/api/v1/nodes/w1", `{"availability":"drain","labels":{}}`, 400, `unknown field \"labels\"`},
		{"/api/v1/nodes/w1", `{"availability":`, 400, "not valid JSON"},
		{"/api/v1/nodes/w1", ``, 400, "the body is empty"},
		{"/api/v1/nodes/w%201", `{"availability":"drain"}`, 400, `"field":"id"`},
		{"/api/v1/nodes/nosuch", `{"availability":"drain"}`, 404, `node \"nosuch\" not found`},
		{"/api/v1/nodes/w1", `{"availability":"drain"}`, 200, `"availability":"drain"`},
		{"/api/v1/nodes/w1id", `{"availability":"active"}`, 200, `"name":"w1"`},
		{"/api/v1/nodes/m1", `{"availability":"pause"}`, 200, `"replicas":[{"group":"web","name":"web-1"`},
	} {
		w := serve(t, h, req{method: "PUT", path: tc.path, body: tc.body})
		if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.says) {
			t.Errorf("PUT %s %s = %d %s; want %d saying %s", tc.path, tc.body, w.Code, w.Body, tc.want, tc.says)
		}
		if w.Code != 200 {
			decodeBody[ErrorResponse](t, w)
		}
	}
	if got, want := fake.Availabilities(), []string{"w1id drain", "w1id active", "m1id pause"}; !slices.Equal(got, want) {
		t.Errorf("availabilities %q, want %q", got, want)
	}
	// The guard applies as everywhere.
	if w := serve(t, h, req{method: "PUT", path: "/api/v1/nodes/w1", body: `{"availability":"drain"}`, headers: []string{"Origin: http://evil.example"}}); w.Code != 403 {
		t.Errorf("drain from a foreign origin = %d, want 403", w.Code)
	}
}

func TestStreamCarriesNodeChanges(t *testing.T) {
	hb := hub.New(hub.Options{})
	t.Cleanup(hb.Close)
	fake := newFake(spec.Group{Name: "web", Service: "monolith", Replicas: 2})
	st := swarmNodes()
	fake.SetNodes(st)
	srv := httptest.NewServer(newHandler(t, Options{Controller: fake, Hub: hb}))
	t.Cleanup(srv.Close)
	c, _, err := dial(t, srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	snap := readMsg(t, c)
	nodes, ok := snap["nodes"].(map[string]any)
	if !ok || nodes["runtime"] != "swarm" || len(nodes["nodes"].([]any)) != 3 {
		t.Fatalf("snapshot nodes = %v", snap["nodes"])
	}
	// Nothing changed: no nodes message over two stats ticks.
	for seen := 0; seen < 2; {
		m := readMsg(t, c)
		switch m["type"] {
		case "nodes":
			t.Fatalf("a nodes message with nothing changed: %v", m)
		case "stats":
			seen++
		}
	}
	// web-2 moves from w1 to w2: one nodes message with it there.
	st.Nodes[2].Replicas = append(st.Nodes[2].Replicas, st.Nodes[1].Replicas[0])
	st.Nodes[1].Replicas = nil
	fake.SetNodes(st)
	m := next(t, c, "nodes")
	got := m["nodes"].(map[string]any)["nodes"].([]any)
	w1, w2 := got[1].(map[string]any), got[2].(map[string]any)
	if len(w1["replicas"].([]any)) != 0 || len(w2["replicas"].([]any)) != 1 || w2["replicas"].([]any)[0].(map[string]any)["name"] != "web-2" {
		t.Errorf("after the move: %v", m)
	}
}

func TestClientNodes(t *testing.T) {
	fake := newFake(spec.Group{Name: "web", Service: "monolith", Replicas: 2})
	srv := httptest.NewServer(newHandler(t, Options{Controller: fake}))
	t.Cleanup(srv.Close)
	c := &Client{Addr: srv.URL}
	ctx := context.Background()
	if hr, err := c.Health(ctx); err != nil || hr.Runtime != "engine" {
		t.Errorf("Health = %+v, %v", hr, err)
	}
	if _, err := c.SetNodeAvailability(ctx, "local", "drain"); !errors.Is(err, controller.ErrConflict) || !strings.Contains(err.Error(), "--runtime swarm") {
		t.Errorf("drain on the engine runtime: %v; want a conflict naming the swarm runtime", err)
	}
	fake.SetNodes(swarmNodes())
	st, err := c.Nodes(ctx)
	if err != nil || st.Runtime != "swarm" || len(st.Nodes) != 3 || st.Nodes[0].Replicas[0].Name != "web-1" {
		t.Fatalf("Nodes = %+v, %v", st, err)
	}
	n, err := c.SetNodeAvailability(ctx, "w2", "drain")
	if err != nil || n.ID != "w2id" || n.Availability != "drain" {
		t.Errorf("SetNodeAvailability = %+v, %v", n, err)
	}
	if _, err := c.SetNodeAvailability(ctx, "w9", "drain"); !errors.Is(err, controller.ErrNotFound) {
		t.Errorf("an unknown node: %v; want not found", err)
	}
	var apiErr *APIError
	if _, err := c.SetNodeAvailability(ctx, "w2", "off"); !errors.As(err, &apiErr) || apiErr.Field != "availability" || !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("an invalid availability: %v; want a 400 naming availability", err)
	}
}

func TestNodesNotReadYet(t *testing.T) {
	fake := newFake(spec.Group{Name: "web", Service: "monolith", Replicas: 2})
	fake.SetNodes(swarmNodes())
	h := newHandler(t, Options{Controller: fake})
	fake.SetNodesError(fmt.Errorf("%w: list the nodes: connection refused", controller.ErrNodesUnread))
	w := serve(t, h, req{method: "GET", path: "/api/v1/nodes"})
	if w.Code != 503 || !strings.Contains(decodeBody[ErrorResponse](t, w).Error, "try again") {
		t.Errorf("nodes not read yet: %d %s, want 503 saying to try again", w.Code, w.Body)
	}
	fake.SetNodesError(errors.New("something broke"))
	if w := serve(t, h, req{method: "GET", path: "/api/v1/nodes"}); w.Code != 500 {
		t.Errorf("another failure: %d %s, want 500", w.Code, w.Body)
	}
	fake.SetNodesError(nil)
	if w := serve(t, h, req{method: "GET", path: "/api/v1/nodes"}); w.Code != 200 {
		t.Errorf("nodes read again: %d %s, want 200", w.Code, w.Body)
	}
}

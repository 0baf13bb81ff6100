package cli

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/api/apitest"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/replica"
)

func TestNodeVerb(t *testing.T) {
	clearEnv(t)
	fake := newFake(apitest.Options{})
	h, err := api.New(api.Options{Controller: fake})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	addr := "--addr=" + strings.TrimPrefix(srv.URL, "http://")

	// The engine runtime: one node, nothing to drain, and said why.
	out := mustRun(t, "node", "ls", addr)
	for _, want := range []string{"NAME", "ROLE", "STATE", "AVAILABILITY", "CPUS", "MEMORY", "REPLICAS",
		apitest.LocalNode.Name, "engine", "ready", "active", "2", "4.0GiB", "2: web-1 web-2", "nothing to drain", "--runtime swarm"} {
		if !strings.Contains(out, want) {
			t.Errorf("node ls on the engine runtime lacks %q:\n%s", want, out)
		}
	}
	_, _, err = run(t, "node", "drain", "local", addr)
	if err == nil || !strings.Contains(err.Error(), "cannot drain node local") || !strings.Contains(err.Error(), "flotilla serve --runtime swarm") || !strings.Contains(err.Error(), "one local engine") {
		t.Errorf("node drain on the engine runtime: %v; want why, and how to start the swarm runtime", err)
	}

	// A swarm of three, one replica waiting for a node.
	node := func(id, name, role string, reps ...string) controller.NodeStatus {
		n := controller.NodeStatus{Node: replica.Node{ID: id, Name: name, Role: role, State: "ready", Availability: "active",
			Leader: role == "manager", NanoCPUs: 1500000000, MemoryBytes: 2 << 30}}
		for _, r := range reps {
			n.Replicas = append(n.Replicas, controller.NodeReplica{Group: "web", Name: r, ID: "c-" + r, State: "running"})
		}
		return n
	}
	st := controller.NodesStatus{Runtime: "swarm", Nodes: []controller.NodeStatus{
		node("m1id", "m1", "manager", "web-1"),
		node("w1id", "w1", "worker", "web-2", "web-3"),
		node("w2id", "w2", "worker"),
	}, Unassigned: []controller.NodeReplica{{Group: "web", Name: "web-4", ID: "task:x", State: "created"}}}
	st.Nodes[2].State = "down"
	fake.SetNodes(st)
	out = mustRun(t, "node", "ls", addr)
	for _, want := range []string{"manager (leader)", "1.5", "2.0GiB", "2: web-2 web-3", "down", "1 replica waits for a node it may run on: web-4 (created)"} {
		if !strings.Contains(out, want) {
			t.Errorf("node ls on a swarm lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "nothing to drain") {
		t.Errorf("node ls on a swarm says there is nothing to drain:\n%s", out)
	}
	var got controller.NodesStatus
	if err := json.Unmarshal([]byte(mustRun(t, "node", "ls", "--json", addr)), &got); err != nil || got.Runtime != "swarm" || len(got.Nodes) != 3 {
		t.Errorf("node ls --json: %+v, %v", got, err)
	}

	out = mustRun(t, "node", "drain", "w1", addr)
	if !strings.Contains(out, "node w1 is drained: its replicas move to other nodes") || !strings.Contains(out, "2 replicas are still on it") {
		t.Errorf("node drain w1:\n%s", out)
	}
	if out = mustRun(t, "node", "pause", "m1id", addr); !strings.Contains(out, "node m1 is paused: it keeps its replicas") {
		t.Errorf("node pause m1id:\n%s", out)
	}
	if out = mustRun(t, "node", "activate", "w1", addr); !strings.Contains(out, "node w1 is active") {
		t.Errorf("node activate w1:\n%s", out)
	}
	if got, want := fake.Availabilities(), []string{"w1id drain", "m1id pause", "w1id active"}; !slices.Equal(got, want) {
		t.Errorf("availabilities %q, want %q", got, want)
	}

	// Refused, each with what to do.
	if _, _, err := run(t, "node", "drain", "w9", addr); err == nil || !strings.Contains(err.Error(), `node "w9" not found`) || !strings.Contains(err.Error(), "flotilla node ls") {
		t.Errorf("drain an unknown node: %v", err)
	}
	for _, args := range [][]string{{"node"}, {"node", "drain"}, {"node", "drain", "w1", "w2"}, {"node", "evict", "w1"}, {"node", "ls", "w1"}} {
		if _, errOut, err := run(t, append(args, addr)...); err == nil || !strings.Contains(errOut, "Usage:") {
			t.Errorf("%q: %v; want a usage error", args, err)
		}
	}
	if got := fake.Availabilities(); len(got) != 3 {
		t.Errorf("refused commands reached the controller: %q", got)
	}
	if out := mustRun(t, "help", "node"); !strings.Contains(out, "flotilla node drain NODE") {
		t.Errorf("help node:\n%s", out)
	}
}

func TestPsShowsNodesOfASwarm(t *testing.T) {
	fake, addr := setup(t, "")
	if out := mustRun(t, "ps", addr); strings.Contains(out, "NODE") {
		t.Errorf("ps on the engine runtime shows a NODE column:\n%s", out)
	}
	st, err := fake.Group("web")
	if err != nil {
		t.Fatal(err)
	}
	st.Runtime = controller.RuntimeSwarm
	for i := range st.Replicas {
		st.Replicas[i].Node = "r9p0z8aznn7uu3jl1u1d4qacn"
	}
	fake.SetGroup(st)
	out := mustRun(t, "ps", addr)
	if !strings.Contains(out, "NODE") || !strings.Contains(out, "r9p0z8aznn7u") || strings.Contains(out, "r9p0z8aznn7uu") {
		t.Errorf("ps on a swarm should show each replica's node, its ID cut to 12 characters:\n%s", out)
	}
}

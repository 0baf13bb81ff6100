package dashboard_test

// The nodes view: one column per node with its replicas as tiles coloured
// by group, updated in place from the stream; Drain and Activate on a
// swarm's nodes, none on the engine runtime's one local engine.

import (
	"slices"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/dashboard"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/replica"
)

// swarmOf is a swarm runtime's nodes: each node's replicas by name
// ("web-1"), their group the name without its number.
func swarmOf(nodes ...controller.NodeStatus) controller.NodesStatus {
	return controller.NodesStatus{Runtime: controller.RuntimeSwarm, Nodes: nodes}
}

func swarmNode(id, name, role string, reps ...string) controller.NodeStatus {
	n := controller.NodeStatus{Node: replica.Node{ID: id, Name: name, Role: role, State: "ready", Availability: replica.AvailabilityActive,
		Leader: role == replica.RoleManager, NanoCPUs: 2e9, MemoryBytes: 4 << 30}, Replicas: []controller.NodeReplica{}}
	for _, r := range reps {
		group := r[:strings.LastIndexByte(r, '-')]
		n.Replicas = append(n.Replicas, controller.NodeReplica{Group: group, Name: r, ID: "c0ffee-" + r, State: "running"})
	}
	return n
}

// nodeColumn is what one column of the nodes view shows.
type nodeColumn struct {
	ID, Name, Role, State, Avail, Res string
	Leader, Local, Drain, Activate    bool
	Tiles                             []string
	Hues                              []string
	Label                             string
}

func readNodes(b *dashboard.Browser) []nodeColumn {
	var cols []nodeColumn
	b.Eval(`[...document.querySelectorAll('#nodes-cols > .node')].map(n => {
		const q = (s) => n.querySelector(s);
		const shown = (s) => !q(s).hidden && q(s).getClientRects().length > 0;
		return {
			id: n.dataset.node, name: q('.node-name').textContent, role: q('.node-role').textContent,
			state: q('.node-state-text').textContent, avail: q('.node-avail').textContent, res: q('.node-res').textContent,
			leader: shown('.node-leader'), local: shown('.node-local'),
			drain: shown('[data-action="node-drain"]'), activate: shown('[data-action="node-activate"]'),
			tiles: [...n.querySelectorAll('.node-tile')].map(t => t.dataset.nodeReplica),
			hues: [...n.querySelectorAll('.node-tile')].map(t => t.dataset.tileGroup + ':' + t.dataset.hue),
			label: document.getElementById(n.getAttribute('aria-labelledby')).textContent,
		};
	})`, &cols)
	return cols
}

func TestBrowserNodesOfASwarm(t *testing.T) {
	b := dashboard.NewBrowser(t)
	f := newFakeController(t, makeGroup("web", "monolith", "round-robin", 3), makeGroup("cart", "cart", "round-robin", 2))
	f.fake.SetNodes(swarmOf(
		swarmNode("m1id", "m1", replica.RoleManager, "cart-1", "web-1"),
		swarmNode("w1id", "w1", replica.RoleWorker, "cart-2", "web-2"),
		swarmNode("w2id", "w2", replica.RoleWorker, "web-3"),
	))
	f.open(b)
	b.WaitFor("the nodes view", `!document.querySelector('#nodes').hidden && document.querySelectorAll('#nodes .node-tile').length === 5`, 0)

	cols := readNodes(b)
	if len(cols) != 3 {
		t.Fatalf("the nodes view has %d columns, want 3: %+v", len(cols), cols)
	}
	m1, w1, w2 := cols[0], cols[1], cols[2]
	if m1.Name != "m1" || m1.Role != "manager" || !m1.Leader || m1.State != "ready" || m1.Avail != "active" || m1.Res != "2 CPUs · 4.0 GiB" {
		t.Errorf("the manager's column: %+v", m1)
	}
	if w1.Leader || w1.Role != "worker" || !slices.Equal(w1.Tiles, []string{"cart-2", "web-2"}) || !slices.Equal(w2.Tiles, []string{"web-3"}) {
		t.Errorf("the workers' columns: %+v, %+v", w1, w2)
	}
	for _, c := range cols {
		if !c.Drain || c.Activate || c.Local || c.Label != c.Name {
			t.Errorf("node %s offers drain %v, activate %v, says local %v, is labelled %q; want only Drain, labelled by its name", c.Name, c.Drain, c.Activate, c.Local, c.Label)
		}
	}
	// One colour per group, told apart.
	hue := map[string]string{}
	for _, c := range cols {
		for _, gh := range c.Hues {
			g, h, _ := strings.Cut(gh, ":")
			if hue[g] != "" && hue[g] != h {
				t.Errorf("group %s has tiles of hues %s and %s", g, hue[g], h)
			}
			hue[g] = h
		}
	}
	if hue["web"] == "" || hue["web"] == hue["cart"] {
		t.Errorf("the groups' hues: %v; want one each, different", hue)
	}
	var summary string
	b.Eval(`document.querySelector('#nodes-summary').textContent`, &summary)
	if summary != "swarm runtime · 3 nodes, 3 ready · 5 replicas" {
		t.Errorf("the summary says %q", summary)
	}

	// web-2 moves from w1 to w2: its tile moves, nothing else is redrawn.
	b.Eval(`document.querySelectorAll('#nodes-cols *').forEach(e => { e._testMark = true; }), true`, nil)
	f.fake.SetNodes(swarmOf(
		swarmNode("m1id", "m1", replica.RoleManager, "cart-1", "web-1"),
		swarmNode("w1id", "w1", replica.RoleWorker, "cart-2"),
		swarmNode("w2id", "w2", replica.RoleWorker, "web-2", "web-3"),
	))
	b.WaitFor("web-2 on w2", `[...document.querySelectorAll('[data-node="w2id"] .node-tile')].map(t => t.dataset.nodeReplica).join(' ') === 'web-2 web-3'`, 0)
	var marks struct{ Marked, All int }
	b.Eval(`(() => { const all = [...document.querySelectorAll('#nodes-cols *')];
		return {marked: all.filter(e => e._testMark).length, all: all.length}; })()`, &marks)
	if marks.Marked != marks.All || marks.All < 40 {
		t.Errorf("%d of %d elements of the nodes view survived a replica's move, want all: the moved tile is the same tile", marks.Marked, marks.All)
	}
	if cols = readNodes(b); !slices.Equal(cols[1].Tiles, []string{"cart-2"}) {
		t.Errorf("w1 still shows %q", cols[1].Tiles)
	}

	// Drain w1: the page sends the PUT, the controller records it, and the
	// column says draining with Activate instead.
	b.Click(`[data-node="w1id"] [data-action="node-drain"]`)
	c := f.waitCall("PUT", "/api/v1/nodes/w1id")
	requireJSON(t, c, `{"availability":"drain"}`)
	waitNotice(b, "ok", "Draining node w1")
	b.WaitFor("w1 draining", `document.querySelector('[data-node="w1id"] .node-avail').textContent === 'draining'`, 0)
	cols = readNodes(b)
	if w1 := cols[1]; w1.Drain || !w1.Activate {
		t.Errorf("a draining node offers drain %v, activate %v; want Activate only", w1.Drain, w1.Activate)
	}
	// Its replica moves away, as the swarm would move it.
	f.fake.SetNodes(func() controller.NodesStatus {
		st := swarmOf(
			swarmNode("m1id", "m1", replica.RoleManager, "cart-1", "cart-2", "web-1"),
			swarmNode("w1id", "w1", replica.RoleWorker),
			swarmNode("w2id", "w2", replica.RoleWorker, "web-2", "web-3"),
		)
		st.Nodes[1].Availability = replica.AvailabilityDrain
		return st
	}())
	b.WaitFor("w1 empty", `document.querySelectorAll('[data-node="w1id"] .node-tile').length === 0 && !document.querySelector('[data-node="w1id"] .node-empty').hidden`, 0)
	b.Click(`[data-node="w1id"] [data-action="node-activate"]`)
	dashboard.WaitUntil(t, "the activation recorded", 0, func() bool { return len(f.fake.Availabilities()) == 2 })
	if got, want := f.fake.Availabilities(), []string{"w1id drain", "w1id active"}; !slices.Equal(got, want) {
		t.Errorf("availability changes %q, want %q", got, want)
	}
	b.WaitFor("w1 active", `document.querySelector('[data-node="w1id"] .node-avail').textContent === 'active'`, 0)

	// A node going down and a replica waiting for a node are shown.
	st := swarmOf(
		swarmNode("m1id", "m1", replica.RoleManager, "cart-1", "cart-2", "web-1", "shop-1", "bus-1", "orders-1", "catalog-1", "deals-1", "search-1"),
		swarmNode("w1id", "w1", replica.RoleWorker, "web-2"),
		swarmNode("w2id", "w2", replica.RoleWorker),
	)
	st.Nodes[2].State, st.Nodes[2].Availability, st.Nodes[1].Availability = "down", replica.AvailabilityDrain, replica.AvailabilityPause
	st.Unassigned = []controller.NodeReplica{{Group: "web", Name: "web-3", ID: "task:1", State: "created"}}
	f.fake.SetNodes(st)
	b.WaitFor("w2 down and web-3 waiting", `document.querySelector('[data-node="w2id"]').dataset.state === 'down' &&
		!document.querySelector('#nodes-waiting').hidden && document.querySelector('#nodes-waiting .node-tile').textContent === 'web-3created'`, 0)

	// Readable in both themes: every group's hue, the states and badges.
	for _, scheme := range []string{"light", "dark"} {
		b.SetColorScheme(scheme)
		var tiles []struct{ Hue, Fg, Bg string }
		b.Eval(`[...document.querySelectorAll('#nodes .node-tile')].map(t => { const s = getComputedStyle(t); return {hue: t.dataset.hue, fg: s.color, bg: s.backgroundColor}; })`, &tiles)
		hues := map[string]bool{}
		for _, tl := range tiles {
			hues[tl.Hue] = true
			if r := contrast(t, tl.Fg, tl.Bg); r < 4.5 {
				t.Errorf("%s theme: a tile of hue %s (%s on %s) has contrast %.2f, want 4.5 or more", scheme, tl.Hue, tl.Fg, tl.Bg, r)
			}
		}
		if len(hues) != 8 {
			t.Errorf("%s theme: the tiles show hues %v, want all 8", scheme, hues)
		}
		var c map[string]string
		b.Eval(`(() => { const s = (sel) => getComputedStyle(document.querySelector(sel)); return {
			panel: s('#nodes').backgroundColor, col: s('[data-node="m1id"]').backgroundColor,
			summary: s('#nodes-summary').color, name: s('[data-node="m1id"] .node-name').color,
			role: s('[data-node="m1id"] .node-role').color, leader: s('[data-node="m1id"] .node-leader').color,
			ready: s('[data-node="m1id"] .node-state').color, down: s('[data-node="w2id"] .node-state').color,
			res: s('[data-node="m1id"] .node-res').color,
			active: s('[data-node="m1id"] .node-avail').color, activeBg: s('[data-node="m1id"] .node-avail').backgroundColor,
			pause: s('[data-node="w1id"] .node-avail').color, pauseBg: s('[data-node="w1id"] .node-avail').backgroundColor,
			drain: s('[data-node="w2id"] .node-avail').color, drainBg: s('[data-node="w2id"] .node-avail').backgroundColor,
			empty: s('[data-node="w2id"] .node-empty').color,
		}; })()`, &c)
		for _, p := range []struct{ what, fg, bg string }{
			{"the summary", c["summary"], c["panel"]}, {"a node's name", c["name"], c["col"]}, {"a node's role", c["role"], c["col"]},
			{"the leader mark", c["leader"], c["col"]}, {"a ready state", c["ready"], c["col"]}, {"a down state", c["down"], c["col"]},
			{"a node's resources", c["res"], c["col"]}, {"active", c["active"], c["activeBg"]}, {"paused", c["pause"], c["pauseBg"]}, {"draining", c["drain"], c["drainBg"]},
			{"no replicas", c["empty"], c["col"]},
		} {
			if r := contrast(t, p.fg, p.bg); r < 4.5 {
				t.Errorf("%s theme: %s (%s on %s) has contrast %.2f, want 4.5 or more", scheme, p.what, p.fg, p.bg, r)
			}
		}
		b.Screenshot("nodes-swarm-" + scheme)
	}
	b.SetColorScheme("")

	// Each button says which node it acts on, to a screen reader too.
	var names []string
	b.Eval(`[...document.querySelectorAll('#nodes button')].filter(e => e.getClientRects().length).map(e => e.textContent)`, &names)
	if want := []string{"Drain m1", "Activate w1", "Activate w2"}; !slices.Equal(names, want) {
		t.Errorf("the nodes' buttons are named %q, want %q", names, want)
	}
	b.CheckPage(f.srv.URL)
}

func TestBrowserNodesOfTheEngine(t *testing.T) {
	b := dashboard.NewBrowser(t)
	f := newFakeController(t, makeGroup("web", "monolith", "round-robin", 2))
	f.open(b)
	b.WaitFor("the local engine", `!document.querySelector('#nodes').hidden && document.querySelectorAll('#nodes .node-tile').length === 2`, 0)
	cols := readNodes(b)
	if len(cols) != 1 {
		t.Fatalf("the engine runtime shows %d nodes, want 1: %+v", len(cols), cols)
	}
	n := cols[0]
	if n.ID != "local" || n.Role != "local engine" || !n.Local || n.Drain || n.Activate || !slices.Equal(n.Tiles, []string{"web-1", "web-2"}) {
		t.Errorf("the local engine's column: %+v; want it said local, no buttons, web's two replicas", n)
	}
	var text struct{ Local, Summary string }
	b.Eval(`({local: document.querySelector('.node-local').textContent, summary: document.querySelector('#nodes-summary').textContent})`, &text)
	if !strings.Contains(text.Local, "single local engine") || !strings.Contains(text.Local, "--runtime swarm") || text.Summary != "engine runtime · one local engine · 2 replicas" {
		t.Errorf("the engine runtime says %+v", text)
	}
	var buttons int
	b.Eval(`[...document.querySelectorAll('#nodes button')].filter(e => e.getClientRects().length).length`, &buttons)
	if buttons != 0 {
		t.Errorf("the engine runtime shows %d node buttons, want none", buttons)
	}

	// Scaled: the stream brings the new replica to the one node.
	f.pushGroup(makeGroup("web", "monolith", "round-robin", 3))
	b.WaitFor("3 tiles on the local engine", `document.querySelectorAll('[data-node="local"] .node-tile').length === 3`, 0)
	b.Screenshot("nodes-engine")
	b.CheckPage(f.srv.URL)
	if got := f.fake.Availabilities(); len(got) != 0 {
		t.Errorf("availability changes on the engine runtime: %q", got)
	}
}

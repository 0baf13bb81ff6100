package dashboard_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/dashboard"
)

// withReasons turns g into a group message whose replicas carry the given
// health and reason, as the controller reports them.
func withReasons(t *testing.T, g groupStatus, health, reason map[string]string) map[string]any {
	t.Helper()
	b, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, r := range m["replicas"].([]any) {
		rep := r.(map[string]any)
		name := rep["name"].(string)
		if h, ok := health[name]; ok {
			rep["health"] = h
		}
		if why, ok := reason[name]; ok {
			rep["reason"] = why
		}
	}
	return map[string]any{"type": "group", "group": m}
}

// A replica whose dependency is down shows unready with the dependency
// named, and the reason goes when it is ready again.
func TestBrowserUnreadyShowsWhy(t *testing.T) {
	b := dashboard.NewBrowser(t)
	f := newFakeController(t, makeGroup("cart", "cart", "round-robin", 2))
	b.Open(f.srv.URL)
	b.WaitConnected()
	b.WaitTiles("cart", 2)

	g := makeGroup("cart", "cart", "round-robin", 2)
	g.Ready = 0
	// The balancer may still list a replica it no longer sends to, or
	// keep nothing of it: either way the tile says it is out of rotation.
	g.Replicas[0].Traffic.State = "removed"
	g.Replicas[1].Traffic = nil
	f.pushEvent("replica.unready", "cart", "cart-1", "cart-1 is not ready (dependency catalog unavailable): out of rotation, not replaced")
	f.push(withReasons(t, g,
		map[string]string{"cart-1": "unready", "cart-2": "unready"},
		map[string]string{"cart-1": "dependency catalog unavailable", "cart-2": "dependency catalog unavailable"}))
	b.WaitHealth("cart-1", "unready")
	b.WaitHealth("cart-2", "unready")
	for _, tile := range b.Tiles("cart") {
		if !strings.Contains(tile.Text, "dependency catalog unavailable") || !strings.Contains(tile.Text, "unready") || !strings.Contains(tile.Text, "out of rotation") {
			t.Errorf("tile %s says %q; want unready, out of rotation and the failing dependency", tile.Name, tile.Text)
		}
	}
	var title, tone string
	b.Eval(`document.querySelector('[data-replica="cart-1"] .tile-reason').title`, &title)
	if !strings.Contains(title, "not restarted") {
		t.Errorf("reason's title %q does not say the replica is kept", title)
	}
	b.Eval(`document.querySelector('#events li').dataset.tone`, &tone)
	if tone != "warn" {
		t.Errorf("an unready event has tone %q, want warn", tone)
	}
	b.Screenshot("dashboard-unready")

	f.pushGroup(makeGroup("cart", "cart", "round-robin", 2))
	b.WaitHealth("cart-1", "ready")
	var hidden bool
	b.Eval(`document.querySelector('[data-replica="cart-1"] .tile-reason').hidden`, &hidden)
	if !hidden {
		t.Error("the reason stays on screen after the replica is ready again")
	}
	b.CheckPage(f.srv.URL)
}

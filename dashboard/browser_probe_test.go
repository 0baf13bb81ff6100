package dashboard_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/dashboard"
	"github.com/flotilla/flotilla/orchestrator/controller"
)

// unready makes every replica of g unready for reason, as the controller
// reports a replica whose dependency is down.
func unready(g controller.GroupStatus, reason string) controller.GroupStatus {
	g.Ready = 0
	g.Status = controller.StatusDegraded
	g.Message = fmt.Sprintf("%d of %d replicas not ready (%s): out of rotation, not restarted", len(g.Replicas), len(g.Replicas), reason)
	g.Replicas = append([]controller.ReplicaStatus(nil), g.Replicas...)
	for i := range g.Replicas {
		g.Replicas[i].Health, g.Replicas[i].Reason = controller.HealthUnready, reason
	}
	return g
}

// A replica whose dependency is down shows unready with the dependency
// named, and the reason goes when it is ready again.
func TestBrowserUnreadyShowsWhy(t *testing.T) {
	b := dashboard.NewBrowser(t)
	f := newFakeController(t, makeGroup("cart", "cart", "round-robin", 2))
	f.open(b)
	b.WaitTiles("cart", 2)

	g := unready(makeGroup("cart", "cart", "round-robin", 2), "dependency catalog unavailable")
	// The balancer may still list a replica it no longer sends to, or
	// keep nothing of it: either way the tile says it is out of rotation.
	g.Replicas[0].Traffic.State = "removed"
	g.Replicas[1].Traffic = nil
	f.pushEvent("replica.unready", "cart", "cart-1", "cart-1 is not ready (dependency catalog unavailable): out of rotation, not replaced")
	f.pushGroup(g)
	b.WaitHealth("cart-1", "unready")
	b.WaitHealth("cart-2", "unready")
	for _, tile := range b.Tiles("cart") {
		if !strings.Contains(tile.Text, "dependency catalog unavailable") || !strings.Contains(tile.Text, "unready") || !strings.Contains(tile.Text, "out of rotation") {
			t.Errorf("tile %s says %q; want unready, out of rotation and the failing dependency", tile.Name, tile.Text)
		}
	}
	var status, message string
	b.Eval(`document.querySelector('.card[data-group="cart"]').dataset.status`, &status)
	b.Eval(`document.querySelector('.card[data-group="cart"] .card-message').textContent`, &message)
	if status != controller.StatusDegraded || !strings.Contains(message, "dependency catalog unavailable") {
		t.Errorf("the cart card reads %q, %q; want degraded, naming the dependency", status, message)
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

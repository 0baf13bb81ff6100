package dashboard_test

// Browser tests of the dashboard against the real API with a fake controller
// behind it (see browser_server_test.go). They need Chromium, not Docker.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/dashboard"
	"github.com/flotilla/flotilla/orchestrator/faults"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

func TestBrowserDashboard(t *testing.T) {
	b := dashboard.NewBrowser(t)
	f := newFakeController(t, makeGroup("web", "monolith", "round-robin", 3), makeGroup("cart", "cart", "none", 2))

	f.open(b)
	b.WaitTiles("web", 3)
	for _, tile := range b.Tiles("web") {
		if tile.Health != "ready" || !strings.Contains(tile.Text, "ready") {
			t.Errorf("tile %s: data-health %q, text %q; want ready in both", tile.Name, tile.Health, tile.Text)
		}
	}
	// Wait for a stats message to fill in the figures, then look at it.
	b.WaitFor("stats on the tiles", `document.querySelector('[data-replica="web-1"] .m-cpu').textContent.endsWith('%')`, 0)

	// Scale up from 3: the page asks for 4.
	b.Click(`[data-group="web"] [data-action="scale-up"]`)
	requireJSON(t, f.waitCall("POST", "/api/v1/groups/web/scale"), `{"replicas":4}`)

	// The controller's answer comes back through the stream.
	g := makeGroup("web", "monolith", "round-robin", 4)
	g.Status, g.Ready = "scaling", 3
	g.Replicas[3].Health = "starting"
	f.pushEvent("replica.created", "web", "web-4", "web-4 created")
	f.pushGroup(g)
	b.WaitTiles("web", 4)
	b.WaitHealth("web-4", "starting")
	var input string
	b.Eval(`document.querySelector('[data-group="web"] [data-action="scale-input"]').value`, &input)
	if input != "4" {
		t.Errorf("scale field shows %q after the update, want 4", input)
	}

	// A replica dies: the event goes on top of the log and the tile says dead.
	f.pushEvent("replica.died", "web", "web-2", "web-2 died (exit code 137)")
	g.Replicas[1].State, g.Replicas[1].Health, g.Replicas[1].ExitCode = "exited", "dead", 137
	g.Replicas[1].Traffic.State = "removed"
	g.Ready = 2
	f.pushGroup(g)
	b.WaitHealth("web-2", "dead")
	tiles := b.Tiles("web")
	if i := slices.IndexFunc(tiles, func(t dashboard.Tile) bool { return t.Name == "web-2" }); i < 0 || !strings.Contains(tiles[i].Text, "dead") {
		t.Errorf("tile web-2 does not say dead: %+v", tiles)
	}
	var top string
	b.Eval(`document.querySelector('#events li').innerText`, &top)
	if !strings.Contains(top, "web-2 died") {
		t.Errorf("newest event is %q, want the death of web-2", top)
	}

	// Tile and card commands send what the API expects.
	b.Click(`[data-replica="web-3"] [data-action="kill"]`)
	c := f.waitCall("POST", "/api/v1/groups/web/replicas/web-3/kill")
	if c.ContentType != "application/json" {
		t.Errorf("kill sent Content-Type %q", c.ContentType)
	}
	b.Click(`[data-replica="web-1"] [data-action="pause"]`)
	f.waitCall("POST", "/api/v1/groups/web/replicas/web-1/pause")
	b.Select(`[data-group="web"] [data-action="policy"]`, "least-connections")
	requireJSON(t, f.waitCall("PUT", "/api/v1/groups/web"),
		`{"service":"monolith","replicas":4,"resources":{"memoryMiB":64,"milliCPU":500,"pids":64},"balancer":{"policy":"least-connections"}}`)

	// Typing a count and pressing Enter applies it.
	b.Fill(`[data-group="web"] [data-action="scale-input"]`, "6")
	b.Press(`[data-group="web"] [data-action="scale-input"]`, "\r")
	dashboard.WaitUntil(t, "scale to 6", 0, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return slices.ContainsFunc(f.calls, func(c call) bool { return c.Path == "/api/v1/groups/web/scale" && c.Body == `{"replicas":6}` })
	})

	// An error reaches the user.
	b.Fill(`[data-group="web"] [data-action="scale-input"]`, "99")
	b.Click(`[data-group="web"] [data-action="scale-apply"]`)
	b.WaitFor("an error notice", `(() => { const n = document.querySelector('#notice'); return !n.hidden && n.dataset.kind === 'error' && /50/.test(n.innerText); })()`, 0)

	// Delete takes a second click.
	b.Click(`[data-group="cart"] [data-action="delete"]`)
	time.Sleep(200 * time.Millisecond)
	f.mu.Lock()
	early := slices.ContainsFunc(f.calls, func(c call) bool { return c.Method == "DELETE" })
	f.mu.Unlock()
	if early {
		t.Error("one click on delete deleted the group")
	}
	b.Click(`[data-group="cart"] [data-action="delete"]`)
	f.waitCall("DELETE", "/api/v1/groups/cart")
	b.WaitFor("the cart card to go", `document.querySelector('[data-group="cart"]') === null`, 0)

	// A paused replica offers Unpause instead of Pause.
	g.Replicas[0].State, g.Replicas[0].Health = "paused", "paused"
	f.pushGroup(g)
	b.WaitHealth("web-1", "paused")
	b.Click(`[data-replica="web-1"] [data-action="unpause"]`)
	f.waitCall("POST", "/api/v1/groups/web/replicas/web-1/unpause")
	var pauseHidden bool
	b.Eval(`document.querySelector('[data-replica="web-1"] [data-action="pause"]').hidden`, &pauseHidden)
	if !pauseHidden {
		t.Error("a paused replica still offers Pause")
	}

	// The new-group form creates a group with a full spec.
	b.Fill(`#ng-name`, "api")
	b.Select(`#ng-service`, "catalog")
	b.Fill(`#ng-replicas`, "2")
	b.Select(`#ng-policy`, "p2c")
	b.Click(`#new-group button[type="submit"]`)
	requireJSON(t, f.waitCall("PUT", "/api/v1/groups/api"), `{"service":"catalog","replicas":2,"balancer":{"policy":"p2c"}}`)
	f.pushGroup(makeGroup("api", "catalog", "p2c", 2))
	b.WaitTiles("api", 2)

	// A load run starts from the form.
	b.Click(`[data-action="load-start"]`)
	c = f.waitCall("POST", "/api/v1/load")
	var load map[string]any
	json.Unmarshal([]byte(c.Body), &load)
	if load["group"] != "cart" && load["group"] != "web" || load["rate"] != float64(200) || load["duration"] != "30s" {
		t.Errorf("load start sent %s", c.Body)
	}
	b.WaitFor("the run on screen", `document.querySelector('#load-report .load-state') !== null && !document.querySelector('#lg-stop').disabled`, 0)

	time.Sleep(1300 * time.Millisecond) // for a stats message with the run
	b.Screenshot("dashboard-light")
	b.SetColorScheme("dark")
	b.Screenshot("dashboard-dark")
	b.SetColorScheme("")

	// The controller restarts: the page says so, comes back by itself and
	// rebuilds from the new snapshot.
	before := f.connections()
	f.restartStream(1500 * time.Millisecond)
	b.WaitReconnecting()
	b.WaitConnected()
	if got := f.connections(); got <= before {
		t.Errorf("connections: %d after the restart, want more than %d", got, before)
	}
	b.WaitTiles("web", 4)
	b.WaitHealth("web-2", "dead")

	b.CheckPage(f.srv.URL)
}

func TestBrowserHundredReplicas(t *testing.T) {
	b := dashboard.NewBrowser(t)
	f := newFakeController(t)

	f.open(b)

	// 100 replicas arrive in one group message: the frame that builds them
	// stays within a budget a slow machine meets. They are pods, beside an
	// empty group of containers, so the isolation comparison is drawn too,
	// with the medians of all 100 at every stats message.
	f.pushGroup(makeGroup("empty", "monolith", "round-robin", 0))
	g := makeGroup("big", "monolith", "p2c", 100)
	g.Isolation = spec.IsolationPod
	f.setStatsFor(g, 0)
	f.pushGroup(g)
	b.WaitTiles("big", 100)
	b.WaitFor("the comparison of the pods", `(document.querySelector('#compare tr[data-row="ready"] td[data-col="big"]') || {}).textContent === '100 / 100'`, 0)

	type frame struct {
		ApplyMs  float64 `json:"applyMs"`
		RenderMs float64 `json:"renderMs"`
		Stats    bool    `json:"stats"`
		Tiles    int     `json:"tiles"`
	}
	var build []frame
	b.Eval(`window.flotilla.diag.frameLog.filter(f => f.tiles === 100)`, &build)
	if len(build) == 0 {
		t.Fatal("no frame drew the 100 tiles")
	}
	first := build[0].ApplyMs + build[0].RenderMs
	t.Logf("building 100 tiles took %.1f ms of script", first)
	if first > 500 {
		t.Errorf("building 100 tiles took %.1f ms of script, want under 500", first)
	}

	// Then stats for all of them, ten times (the stream sends them every
	// second): each takes well under a frame.
	var base int
	b.Eval(`window.flotilla.diag.statsApplied`, &base)
	for i := 1; i <= 10; i++ {
		f.setStatsFor(g, 100+i)
		b.WaitFor(fmt.Sprintf("stats message %d", i), fmt.Sprintf(`window.flotilla.diag.statsApplied >= %d`, base+i), 0)
	}
	b.WaitFor("ten stats messages", fmt.Sprintf(`window.flotilla.diag.statsApplied >= %d`, base+10), 0)
	time.Sleep(200 * time.Millisecond) // for the frame that draws the last one
	var frames []frame
	b.Eval(`window.flotilla.diag.frameLog.filter(f => f.stats && f.tiles === 100)`, &frames)
	if len(frames) < 5 {
		t.Fatalf("only %d stats frames with 100 tiles: %+v", len(frames), frames)
	}
	var costs []float64
	for _, fr := range frames {
		costs = append(costs, fr.ApplyMs+fr.RenderMs)
	}
	slices.Sort(costs)
	median := costs[len(costs)/2]
	t.Logf("a stats message for 100 replicas: median %.2f ms, max %.2f ms of script over %d frames", median, costs[len(costs)-1], len(costs))
	if median > 50 {
		t.Errorf("applying stats for 100 replicas takes %.1f ms of script (median), want under 50", median)
	}

	var sparks int
	b.Eval(`[...document.querySelectorAll('[data-group="big"] .spark-p99')].filter(p => p.getAttribute('points').split(' ').length >= 5).length`, &sparks)
	if sparks != 100 {
		t.Errorf("%d of 100 sparklines have 5 points or more", sparks)
	}
	// The event log keeps the newest 200.
	for i := 1; i <= 250; i++ {
		f.pushEvent("replica.ready", "big", fmt.Sprintf("big-%d", i%100+1), fmt.Sprintf("event %d", i))
	}
	b.WaitFor("the 250th event", `(document.querySelector('#events li .event-msg') || {}).textContent === 'event 250'`, 0)
	var logged int
	b.Eval(`document.querySelectorAll('#events li').length`, &logged)
	if logged != 200 {
		t.Errorf("the event log holds %d entries, want 200", logged)
	}

	b.Screenshot("dashboard-100-replicas")
	b.ScreenshotWindow("dashboard-100-replicas-window")
	b.CheckPage(f.srv.URL)
}

// noticeText waits for the notice to say something matching re and returns it.
func waitNotice(b *dashboard.Browser, kind, re string) string {
	var text string
	b.WaitFor("a notice matching "+re, fmt.Sprintf(`(() => { const n = document.querySelector('#notice');
		return !n.hidden && n.dataset.kind === %q && new RegExp(%q).test(n.innerText); })()`, kind, re), 0)
	b.Eval(`document.querySelector('#notice .notice-text').textContent`, &text)
	return text
}

func TestBrowserStages(t *testing.T) {
	b := dashboard.NewBrowser(t)
	f := newFakeController(t, makeGroup("shop", "monolith", "round-robin", 1))
	f.fake.SetScenario("monolith")
	stages := slices.Clone(f.scenarios)
	if len(stages) != 9 {
		t.Fatalf("the story has %d stage files, want 9", len(stages))
	}

	f.open(b)
	b.WaitFor("the stage picker", `document.querySelectorAll('#stage-picker [data-action="scenario"]').length === 9`, 0)
	var order []string
	b.Eval(`[...document.querySelectorAll('#stage-picker [data-action="scenario"]')].map(b => b.dataset.scenario)`, &order)
	if want := []string{"monolith", "scaled-no-lb", "scaled-lb", "microservices", "vms-vs-containers", "clusters", "event-driven", "serverless", "rollouts"}; !slices.Equal(order, want) {
		t.Errorf("stages in the picker: %v, want %v", order, want)
	}
	b.WaitFor("the monolith marked current", `document.querySelector('[data-scenario="monolith"]').getAttribute('aria-current') === 'step'`, 0)
	b.WaitFor("the monolith explained", `document.querySelector('#stage').dataset.scenario === 'monolith'`, 0)

	type shown struct {
		Title, Explanation string
		Steps              []string
		Current            []string
	}
	read := func() shown {
		var s shown
		b.Eval(`({
			title: document.querySelector('#stage .stage-title').textContent,
			explanation: document.querySelector('#stage .stage-explanation').textContent,
			steps: [...document.querySelectorAll('#stage ol li')].map(li => li.textContent),
			current: [...document.querySelectorAll('[data-action="scenario"][aria-current="step"]')].map(b => b.dataset.scenario),
		})`, &s)
		return s
	}
	check := func(sc spec.Scenario) {
		t.Helper()
		s := read()
		if s.Title != sc.Title || s.Explanation != strings.TrimSpace(sc.Explanation) || !slices.Equal(s.Steps, sc.Try) {
			t.Errorf("the stage panel shows %+v, want the title, explanation and steps of %s", s, sc.Name)
		}
		if !slices.Equal(s.Current, []string{sc.Name}) {
			t.Errorf("stages marked current: %v, want [%s]", s.Current, sc.Name)
		}
	}
	check(stages[0])

	// Stage 2: one click sends the PUT, the panel explains the new stage and
	// the notice says what changed.
	b.Click(`[data-action="scenario"][data-scenario="scaled-no-lb"]`)
	requireJSON(t, f.waitCall("PUT", "/api/v1/scenario"), `{"name":"scaled-no-lb"}`)
	b.WaitFor("stage 2 explained", `document.querySelector('#stage').dataset.scenario === 'scaled-no-lb'`, 0)
	check(stages[1])
	if text := waitNotice(b, "ok", "applied"); !strings.Contains(text, "updated shop") {
		t.Errorf("the notice says %q, want it to say shop was updated", text)
	}
	// Stage 2 has no balancer: the card says clients must use each
	// replica's own address, and the tiles show it.
	b.WaitTiles("shop", 3)
	b.WaitFor("the no-balancer hint", `!document.querySelector('[data-group="shop"] .card-hint').hidden`, 0)
	var addr string
	b.Eval(`document.querySelector('[data-replica="shop-2"] .share-text').textContent`, &addr)
	if addr != "127.0.0.1:41002" {
		t.Errorf("tile shop-2 shows %q, want its address 127.0.0.1:41002", addr)
	}
	b.Screenshot("stages-no-balancer")

	// Stage 4 by keyboard: Enter on the focused button.
	b.Press(`[data-action="scenario"][data-scenario="microservices"]`, "\r")
	b.WaitFor("stage 4 explained", `document.querySelector('#stage').dataset.scenario === 'microservices'`, 0)
	check(stages[3])
	if text := waitNotice(b, "ok", "Stage 4"); !strings.Contains(text, "created cart, catalog, checkout, deals, gateway, orders") || !strings.Contains(text, "deleted shop") {
		t.Errorf("the notice says %q, want the six services created and shop deleted", text)
	}
	b.WaitFor("the balancer hint to go", `document.querySelector('[data-group="shop"]') === null && document.querySelectorAll('.card-hint:not([hidden])').length === 0`, 0)
	var focused string
	b.Eval(`document.activeElement.dataset.scenario || ''`, &focused)
	if focused != "microservices" {
		t.Errorf("after applying, focus is on %q, want the stage's button", focused)
	}
	var compareHidden bool
	b.Eval(`document.querySelector('#compare').hidden`, &compareHidden)
	if !compareHidden {
		t.Error("the isolation comparison shows while every group is a container")
	}

	// Stage 5 runs the shop as a container, a pod and a VM: the comparison
	// puts them side by side, and the pod and VM cards say what they are.
	b.Click(`[data-action="scenario"][data-scenario="vms-vs-containers"]`)
	b.WaitFor("stage 5 explained", `document.querySelector('#stage').dataset.scenario === 'vms-vs-containers'`, 0)
	check(stages[4])
	if text := waitNotice(b, "ok", "Stage 5"); !strings.Contains(text, "created shop-container, shop-pod, shop-vm") {
		t.Errorf("the notice says %q, want the three shops created", text)
	}
	b.WaitFor("the comparison", `!document.querySelector('#compare').hidden && document.querySelectorAll('#compare thead th').length === 3`, 0)
	var kinds []string
	b.Eval(`[...document.querySelectorAll('#compare tr[data-row="isolation"] td')].map(td => td.dataset.col + ': ' + td.textContent)`, &kinds)
	if want := []string{"shop-container: container", "shop-pod: pod", "shop-vm: vm (TCG, emulated)"}; !slices.Equal(kinds, want) {
		t.Errorf("the comparison's isolation row: %q, want %q", kinds, want)
	}
	var tags []string
	b.Eval(`['shop-container', 'shop-pod', 'shop-vm'].map(n => { const e = document.querySelector('[data-group="' + n + '"] .iso-tag'); return e.hidden ? '' : e.textContent; })`, &tags)
	if want := []string{"", "pod", "vm · TCG"}; !slices.Equal(tags, want) {
		t.Errorf("the cards' isolation tags: %q, want %q", tags, want)
	}
	b.Screenshot("stages-vms-vs-containers")

	// Someone else applies a stage (the CLI, a demo script): the page
	// follows the scenario.applied event.
	if _, ok := f.applyScenario("clusters"); !ok {
		t.Fatal("apply clusters")
	}
	b.WaitFor("stage 6 explained", `document.querySelector('#stage').dataset.scenario === 'clusters'`, 0)
	check(stages[5])
	b.WaitFor("the comparison to go with the pod and the VM", `document.querySelector('#compare').hidden`, 0)
	b.WaitTiles("catalog", 3)
	var loadTarget string
	b.Eval(`document.querySelector('#lg-group').value`, &loadTarget)
	if loadTarget != "gateway" {
		t.Errorf("load goes to %q by default, want gateway, the shop's entry", loadTarget)
	}
	b.Screenshot("stages-clusters")

	// The details fold away and come back.
	b.Click(`#story-toggle`)
	b.WaitFor("the details hidden", `document.querySelector('#stage').hidden && document.querySelector('#story-toggle').getAttribute('aria-expanded') === 'false'`, 0)
	b.Click(`#story-toggle`)
	b.WaitFor("the details shown", `!document.querySelector('#stage').hidden && document.querySelector('#story-toggle').getAttribute('aria-expanded') === 'true'`, 0)

	b.CheckPage(f.srv.URL)
}

func TestBrowserFaults(t *testing.T) {
	b := dashboard.NewBrowser(t)
	f := newFakeController(t, makeGroup("web", "monolith", "round-robin", 3))

	f.open(b)
	b.WaitTiles("web", 3)
	b.WaitFor("the fault form to know web", `document.querySelector('#fault-group').value === 'web' && document.querySelector('#fault-replica').options.length === 4`, 0)
	b.WaitFor("nothing broken", `!document.querySelector('#faults-empty').hidden`, 0)

	// The fields follow the kind.
	for _, c := range []struct {
		kind                   string
		feature, latency, rate bool
	}{
		{"kill", false, false, false},
		{"crash-feature", true, false, false},
		{"errors", true, false, true},
		{"latency", true, true, false},
	} {
		b.Select(`#fault-kind`, c.kind)
		b.WaitFor(fmt.Sprintf("the fields of %s: feature %v, latency %v, error rate %v", c.kind, c.feature, c.latency, c.rate),
			fmt.Sprintf(`!document.querySelector('#fault-feature-field').hidden === %v && !document.querySelector('#fault-latency-field').hidden === %v && !document.querySelector('#fault-rate-field').hidden === %v`,
				c.feature, c.latency, c.rate), 0)
	}

	// Add 300 ms to web-2's cart.
	b.Select(`#fault-replica`, "web-2")
	b.Select(`#fault-feature`, "cart")
	b.Fill(`#fault-latency`, "300")
	b.WaitFor("the preview", `/300 ms to cart requests on web-2/.test(document.querySelector('#fault-preview').textContent)`, 0)
	b.Click(`[data-action="inject-fault"]`)
	requireJSON(t, f.waitCall("POST", "/api/v1/faults"), `{"kind":"latency","group":"web","replica":"web-2","feature":"cart","latencyMs":300}`)
	b.WaitFor("the fault in the list", `document.querySelector('#faults [data-action="revert-fault"][data-fault="f-1"]') !== null`, 0)
	var item string
	b.Eval(`document.querySelector('#faults li').innerText`, &item)
	if !strings.Contains(item, "300 ms added to cart on [web-2]") || !strings.Contains(item, "Revert") {
		t.Errorf("the fault reads %q", item)
	}
	waitNotice(b, "ok", "300 ms added to cart")
	// The tile of web-2 says what is done to it.
	b.WaitFor("web-2's tile to show the fault", `(document.querySelector('[data-replica="web-2"]').dataset.fault || '') === '+300 ms on cart' &&
		document.querySelector('[data-replica="web-2"] .tile-sub').textContent.includes('+300 ms on cart')`, 0)

	// The controller's refusal reaches the user, next to the form.
	b.Select(`#fault-kind`, "errors")
	b.WaitFor("the error rate field", `!document.querySelector('#fault-rate-field').hidden`, 0)
	b.Fill(`#fault-rate`, "0")
	b.Click(`[data-action="inject-fault"]`)
	b.WaitFor("the error next to the form", `(() => { const e = document.querySelector('#fault-error');
		return !e.hidden && /errorRate 0 is out of range/.test(e.textContent); })()`, 0)
	waitNotice(b, "error", "out of range")

	// A fault injected elsewhere shows up through the stream's event.
	if _, err := f.fake.InjectFault(context.Background(), faults.Spec{Kind: "pause", Group: "web", Replica: "web-3"}); err != nil {
		t.Fatalf("inject pause: %v", err)
	}
	b.WaitFor("the second fault", `document.querySelectorAll('#faults li').length === 2`, 0)
	var ids []string
	b.Eval(`[...document.querySelectorAll('#faults [data-action="revert-fault"]')].map(b => b.dataset.fault)`, &ids)
	if !slices.Equal(ids, []string{"f-2", "f-1"}) {
		t.Errorf("faults listed: %v, want newest first [f-2 f-1]", ids)
	}
	b.Screenshot("faults")

	// Revert sends DELETE and the fault leaves the list; focus stays in it.
	b.Click(`#faults [data-action="revert-fault"][data-fault="f-1"]`)
	c := f.waitCall("DELETE", "/api/v1/faults/f-1")
	if c.ContentType != "application/json" {
		t.Errorf("revert sent Content-Type %q", c.ContentType)
	}
	b.WaitFor("f-1 gone", `document.querySelector('[data-fault="f-1"]') === null && document.querySelectorAll('#faults li').length === 1`, 0)
	waitNotice(b, "ok", "Reverted")
	b.WaitFor("web-2's tile back to normal", `document.querySelector('[data-replica="web-2"]').dataset.fault === undefined`, 0)
	var active string
	b.Eval(`document.activeElement.dataset.fault || document.activeElement.dataset.action || document.activeElement.tagName`, &active)
	if active != "f-2" {
		t.Errorf("after reverting, focus is on %q, want the next fault's button", active)
	}

	// The bus's faults: poison takes a count of messages, slow-consumer a
	// delay.
	b.Select(`#fault-kind`, "slow-consumer")
	b.WaitFor("slow-consumer's field", `!document.querySelector('#fault-latency-field').hidden && document.querySelector('#fault-messages-field').hidden && document.querySelector('#fault-feature-field').hidden`, 0)
	b.Select(`#fault-kind`, "poison")
	b.WaitFor("poison's field", `!document.querySelector('#fault-messages-field').hidden && document.querySelector('#fault-latency-field').hidden`, 0)
	b.Select(`#fault-replica`, "")
	b.Fill(`#fault-messages`, "3")
	b.WaitFor("poison's preview", `/next 3 new messages fail at every delivery/.test(document.querySelector('#fault-preview').textContent)`, 0)
	b.Click(`[data-action="inject-fault"]`)
	var poison call
	dashboard.WaitUntil(t, "the poison POST", 0, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.calls {
			if c.Method == "POST" && c.Path == "/api/v1/faults" && strings.Contains(c.Body, "poison") {
				poison = c
				return true
			}
		}
		return false
	})
	requireJSON(t, poison, `{"kind":"poison","group":"web","messages":3}`)
	b.WaitFor("the poison in the list", `document.querySelector('#faults li[data-kind="poison"]') !== null`, 0)
	b.CheckPage(f.srv.URL)
}

func TestBrowserJourneys(t *testing.T) {
	b := dashboard.NewBrowser(t)
	f := newFakeController(t, makeGroup("shop", "monolith", "round-robin", 3))

	f.open(b)
	b.WaitTiles("shop", 3)

	// A shop takes journeys by default; the paths go away with them.
	b.WaitFor("journeys checked", `document.querySelector('#lg-journey').checked && document.querySelector('#lg-paths-field').hidden`, 0)
	b.Click(`#lg-journey`)
	b.WaitFor("paths back", `!document.querySelector('#lg-journey').checked && !document.querySelector('#lg-paths-field').hidden`, 0)
	b.Click(`#lg-journey`)
	b.WaitFor("paths gone", `document.querySelector('#lg-journey').checked && document.querySelector('#lg-paths-field').hidden`, 0)

	b.Click(`[data-action="load-start"]`)
	requireJSON(t, f.waitCall("POST", "/api/v1/load"), `{"group":"shop","rate":200,"duration":"30s","shoppers":10,"journey":true}`)
	b.WaitFor("the run on screen", `document.querySelector('#load-report .load-state') !== null`, 0)
	var hidden bool
	b.Eval(`document.querySelector('#journeys').hidden`, &hidden)
	if !hidden {
		t.Error("the journeys show before any report has steps")
	}

	// The first report with steps: every step fine, but a third of the carts
	// came back incomplete.
	f.setJourneyReport("run-1", map[string]stepCounts{
		"browse": {100, 0, 0}, "deals": {100, 0, 0}, "add": {99, 1, 0}, "cart": {99, 0, 33}, "checkout": {99, 0, 0},
	})
	b.WaitFor("five step rows", `!document.querySelector('#journeys').hidden && document.querySelectorAll('#journeys [data-step]').length === 5`, 0)
	type row struct {
		Step   string `json:"step"`
		Label  string `json:"label"`
		Recent string `json:"recent"`
		Whole  string `json:"whole"`
		Tone   string `json:"tone"`
		Text   string `json:"text"`
	}
	rows := func() map[string]row {
		var rs []row
		b.Eval(`[...document.querySelectorAll('#journeys [data-step]')].map(r => ({step: r.dataset.step,
			label: r.querySelector('th').textContent, recent: r.dataset.recentRate, whole: r.querySelector('.st-whole').textContent,
			tone: r.dataset.tone, text: r.innerText.replace(/\s+/g, ' ').trim()}))`, &rs)
		out := map[string]row{}
		var order []string
		for _, r := range rs {
			out[r.Step] = r
			order = append(order, r.Step)
		}
		if want := []string{"browse", "deals", "add", "cart", "checkout"}; !slices.Equal(order, want) {
			t.Errorf("step rows %v, want %v", order, want)
		}
		return out
	}
	got := rows()
	for step, want := range map[string]string{"browse": "100%", "deals": "100%", "add": "99%", "cart": "67%", "checkout": "100%"} {
		if got[step].Whole != want {
			t.Errorf("step %s (%s): whole run %q, want %q", step, got[step].Label, got[step].Whole, want)
		}
	}

	// Then deals breaks: in the next reports every deals request fails while
	// the others go on. The whole run still says two thirds; the last
	// seconds say none.
	f.setJourneyReport("run-1", map[string]stepCounts{
		"browse": {150, 0, 0}, "deals": {100, 50, 0}, "add": {99, 1, 0}, "cart": {99, 0, 33}, "checkout": {99, 0, 0},
	})
	b.WaitFor("deals failing in the last seconds", `document.querySelector('#journeys [data-step="deals"]').dataset.recentRate === '0'`, 0)
	got = rows()
	if got["browse"].Recent != "1" {
		t.Errorf("browse: data-recent-rate %q, want 1", got["browse"].Recent)
	}
	if d := got["deals"]; d.Whole != "67%" || d.Tone != "bad" || !strings.Contains(d.Text, "0% ✗") {
		t.Errorf("deals row: %+v; want whole run 67%%, tone bad and 0%% ✗ for the last seconds", d)
	}
	if got["browse"].Tone != "good" || !strings.Contains(got["browse"].Text, "100% ✓") {
		t.Errorf("browse row: %+v; want 100%% ✓", got["browse"])
	}
	if r := got["add"].Recent; r != "" {
		t.Errorf("add: no requests in the last seconds, yet data-recent-rate %q", r)
	}
	var labels []string
	b.Eval(`[...document.querySelectorAll('#journeys thead th')].map(th => th.textContent)`, &labels)
	if len(labels) != 3 || labels[1] != "last 5 s" || labels[2] != "whole run" {
		t.Errorf("column heads %v, want which rate is which", labels)
	}
	var notes string
	b.Eval(`document.querySelector('#journeys .journey-notes').textContent`, &notes)
	if !strings.Contains(notes, "33 of 99 carts came back incomplete") || !strings.Contains(notes, "view deals: status_5xx 50") {
		t.Errorf("journey notes %q", notes)
	}
	var live string
	b.Eval(`document.querySelector('#journeys-live').textContent`, &live)
	if !strings.Contains(live, "view deals is failing") {
		t.Errorf("screen readers were told %q, want that deals is failing", live)
	}
	time.Sleep(600 * time.Millisecond) // let the bars settle
	b.Screenshot("journeys")
	b.SetColorScheme("dark")
	b.Screenshot("journeys-dark")
	b.SetColorScheme("")
	b.CheckPage(f.srv.URL)
}

package dashboard_test

// The message bus of stage 7: the flow from the publisher through each
// stream to each consumer group and its replicas, with rates, lag and dead
// letters on the edges, the dead letters' list with its Replay buttons, and
// the dots that move at a bounded rate.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/flotilla/flotilla/dashboard"
	"github.com/flotilla/flotilla/orchestrator/bus"
	"github.com/flotilla/flotilla/orchestrator/controller"
)

// busGroups are stage 7's groups: the bus, checkout publishing, and the
// four subscriber services.
func busGroups() []controller.GroupStatus {
	return []controller.GroupStatus{
		makeGroup("bus", "bus", "none", 1),
		makeGroup("checkout", "checkout", "round-robin", 2),
		makeGroup("notifications", "notifications", "none", 2),
		makeGroup("inventory", "inventory", "none", 3),
		makeGroup("analytics", "analytics", "none", 1),
		makeGroup("fulfillment", "fulfillment", "none", 2),
	}
}

// busStatus is the bus of stage 7 at work: ORDERS fanned out to three
// consumers, FULFILLMENT a work queue, and two dead letters.
func busStatus() bus.Status {
	return bus.Status{
		Up: true, Time: time.Now(),
		Streams: []bus.Stream{
			{Name: "ORDERS", Subjects: []string{"orders.placed"}, Messages: 950, Bytes: 950 << 10, FirstSeq: 1, LastSeq: 950, PublishedPerSec: 40,
				Consumers: []bus.Consumer{
					{Name: "notifications", Group: "notifications", Delivered: 950, AckFloor: 945, AckPending: 5, Waiting: 2, AckedPerSec: 40, MaxDeliver: 5},
					{Name: "inventory", Group: "inventory", Delivered: 913, AckFloor: 912, AckPending: 1, Pending: 37, Redelivered: 4, Waiting: 3, AckedPerSec: 30.6, MaxDeliver: 5},
					{Name: "analytics", Group: "analytics", Delivered: 950, AckFloor: 950, Waiting: 1, AckedPerSec: 40, MaxDeliver: 5},
				}},
			{Name: "FULFILLMENT", Subjects: []string{"orders.fulfill"}, WorkQueue: true, Messages: 3, Bytes: 3 << 10, FirstSeq: 948, LastSeq: 950, PublishedPerSec: 12,
				Consumers: []bus.Consumer{
					{Name: "fulfillment", Group: "fulfillment", Delivered: 949, AckFloor: 947, AckPending: 2, Pending: 1, Redelivered: 1, Waiting: 2, AckedPerSec: 9.5, MaxDeliver: 5},
				}},
		},
		Dead: []bus.DeadLetter{
			{Seq: 1, Stream: "ORDERS", StreamSeq: 17, Subject: "orders.placed", Consumer: "inventory", Deliveries: 5, Time: time.Now(),
				Reason: "out of stock: product p-9 has 0 left", EventID: "o-17", Data: `{"id":"o-17"}`},
			{Seq: 2, Stream: "FULFILLMENT", StreamSeq: 4, Subject: "orders.fulfill", Consumer: "fulfillment", Deliveries: 5, Time: time.Now(),
				Reason: "delivered 5 times without an ack", EventID: "o-4"},
		},
	}
}

// busRow is one row of the flow's table for screen readers, by column.
type busRow map[string]string

func readBusTable(b *dashboard.Browser) map[string]busRow {
	var rows map[string]busRow
	b.Eval(`(() => {
		const out = {};
		for (const tr of document.querySelectorAll('#bus-table tbody tr')) {
			const row = {};
			for (const c of tr.cells) row[c.dataset.col] = c.textContent;
			out[tr.dataset.stream + '/' + tr.dataset.consumer] = row;
		}
		return out;
	})()`, &rows)
	return rows
}

// deadLetter is a row of the dead letters' list, by column.
type deadLetterRow map[string]string

func readDeadLetters(b *dashboard.Browser) []deadLetterRow {
	var rows []deadLetterRow
	b.Eval(`[...document.querySelectorAll('#bus-dead tbody tr')].map(tr => {
		const row = {seq: tr.dataset.seq};
		for (const c of tr.cells) if (c.dataset.col) row[c.dataset.col] = c.textContent;
		row.button = tr.querySelector('button[data-action="replay"]').textContent;
		return row;
	})`, &rows)
	return rows
}

// edgeText is what an edge of the drawing says: its rate, its dead
// letters (empty when none) and the rest, and its state.
type edgeText struct {
	Rate, Dead, Extra, State string
}

func readEdge(b *dashboard.Browser, kind, id string) edgeText {
	var e edgeText
	b.Eval(fmt.Sprintf(`(() => { const e = document.querySelector('#bus-flow [data-edge=%q][data-id=%q]');
		if (!e) return {};
		const dead = e.querySelector('.bf-dead');
		return {rate: e.querySelector('.bf-rate').textContent, dead: dead.hidden ? '' : dead.textContent,
			extra: e.querySelector('.bf-extra').textContent, state: e.dataset.state}; })()`, kind, id), &e)
	return e
}

func TestBrowserBus(t *testing.T) {
	b := dashboard.NewBrowser(t)
	f := newFakeController(t, busGroups()...)
	f.fake.SetBus(busStatus())

	f.open(b)
	b.WaitFor("the bus panel", `!document.querySelector('#bus').hidden && document.querySelectorAll('#bus-table tbody tr').length === 4`, 0)

	// The table a screen reader walks: one row per consumer, with its
	// stream, group, replicas, rates and lag.
	want := map[string]busRow{
		"ORDERS/notifications": {"stream": "ORDERS", "published": "40", "consumer": "notifications", "group": "notifications", "replicas": "2 of 2",
			"acked": "40", "lag": "0", "unacked": "5", "redelivered": "0", "dead": "0"},
		"ORDERS/inventory": {"stream": "ORDERS", "published": "40", "consumer": "inventory", "group": "inventory", "replicas": "3 of 3",
			"acked": "31", "lag": "37", "unacked": "1", "redelivered": "4", "dead": "1"},
		"ORDERS/analytics": {"stream": "ORDERS", "published": "40", "consumer": "analytics", "group": "analytics", "replicas": "1 of 1",
			"acked": "40", "lag": "0", "unacked": "0", "redelivered": "0", "dead": "0"},
		"FULFILLMENT/fulfillment": {"stream": "FULFILLMENT", "published": "12", "consumer": "fulfillment", "group": "fulfillment", "replicas": "2 of 2",
			"acked": "9.5", "lag": "1", "unacked": "2", "redelivered": "1", "dead": "1"},
	}
	checkTable := func(when string) {
		t.Helper()
		got := readBusTable(b)
		for k, row := range want {
			for col, v := range row {
				if got[k][col] != v {
					t.Errorf("%s: the bus table shows %q for %s of %s, want %q", when, got[k][col], col, k, v)
				}
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: the bus table has rows %v, want %d", when, slices.Sorted(maps.Keys(got)), len(want))
		}
	}
	checkTable("at first")
	var shape struct {
		Caption  string
		ColHeads int
		RowHeads int
		Hidden   string
	}
	b.Eval(`(() => { const t = document.querySelector('#bus-table'); return {
		caption: t.caption.textContent, colHeads: t.querySelectorAll('thead th[scope="col"]').length,
		rowHeads: t.querySelectorAll('tbody th[scope="row"]').length,
		hidden: document.querySelector('#bus-flow').getAttribute('aria-hidden')}; })()`, &shape)
	if shape.Caption == "" || shape.ColHeads != 10 || shape.RowHeads != 4 || shape.Hidden != "true" {
		t.Errorf("the bus table: %+v; want a caption, 10 column heads, a row head per consumer, and the drawing hidden from screen readers", shape)
	}

	// The drawing: publisher → stream → an edge per consumer → its group.
	if e := readEdge(b, "consume", "ORDERS/inventory"); e != (edgeText{"31/s", "✕ 1 dead letter", "lag 37 · 1 unacked · 4 redelivered", "dead"}) {
		t.Errorf("the edge ORDERS → inventory says %+v", e)
	}
	if e := readEdge(b, "consume", "ORDERS/notifications"); e != (edgeText{"40/s", "", "lag 0 · 5 unacked", "flowing"}) {
		t.Errorf("the edge ORDERS → notifications says %+v", e)
	}
	if e := readEdge(b, "publish", "FULFILLMENT"); e != (edgeText{"12/s", "", "published", "flowing"}) {
		t.Errorf("the edge checkout → FULFILLMENT says %+v", e)
	}
	var nodes map[string]string
	b.Eval(`(() => { const out = {}; const t = (e) => [...e.children].filter(c => !c.hidden).map(c => c.textContent).join(' | ');
		out.pub = t(document.querySelector('#bus-flow .bf-pub'));
		for (const n of document.querySelectorAll('#bus-flow .bf-stream')) out[n.dataset.stream] = t(n);
		for (const n of document.querySelectorAll('#bus-flow .bf-group')) out[n.dataset.consumer] = t(n);
		return out; })()`, &nodes)
	for k, v := range map[string]string{
		"pub":         "checkout | publisher · 2 / 2 replicas ready",
		"ORDERS":      "ORDERS | orders.placed | 950 messages · 950 KiB",
		"FULFILLMENT": "FULFILLMENT | orders.fulfill · work queue | 3 messages · 3.0 KiB",
		"inventory":   "inventory | inventory · 3 / 3 replicas ready",
	} {
		if !strings.HasPrefix(nodes[k], v) {
			t.Errorf("the %s box says %q, want it to begin %q", k, nodes[k], v)
		}
	}
	// checkout's setting events is the default, http: it calls the
	// subscribers itself.
	if !strings.HasSuffix(nodes["pub"], "events: http: calls the subscribers in line, publishes nothing") {
		t.Errorf("the publisher's box says %q, want that checkout calls over HTTP", nodes["pub"])
	}
	if !strings.HasSuffix(nodes["inventory"], "3 replicas asking for messages") {
		t.Errorf("the inventory box says %q, want the replicas asking", nodes["inventory"])
	}
	var pips int
	b.Eval(`[...document.querySelectorAll('#bus-flow [data-consumer="inventory"] .bf-pip')].filter(p => !p.hidden && p.dataset.health === 'ready').length`, &pips)
	if pips != 3 {
		t.Errorf("the inventory box draws %d ready replicas, want 3", pips)
	}

	// The dead letters, newest first, with why.
	dead := readDeadLetters(b)
	wantDead := []deadLetterRow{
		{"seq": "2", "message": "orders.fulfillFULFILLMENT #4", "consumer": "fulfillment", "deliveries": "5", "reason": "delivered 5 times without an ack", "event": "o-4", "button": "Replay"},
		{"seq": "1", "message": "orders.placedORDERS #17", "consumer": "inventory", "deliveries": "5", "reason": "out of stock: product p-9 has 0 left", "event": "o-17", "button": "Replay"},
	}
	if len(dead) != 2 {
		t.Fatalf("dead letters: %v, want 2", dead)
	}
	for i, w := range wantDead {
		for k, v := range w {
			if dead[i][k] != v {
				t.Errorf("dead letter %d: %s is %q, want %q", i, k, dead[i][k], v)
			}
		}
	}

	// The dots move, no more than the cap allows.
	b.WaitFor("dots on the edges", `window.flotilla.diag.dots.spawned > 10 && window.flotilla.diag.dots.live > 0`, 0)

	// A new reading: the figures change in place, nothing is rebuilt.
	b.Eval(`document.querySelectorAll('#bus-flow *, #bus-table tbody *, #bus-dead tbody *').forEach(e => { e._testMark = true; }), true`, nil)
	st := busStatus()
	st.Time = time.Now()
	st.Streams[0].PublishedPerSec = 60
	st.Streams[0].Messages = 1010
	inv := &st.Streams[0].Consumers[1]
	inv.Pending, inv.AckPending, inv.AckedPerSec, inv.Redelivered = 0, 0, 55, 4
	f.fake.SetBus(st)
	b.WaitFor("the new reading", `document.querySelector('#bus-table tr[data-consumer="inventory"] [data-col="lag"]').textContent === '0'`, 0)
	want["ORDERS/inventory"]["acked"], want["ORDERS/inventory"]["lag"], want["ORDERS/inventory"]["unacked"] = "55", "0", "0"
	for _, k := range []string{"ORDERS/notifications", "ORDERS/inventory", "ORDERS/analytics"} {
		want[k]["published"] = "60"
	}
	checkTable("after a new reading")
	if e := readEdge(b, "consume", "ORDERS/inventory"); e != (edgeText{"55/s", "✕ 1 dead letter", "lag 0 · 4 redelivered", "dead"}) {
		t.Errorf("after a new reading the edge ORDERS → inventory says %+v", e)
	}
	var marks struct{ Marked, All int }
	b.Eval(`(() => { const all = [...document.querySelectorAll('#bus-flow *, #bus-table tbody *, #bus-dead tbody *')];
		return {marked: all.filter(e => e._testMark).length, all: all.length}; })()`, &marks)
	if marks.Marked != marks.All || marks.All < 100 {
		t.Errorf("%d of %d elements of the bus panel survived a new reading, want all", marks.Marked, marks.All)
	}

	// Readable in both themes.
	for _, scheme := range []string{"light", "dark"} {
		b.SetColorScheme(scheme)
		var c map[string]string
		b.Eval(`(() => { const s = (sel) => getComputedStyle(document.querySelector(sel)); return {
			panel: s('#bus').backgroundColor, node: s('#bus-flow .bf-group').backgroundColor,
			title: s('#bus-flow .bf-group .bf-title').color, sub: s('#bus-flow .bf-group .bf-sub').color,
			rate: s('#bus-flow .bf-rate').color, extra: s('#bus-flow .bf-extra').color, state: s('#bus-state').color,
			dead: s('#bus-flow .bf-dead:not([hidden])').color, deadBg: s('#bus-flow .bf-dead:not([hidden])').backgroundColor,
			cell: s('#bus-dead td[data-col="consumer"]').color, reason: s('#bus-dead td[data-col="reason"]').color,
			where: s('#bus-dead .dl-where').color, head: s('#bus-dead thead th').color,
		}; })()`, &c)
		for _, p := range []struct{ what, fg, bg string }{
			{"a group's name", c["title"], c["node"]}, {"a group's replicas", c["sub"], c["node"]},
			{"an edge's rate", c["rate"], c["panel"]}, {"an edge's lag", c["extra"], c["panel"]}, {"the bus's state", c["state"], c["panel"]},
			{"an edge's dead letters", c["dead"], c["deadBg"]}, {"a dead letter's consumer", c["cell"], c["panel"]},
			{"a dead letter's reason", c["reason"], c["panel"]}, {"a dead letter's stream", c["where"], c["panel"]},
			{"the dead letters' headings", c["head"], c["panel"]},
		} {
			if r := contrast(t, p.fg, p.bg); r < 4.5 {
				t.Errorf("%s theme: %s (%s on %s) has contrast %.2f, want 4.5 or more", scheme, p.what, p.fg, p.bg, r)
			}
		}
		b.Screenshot("bus-" + scheme)
	}
	b.SetColorScheme("")

	// Replay: the page posts it, says what happened, and the letter leaves
	// the list with the next reading.
	b.Click(`#bus-dead button[data-action="replay"][data-seq="1"]`)
	c := f.waitCall("POST", "/api/v1/bus/deadletters/1/replay")
	if c.Body != "" {
		t.Errorf("replay sent a body %q, want none", c.Body)
	}
	text := waitNotice(b, "ok", "Replayed dead letter 1")
	if !strings.Contains(text, "o-17") || !strings.Contains(text, "orders.placed") || !strings.Contains(text, "o-17.replay.1") {
		t.Errorf("the notice of the replay says %q, want the event, subject and message ID", text)
	}
	b.WaitFor("the replayed letter to leave", `document.querySelector('#bus-dead tr[data-seq="1"]') === null && document.querySelectorAll('#bus-dead tbody tr').length === 1`, 0)
	if got := f.fake.Replays(); !slices.Equal(got, []uint64{1}) {
		t.Errorf("replays: %v, want [1]", got)
	}
	b.WaitFor("the edge without its dead letter", `document.querySelector('#bus-flow [data-id="ORDERS/inventory"] .bf-dead').hidden`, 0)

	// A letter someone else replayed while this page was cut off: the
	// replay fails with the controller's word, as other commands' do.
	f.restartStream(4 * time.Second)
	b.WaitReconnecting()
	if _, err := f.fake.ReplayDeadLetter(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	b.Click(`#bus-dead button[data-action="replay"][data-seq="2"]`)
	text = waitNotice(b, "error", "Replaying dead letter 2 failed")
	if !strings.Contains(text, "404") || !strings.Contains(text, "not found") {
		t.Errorf("the failed replay says %q, want the 404 and why", text)
	}
	b.WaitConnected()
	b.WaitFor("the list empty", `document.querySelector('#bus-dead').hidden && !document.querySelector('#bus-dead-empty').hidden`, 0)

	// With reduced motion, no dots.
	setReducedMotion(b, true)
	time.Sleep(300 * time.Millisecond)
	var before, after, live int
	b.Eval(`window.flotilla.diag.dots.spawned`, &before)
	time.Sleep(time.Second)
	b.Eval(`window.flotilla.diag.dots.spawned`, &after)
	b.Eval(`[...document.querySelectorAll('#bus-flow .bf-dot')].filter(d => getComputedStyle(d).display !== 'none' && d.style.opacity === '1').length`, &live)
	if after != before || live != 0 {
		t.Errorf("with reduced motion %d dots started in a second and %d show, want none", after-before, live)
	}
	setReducedMotion(b, false)
	b.WaitFor("dots again", fmt.Sprintf(`window.flotilla.diag.dots.spawned > %d`, after), 0)

	// A hidden tab draws no dots: the loop stops, and starts again when
	// the tab shows.
	b.Eval(`Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'}),
		document.dispatchEvent(new Event('visibilitychange')), true`, nil)
	time.Sleep(300 * time.Millisecond)
	var frames0, frames1 int
	b.Eval(`window.flotilla.diag.dots.frames`, &frames0)
	time.Sleep(time.Second)
	b.Eval(`window.flotilla.diag.dots.frames`, &frames1)
	if frames1 != frames0 {
		t.Errorf("a hidden tab drew %d frames of dots in a second, want none", frames1-frames0)
	}
	b.Eval(`delete document.visibilityState, document.dispatchEvent(new Event('visibilitychange')), true`, nil)
	b.WaitFor("dots once the tab shows", fmt.Sprintf(`window.flotilla.diag.dots.frames > %d`, frames1+5), 0)

	b.CheckPage(f.srv.URL)
}

// setReducedMotion makes the page see prefers-reduced-motion: reduce, or
// no preference.
func setReducedMotion(b *dashboard.Browser, reduce bool) {
	value := "no-preference"
	if reduce {
		value = "reduce"
	}
	b.Do("emulate reduced motion", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: value}}})
		return err
	}))
}

func TestBrowserBusHiddenWithoutABus(t *testing.T) {
	b := dashboard.NewBrowser(t)
	f := newFakeController(t, makeGroup("web", "monolith", "round-robin", 2))

	f.open(b)
	b.WaitTiles("web", 2)
	// The page asked, and there is no bus.
	dashboard.WaitUntil(t, "the page to ask for the bus", 0, func() bool {
		return slices.Contains(b.Requests(), f.srv.URL+"/api/v1/bus")
	})
	time.Sleep(1500 * time.Millisecond) // a stats tick, which would carry a bus
	var hidden bool
	b.Eval(`document.querySelector('#bus').hidden`, &hidden)
	if !hidden {
		t.Error("the bus panel shows with no bus")
	}

	// A bus group whose bus the controller cannot read: the panel says so.
	f.pushGroup(makeGroup("bus", "bus", "none", 1))
	f.fake.SetBus(bus.Status{Time: time.Now(), Error: "dial tcp 10.89.0.5:8222: connection refused"})
	b.WaitFor("the panel with the error", `!document.querySelector('#bus').hidden && /connection refused/.test(document.querySelector('#bus-error').textContent)`, 0)
	var state string
	b.Eval(`document.querySelector('#bus-state').textContent`, &state)
	if !strings.Contains(state, "not reachable") {
		t.Errorf("the bus's state says %q, want not reachable", state)
	}
	// It comes up, then goes with its group.
	f.fake.SetBus(busStatus())
	b.WaitFor("the flow", `document.querySelectorAll('#bus-table tbody tr').length === 4 && document.querySelector('#bus-error').hidden`, 0)
	if err := f.fake.DeleteGroup(context.Background(), "bus"); err != nil {
		t.Fatal(err)
	}
	f.fake.SetBus(bus.Status{Time: time.Now()})
	b.WaitFor("the panel to hide", `document.querySelector('#bus').hidden`, 0)
	b.CheckPage(f.srv.URL)
}

func TestBrowserBusHundredReplicasAtFiveThousand(t *testing.T) {
	b := dashboard.NewBrowser(t)
	groups := busGroups()
	groups[4] = makeGroup("analytics", "analytics", "none", 100)
	f := newFakeController(t, groups...)
	st := busStatus()
	st.Streams[0].PublishedPerSec = 5000
	for i := range st.Streams[0].Consumers {
		st.Streams[0].Consumers[i].AckedPerSec = 5000
	}
	f.fake.SetBus(st)

	f.open(b)
	b.WaitFor("the bus panel", `document.querySelectorAll('#bus-table tbody tr').length === 4`, 0)
	b.WaitTiles("analytics", 100)

	// 100 replicas are a count, not 100 boxes.
	var box struct {
		Pips int
		More string
		Sub  string
	}
	b.Eval(`(() => { const n = document.querySelector('#bus-flow .bf-group[data-consumer="analytics"]'); return {
		pips: [...n.querySelectorAll('.bf-pip')].filter(p => !p.hidden).length,
		more: n.querySelector('.bf-more').textContent, sub: n.querySelector('.bf-sub').textContent}; })()`, &box)
	if box.Pips > 12 || box.More != "+88" || box.Sub != "analytics · 100 / 100 replicas ready" {
		t.Errorf("the analytics box: %+v; want at most 12 replicas drawn, +88 and the count", box)
	}
	if e := readEdge(b, "consume", "ORDERS/analytics"); e.Rate != "5,000/s" {
		t.Errorf("the edge ORDERS → analytics says %+v, want 5,000/s", e)
	}

	// Dots at 5,000 messages a second: each edge sends at most 12 a second,
	// and a frame of them costs little.
	b.WaitFor("dots", `window.flotilla.diag.dots.frames > 30`, 0)
	var d0, d1 struct {
		Spawned, Frames int
	}
	b.Eval(`window.flotilla.diag.dots`, &d0)
	t0 := time.Now()
	time.Sleep(3 * time.Second)
	b.Eval(`window.flotilla.diag.dots`, &d1)
	secs := time.Since(t0).Seconds()
	// Four edges at 5,000/s (the publisher's to ORDERS and three
	// consumers') and two at 12/s and 9.5/s.
	perSec := float64(d1.Spawned-d0.Spawned) / secs
	t.Logf("dots: %.0f a second over 6 edges, %d animation frames in %.1f s", perSec, d1.Frames-d0.Frames, secs)
	if perSec > 6*12+5 {
		t.Errorf("%.0f dots a second, want at most %d: 12 per edge", perSec, 6*12)
	}
	if perSec < 20 {
		t.Errorf("%.0f dots a second: the flow hardly moves", perSec)
	}
	var dots struct {
		Log     []float64
		MaxLive int `json:"maxLivePerEdge"`
	}
	b.Eval(`window.flotilla.diag.dots`, &dots)
	if dots.MaxLive > 13 {
		t.Errorf("up to %d dots on one edge at once, want at most 13", dots.MaxLive)
	}
	costs := slices.Sorted(slices.Values(dots.Log))
	median := costs[len(costs)/2]
	t.Logf("an animation frame: median %.3f ms, max %.2f ms of script over %d frames", median, costs[len(costs)-1], len(costs))
	if median > 2 {
		t.Errorf("an animation frame takes %.2f ms of script (median), want under 2", median)
	}

	// The budgets of TestBrowserHundredReplicas hold with the bus drawn:
	// stats for 100 replicas, and new readings of the bus, each well
	// under a frame.
	type frame struct {
		ApplyMs  float64 `json:"applyMs"`
		RenderMs float64 `json:"renderMs"`
		Stats    bool    `json:"stats"`
		Bus      bool    `json:"bus"`
		Tiles    int     `json:"tiles"`
	}
	var base int
	b.Eval(`window.flotilla.diag.statsApplied`, &base)
	g := groups[4]
	for i := 1; i <= 8; i++ {
		f.setStatsFor(g, 100+i)
		st.Time = time.Now()
		st.Streams[0].Consumers[2].Pending = uint64(i * 100)
		f.fake.SetBus(st)
		b.WaitFor(fmt.Sprintf("stats message %d", i), fmt.Sprintf(`window.flotilla.diag.statsApplied >= %d`, base+i), 0)
	}
	b.WaitFor("the last reading", `document.querySelector('#bus-table tr[data-consumer="analytics"] [data-col="lag"]').textContent === '800'`, 0)
	var frames []frame
	b.Eval(`window.flotilla.diag.frameLog.filter(f => (f.stats || f.bus) && f.tiles >= 100)`, &frames)
	if len(frames) < 5 {
		t.Fatalf("only %d stats or bus frames with 100 tiles: %+v", len(frames), frames)
	}
	var all, busCosts []float64
	for _, fr := range frames {
		all = append(all, fr.ApplyMs+fr.RenderMs)
		if fr.Bus {
			busCosts = append(busCosts, fr.ApplyMs+fr.RenderMs)
		}
	}
	slices.Sort(all)
	slices.Sort(busCosts)
	t.Logf("a stats or bus frame with 100 replicas: median %.2f ms, max %.2f ms over %d frames (%d with the bus)", all[len(all)/2], all[len(all)-1], len(all), len(busCosts))
	if m := all[len(all)/2]; m > 50 {
		t.Errorf("a stats or bus frame with 100 replicas takes %.1f ms of script (median), want under 50", m)
	}
	if len(busCosts) == 0 {
		t.Error("no frame drew a new reading of the bus")
	} else if m := busCosts[len(busCosts)/2]; m > 50 {
		t.Errorf("a new reading of the bus takes %.1f ms of script (median), want under 50", m)
	}
	b.Screenshot("bus-100-replicas-5000-per-second")
	b.CheckPage(f.srv.URL)
}

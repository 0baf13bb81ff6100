package dashboard_test

// Rollouts on the page, against a real controller on the real engine: a
// group of v1 is moved to v2 with the card's version control, and the card
// shows the rolling update from start to end, and tiles of the new version.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/dashboard"
	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

func TestBrowserRolloutToV2(t *testing.T) {
	dashboard.ChromiumPath(t) // skip early without a browser
	addr, _ := realController(t)
	ctx := context.Background()
	c := &api.Client{Addr: addr}
	// Quick probes, so that a new replica is ready, and the rollout moves
	// on, a fraction of a second after it starts.
	quick := spec.Probe{PeriodMs: 200, TimeoutMs: 200}
	if _, _, err := c.PutGroup(ctx, spec.Group{Name: "web", Service: "monolith", Replicas: 2, Probe: quick}); err != nil {
		t.Fatal(err)
	}

	b := dashboard.NewBrowser(t)
	b.Open("http://" + addr + "/")
	b.WaitConnected()
	b.WaitTiles("web", 2)
	b.WaitHealth("web-1", "ready")
	b.WaitHealth("web-2", "ready")
	b.WaitFor("the tiles to say v1", `[...document.querySelectorAll('[data-group="web"] .tile-version')].every(e => !e.hidden && e.textContent === 'v1')`, 0)
	var before struct {
		Strip   bool
		Version string
		Flaw    bool
	}
	b.Eval(`(() => { const card = document.querySelector('[data-group="web"]'); return {
		strip: card.querySelector('.ro') !== null,
		version: card.querySelector('[data-action="version"]').value,
		flaw: !card.querySelector('[data-action="flaw"]').hidden,
	}; })()`, &before)
	if before.Strip || before.Version != "v1" || before.Flaw {
		t.Errorf("before any rollout the card shows %+v; want no rollout strip, version v1 chosen and no flaw select", before)
	}

	// Record every status the strip shows, so a short "progressing" is seen.
	b.Eval(`(() => {
		window.seenRollout = [];
		const record = () => {
			const s = document.querySelector('[data-group="web"] .ro .ro-status-text');
			const v = s ? s.textContent : '';
			if (v && window.seenRollout[window.seenRollout.length - 1] !== v) window.seenRollout.push(v);
			requestAnimationFrame(record);
		};
		record();
		return true;
	})()`, nil)

	// The flaw select is offered for v3 only.
	b.Select(`[data-group="web"] [data-action="version"]`, "v3")
	var flawShown bool
	b.Eval(`!document.querySelector('[data-group="web"] [data-action="flaw"]').hidden`, &flawShown)
	if !flawShown {
		t.Error("choosing v3 does not offer its flaw")
	}
	b.Select(`[data-group="web"] [data-action="version"]`, "v2")
	b.Select(`[data-group="web"] [data-action="strategy"]`, "rolling")
	b.Click(`[data-group="web"] [data-action="version-apply"]`)

	b.WaitFor("the rollout strip", `(() => { const r = document.querySelector('[data-group="web"] .ro');
		return r !== null && r.querySelector('.ro-strategy').textContent === 'rolling'; })()`, 0)
	b.WaitFor("the rollout to complete", `document.querySelector('[data-group="web"] .ro .ro-status-text').textContent === 'complete'`, 45*time.Second)
	b.WaitFor("two tiles of v2", `(() => { const ts = [...document.querySelectorAll('[data-group="web"] [data-replica]')];
		return ts.length === 2 && ts.every(t => t.dataset.version === 'v2' && t.querySelector('.tile-version').textContent === 'v2'); })()`, 0)

	var strip struct {
		Strategy, Revs, From, To, Status, Progress, Traffic string
		Seen                                                []string
		Bar                                                 string
		PauseShown, ResumeShown, BackShown                  bool
		Events                                              []string
		Tone                                                string
	}
	b.Eval(`(() => { const r = document.querySelector('[data-group="web"] .ro'); return {
		strategy: r.querySelector('.ro-strategy').textContent,
		revs: r.querySelector('.ro-revs').textContent,
		from: r.querySelector('.ro-from').textContent,
		to: r.querySelector('.ro-to').textContent,
		status: r.querySelector('.ro-status-text').textContent,
		progress: r.querySelector('.ro-progress-text').textContent,
		traffic: r.querySelector('.ro-traffic-text').textContent,
		bar: r.querySelector('.ro-bar').getAttribute('aria-valuenow'),
		seen: window.seenRollout,
		pauseShown: !r.querySelector('[data-action="rollout-pause"]').hidden,
		resumeShown: !r.querySelector('[data-action="rollout-resume"]').hidden,
		backShown: !r.querySelector('[data-action="rollback"]').hidden,
		events: [...document.querySelectorAll('#events li')].map(e => e.dataset.kind),
		tone: (document.querySelector('#events li[data-kind="rollout.complete"]') || {dataset: {}}).dataset.tone || '',
	}; })()`, &strip)
	t.Logf("the strip showed %q", strip.Seen)
	if strip.Strategy != "rolling" || strip.Revs != "revision 1 → 2" || strip.From != "v1" || strip.To != "v2" {
		t.Errorf("the strip says %q, %q, %q → %q; want rolling, revision 1 → 2, v1 → v2", strip.Strategy, strip.Revs, strip.From, strip.To)
	}
	// The recorder runs once a frame: the last status may not be in it yet.
	if strip.Status != "complete" || len(strip.Seen) == 0 || strip.Seen[0] != "progressing" {
		t.Errorf("the strip's statuses were %q, now %q; want progressing, then complete", strip.Seen, strip.Status)
	}
	if !strings.HasPrefix(strip.Progress, "2 / 2 new ready") || strip.Bar != "100" {
		t.Errorf("the progress says %q (bar %s%%); want 2 / 2 new ready, full", strip.Progress, strip.Bar)
	}
	if strip.Traffic != "v2 100% · v1 0%" {
		t.Errorf("the traffic says %q; want all of it on v2", strip.Traffic)
	}
	if strip.PauseShown || strip.ResumeShown || !strip.BackShown {
		t.Errorf("a complete rollout offers pause %v, resume %v, roll back %v; want only roll back", strip.PauseShown, strip.ResumeShown, strip.BackShown)
	}
	for _, kind := range []string{"rollout.started", "rollout.complete"} {
		if !contains(strings.Join(strip.Events, " "), kind) {
			t.Errorf("the event log lacks %s: %q", kind, strip.Events)
		}
	}
	if strip.Tone != "good" {
		t.Errorf("rollout.complete is shown in tone %q, want good", strip.Tone)
	}

	// The page sent the whole spec back: the quick probe stays, the
	// version is v2.
	st, err := c.Group(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != "v2" || st.Probe.PeriodMs != quick.PeriodMs || st.Desired != 2 || st.Balancer.Policy != "round-robin" {
		t.Errorf("after the rollout the group is version %q, probe %+v, %d desired, policy %q; want v2, a probe every 200 ms, 2, round-robin",
			st.Version, st.Probe, st.Desired, st.Balancer.Policy)
	}
	if st.Rollout == nil || st.Rollout.Status != "complete" || st.Rollout.Strategy != "rolling" {
		t.Errorf("the controller's rollout is %+v; want a complete rolling update", st.Rollout)
	}

	// Version chips are readable in both themes.
	for _, scheme := range []string{"light", "dark"} {
		b.SetColorScheme(scheme)
		var colors struct{ Fg, Bg string }
		b.Eval(`(() => { const s = getComputedStyle(document.querySelector('[data-group="web"] .tile-version'));
			return {fg: s.color, bg: s.backgroundColor}; })()`, &colors)
		if r := contrast(t, colors.Fg, colors.Bg); r < 4.5 {
			t.Errorf("%s theme: the v2 chip (%s on %s) has contrast %.2f, want 4.5 or more", scheme, colors.Fg, colors.Bg, r)
		}
		b.Screenshot(fmt.Sprintf("rollout-complete-%s", scheme))
	}
	b.SetColorScheme("")

	// Roll back from the strip: a rollout back to v1, which the strip shows.
	b.Click(`[data-group="web"] [data-action="rollback"]`)
	b.WaitFor("the rollback to complete", `(() => { const r = document.querySelector('[data-group="web"] .ro');
		return r.querySelector('.ro-to').textContent === 'v1' && r.querySelector('.ro-status-text').textContent === 'complete'; })()`, 45*time.Second)
	if st, err := c.Group(ctx, "web"); err != nil || st.Version != "v1" || st.Rollout == nil || !st.Rollout.Rollback {
		t.Errorf("after Roll back the group is %q with rollout %+v (%v); want v1 by a rollback", st.Version, st.Rollout, err)
	}
	b.CheckPage("http://" + addr)
}

package dashboard_test

// The serverless panel of stage 8, against a real controller on the real
// engine: a function at zero wakes for one request, and the page shows the
// cold start's waterfall, the count of cold starts and the count chart.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/flotilla/flotilla/dashboard"
	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

func TestBrowserServerlessColdStart(t *testing.T) {
	dashboard.ChromiumPath(t) // skip early without a browser
	addr, _ := realController(t)
	ctx := context.Background()
	c := &api.Client{Addr: addr}
	fn := spec.Group{Name: "fn", Service: "recommend", Replicas: 0, Autoscale: &spec.Autoscale{
		Min: 0, Max: 3, TargetConcurrency: 1, IdleAfter: "5s", StableWindow: "4s", PanicWindow: "2s",
	}}
	if _, _, err := c.PutGroup(ctx, fn); err != nil {
		t.Fatal(err)
	}
	var endpoint string
	dockertest.Poll(t, 30*time.Second, "balancer listening at zero", func() error {
		st, err := c.Group(ctx, "fn")
		if err != nil || st.Endpoint == "" {
			return fmt.Errorf("status %+v, %v", st, err)
		}
		endpoint = st.Endpoint
		return nil
	})

	b := dashboard.NewBrowser(t)
	b.Open("http://" + addr + "/")
	b.WaitConnected()
	b.WaitFor("the serverless panel", `document.querySelector('[data-group="fn"] .fn svg.fn-chart') !== null`, 0)
	// Asleep: nothing wanted, nothing serving, no replica. (On a busy
	// machine a stray early wake may have to idle back to zero first.)
	b.WaitFor("the group asleep at zero", `(() => { const p = document.querySelector('[data-group="fn"] .fn');
		return p.querySelector('[data-count="want"] dd').textContent === '0' &&
			p.querySelector('[data-count="serving"] dd').textContent === '0' &&
			document.querySelectorAll('[data-group="fn"] [data-replica]').length === 0; })()`, 30*time.Second)
	var before struct {
		Settings, Cold, Serving string
		Rows                    int
		Stepper                 bool
	}
	b.Eval(`(() => { const p = document.querySelector('[data-group="fn"] .fn'); return {
		settings: p.querySelector('.fn-settings').textContent,
		cold: p.querySelector('[data-count="cold"] dd').textContent,
		serving: p.querySelector('[data-count="serving"] dd').textContent,
		rows: p.querySelectorAll('.fn-cs').length,
		stepper: !document.querySelector('[data-group="fn"] .stepper').hidden,
	}; })()`, &before)
	if before.Cold != "0" || before.Rows != 0 || before.Stepper {
		t.Errorf("at zero the panel shows %+v; want 0 cold starts, no waterfall and no stepper", before)
	}
	for _, s := range []string{"0–3 replicas", "target 1 request in flight", "after 5 s idle", "no warm pool"} {
		if !contains(before.Settings, s) {
			t.Errorf("the settings in words %q lack %q", before.Settings, s)
		}
	}

	// One request wakes the group; it is held until the replica answers.
	client := &http.Client{Timeout: 40 * time.Second}
	resp, err := client.Get("http://" + endpoint + "/recommend/tea-mug")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the held request: status %d, want 200", resp.StatusCode)
	}

	b.WaitFor("the cold start's waterfall", `document.querySelectorAll('[data-group="fn"] .fn-cs').length === 1 &&
		document.querySelector('[data-group="fn"] [data-count="cold"] dd').textContent === '1'`, 0)
	var row struct {
		Head   string
		Total  string
		Phases []string
		Bars   int
		Points string
	}
	b.Eval(`(() => { const p = document.querySelector('[data-group="fn"] .fn'); const r = p.querySelector('.fn-cs'); return {
		head: r.querySelector('.fn-cs-head').textContent,
		total: r.querySelector('.fn-cs-total').textContent,
		phases: [...r.querySelectorAll('.fn-phase-name')].map(e => e.textContent),
		bars: [...r.querySelectorAll('.fn-bar')].filter(e => e.getBoundingClientRect().width > 0).length,
		points: p.querySelector('polyline.fn-serving').getAttribute('points'),
	}; })()`, &row)
	want := []string{"wake decided", "create called", "created", "started", "first ready probe", "forwarded", "answered"}
	if !slices.Equal(row.Phases, want) {
		t.Errorf("the waterfall's phases: %q, want %q", row.Phases, want)
	}
	if row.Bars != len(row.Phases) {
		t.Errorf("%d of %d phases have a visible bar", row.Bars, len(row.Phases))
	}
	if !regexp.MustCompile(`^\d+(\.\d+)? m?s$`).MatchString(row.Total) {
		t.Errorf("the cold start's total is %q, want a time such as 612 ms", row.Total)
	}
	for _, s := range []string{"from zero", "fn-1", "1 request held"} {
		if !contains(row.Head, s) {
			t.Errorf("the cold start's heading %q lacks %q", row.Head, s)
		}
	}
	if row.Points == "" {
		t.Error("the count chart draws no serving line")
	}
	b.Screenshot("serverless-cold-start")
	b.CheckPage("http://" + addr)
}

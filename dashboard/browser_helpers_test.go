package dashboard

// Helpers for tests that drive the dashboard in a real browser: Debian's
// Chromium, headless, through chromedp. They are exported so that a test in
// package dashboard_test (which can import the API and the controller without
// an import cycle) can use them as dashboard.NewBrowser and so on.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// DefaultWait bounds each wait of the helpers: generous, for a busy 2-core
// machine running other packages' tests beside this one.
const DefaultWait = 20 * time.Second

// ChromiumPath returns the path of the chromium binary on PATH. Without one
// the test is skipped, or fails when FLOTILLA_REQUIRE_DOCKER=1 (as in CI),
// which promises a complete machine.
func ChromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "chromium is not on PATH (apt-get install -y chromium)"
	if os.Getenv("FLOTILLA_REQUIRE_DOCKER") == "1" {
		t.Fatal(msg + "; FLOTILLA_REQUIRE_DOCKER=1 requires it")
	}
	t.Skip(msg)
	return ""
}

// ArtifactsDir is where screenshots go: $FLOTILLA_ARTIFACTS, else
// flotilla-artifacts in the system's temporary directory. It exists on return.
func ArtifactsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("FLOTILLA_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "flotilla-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts dir: %v", err)
	}
	return dir
}

// Browser is one headless Chromium with one tab, for one test. It records the
// page's console and every request the page makes, so a test can assert that
// the page threw nothing and talked only to its own origin.
type Browser struct {
	// Ctx is the tab's chromedp context: chromedp.Run(b.Ctx, ...) drives it.
	Ctx context.Context
	t   testing.TB

	mu       sync.Mutex
	console  []chromedp.ConsoleMessage
	requests []string // URLs of HTTP requests and websockets, in order
}

// NewBrowser starts Chromium headless with a fresh profile in t.TempDir() and
// opens a tab of 1440×1000. Everything ends in t.Cleanup; a test that failed
// leaves a screenshot of the page in ArtifactsDir.
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	path := ChromiumPath(t)
	profile := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1440, 1000),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,AutofillServerCommunication,CertificateTransparencyComponentUpdater"),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		// Whatever Chromium itself might still want to reach cannot be
		// resolved: only loopback names are.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
		// Tests of a page must not be slowed down by timer throttling.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	b := &Browser{Ctx: ctx, t: t}
	t.Cleanup(func() {
		if t.Failed() {
			b.saveScreenshot("failure-" + t.Name())
		}
		cancelTab()
		cancelAlloc()
	})

	// The first Run starts the browser; it must not have a timeout, which
	// would end the browser with it.
	start := make(chan error, 1)
	go func() { start <- chromedp.Do(ctx) }()
	select {
	case err := <-start:
		if err != nil {
			t.Fatalf("start chromium: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("chromium did not start within 60s")
	}

	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		for ev, err := range requests {
			if err != nil {
				return
			}
			if ev.Request != nil {
				b.mu.Lock()
				b.requests = append(b.requests, ev.Request.URL)
				b.mu.Unlock()
			}
		}
	}()
	sockets := chromedp.Events(ctx, network.WebSocketCreated)
	go func() {
		for ev, err := range sockets {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.requests = append(b.requests, ev.URL)
			b.mu.Unlock()
		}
	}()
	return b
}

// Do runs actions with a timeout of DefaultWait and fails the test on error.
func (b *Browser) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, DefaultWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// Open loads url and waits for the page's load event.
func (b *Browser) Open(url string) {
	b.t.Helper()
	b.Do("open "+url, chromedp.Navigate(url))
}

// Eval evaluates a JavaScript expression in the page and decodes its value
// (JSON-compatible) into out; out may be nil.
func (b *Browser) Eval(expr string, out any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, DefaultWait)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	if out == nil {
		return
	}
	if err := json.Unmarshal(raw, out); err != nil {
		b.t.Fatalf("evaluate %s: decode %s: %v", expr, raw, err)
	}
}

// WaitFor polls a JavaScript expression until it is truthy, for up to
// timeout (DefaultWait when 0). what says in the failure what was awaited.
func (b *Browser) WaitFor(what, expr string, timeout time.Duration) {
	b.t.Helper()
	if timeout == 0 {
		timeout = DefaultWait
	}
	ctx, cancel := context.WithTimeout(b.Ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		b.t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

// WaitConnected waits for the page's connection indicator to say connected.
func (b *Browser) WaitConnected() {
	b.t.Helper()
	b.WaitFor("the dashboard to connect", `document.querySelector('#conn[data-state="connected"]') !== null`, 0)
}

// WaitReconnecting waits for the connection indicator to say reconnecting.
func (b *Browser) WaitReconnecting() {
	b.t.Helper()
	b.WaitFor("the dashboard to notice the lost stream", `document.querySelector('#conn[data-state="reconnecting"]') !== null`, 0)
}

// WaitTiles waits until the card of group shows exactly n replica tiles.
func (b *Browser) WaitTiles(group string, n int) {
	b.t.Helper()
	b.WaitFor(fmt.Sprintf("%d tiles in group %s", n, group),
		fmt.Sprintf(`document.querySelectorAll('[data-group=%s] [data-replica]').length === %d`, jsString(group), n), 0)
}

// WaitHealth waits until the tile of replica has data-health health.
func (b *Browser) WaitHealth(replica, health string) {
	b.t.Helper()
	b.WaitFor(fmt.Sprintf("%s to be %s", replica, health),
		fmt.Sprintf(`(document.querySelector('[data-replica=%s]') || {dataset: {}}).dataset.health === %s`, jsString(replica), jsString(health)), 0)
}

// Click clicks the first element that matches a CSS selector, once it is
// visible.
func (b *Browser) Click(selector string) {
	b.t.Helper()
	b.Do("click "+selector, chromedp.Click(chromedp.CSS(selector)))
}

// Select picks value in the <select> that selector finds, as a person
// would: the page gets a change event.
func (b *Browser) Select(selector, value string) {
	b.t.Helper()
	var ok bool
	b.Eval(fmt.Sprintf(`(() => {
		const e = document.querySelector(%s);
		if (!e || ![...e.options].some(o => o.value === %s)) return false;
		e.focus();
		e.value = %s;
		e.dispatchEvent(new Event('input', {bubbles: true}));
		e.dispatchEvent(new Event('change', {bubbles: true}));
		return true;
	})()`, jsString(selector), jsString(value), jsString(value)), &ok)
	if !ok {
		b.t.Fatalf("select %s: no such select or option %q", selector, value)
	}
}

// Fill focuses the field that selector finds and replaces its text by typing
// text.
func (b *Browser) Fill(selector, text string) {
	b.t.Helper()
	b.Do("fill "+selector,
		chromedp.Focus(chromedp.CSS(selector)),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%s).select()`, jsString(selector))),
		chromedp.SendKeys(chromedp.CSS(selector), text))
}

// Press sends keys to the element that selector finds; "\r" is Enter.
func (b *Browser) Press(selector, keys string) {
	b.t.Helper()
	b.Do("press keys in "+selector, chromedp.SendKeys(chromedp.CSS(selector), keys))
}

// DeleteGroup clicks the Delete button of group's card twice: the page asks
// for a second click before it sends DELETE.
func (b *Browser) DeleteGroup(group string) {
	b.t.Helper()
	sel := fmt.Sprintf(`[data-group=%s] [data-action="delete"]`, jsString(group))
	b.Click(sel)
	b.WaitFor("delete to ask for confirmation", fmt.Sprintf(`document.querySelector('%s').dataset.armed === 'true'`, sel), 0)
	b.Click(sel)
}

// Tile is what a replica tile shows.
type Tile struct {
	Name   string `json:"name"`
	Health string `json:"health"`
	State  string `json:"state"`
	Text   string `json:"text"` // the visible text, as innerText gives it
}

// Tiles returns the tiles of a group's card, in page order.
func (b *Browser) Tiles(group string) []Tile {
	b.t.Helper()
	var tiles []Tile
	b.Eval(fmt.Sprintf(`[...document.querySelectorAll('[data-group=%s] [data-replica]')].map(e => ({
		name: e.dataset.replica, health: e.dataset.health, state: e.dataset.state || '', text: e.innerText}))`, jsString(group)), &tiles)
	return tiles
}

// SetColorScheme makes the page see prefers-color-scheme as "light" or
// "dark"; "" goes back to the default.
func (b *Browser) SetColorScheme(scheme string) {
	b.t.Helper()
	b.Do("emulate color scheme "+scheme, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		params := emulation.SetEmulatedMediaParams{}
		if scheme != "" {
			params.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
		}
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, params)
		return err
	}))
}

// Screenshot saves a PNG of the whole page, not just the window, to
// ArtifactsDir as <name>.png, logs its path and returns it.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	path, err := b.screenshot(name)
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

// ScreenshotWindow saves a PNG of what the 1440×1000 window shows, like
// Screenshot.
func (b *Browser) ScreenshotWindow(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, DefaultWait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(ArtifactsDir(b.t), unsafeName.ReplaceAllString(name, "_")+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

func (b *Browser) saveScreenshot(name string) {
	if path, err := b.screenshot(name); err == nil {
		b.t.Logf("screenshot of the failure: %s", path)
	}
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (b *Browser) screenshot(name string) (string, error) {
	ctx, cancel := context.WithTimeout(b.Ctx, DefaultWait)
	defer cancel()
	// Grow the viewport to the page's height so the capture holds all of it.
	var png []byte
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		m, err := cdp.Call(ctx, t, page.GetLayoutMetrics, cdp.Empty{})
		if err != nil {
			return err
		}
		w, h := int64(1440), int64(1000)
		if m.CSSContentSize != nil {
			h = max(h, int64(m.CSSContentSize.Height+0.5))
		}
		h = min(h, 16000)
		if _, err := chromedp.EmulateViewport(w, h)(ctx, t); err != nil {
			return err
		}
		defer chromedp.EmulateViewport(1440, 1000)(ctx, t)
		png, err = chromedp.FullScreenshot(100)(ctx, t)
		return err
	}))
	if err != nil {
		return "", err
	}
	path := filepath.Join(ArtifactsDir(b.t), unsafeName.ReplaceAllString(name, "_")+".png")
	return path, os.WriteFile(path, png, 0o644)
}

// Console returns what the page wrote to its console so far: calls of the
// console API, uncaught exceptions and the browser's own log entries.
func (b *Browser) Console() []chromedp.ConsoleMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]chromedp.ConsoleMessage(nil), b.console...)
}

// Requests returns the URL of every request and websocket the page opened.
func (b *Browser) Requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.requests...)
}

// CheckPage fails the test if the page threw an uncaught exception, broke
// its Content-Security-Policy, or sent a request anywhere but origin (like
// "http://127.0.0.1:8080"; its websocket counts as the same origin). Errors
// of the browser's log about connections that failed, as while a test stops
// the stream, are fine.
func (b *Browser) CheckPage(origin string) {
	b.t.Helper()
	wsOrigin := "ws" + strings.TrimPrefix(origin, "http")
	for _, m := range b.Console() {
		switch {
		case m.IsException():
			b.t.Errorf("the page threw: %s (%s:%d)", m.Text, m.URL, m.Line+1)
		case strings.Contains(m.Text, "Content Security Policy"):
			b.t.Errorf("the page broke its Content-Security-Policy: %s", m.Text)
		case m.Type == chromedp.ConsoleError && m.Source == "":
			b.t.Errorf("the page logged an error: %s", m.Text)
		}
	}
	for _, u := range b.Requests() {
		if u == origin || strings.HasPrefix(u, origin+"/") || strings.HasPrefix(u, wsOrigin+"/") || strings.HasPrefix(u, "data:") {
			continue
		}
		b.t.Errorf("the page sent a request to another origin: %s", u)
	}
}

// jsString quotes s as a JavaScript (and CSS attribute) string literal.
func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

// WaitUntil polls cond, in Go, every 20ms until it holds or timeout passes
// (DefaultWait when 0): for conditions on the test's side, such as a fake
// server having received a request.
func WaitUntil(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if timeout == 0 {
		timeout = DefaultWait
	}
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out after %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

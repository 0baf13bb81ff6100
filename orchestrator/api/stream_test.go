package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/flotilla/flotilla/orchestrator/api/apitest"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

func streamServer(t *testing.T) (*httptest.Server, *hub.Hub, *apitest.Controller) {
	t.Helper()
	h := hub.New(hub.Options{})
	t.Cleanup(h.Close)
	fake := newFake(spec.Group{Name: "web", Service: "monolith", Replicas: 2})
	fake.SetStats(map[string]controller.ReplicaStats{"web-1": {Group: "web", RPS: 10}})
	srv := httptest.NewServer(newHandler(t, Options{Controller: fake, Hub: h}))
	t.Cleanup(srv.Close)
	return srv, h, fake
}

func dial(t *testing.T, srv *httptest.Server, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/api/v1/stream"
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	return d.Dial(url, header)
}

func readMsg(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var m map[string]any
	if err := c.ReadJSON(&m); err != nil {
		t.Fatalf("read: %v", err)
	}
	return m
}

// next skips stats and group messages until one of the wanted type arrives.
func next(t *testing.T, c *websocket.Conn, typ string) map[string]any {
	t.Helper()
	for range 50 {
		if m := readMsg(t, c); m["type"] == typ {
			return m
		}
	}
	t.Fatalf("no %s message", typ)
	return nil
}

func TestStreamSendsSnapshotThenDeltas(t *testing.T) {
	srv, h, _ := streamServer(t)
	h.Publish(hub.Event{Kind: hub.GroupCreated, Group: "web", Message: "before"})
	c, _, err := dial(t, srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	snap := readMsg(t, c)
	if snap["type"] != "snapshot" {
		t.Fatalf("first message is %v, want a snapshot", snap["type"])
	}
	groups := snap["groups"].([]any)
	if len(groups) != 1 || groups[0].(map[string]any)["name"] != "web" {
		t.Fatalf("snapshot groups = %v", groups)
	}
	if ev := snap["events"].([]any); len(ev) != 1 || ev[0].(map[string]any)["message"] != "before" {
		t.Fatalf("snapshot events = %v, want the one published before", ev)
	}

	h.Publish(hub.Event{Kind: hub.ReplicaDied, Group: "web", Replica: "web-2", Message: "web-2 died"})
	m := next(t, c, "event")
	ev := m["event"].(map[string]any)
	if ev["message"] != "web-2 died" || ev["seq"].(float64) != 2 {
		t.Fatalf("delta = %v", ev)
	}
	stats := next(t, c, "stats")
	if r := stats["replicas"].(map[string]any)["web-1"].(map[string]any); r["rps"].(float64) != 10 {
		t.Fatalf("stats = %v", stats)
	}
}

func TestStreamRefusesForeignOriginsAndHosts(t *testing.T) {
	srv, _, _ := streamServer(t)
	for _, tc := range []struct {
		name   string
		header http.Header
	}{
		{"foreign origin", http.Header{"Origin": {"http://evil.example"}}},
		{"null origin", http.Header{"Origin": {"null"}}},
		{"other port", http.Header{"Origin": {"http://127.0.0.1:1"}}},
		{"foreign host", http.Header{"Host": {"evil.example"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, resp, err := dial(t, srv, tc.header)
			if err == nil {
				c.Close()
				t.Fatal("the upgrade succeeded")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("response %v, want 403 before the upgrade", resp)
			}
		})
	}
	// The page's own origin is welcome.
	c, _, err := dial(t, srv, http.Header{"Origin": {srv.URL}})
	if err != nil {
		t.Fatalf("same-origin upgrade: %v", err)
	}
	c.Close()
}

func TestStreamClosesOnOversizedFrame(t *testing.T) {
	srv, _, _ := streamServer(t)
	c, _, err := dial(t, srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readMsg(t, c) // snapshot
	if err := c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 4096))); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code != websocket.CloseMessageTooBig {
				t.Fatalf("closed with %d, want %d (message too big)", ce.Code, websocket.CloseMessageTooBig)
			}
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				t.Fatal("the socket stayed open after an oversized frame")
			}
			return
		}
	}
}

func TestStreamClosesCleanlyOnShutdown(t *testing.T) {
	srv, h, _ := streamServer(t)
	c, _, err := dial(t, srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readMsg(t, c)
	h.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Fatalf("read after shutdown: %v, want a clean close (1001)", err)
		}
		return
	}
}

func TestStreamDropsASlowClient(t *testing.T) {
	h := hub.New(hub.Options{Buffer: 4})
	defer h.Close()
	srv := httptest.NewServer(newHandler(t, Options{Controller: newFake(), Hub: h}))
	defer srv.Close()
	c, _, err := dial(t, srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readMsg(t, c)
	// Flood: the socket's buffers fill since the client reads nothing, the
	// writer stalls, the hub buffer overflows, and the hub drops the client.
	big := strings.Repeat("y", 8<<10)
	deadline := time.Now().Add(10 * time.Second)
	for h.Stats().Dropped == 0 && time.Now().Before(deadline) {
		for range 100 {
			h.Publish(hub.Event{Kind: hub.ReplicaReady, Message: big})
		}
		time.Sleep(time.Millisecond)
	}
	if h.Stats().Dropped != 1 {
		t.Fatalf("hub stats %+v: the slow client was not dropped", h.Stats())
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, closeTooSlow) {
			t.Fatalf("slow client closed with %v, want code %d", err, closeTooSlow)
		}
		return
	}
}

func TestReplicaActions(t *testing.T) {
	srv, _, fake := streamServer(t)
	post := func(path string) *http.Response {
		resp, err := http.Post(srv.URL+path, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := post("/api/v1/groups/web/replicas/web-2/kill"); r.StatusCode != http.StatusAccepted {
		t.Fatalf("kill: %d", r.StatusCode)
	}
	if r := post("/api/v1/groups/web/replicas/web-9/pause"); r.StatusCode != http.StatusNotFound {
		t.Fatalf("pause of an unknown replica: %d, want 404", r.StatusCode)
	}
	if r := post("/api/v1/groups/web/replicas/web-1/explode"); r.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown action: %d, want 404", r.StatusCode)
	}
	if len(fake.Actions()) != 1 || fake.Actions()[0] != "web/web-2/kill" {
		t.Fatalf("actions = %v", fake.Actions())
	}
}

func TestDashboardIsServedWithCSP(t *testing.T) {
	assets := fstest.MapFS{"index.html": {Data: []byte("<!doctype html><title>x</title>")}, "app.js": {Data: []byte("1")}}
	srv := httptest.NewServer(newHandler(t, Options{Controller: newFake(), Assets: assets}))
	defer srv.Close()
	for path, ctype := range map[string]string{"/": "text/html", "/index.html": "text/html", "/app.js": "javascript"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), ctype) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
	}
	var body map[string]string
	resp, _ := http.Get(srv.URL + "/nope.js")
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 404 || body["error"] == "" {
		t.Errorf("missing asset: %d %v", resp.StatusCode, body)
	}
}

func TestDashboardTokenLinkSetsCookie(t *testing.T) {
	assets := fstest.MapFS{"index.html": {Data: []byte("<!doctype html><title>x</title>")}}
	srv := httptest.NewServer(newHandler(t, Options{Controller: newFake(), Assets: assets, Token: "0123456789abcdef0123"}))
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, _ := noRedirect.Get(srv.URL + "/")
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dashboard without token: %d, want 401", resp.StatusCode)
	}
	resp, _ = noRedirect.Get(srv.URL + "/?token=wrong")
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dashboard with a wrong token: %d, want 401", resp.StatusCode)
	}
	resp, _ = noRedirect.Get(srv.URL + "/?token=0123456789abcdef0123")
	resp.Body.Close()
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "flotilla_token" {
			cookie = ck
		}
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("token link: %d %q cookie %+v", resp.StatusCode, resp.Header.Get("Location"), cookie)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/groups", nil)
	req.AddCookie(cookie)
	resp, _ = noRedirect.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("API with the cookie: %d, want 200", resp.StatusCode)
	}
}

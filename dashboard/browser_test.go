package dashboard_test

// Browser tests of the dashboard against a fake controller: an httptest
// server that serves the embedded page with the real server's security
// headers, a websocket that speaks the stream protocol, and REST endpoints
// that record what the page sends. They need Chromium, not Docker.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/flotilla/flotilla/dashboard"
)

// The shapes of the stream and the REST API, as much as the fake needs.
type (
	resources struct {
		MemoryMiB int `json:"memoryMiB,omitempty"`
		MilliCPU  int `json:"milliCPU,omitempty"`
		Pids      int `json:"pids,omitempty"`
	}
	balancer struct {
		Policy string `json:"policy"`
		Port   int    `json:"port,omitempty"`
	}
	traffic struct {
		State      string  `json:"state"`
		Requests   int     `json:"requests"`
		Errors     int     `json:"errors"`
		InFlight   int     `json:"inFlight"`
		Share      float64 `json:"share"`
		TotalShare float64 `json:"totalShare"`
		Ejections  int     `json:"ejections"`
		P50Ms      float64 `json:"p50Ms"`
		P99Ms      float64 `json:"p99Ms"`
	}
	replicaStatus struct {
		Name     string   `json:"name"`
		ID       string   `json:"id"`
		State    string   `json:"state"`
		Health   string   `json:"health"`
		Address  string   `json:"address"`
		Upstream string   `json:"upstream,omitempty"`
		Restarts int      `json:"restarts"`
		ExitCode int      `json:"exitCode,omitempty"`
		Traffic  *traffic `json:"traffic,omitempty"`
	}
	groupStatus struct {
		Name      string          `json:"name"`
		Service   string          `json:"service"`
		Desired   int             `json:"desired"`
		Ready     int             `json:"ready"`
		Status    string          `json:"status"`
		Message   string          `json:"message,omitempty"`
		Resources resources       `json:"resources"`
		Balancer  balancer        `json:"balancer"`
		Endpoint  string          `json:"endpoint,omitempty"`
		Replicas  []replicaStatus `json:"replicas"`
	}
	replicaStats struct {
		Group         string  `json:"group"`
		RPS           float64 `json:"rps"`
		ErrorRate     float64 `json:"errorRate"`
		P50Ms         float64 `json:"p50Ms"`
		P99Ms         float64 `json:"p99Ms"`
		Share         float64 `json:"share"`
		InFlight      int     `json:"inFlight"`
		CPUPercent    float64 `json:"cpuPercent"`
		MemBytes      int64   `json:"memBytes"`
		MemLimitBytes int64   `json:"memLimitBytes"`
	}
	event struct {
		Seq     int    `json:"seq"`
		Time    string `json:"time"`
		Kind    string `json:"kind"`
		Group   string `json:"group,omitempty"`
		Replica string `json:"replica,omitempty"`
		ID      string `json:"id,omitempty"`
		Message string `json:"message"`
	}
	service struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	}
)

// call is one REST request the page sent.
type call struct {
	Method, Path, ContentType, Body string
}

// fakeController plays the controller for the page.
type fakeController struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	groups    map[string]groupStatus
	stats     map[string]replicaStats
	events    []event
	seq       int
	conns     map[*websocket.Conn]chan []byte
	refusing  bool // the stream answers 503, as while the controller restarts
	connects  int
	calls     []call
	loads     []map[string]any
	loadCount int
}

var services = []service{
	{"monolith", "the whole shop in one process"},
	{"catalog", "the product catalogue"},
	{"cart", "shopping carts"},
}

func newFakeController(t *testing.T, groups ...groupStatus) *fakeController {
	f := &fakeController{
		t:      t,
		groups: map[string]groupStatus{},
		stats:  map[string]replicaStats{},
		conns:  map[*websocket.Conn]chan []byte{},
	}
	for _, g := range groups {
		f.groups[g.Name] = g
		f.setStatsFor(g, 0)
		f.addEventLocked("group.created", g.Name, "", "group "+g.Name+" created")
		for _, r := range g.Replicas {
			f.addEventLocked("replica.ready", g.Name, r.Name, r.Name+" is ready")
		}
	}

	mux := http.NewServeMux()
	assets := http.FileServerFS(dashboard.Assets())
	mux.Handle("GET /", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The real server's headers, strictest part first: the page must
		// live with default-src 'self'.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		assets.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /api/v1/stream", f.stream)
	mux.HandleFunc("GET /api/v1/services", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"services": services})
	})
	mux.HandleFunc("GET /api/v1/groups", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"groups": f.sortedGroupsLocked()})
	})
	mux.HandleFunc("GET /api/v1/load", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"runs": f.loads})
	})
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		mux.HandleFunc(m+" /api/v1/", f.mutation)
	}
	f.srv = httptest.NewServer(mux)

	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		f.statsLoop(stop)
	}()
	t.Cleanup(func() {
		close(stop)
		<-stopped
		f.closeStreams()
		f.srv.Close()
	})
	return f
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// mutation records a mutating request and answers as the controller would;
// the state changes only when the test pushes them, so each test step is
// explicit.
func (f *fakeController) mutation(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c := call{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Body: string(body)}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	if c.ContentType != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "Content-Type must be application/json, got " + c.ContentType})
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/v1/"), "/")
	switch {
	case r.Method == "POST" && len(parts) == 3 && parts[0] == "groups" && parts[2] == "scale":
		var req struct {
			Replicas *int `json:"replicas"`
		}
		if err := json.Unmarshal(body, &req); err != nil || req.Replicas == nil || *req.Replicas < 0 || *req.Replicas > 50 {
			writeJSON(w, 400, map[string]string{"error": "replicas must be 0 to 50"})
			return
		}
		f.mu.Lock()
		g, ok := f.groups[parts[1]]
		f.mu.Unlock()
		if !ok {
			writeJSON(w, 404, map[string]string{"error": fmt.Sprintf("group %q not found", parts[1])})
			return
		}
		g.Desired = *req.Replicas
		writeJSON(w, 200, g)
	case r.Method == "PUT" && len(parts) == 2 && parts[0] == "groups":
		writeJSON(w, 200, map[string]any{"name": parts[1]})
	case r.Method == "DELETE" && len(parts) == 2 && parts[0] == "groups":
		writeJSON(w, 200, map[string]any{"deleted": parts[1]})
	case r.Method == "POST" && len(parts) == 5 && parts[0] == "groups" && parts[2] == "replicas":
		writeJSON(w, http.StatusAccepted, map[string]any{"replica": parts[3], "action": parts[4]})
	case r.Method == "POST" && len(parts) == 1 && parts[0] == "load":
		var spec map[string]any
		json.Unmarshal(body, &spec)
		f.mu.Lock()
		f.loadCount++
		run := map[string]any{
			"id": fmt.Sprintf("run-%d", f.loadCount), "state": "running", "started": time.Now().Format(time.RFC3339Nano),
			"spec": map[string]any{"target": "127.0.0.1:40001", "rate": spec["rate"], "duration": spec["duration"]},
			"sent": 0, "succeeded": 0, "failed": 0, "errors": map[string]int{}, "byReplica": map[string]int{},
			"latencyMs": map[string]float64{}, "ratePerSec": 0,
		}
		f.loads = append(f.loads, run)
		f.mu.Unlock()
		writeJSON(w, http.StatusCreated, run)
	case r.Method == "DELETE" && len(parts) == 2 && parts[0] == "load":
		writeJSON(w, 200, map[string]any{"id": parts[1], "state": "stopped"})
	default:
		writeJSON(w, 404, map[string]string{"error": "no route " + r.Method + " " + r.URL.Path})
	}
}

var upgrader = websocket.Upgrader{}

func (f *fakeController) stream(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	refusing := f.refusing
	f.mu.Unlock()
	if refusing {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "restarting"})
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	out := make(chan []byte, 1024)
	f.mu.Lock()
	f.connects++
	snap, _ := json.Marshal(map[string]any{
		"type": "snapshot", "seq": f.seq, "time": time.Now().Format(time.RFC3339Nano),
		"groups": f.sortedGroupsLocked(), "services": services,
		"policies": []string{"round-robin", "least-connections", "p2c", "sticky", "none"},
		"events":   f.events, "loads": f.loads,
	})
	out <- snap
	f.conns[conn] = out
	f.mu.Unlock()

	go func() { // read pump: notices the page leaving
		for {
			if _, _, err := conn.NextReader(); err != nil {
				f.drop(conn)
				return
			}
		}
	}()
	for msg := range out {
		conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if msg == nil {
			conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "restarting"), time.Now().Add(time.Second))
			break
		}
		if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
			break
		}
	}
	f.drop(conn)
	conn.Close()
}

func (f *fakeController) drop(conn *websocket.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if out, ok := f.conns[conn]; ok {
		delete(f.conns, conn)
		close(out)
	}
}

// push sends one message to every connected page.
func (f *fakeController) push(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, out := range f.conns {
		select {
		case out <- b:
		default:
			f.t.Errorf("a page's stream buffer is full")
		}
	}
}

// pushGroup stores g and sends it as a group message.
func (f *fakeController) pushGroup(g groupStatus) {
	f.mu.Lock()
	f.groups[g.Name] = g
	f.mu.Unlock()
	f.push(map[string]any{"type": "group", "group": g})
}

// pushEvent records and sends an event.
func (f *fakeController) pushEvent(kind, group, replica, message string) {
	f.mu.Lock()
	e := f.addEventLocked(kind, group, replica, message)
	f.mu.Unlock()
	f.push(map[string]any{"type": "event", "event": e})
}

func (f *fakeController) addEventLocked(kind, group, replica, message string) event {
	f.seq++
	e := event{Seq: f.seq, Time: time.Now().Format(time.RFC3339Nano), Kind: kind, Group: group, Replica: replica, Message: message}
	f.events = append(f.events, e)
	return e
}

// setStatsFor makes up live figures for every replica of g; tick varies them.
func (f *fakeController) setStatsFor(g groupStatus, tick int) {
	for i, r := range g.Replicas {
		if r.State != "running" {
			delete(f.stats, r.Name)
			continue
		}
		share := 1 / float64(len(g.Replicas))
		f.stats[r.Name] = replicaStats{
			Group: g.Name, RPS: 200 * share, P50Ms: 0.3 + 0.05*float64((i+tick)%7),
			P99Ms: 1.1 + 0.4*float64((i*3+tick)%11), Share: share,
			CPUPercent: 2 + float64((i+tick)%9), MemBytes: int64(7<<20 + (i%5)<<19), MemLimitBytes: 64 << 20,
		}
	}
}

func (f *fakeController) statsMessage() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return map[string]any{"type": "stats", "time": time.Now().Format(time.RFC3339Nano), "replicas": f.stats, "loads": f.loads}
}

// statsLoop sends stats every second, as the real stream does.
func (f *fakeController) statsLoop(stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-stop:
			return
		case <-tick.C:
			f.mu.Lock()
			for _, g := range f.groups {
				f.setStatsFor(g, n)
			}
			f.mu.Unlock()
			f.push(f.statsMessage())
		}
	}
}

func (f *fakeController) sortedGroupsLocked() []groupStatus {
	out := []groupStatus{}
	for _, g := range f.groups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// closeStreams ends every page's stream with a close frame.
func (f *fakeController) closeStreams() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, out := range f.conns {
		select {
		case out <- nil:
		default:
		}
	}
}

// restartStream drops every stream and refuses new ones for a while, as a
// restarting controller does.
func (f *fakeController) restartStream(down time.Duration) {
	f.mu.Lock()
	f.refusing = true
	f.mu.Unlock()
	f.closeStreams()
	time.AfterFunc(down, func() {
		f.mu.Lock()
		f.refusing = false
		f.mu.Unlock()
	})
}

func (f *fakeController) connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connects
}

// waitCall waits for a request with method and path and returns it.
func (f *fakeController) waitCall(method, path string) call {
	f.t.Helper()
	var found call
	dashboard.WaitUntil(f.t, method+" "+path, 0, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.calls {
			if c.Method == method && c.Path == path {
				found = c
				return true
			}
		}
		return false
	})
	return found
}

// makeGroup builds a converged group of n ready replicas.
func makeGroup(name, service, policy string, n int) groupStatus {
	g := groupStatus{
		Name: name, Service: service, Desired: n, Ready: n, Status: "converged",
		Resources: resources{MemoryMiB: 64, MilliCPU: 500, Pids: 64},
		Balancer:  balancer{Policy: policy},
	}
	if policy != "none" {
		g.Endpoint = "127.0.0.1:40001"
	}
	for i := 1; i <= n; i++ {
		g.Replicas = append(g.Replicas, makeReplica(name, i, "ready", n, policy != "none"))
	}
	return g
}

func makeReplica(group string, i int, health string, of int, balanced bool) replicaStatus {
	r := replicaStatus{
		Name: fmt.Sprintf("%s-%d", group, i), ID: strings.Repeat(fmt.Sprintf("%x", i%16), 64),
		State: "running", Health: health,
		Address: fmt.Sprintf("127.0.0.1:%d", 41000+i), Upstream: fmt.Sprintf("192.168.50.%d:8080", 10+i),
	}
	if balanced {
		share := 1 / float64(of)
		r.Traffic = &traffic{State: "ready", Requests: 1000 / of, Share: share, TotalShare: share, P50Ms: 0.3, P99Ms: 1.2}
	}
	return r
}

func requireJSON(t *testing.T, c call, want string) {
	t.Helper()
	if c.ContentType != "application/json" {
		t.Errorf("%s %s sent Content-Type %q, want application/json", c.Method, c.Path, c.ContentType)
	}
	var got, exp any
	if err := json.Unmarshal([]byte(c.Body), &got); err != nil {
		t.Fatalf("%s %s sent %q: %v", c.Method, c.Path, c.Body, err)
	}
	json.Unmarshal([]byte(want), &exp)
	gb, _ := json.Marshal(got)
	eb, _ := json.Marshal(exp)
	if string(gb) != string(eb) {
		t.Errorf("%s %s sent %s, want %s", c.Method, c.Path, gb, eb)
	}
}

func TestBrowserDashboard(t *testing.T) {
	b := dashboard.NewBrowser(t)
	f := newFakeController(t, makeGroup("web", "monolith", "round-robin", 3), makeGroup("cart", "cart", "none", 2))

	b.Open(f.srv.URL)
	b.WaitConnected()
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
	f.mu.Lock()
	delete(f.groups, "cart")
	f.mu.Unlock()
	f.push(map[string]any{"type": "group-removed", "name": "cart"})
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
	f.pushEvent("group.created", "api", "", "group api created")
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

	f.push(f.statsMessage())
	time.Sleep(300 * time.Millisecond)
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

	b.Open(f.srv.URL)
	b.WaitConnected()

	// 100 replicas arrive in one group message: the frame that builds them
	// stays within a budget a slow machine meets.
	g := makeGroup("big", "monolith", "p2c", 100)
	f.mu.Lock()
	f.setStatsFor(g, 0)
	f.mu.Unlock()
	f.pushGroup(g)
	b.WaitTiles("big", 100)

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

	// Then stats for all of them, ten times: each takes well under a frame.
	var base int
	b.Eval(`window.flotilla.diag.statsApplied`, &base)
	for i := 1; i <= 10; i++ {
		f.mu.Lock()
		f.setStatsFor(g, 100+i)
		f.mu.Unlock()
		f.push(f.statsMessage())
		time.Sleep(120 * time.Millisecond)
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

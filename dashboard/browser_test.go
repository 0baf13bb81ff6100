package dashboard_test

// Browser tests of the dashboard against a fake controller: an httptest
// server that serves the embedded page with the real server's security
// headers, a websocket that speaks the stream protocol, and REST endpoints
// that record what the page sends. They need Chromium, not Docker.

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
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
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/sample-services/scenarios"
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

	scenarios  []spec.Scenario // the real stage files, in stage order
	scenario   string          // the one applied last
	faults     []map[string]any
	faultCount int
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
	var err error
	if f.scenarios, err = spec.LoadScenarios(scenarios.Files(), 50); err != nil {
		t.Fatalf("the stage files: %v", err)
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
	mux.HandleFunc("GET /api/v1/scenarios", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"scenarios": f.scenarios, "current": f.scenario})
	})
	mux.HandleFunc("GET /api/v1/faults", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		list := append([]map[string]any{}, f.faults...)
		slices.Reverse(list) // newest first
		writeJSON(w, 200, map[string]any{"faults": list})
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
			"spec": map[string]any{"target": "127.0.0.1:40001", "rate": spec["rate"], "duration": spec["duration"], "journey": spec["journey"]},
			"sent": 0, "succeeded": 0, "failed": 0, "errors": map[string]int{}, "byReplica": map[string]int{},
			"latencyMs": map[string]float64{}, "ratePerSec": 0,
		}
		f.loads = append(f.loads, run)
		f.mu.Unlock()
		writeJSON(w, http.StatusCreated, run)
	case r.Method == "DELETE" && len(parts) == 2 && parts[0] == "load":
		writeJSON(w, 200, map[string]any{"id": parts[1], "state": "stopped"})
	case r.Method == "PUT" && len(parts) == 1 && parts[0] == "scenario":
		var req struct {
			Name string `json:"name"`
		}
		json.Unmarshal(body, &req)
		res, ok := f.applyScenario(req.Name)
		if !ok {
			writeJSON(w, 404, map[string]string{"error": fmt.Sprintf("no scenario %q", req.Name)})
			return
		}
		writeJSON(w, 200, res)
	case r.Method == "POST" && len(parts) == 1 && parts[0] == "faults":
		var req map[string]any
		if err := json.Unmarshal(body, &req); err != nil {
			writeJSON(w, 400, map[string]string{"error": err.Error()})
			return
		}
		code, v := f.injectFault(req)
		writeJSON(w, code, v)
	case r.Method == "DELETE" && len(parts) == 2 && parts[0] == "faults":
		code, v := f.revertFault(parts[1])
		writeJSON(w, code, v)
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

// applyScenario makes the groups the named stage's, as the controller does,
// and tells the pages through the stream.
func (f *fakeController) applyScenario(name string) (map[string]any, bool) {
	f.mu.Lock()
	i := slices.IndexFunc(f.scenarios, func(sc spec.Scenario) bool { return sc.Name == name })
	if i < 0 {
		f.mu.Unlock()
		return nil, false
	}
	sc := f.scenarios[i]
	res := map[string]any{"scenario": name, "created": []string{}, "updated": []string{}, "deleted": []string{}, "unchanged": []string{}}
	add := func(k, v string) { res[k] = append(res[k].([]string), v) }
	want := map[string]groupStatus{}
	for _, sg := range sc.Groups {
		sg = sg.WithDefaults()
		want[sg.Name] = makeGroup(sg.Name, sg.Service, sg.Balancer.Policy, sg.Replicas)
	}
	var msgs []any
	for _, name := range slices.Sorted(maps.Keys(f.groups)) {
		if _, ok := want[name]; !ok {
			add("deleted", name)
			delete(f.groups, name)
			msgs = append(msgs, map[string]any{"type": "group-removed", "name": name})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		g := want[name]
		old, ok := f.groups[name]
		switch {
		case !ok:
			add("created", name)
		case old.Service != g.Service || old.Desired != g.Desired || old.Balancer.Policy != g.Balancer.Policy:
			add("updated", name)
		default:
			add("unchanged", name)
			continue
		}
		f.groups[name] = g
		msgs = append(msgs, map[string]any{"type": "group", "group": g})
	}
	f.scenario = name
	e := f.addEventLocked("scenario.applied", "", "", fmt.Sprintf("scenario %s applied", name))
	f.mu.Unlock()
	for _, m := range msgs {
		f.push(m)
	}
	f.push(map[string]any{"type": "event", "event": e})
	return res, true
}

// injectFault checks a fault as the controller does, keeps it and tells
// the pages.
func (f *fakeController) injectFault(req map[string]any) (int, any) {
	bad := func(format string, args ...any) (int, any) {
		return 400, map[string]string{"error": "invalid fault: " + fmt.Sprintf(format, args...)}
	}
	kind, _ := req["kind"].(string)
	group, _ := req["group"].(string)
	replica, _ := req["replica"].(string)
	feature, _ := req["feature"].(string)
	switch kind {
	case "kill", "pause", "partition", "crash-feature", "latency", "errors":
	default:
		return bad("kind %q is not one of kill, pause, crash-feature, latency, errors, partition", kind)
	}
	if kind == "crash-feature" && feature == "" {
		return bad("crash-feature needs a feature")
	}
	if ms, _ := req["latencyMs"].(float64); kind == "latency" && (ms < 1 || ms > 30000) {
		return bad("latencyMs %g is out of range: 1 to 30000", ms)
	}
	if rate, _ := req["errorRate"].(float64); kind == "errors" && (rate <= 0 || rate > 1) {
		return bad("errorRate %g is out of range: more than 0, at most 1", rate)
	}
	f.mu.Lock()
	g, ok := f.groups[group]
	if !ok {
		f.mu.Unlock()
		return 404, map[string]string{"error": fmt.Sprintf("group %q: not found", group)}
	}
	var on []string
	for _, r := range g.Replicas {
		if replica == "" || r.Name == replica {
			on = append(on, r.Name)
		}
	}
	if len(on) == 0 {
		f.mu.Unlock()
		return 404, map[string]string{"error": fmt.Sprintf("running replica %q of group %q: not found", replica, group)}
	}
	if replica == "" && (kind == "kill" || kind == "pause" || kind == "partition") {
		on = on[len(on)-1:]
	}
	f.faultCount++
	fault := maps.Clone(req)
	fault["id"] = fmt.Sprintf("f-%d", f.faultCount)
	fault["active"] = kind != "kill"
	fault["replicas"] = on
	fault["created"] = time.Now().Format(time.RFC3339)
	what := feature
	if what == "" {
		what = "all"
	}
	switch kind {
	case "latency":
		fault["message"] = fmt.Sprintf("%v ms added to %s on %v", req["latencyMs"], what, on)
	case "errors":
		fault["message"] = fmt.Sprintf("%.0f%% of %s requests fail on %v", req["errorRate"].(float64)*100, what, on)
	case "crash-feature":
		fault["message"] = fmt.Sprintf("the next %s request crashes %v", feature, on)
	default:
		fault["message"] = fmt.Sprintf("%s %v", kind, on)
	}
	f.faults = append(f.faults, fault)
	e := f.addEventLocked("fault.injected", group, replica, fmt.Sprintf("fault %s: %s", fault["id"], fault["message"]))
	f.mu.Unlock()
	f.push(map[string]any{"type": "event", "event": e})
	return http.StatusCreated, fault
}

func (f *fakeController) revertFault(id string) (int, any) {
	f.mu.Lock()
	i := slices.IndexFunc(f.faults, func(x map[string]any) bool { return x["id"] == id })
	if i < 0 {
		f.mu.Unlock()
		return 404, map[string]string{"error": fmt.Sprintf("fault %q: not found", id)}
	}
	fault := f.faults[i]
	f.faults = slices.Delete(f.faults, i, i+1)
	fault["active"] = false
	e := f.addEventLocked("fault.reverted", fault["group"].(string), "", fmt.Sprintf("fault %s reverted", id))
	f.mu.Unlock()
	f.push(map[string]any{"type": "event", "event": e})
	return 200, fault
}

// stepCounts is one step of a journey report: ok, failed and, for the
// cart, incomplete.
type stepCounts struct{ ok, failed, incomplete int }

// setJourneyReport makes load run id a journey run with these counts; the
// next stats message carries it.
func (f *fakeController) setJourneyReport(id string, steps map[string]stepCounts) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.loads, func(r map[string]any) bool { return r["id"] == id })
	if i < 0 {
		f.t.Fatalf("no load run %s", id)
	}
	rate := func(ok, n int) float64 {
		if n == 0 {
			return 0
		}
		return float64(ok) / float64(n)
	}
	out := map[string]any{}
	sent, failed := 0, 0
	for name, c := range steps {
		st := map[string]any{"ok": c.ok, "failed": c.failed, "successRate": rate(c.ok, c.ok+c.failed)}
		if c.failed > 0 {
			st["errors"] = map[string]int{"status_5xx": c.failed}
		}
		if name == "cart" {
			st["incomplete"] = c.incomplete
			st["completeRate"] = rate(c.ok-c.incomplete, c.ok)
		}
		out[name] = st
		sent += c.ok + c.failed
		failed += c.failed
	}
	// A journey ends at checkout, or at its first failure.
	done := steps["checkout"].ok
	jFailed := failed + steps["cart"].incomplete
	r := maps.Clone(f.loads[i])
	r["steps"] = out
	r["journeys"] = map[string]any{"started": steps["browse"].ok + steps["browse"].failed, "succeeded": done - steps["cart"].incomplete,
		"failed": jFailed, "successRate": rate(done-steps["cart"].incomplete, done-steps["cart"].incomplete+jFailed)}
	r["sent"], r["succeeded"], r["failed"] = sent, sent-failed, failed
	r["ratePerSec"] = 50.0
	r["latencyMs"] = map[string]float64{"p50": 1.8, "p99": 7.5}
	r["byReplica"] = map[string]int{"shop-1": sent / 3, "shop-2": sent / 3, "shop-3": sent - 2*(sent/3)}
	f.loads[i] = r
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
	f.mu.Lock()
	f.scenario = "monolith"
	stages := slices.Clone(f.scenarios)
	f.mu.Unlock()
	if len(stages) != 5 {
		t.Fatalf("the story has %d stage files, want 5", len(stages))
	}

	b.Open(f.srv.URL)
	b.WaitConnected()
	b.WaitFor("the stage picker", `document.querySelectorAll('#stage-picker [data-action="scenario"]').length === 5`, 0)
	var order []string
	b.Eval(`[...document.querySelectorAll('#stage-picker [data-action="scenario"]')].map(b => b.dataset.scenario)`, &order)
	if want := []string{"monolith", "scaled-no-lb", "scaled-lb", "microservices", "clusters"}; !slices.Equal(order, want) {
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

	// Someone else applies a stage (the CLI, a demo script): the page
	// follows the scenario.applied event.
	if _, ok := f.applyScenario("clusters"); !ok {
		t.Fatal("apply clusters")
	}
	b.WaitFor("stage 6 explained", `document.querySelector('#stage').dataset.scenario === 'clusters'`, 0)
	check(stages[4])
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

	b.Open(f.srv.URL)
	b.WaitConnected()
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
	if code, _ := f.injectFault(map[string]any{"kind": "pause", "group": "web", "replica": "web-3"}); code != 201 {
		t.Fatalf("inject pause: %d", code)
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
	b.CheckPage(f.srv.URL)
}

func TestBrowserJourneys(t *testing.T) {
	b := dashboard.NewBrowser(t)
	f := newFakeController(t, makeGroup("shop", "monolith", "round-robin", 3))

	b.Open(f.srv.URL)
	b.WaitConnected()
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
	f.push(f.statsMessage())
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
	f.push(f.statsMessage())
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

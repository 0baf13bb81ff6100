package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/orchestrator/bus"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/spec"
	broker "github.com/flotilla/flotilla/sample-services/bus"
	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/bus/client"
)

func busReading() bus.Status {
	return bus.Status{
		Up: true, Time: time.Now(),
		Streams: []bus.Stream{{Name: "ORDERS", Subjects: []string{"orders.placed"}, Messages: 12, LastSeq: 12, FirstSeq: 1,
			Consumers: []bus.Consumer{{Name: "notifications", Group: "notifications", Delivered: 12, AckFloor: 11, Pending: 0, MaxDeliver: 5}}}},
		Dead: []bus.DeadLetter{{Seq: 3, Stream: "ORDERS", StreamSeq: 7, Subject: "orders.placed", Consumer: "notifications", Deliveries: 5,
			Reason: "delivered 5 times without an ack", EventID: "o-7", Data: `{"order":"o-7"}`}},
	}
}

func TestBusRoutesWithTheFake(t *testing.T) {
	fake := newFake(spec.Group{Name: "web", Service: "monolith", Replicas: 2})
	h := newHandler(t, Options{Controller: fake, Bus: fake})

	// No bus yet: the reading says so; a replay is 503.
	w := serve(t, h, req{method: "GET", path: "/api/v1/bus"})
	st := decodeBody[bus.Status](t, w)
	if w.Code != 200 || st.Up || !strings.Contains(st.Error, "no bus runs") || st.Streams == nil || st.Dead == nil {
		t.Fatalf("GET /api/v1/bus without a bus = %d %s", w.Code, w.Body)
	}
	w = serve(t, h, req{method: "POST", path: "/api/v1/bus/deadletters/3/replay"})
	if e := decodeBody[ErrorResponse](t, w); w.Code != 503 || !strings.Contains(e.Error, "no bus runs") {
		t.Errorf("replay without a bus = %d %s", w.Code, w.Body)
	}

	fake.SetBus(busReading())
	w = serve(t, h, req{method: "GET", path: "/api/v1/bus"})
	if st := decodeBody[bus.Status](t, w); !st.Up || len(st.Dead) != 1 || st.Streams[0].Consumers[0].Group != "notifications" {
		t.Fatalf("GET /api/v1/bus = %d %s", w.Code, w.Body)
	}
	for _, tc := range []struct {
		path, body string
		want       int
		says       string
	}{
		{"/api/v1/bus/deadletters/abc/replay", "", 400, `\"abc\" is not a sequence number`},
		{"/api/v1/bus/deadletters/0/replay", "", 400, "not a sequence number"},
		{"/api/v1/bus/deadletters/-3/replay", "", 400, "not a sequence number"},
		{"/api/v1/bus/deadletters/99999999999999999999999/replay", "", 400, "not a sequence number"},
		{"/api/v1/bus/deadletters/3/replay", `{"force":true}`, 400, "a replay takes no fields"},
		{"/api/v1/bus/deadletters/4/replay", "", 404, "no such dead letter"},
		{"/api/v1/bus/deadletters/3/replay", "{}", 200, `"msgId":"o-7.replay.3"`},
		{"/api/v1/bus/deadletters/3/replay", "", 404, "GET /api/v1/bus"},
	} {
		w := serve(t, h, req{method: "POST", path: tc.path, body: tc.body})
		if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.says) {
			t.Errorf("POST %s %s = %d %s; want %d saying %s", tc.path, tc.body, w.Code, w.Body, tc.want, tc.says)
		}
		if w.Code != 200 {
			decodeBody[ErrorResponse](t, w)
		}
	}
	if got := fake.Replays(); len(got) != 1 || got[0] != 3 {
		t.Errorf("replays %v, want [3]", got)
	}
	if st := fake.BusStatus(); len(st.Dead) != 0 {
		t.Errorf("the replayed dead letter is still shown: %+v", st.Dead)
	}

	// The guard applies as everywhere: a foreign page or host is refused.
	for _, hdr := range []string{"Origin: http://evil.example", "Host: evil.example"} {
		if w := serve(t, h, req{method: "POST", path: "/api/v1/bus/deadletters/3/replay", headers: []string{hdr}}); w.Code != http.StatusForbidden {
			t.Errorf("replay with %s = %d, want 403", hdr, w.Code)
		}
	}
	if w := serve(t, h, req{method: "GET", path: "/api/v1/bus", headers: []string{"Origin: http://evil.example"}}); w.Code != http.StatusForbidden {
		t.Errorf("GET /api/v1/bus from a foreign origin = %d, want 403", w.Code)
	}
	// Without a bus reader, there is no route.
	if w := serve(t, newHandler(t, Options{Controller: fake}), req{method: "GET", path: "/api/v1/bus"}); w.Code != 404 {
		t.Errorf("GET /api/v1/bus without a Bus = %d", w.Code)
	}
}

func TestStreamCarriesBusChanges(t *testing.T) {
	hb := hub.New(hub.Options{})
	t.Cleanup(hb.Close)
	fake := newFake(spec.Group{Name: "web", Service: "monolith", Replicas: 2})
	st := busReading()
	fake.SetBus(st)
	srv := httptest.NewServer(newHandler(t, Options{Controller: fake, Hub: hb, Bus: fake}))
	t.Cleanup(srv.Close)
	c, _, err := dial(t, srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	snap := readMsg(t, c)
	if b, ok := snap["bus"].(map[string]any); !ok || b["up"] != true || len(b["deadLetters"].([]any)) != 1 {
		t.Fatalf("snapshot bus = %v", snap["bus"])
	}
	// Unchanged but for the time of the reading: no bus message; two stats
	// messages show time passed.
	st.Time = time.Now()
	fake.SetBus(st)
	for seen := 0; seen < 2; {
		m := readMsg(t, c)
		switch m["type"] {
		case "bus":
			t.Fatalf("a bus message with nothing changed: %v", m)
		case "stats":
			seen++
		}
	}
	// A change: one bus message with it.
	st.Streams[0].Consumers[0].Pending = 40
	fake.SetBus(st)
	m := next(t, c, "bus")
	cons := m["bus"].(map[string]any)["streams"].([]any)[0].(map[string]any)["consumers"].([]any)[0].(map[string]any)
	if cons["pending"].(float64) != 40 {
		t.Errorf("bus message %v", m)
	}
}

// readerBus is the API's Bus done by the controller's real reader of a
// real broker, as the controller does it.
type readerBus struct {
	r   *bus.Reader
	url string
}

func (rb readerBus) BusStatus() bus.Status { return rb.r.Read(context.Background(), rb.url, nil) }
func (rb readerBus) ReplayDeadLetter(ctx context.Context, seq uint64) (bus.ReplayResult, error) {
	return rb.r.Replay(ctx, rb.url, seq)
}

// TestReplayThroughTheAPI takes a message to the dead letters on a real
// broker and replays it through the API's handler.
func TestReplayThroughTheAPI(t *testing.T) {
	const secret = "a-test-secret-of-enough-length"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := broker.New(broker.Config{Host: "127.0.0.1", ClientPort: -1, StoreDir: t.TempDir(), Secret: secret, Topology: access.Shop}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r := bus.NewReader(secret)
	defer r.Close()
	h := newHandler(t, Options{Bus: readerBus{r, b.ClientURL()}})

	pw := func(user string) string { p, _ := access.Password(secret, user); return p }
	checkout, err := client.Connect(b.ClientURL(), "checkout", pw("checkout"), nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	defer checkout.Close()
	m := nats.NewMsg(access.SubjectOrderPlaced)
	m.Header.Set(bus.EventIDHeader, "o-5")
	m.Data = []byte(`{"order":"o-5"}`)
	if _, err := checkout.JS.PublishMsg(ctx, m, jetstream.WithMsgID("o-5")); err != nil {
		t.Fatal(err)
	}
	inv, err := client.Connect(b.ClientURL(), "inventory", pw("inventory"), nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	defer inv.Close()
	cons, err := inv.JS.Consumer(ctx, "ORDERS", "inventory")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		m, err := cons.Next(jetstream.FetchMaxWait(3 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		m.Nak()
	}
	if m, err := cons.Next(jetstream.FetchMaxWait(500 * time.Millisecond)); err == nil {
		t.Fatalf("a sixth delivery of %s", m.Data())
	}
	var st bus.Status
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		w := serve(t, h, req{method: "GET", path: "/api/v1/bus"})
		if st = decodeBody[bus.Status](t, w); len(st.Dead) == 1 {
			break
		}
	}
	if len(st.Dead) != 1 || st.Dead[0].EventID != "o-5" || st.Dead[0].Consumer != "inventory" {
		t.Fatalf("dead letters: %+v (%s)", st.Dead, st.Error)
	}
	seq := strconv.FormatUint(st.Dead[0].Seq, 10)

	for _, tc := range []struct {
		seq  string
		want int
	}{{"x1", 400}, {"424242", 404}, {seq, 200}, {seq, 404}} {
		w := serve(t, h, req{method: "POST", path: "/api/v1/bus/deadletters/" + tc.seq + "/replay"})
		if w.Code != tc.want {
			t.Errorf("replay %s = %d %s, want %d", tc.seq, w.Code, w.Body, tc.want)
		}
		if tc.want == 200 {
			res := decodeBody[bus.ReplayResult](t, w)
			if res.MsgID != "o-5.replay."+seq || res.Subject != access.SubjectOrderPlaced {
				t.Errorf("replay: %+v", res)
			}
		}
	}
	// inventory gets the order again, as the replay.
	again, err := cons.Next(jetstream.FetchMaxWait(3 * time.Second))
	if err != nil || again.Headers().Get(jetstream.MsgIDHeader) != "o-5.replay."+seq {
		t.Fatalf("after the replay inventory got %v, %v", again, err)
	}

	// The bus gone: a reading that says so, and a replay is 503.
	b.Shutdown()
	w := serve(t, h, req{method: "GET", path: "/api/v1/bus"})
	if st := decodeBody[bus.Status](t, w); w.Code != 200 || st.Up || st.Error == "" {
		t.Errorf("GET /api/v1/bus with the bus gone = %d %s", w.Code, w.Body)
	}
	if w := serve(t, h, req{method: "POST", path: "/api/v1/bus/deadletters/" + seq + "/replay"}); w.Code != 503 {
		t.Errorf("replay with the bus gone = %d %s, want 503", w.Code, w.Body)
	}
}

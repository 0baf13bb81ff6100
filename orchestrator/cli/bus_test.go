package cli

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/api/apitest"
	"github.com/flotilla/flotilla/orchestrator/bus"
)

func TestBusVerb(t *testing.T) {
	clearEnv(t)
	fake := newFake(apitest.Options{})
	h, err := api.New(api.Options{Controller: fake, Bus: fake})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	addr := "--addr=" + strings.TrimPrefix(srv.URL, "http://")

	// No bus: said plainly, not a failure of the command.
	if out := mustRun(t, "bus", addr); !strings.Contains(out, "the bus cannot be read: no bus runs") {
		t.Errorf("bus without a bus:\n%s", out)
	}
	if _, _, err := run(t, "bus", addr, "replay", "3"); err == nil || !strings.Contains(err.Error(), "no bus runs") {
		t.Errorf("replay without a bus: %v", err)
	}

	fake.SetBus(bus.Status{Up: true, Time: time.Now(),
		Streams: []bus.Stream{
			{Name: "FULFILLMENT", Subjects: []string{"orders.fulfill"}, WorkQueue: true, Consumers: []bus.Consumer{{Name: "fulfillment", MaxDeliver: 5}}},
			{Name: "ORDERS", Subjects: []string{"orders.placed"}, Messages: 40, Bytes: 4096, FirstSeq: 1, LastSeq: 40, PublishedPerSec: 12.5,
				Consumers: []bus.Consumer{
					{Name: "analytics", Group: "analytics", Delivered: 40, AckFloor: 40, MaxDeliver: 5},
					{Name: "notifications", Delivered: 3, AckFloor: 2, AckPending: 1, Pending: 37, Redelivered: 1, MaxDeliver: 5},
				}},
		},
		Dead: []bus.DeadLetter{{Seq: 2, Stream: "ORDERS", StreamSeq: 9, Subject: "orders.placed", Consumer: "inventory", Deliveries: 5,
			Time: time.Now(), Reason: "delivered 5 times without an ack", EventID: "o-9", Data: `{"order":"o-9"}`}},
	})
	out := mustRun(t, "bus", addr)
	for _, want := range []string{"STREAM", "ORDERS", "orders.placed", "fanout", "work queue", "4.0KiB", "1-40", "12.5",
		"CONSUMER", "LAG", "ACK PENDING", "REDELIVERED", "ORDERS/notifications", "(none runs)", "37",
		"1 dead letters (1 of ORDERS/inventory)", "flotilla bus replay SEQ"} {
		if !strings.Contains(out, want) {
			t.Errorf("bus output lacks %q:\n%s", want, out)
		}
	}
	out = mustRun(t, "bus", "deadletters", addr)
	for _, want := range []string{"SEQ", "REASON", "ORDERS/inventory", "orders.placed seq 9", "o-9", "delivered 5 times without an ack", `{"order":"o-9"}`} {
		if !strings.Contains(out, want) {
			t.Errorf("bus deadletters output lacks %q:\n%s", want, out)
		}
	}
	var st bus.Status
	if err := json.Unmarshal([]byte(mustRun(t, "bus", "--json", addr)), &st); err != nil || !st.Up || len(st.Streams) != 2 {
		t.Errorf("bus --json: %+v, %v", st, err)
	}

	// Bad SEQs are refused here, before any request.
	for _, bad := range []string{"x", "0", "-1", "2.5"} {
		if _, errOut, err := run(t, "bus", addr, "replay", bad); err == nil || !strings.Contains(err.Error(), "SEQ of a dead letter") || !strings.Contains(errOut, "Usage:") {
			t.Errorf("replay %s: %v", bad, err)
		}
	}
	if _, _, err := run(t, "bus", addr, "replay"); err == nil || !strings.Contains(err.Error(), "SEQ") {
		t.Errorf("replay without SEQ: %v", err)
	}
	if _, _, err := run(t, "bus", addr, "purge"); err == nil || !strings.Contains(err.Error(), "deadletters, or replay SEQ") {
		t.Errorf("bus purge: %v", err)
	}
	if _, _, err := run(t, "bus", addr, "replay", "7"); err == nil || !strings.Contains(err.Error(), "no such dead letter") {
		t.Errorf("replay of an unknown dead letter: %v", err)
	}
	out = mustRun(t, "bus", addr, "replay", "2")
	if !strings.Contains(out, "replayed dead letter 2") || !strings.Contains(out, "as o-9.replay.2") {
		t.Errorf("replay:\n%s", out)
	}
	if got := fake.Replays(); len(got) != 1 || got[0] != 2 {
		t.Errorf("replays %v", got)
	}
	if out := mustRun(t, "bus", "deadletters", addr); !strings.Contains(out, "no dead letters") {
		t.Errorf("after the replay:\n%s", out)
	}
	if out := mustRun(t, "help", "bus"); !strings.Contains(out, "flotilla bus replay SEQ") {
		t.Errorf("help bus:\n%s", out)
	}
}

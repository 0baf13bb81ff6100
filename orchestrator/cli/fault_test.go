package cli

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/api/apitest"
)

func TestFaultVerb(t *testing.T) {
	clearEnv(t)
	fake := newFake(apitest.Options{})
	h, err := api.New(api.Options{Controller: fake, Faults: fake})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	addr := "--addr=" + strings.TrimPrefix(srv.URL, "http://")

	out, _, err := run(t, "fault", addr, "--feature", "cart", "--latency-ms", "300", "latency", "web")
	if err != nil || !strings.Contains(out, "flotilla fault revert f-1") {
		t.Fatalf("inject: %v\n%s", err, out)
	}
	if sent := fake.Injected(); len(sent) != 1 || sent[0].Feature != "cart" || sent[0].LatencyMs != 300 {
		t.Fatalf("sent %+v", sent)
	}
	// A poison fault carries its count of events.
	if out, _, err := run(t, "fault", addr, "--messages", "2", "poison", "web"); err != nil || !strings.Contains(out, "revert") {
		t.Fatalf("poison: %v\n%s", err, out)
	}
	if sent := fake.Injected(); len(sent) != 2 || sent[1].Kind != "poison" || sent[1].Messages != 2 {
		t.Fatalf("sent %+v", sent)
	}
	if _, _, err := run(t, "fault", addr, "poison", "web"); err == nil || !strings.Contains(err.Error(), "messages") {
		t.Fatalf("poison without --messages: %v", err)
	}
	if _, _, err := run(t, "fault", addr, "latency", "web"); err == nil || !strings.Contains(err.Error(), "latencyMs") {
		t.Fatalf("latency without --latency-ms: %v", err)
	}
	if _, _, err := run(t, "fault", addr, "kill", "nope"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("fault on an unknown group: %v", err)
	}
	if out, _, err := run(t, "fault", addr, "ls"); err != nil || !strings.Contains(out, "f-1") {
		t.Fatalf("ls: %v\n%s", err, out)
	}
	if out, _, err := run(t, "fault", addr, "revert", "f-1"); err != nil || !strings.Contains(out, "reverted f-1") {
		t.Fatalf("revert: %v\n%s", err, out)
	}
}

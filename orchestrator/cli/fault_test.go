package cli

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/faults"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

type recordingFaulter struct{ specs []faults.Spec }

func (r *recordingFaulter) InjectFault(_ context.Context, s faults.Spec) (faults.Fault, error) {
	if s.Group != "web" {
		return faults.Fault{}, fmt.Errorf("group %q: %w", s.Group, controller.ErrNotFound)
	}
	if s.Kind == "latency" && s.LatencyMs == 0 {
		return faults.Fault{}, fmt.Errorf("%w: latencyMs 0 is out of range: 1 to 30000", faults.ErrInvalid)
	}
	r.specs = append(r.specs, s)
	return faults.Fault{Spec: s, ID: "f-1", Active: true, Message: "done"}, nil
}

func (r *recordingFaulter) Faults() []faults.Fault {
	return []faults.Fault{{Spec: faults.Spec{Kind: "latency", Group: "web"}, ID: "f-1", Active: true, Message: "300 ms added"}}
}

func (r *recordingFaulter) RevertFault(_ context.Context, id string) (faults.Fault, error) {
	if id != "f-1" {
		return faults.Fault{}, fmt.Errorf("fault %q: %w", id, controller.ErrNotFound)
	}
	return faults.Fault{ID: id, Message: "300 ms added"}, nil
}

func TestFaultVerb(t *testing.T) {
	clearEnv(t)
	rf := &recordingFaulter{}
	h, err := api.New(api.Options{Controller: newFakeForFaults(), Faults: rf})
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
	if len(rf.specs) != 1 || rf.specs[0].Feature != "cart" || rf.specs[0].LatencyMs != 300 {
		t.Fatalf("sent %+v", rf.specs)
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

func newFakeForFaults() *fakeController {
	return &fakeController{groups: map[string]spec.Group{"web": (spec.Group{Name: "web", Service: "monolith", Replicas: 2}).WithDefaults()}}
}

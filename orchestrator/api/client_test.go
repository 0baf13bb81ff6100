package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/orchestrator/api/apitest"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

func newClient(t *testing.T, opts Options) (*Client, *apitest.Controller) {
	t.Helper()
	fake := newFake(spec.Group{Name: "web", Service: "monolith", Replicas: 2})
	opts.Controller = fake
	srv := httptest.NewServer(newHandler(t, opts))
	t.Cleanup(srv.Close)
	return &Client{Addr: strings.TrimPrefix(srv.URL, "http://"), Token: opts.Token}, fake
}

func TestClient(t *testing.T) {
	ctx := context.Background()
	c, fake := newClient(t, Options{Token: "tok"})

	if err := c.Healthz(ctx); err != nil {
		t.Fatalf("Healthz: %v", err)
	}
	svcs, err := c.Services(ctx)
	if err != nil || len(svcs) != len(spec.Services()) {
		t.Fatalf("Services: %v %v", svcs, err)
	}
	st, created, err := c.PutGroup(ctx, spec.Group{Name: "api", Service: "catalog", Replicas: 1, Resources: spec.Resources{MemoryMiB: 32}})
	if err != nil || !created || st.Name != "api" || st.Resources.MemoryMiB != 32 {
		t.Fatalf("PutGroup new: %+v %v %v", st, created, err)
	}
	if _, created, err = c.PutGroup(ctx, spec.Group{Name: "api", Service: "catalog", Replicas: 2}); err != nil || created {
		t.Fatalf("PutGroup existing: %v %v", created, err)
	}
	fn := spec.Autoscale{Min: 0, Max: 3, TargetConcurrency: 2, IdleAfter: "6s", WarmPool: 1}
	if _, _, err = c.PutGroup(ctx, spec.Group{Name: "fn", Service: "recommend", Autoscale: &fn}); err != nil {
		t.Fatalf("PutGroup autoscaled: %v", err)
	}
	if puts := fake.Puts(); puts[len(puts)-1].Autoscale == nil || *puts[len(puts)-1].Autoscale != fn {
		t.Fatalf("PutGroup autoscaled reached the controller as %+v", puts[len(puts)-1])
	}
	if err = c.DeleteGroup(ctx, "fn"); err != nil {
		t.Fatalf("DeleteGroup: %v", err)
	}
	groups, err := c.Groups(ctx)
	if err != nil || len(groups) != 2 || groups[0].Name != "api" {
		t.Fatalf("Groups: %+v %v", groups, err)
	}
	if st, err = c.Scale(ctx, "web", 4); err != nil || st.Desired != 4 {
		t.Fatalf("Scale: %+v %v", st, err)
	}
	if st, err = c.Group(ctx, "web"); err != nil || len(st.Replicas) != 4 {
		t.Fatalf("Group: %+v %v", st, err)
	}
	if err = c.DeleteGroup(ctx, "api"); err != nil {
		t.Fatalf("DeleteGroup: %v", err)
	}
	if err = c.Down(ctx); err != nil || fake.Downs() != 1 {
		t.Fatalf("Down: %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	c, _ := newClient(t, Options{})

	_, err := c.Group(ctx, "nope")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || !errors.Is(err, controller.ErrNotFound) {
		t.Fatalf("Group(nope) = %v, want a 404 APIError wrapping ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), `group "nope" not found`) {
		t.Errorf("message = %q", err)
	}

	_, err = c.Scale(ctx, "web", -1)
	if !errors.Is(err, spec.ErrInvalid) || !errors.As(err, &apiErr) || apiErr.Field != "replicas" {
		t.Fatalf("Scale(-1) = %v, want an invalid replicas field", err)
	}

	c.Token = "unexpected"
	if err := c.Healthz(ctx); err != nil {
		t.Errorf("a token the server does not need is harmless: %v", err)
	}

	c.Addr = "ftp://x"
	if err := c.Healthz(ctx); err == nil || !strings.Contains(err.Error(), "host:port") {
		t.Errorf("bad address: %v", err)
	}
}

func TestClientTokenRequired(t *testing.T) {
	c, _ := newClient(t, Options{Token: "tok"})
	c.Token = ""
	_, err := c.Groups(context.Background())
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || !strings.Contains(err.Error(), "token") {
		t.Fatalf("Groups without token = %v", err)
	}
}

func TestClientNotOurAPI(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "gateway timeout", http.StatusBadGateway)
	}))
	defer srv.Close()
	c := &Client{Addr: srv.URL}
	err := c.Healthz(context.Background())
	if err == nil || !strings.Contains(err.Error(), "502") || !strings.Contains(err.Error(), "gateway timeout") {
		t.Fatalf("err = %v", err)
	}
}

func TestClientNoController(t *testing.T) {
	addr := closedAddr(t)
	c := &Client{Addr: addr}
	_, err := c.Groups(context.Background())
	if !errors.Is(err, ErrNoController) {
		t.Fatalf("err = %v, want ErrNoController", err)
	}
	want := `the controller is not running at ` + addr + `: start it with "flotilla serve"`
	if err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestClientRollouts(t *testing.T) {
	ctx := context.Background()
	fake := apitest.New(apitest.Options{HoldRollouts: true}, spec.Group{Name: "web", Service: "monolith", Replicas: 2})
	srv := httptest.NewServer(newHandler(t, Options{Controller: fake, Token: "tok"}))
	t.Cleanup(srv.Close)
	c := &Client{Addr: srv.URL, Token: "tok"}

	if _, err := c.Rollback(ctx, "web", 0); !errors.Is(err, controller.ErrConflict) {
		t.Fatalf("Rollback with one revision = %v, want a 409 wrapping ErrConflict", err)
	}
	if _, err := c.PauseRollout(ctx, "web"); !errors.Is(err, controller.ErrConflict) {
		t.Fatalf("PauseRollout with none running = %v", err)
	}
	bg := &spec.Rollout{Strategy: spec.StrategyBlueGreen, BlueGreen: &spec.BlueGreen{ScaleDownDelaySeconds: 5}}
	st, _, err := c.PutGroup(ctx, spec.Group{Name: "web", Service: "monolith", Replicas: 2, Version: "v2", Rollout: bg})
	if err != nil || st.Rollout == nil || st.Rollout.Strategy != spec.StrategyBlueGreen || st.Version != "v2" {
		t.Fatalf("PutGroup v2: %+v %v", st, err)
	}
	v3 := spec.Group{Name: "web", Service: "monolith", Replicas: 2, Version: "v3", Flaw: "crash"}
	if _, _, err = c.PutGroup(ctx, v3); !errors.Is(err, controller.ErrConflict) || !strings.Contains(err.Error(), "supersede") {
		t.Fatalf("PutGroup v3 while rolling out = %v", err)
	}
	if st, err = c.PutGroupSupersede(ctx, v3); err != nil || st.Version != "v3 (crash)" || st.Rollout.Revision != 3 {
		t.Fatalf("PutGroupSupersede: %+v %v", st, err)
	}
	ro, err := c.PauseRollout(ctx, "web")
	if err != nil || !ro.Paused || ro.Status != controller.RolloutPaused {
		t.Fatalf("PauseRollout: %+v %v", ro, err)
	}
	if ro, err = c.ResumeRollout(ctx, "web"); err != nil || ro.Paused || ro.Status != controller.RolloutProgressing {
		t.Fatalf("ResumeRollout: %+v %v", ro, err)
	}
	if ro, err = c.Rollback(ctx, "web", 0); err != nil || !ro.Rollback || ro.Version != "v2" || ro.Revision != 4 {
		t.Fatalf("Rollback: %+v %v", ro, err)
	}
	fake.EndRollout("web", controller.RolloutComplete, "")
	_, err = c.Rollback(ctx, "web", 4)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Field != "revision" || !errors.Is(err, spec.ErrInvalid) {
		t.Fatalf("Rollback to the current revision = %v", err)
	}
	if ro, err = c.Rollback(ctx, "web", 1); err != nil || ro.Version != "v1" || ro.From != 4 {
		t.Fatalf("Rollback to 1: %+v %v", ro, err)
	}
	h, err := c.Rollouts(ctx, "web")
	if err != nil || len(h.Rollouts) != 4 || h.Rollouts[0].Revision != 5 || h.Rollouts[3].Revision != 2 || len(h.Revisions) != 5 || h.Revisions[0].Version != "v1" {
		t.Fatalf("Rollouts: %+v %v", h, err)
	}
	if want := []string{controller.RolloutProgressing, controller.RolloutComplete, controller.RolloutRolledBack, controller.RolloutSuperseded}; h.Rollouts[0].Status != want[0] ||
		h.Rollouts[1].Status != want[1] || h.Rollouts[2].Status != want[2] || h.Rollouts[3].Status != want[3] {
		t.Errorf("statuses newest first: %s %s %s %s, want %v", h.Rollouts[0].Status, h.Rollouts[1].Status, h.Rollouts[2].Status, h.Rollouts[3].Status, want)
	}
	if _, err = c.Rollouts(ctx, "nope"); !errors.Is(err, controller.ErrNotFound) {
		t.Errorf("Rollouts of an unknown group = %v", err)
	}
}

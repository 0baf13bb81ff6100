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

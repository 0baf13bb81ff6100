package server_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/images/imagestest"
	"github.com/flotilla/flotilla/orchestrator/server"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// lockedBuffer is a bytes.Buffer the server may write while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The server builds the VM image and chooses the guests' accelerator at
// start, so a vm group is accepted and its JSON says how its guests run.
func TestIntegrationServeVMGroups(t *testing.T) {
	imagestest.VMSource(t)
	var out lockedBuffer
	addr := serveConfig(t, server.Config{}, &out)
	if !strings.Contains(out.String(), "flotilla: VM groups run under ") {
		t.Errorf("the server did not say how VM groups run:\n%s", out.String())
	}
	c := &api.Client{Addr: addr}
	ctx := context.Background()
	st, created, err := c.PutGroup(ctx, spec.Group{Name: "vm", Service: "monolith", Replicas: 0, Isolation: spec.IsolationVM})
	if err != nil || !created {
		t.Fatalf("PUT a vm group: created %v, %v\n%s", created, err, out.String())
	}
	if st.Isolation != spec.IsolationVM || (st.Accel != "tcg" && st.Accel != "kvm") {
		t.Errorf("group JSON isolation %q accel %q, want vm and tcg or kvm", st.Isolation, st.Accel)
	}
	if !strings.Contains(out.String(), "flotilla: VM groups run under "+st.Accel+":") {
		t.Errorf("the group says accel %s, the server's start said otherwise:\n%s", st.Accel, out.String())
	}
}

// Without a VM image (here: VM groups off), a vm group is a 400 that names
// the isolation field and says why, and everything else still runs.
func TestIntegrationServeWithoutVMs(t *testing.T) {
	var out lockedBuffer
	addr := serveConfig(t, server.Config{NoVM: true}, &out)
	if !strings.Contains(out.String(), "flotilla: VM groups are unavailable: this controller was started with VM groups off") {
		t.Errorf("the server did not say VM groups are unavailable:\n%s", out.String())
	}
	c := &api.Client{Addr: addr}
	_, _, err := c.PutGroup(context.Background(), spec.Group{Name: "vm", Service: "monolith", Replicas: 1, Isolation: spec.IsolationVM})
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || ae.Field != "isolation" || !strings.Contains(ae.Reason, "VM groups off") {
		t.Fatalf("PUT a vm group without a VM image = %v, want 400 on isolation saying why", err)
	}
	if _, _, err := c.PutGroup(context.Background(), spec.Group{Name: "web", Service: "monolith", Replicas: 0}); err != nil {
		t.Errorf("a container group beside refused VMs: %v", err)
	}
}

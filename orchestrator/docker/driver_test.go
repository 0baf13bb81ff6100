package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/events"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

func TestTranslate(t *testing.T) {
	tests := []struct {
		in   error
		want error
	}{
		{fmt.Errorf("no such container: %w", cerrdefs.ErrNotFound), replica.ErrNotFound},
		{fmt.Errorf("name in use: %w", cerrdefs.ErrConflict), replica.ErrConflict},
		{fmt.Errorf("exists: %w", cerrdefs.ErrAlreadyExists), replica.ErrConflict},
		{fmt.Errorf("down: %w", cerrdefs.ErrUnavailable), replica.ErrUnavailable},
		{context.DeadlineExceeded, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		got := translate("op x", tt.in)
		if !errors.Is(got, tt.want) {
			t.Errorf("translate(%v) = %v, want it to wrap %v", tt.in, got, tt.want)
		}
		if !strings.HasPrefix(got.Error(), "op x: ") {
			t.Errorf("translate(%v) = %q, want the op as prefix", tt.in, got)
		}
	}
	if translate("op", nil) != nil {
		t.Error("translate(nil) != nil")
	}
	other := translate("op", errors.New("boom"))
	for _, s := range []error{replica.ErrNotFound, replica.ErrConflict, replica.ErrUnavailable} {
		if errors.Is(other, s) {
			t.Errorf("an unknown error became %v", s)
		}
	}
}

func TestNewUnreachableEngine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/flotilla-test.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := New(ctx, Options{Instance: "0b5f6a5e-8d0e-4a8e-9a55-1c1f3b7a2a11"})
	if !errors.Is(err, replica.ErrUnavailable) {
		t.Fatalf("err = %v, want replica.ErrUnavailable", err)
	}
	for _, s := range []string{"cannot reach the Docker engine at unix:///nonexistent/flotilla-test.sock", "is it running?", "DOCKER_HOST"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("err = %q, want it to say %q", err, s)
		}
	}
}

func TestNewValidatesOptions(t *testing.T) {
	ctx := context.Background()
	for _, opts := range []Options{
		{},
		{Instance: "not-a-uuid"},
		{Instance: "0b5f6a5e-8d0e-4a8e-9a55-1c1f3b7a2a11", Project: "Has Spaces"},
		{Instance: "0b5f6a5e-8d0e-4a8e-9a55-1c1f3b7a2a11", Project: "-dash"},
	} {
		if _, err := New(ctx, opts); err == nil || errors.Is(err, replica.ErrUnavailable) {
			t.Errorf("New(%+v) = %v, want an options error", opts, err)
		}
	}
}

func TestEventFromMessage(t *testing.T) {
	m := eventsMessage("die", "abc", map[string]string{LabelGroup: "web", LabelReplica: "3", "exitCode": "137"}, 1700000000123456789)
	e := eventFromMessage(m)
	want := replica.Event{Action: "die", ID: "abc", Group: "web", Index: 3, Time: time.Unix(0, 1700000000123456789), ExitCode: 137}
	if e != want {
		t.Errorf("got %+v, want %+v", e, want)
	}
}

func eventsMessage(action, id string, attrs map[string]string, nano int64) events.Message {
	return events.Message{
		Type:     events.ContainerEventType,
		Action:   events.Action(action),
		Actor:    events.Actor{ID: id, Attributes: attrs},
		TimeNano: nano,
	}
}

func TestOnlyStale(t *testing.T) {
	stale := fmt.Errorf("remove network n: %w", ErrStaleEndpoint)
	other := errors.New("list volumes: context deadline exceeded")
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{stale, true},
		{fmt.Errorf("down: %w", errors.Join(stale)), true},
		{fmt.Errorf("down: %w", errors.Join(stale, stale)), true},
		{fmt.Errorf("down: %w", errors.Join(other, stale)), false},
		{fmt.Errorf("down: %w", errors.Join(other)), false},
	} {
		if got := OnlyStale(tt.err); got != tt.want {
			t.Errorf("OnlyStale(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

package load_test

import (
	"errors"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/load"
)

func TestManager(t *testing.T) {
	srv := newServer(t, nil)
	m := load.NewManager(load.ManagerOptions{MaxRunning: 1, History: 2})
	t.Cleanup(m.Close)

	long, err := m.Start(load.Spec{Target: srv.addr(), Rate: 20, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if long.ID == "" || long.State != load.StateRunning || long.Spec.Method != "GET" {
		t.Errorf("first report %+v, want a running run with defaults applied", long)
	}
	if _, err := m.Start(load.Spec{Target: srv.addr()}); !errors.Is(err, load.ErrBusy) {
		t.Errorf("second Start = %v, want ErrBusy", err)
	}
	if _, err := m.Start(load.Spec{Target: "10.0.0.1:80"}); !errors.Is(err, load.ErrInvalid) {
		t.Errorf("Start of a remote target = %v, want ErrInvalid", err)
	}
	if got, err := m.Get(long.ID); err != nil || got.ID != long.ID {
		t.Errorf("Get = %+v, %v", got, err)
	}
	stopped, err := m.Stop(long.ID)
	if err != nil || stopped.State != load.StateStopped || stopped.Ended.IsZero() {
		t.Fatalf("Stop = %+v, %v; want a stopped final report", stopped, err)
	}
	if again, err := m.Stop(long.ID); err != nil || again.State != load.StateStopped {
		t.Errorf("second Stop = %+v, %v", again, err)
	}

	// Three short runs one after the other: history keeps the last two.
	var ids []string
	for range 3 {
		rep, err := m.Start(load.Spec{Target: srv.addr(), Rate: 500, MaxRequests: 2, Duration: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rep.ID)
		waitState(t, m, rep.ID, load.StateFinished)
	}
	list := m.List()
	if len(list) != 2 || list[0].ID != ids[2] || list[1].ID != ids[1] {
		got := []string{}
		for _, r := range list {
			got = append(got, r.ID)
		}
		t.Errorf("List ids %v, want newest first %v", got, []string{ids[2], ids[1]})
	}
	for _, id := range []string{long.ID, ids[0], "ld-nope"} {
		if _, err := m.Get(id); !errors.Is(err, load.ErrNotFound) {
			t.Errorf("Get(%s) = %v, want ErrNotFound", id, err)
		}
		if _, err := m.Stop(id); !errors.Is(err, load.ErrNotFound) {
			t.Errorf("Stop(%s) = %v, want ErrNotFound", id, err)
		}
	}
}

func TestManagerCloseStopsRuns(t *testing.T) {
	srv := newServer(t, nil)
	m := load.NewManager(load.ManagerOptions{})
	rep, err := m.Start(load.Spec{Target: srv.addr(), Rate: 20, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { m.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Close did not return within 1s")
	}
	if got, _ := m.Get(rep.ID); got.State != load.StateStopped {
		t.Errorf("after Close the run is %q, want stopped", got.State)
	}
	if _, err := m.Start(load.Spec{Target: srv.addr()}); !errors.Is(err, load.ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
}

// waitState polls until run id reaches state, with a deadline.
func waitState(t *testing.T, m *load.Manager, id, state string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		rep, err := m.Get(id)
		if err == nil && rep.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s is %q (%v), want %q", id, rep.State, err, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package hub

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

func TestEventsArriveInOrder(t *testing.T) {
	h := New(Options{Buffer: 1024})
	defer h.Close()
	a, b := h.Subscribe(), h.Subscribe()
	for i := range 500 {
		h.Publish(Event{Kind: ReplicaReady, Message: fmt.Sprint(i)})
	}
	for _, s := range []*Subscription{a, b} {
		for i := range 500 {
			e := <-s.C
			if e.Seq != uint64(i+1) || e.Message != fmt.Sprint(i) {
				t.Fatalf("event %d: got seq %d message %q", i, e.Seq, e.Message)
			}
			if e.Time.IsZero() {
				t.Fatal("event has no time")
			}
		}
	}
}

func TestSlowSubscriberIsDroppedOthersKeepUp(t *testing.T) {
	h := New(Options{Buffer: 8})
	defer h.Close()
	slow := h.Subscribe()
	fast := h.Subscribe()
	got := make(chan int, 1)
	go func() {
		n := 0
		for range fast.C {
			n++
			if n == 100 {
				got <- n
			}
		}
	}()
	for i := range 100 {
		h.Publish(Event{Kind: GroupScaled, Message: fmt.Sprint(i)})
		if i%4 == 0 {
			time.Sleep(time.Millisecond) // let the fast reader keep up
		}
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the fast subscriber did not get all 100 events")
	}
	// The slow one never read: its channel holds its buffer and is closed.
	n := 0
	for range slow.C {
		n++
	}
	if !slow.Dropped() || n != 8 {
		t.Fatalf("slow subscriber: dropped %v after %d events, want dropped after 8", slow.Dropped(), n)
	}
	if fast.Dropped() {
		t.Fatal("the fast subscriber was dropped")
	}
	if st := h.Stats(); st.Dropped != 1 {
		t.Fatalf("stats %+v, want 1 dropped", st)
	}
}

func TestPublishNeverBlocks(t *testing.T) {
	h := New(Options{Buffer: 1})
	defer h.Close()
	h.Subscribe() // never reads
	done := make(chan struct{})
	go func() {
		for range 100_000 {
			h.Publish(Event{Kind: ReplicaDied})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked")
	}
}

func TestRecentKeepsHistory(t *testing.T) {
	h := New(Options{History: 3})
	defer h.Close()
	for i := range 5 {
		h.Publish(Event{Message: fmt.Sprint(i)})
	}
	r := h.Recent()
	if len(r) != 3 || r[0].Message != "2" || r[2].Message != "4" {
		t.Fatalf("recent = %+v, want the last 3", r)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 20 {
		h := New(Options{})
		subs := []*Subscription{h.Subscribe(), h.Subscribe()}
		h.Publish(Event{})
		subs[0].Cancel()
		h.Close()
		for _, s := range subs {
			for range s.C {
			}
		}
		subs[1].Cancel() // after Close: must not block
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines before, %d after closing 20 hubs", before, n)
	}
}

func TestCancelClosesChannel(t *testing.T) {
	h := New(Options{})
	defer h.Close()
	s := h.Subscribe()
	s.Cancel()
	select {
	case _, ok := <-s.C:
		if ok {
			t.Fatal("got an event after Cancel")
		}
	case <-time.After(time.Second):
		t.Fatal("Cancel did not close the channel")
	}
	if s.Dropped() {
		t.Fatal("a cancelled subscriber reads as dropped")
	}
}

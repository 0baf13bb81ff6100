package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/images/imagestest"
	"github.com/flotilla/flotilla/orchestrator/load"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/orchestrator/store"
)

func TestMain(m *testing.M) { imagestest.Main(m) }

// stack is a controller with its hub and API on a 127.0.0.1 port, against
// the real engine.
type stack struct {
	drv  *docker.Driver
	ctrl *controller.Controller
	hub  *hub.Hub
	addr string
}

func newStack(b testing.TB) *stack {
	b.Helper()
	drv := dockertest.New(b)
	refs := imagestest.Images(b)
	st, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	events := hub.New(hub.Options{})
	ctrl := controller.New(controller.Options{Runtime: drv, Store: st, Images: refs, Events: events, StopTimeout: time.Second})
	handler, err := api.New(api.Options{Controller: ctrl, Hub: events, Load: load.NewManager(load.ManagerOptions{})})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(ln)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ctrl.Run(ctx); close(done) }()
	b.Cleanup(func() {
		events.Close()
		srv.Close()
		cancel()
		<-done
	})
	return &stack{drv: drv, ctrl: ctrl, hub: events, addr: ln.Addr().String()}
}

func (s *stack) dial(b testing.TB, readBuffer int) *websocket.Conn {
	b.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	if readBuffer > 0 {
		d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				c.(*net.TCPConn).SetReadBuffer(readBuffer)
			}
			return c, err
		}
	}
	c, _, err := d.Dial("ws://"+s.addr+"/api/v1/stream", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

type wsMessage struct {
	Type  string    `json:"type"`
	Event hub.Event `json:"event"`
	// received is when the client had read the message.
	received time.Time
}

func (s *stack) waitReady(b testing.TB, group string, n int) controller.GroupStatus {
	b.Helper()
	var st controller.GroupStatus
	dockertest.Poll(b, time.Minute, fmt.Sprintf("%s: %d ready", group, n), func() error {
		var err error
		st, err = s.ctrl.Group(group)
		if err != nil {
			return err
		}
		if st.Ready != n || len(st.Replicas) != n {
			return fmt.Errorf("%d/%d ready", st.Ready, n)
		}
		for _, r := range st.Replicas {
			if r.Traffic == nil || r.Traffic.State != "ready" {
				return fmt.Errorf("%s not in rotation", r.Name)
			}
		}
		return nil
	})
	return st
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// BenchmarkKillToScreen kills a replica 20 times and measures the time
// from the kill to the matching event on a websocket client, and to the
// balancer taking the replica out of rotation.
func BenchmarkKillToScreen(b *testing.B) {
	s := newStack(b)
	ctx := context.Background()
	if _, _, err := s.ctrl.PutGroup(ctx, spec.Group{Name: "web", Service: "monolith", Replicas: 3}); err != nil {
		b.Fatal(err)
	}
	st := s.waitReady(b, "web", 3)
	ws := s.dial(b, 0)
	msgs := make(chan wsMessage, 1024)
	go func() {
		defer close(msgs)
		for {
			var m wsMessage
			if err := ws.ReadJSON(&m); err != nil {
				return
			}
			m.received = time.Now()
			msgs <- m
		}
	}()

	const kills = 20
	var toScreen, toEject []time.Duration
	b.ResetTimer()
	for i := range kills {
		victim := st.Replicas[i%len(st.Replicas)]
		start := time.Now()
		if err := s.drv.Kill(ctx, victim.ID, "SIGKILL"); err != nil {
			b.Fatal(err)
		}
		var died, ejected bool
		timeout := time.After(10 * time.Second)
		for !died || !ejected {
			select {
			case m, ok := <-msgs:
				if !ok {
					b.Fatal("stream closed")
				}
				if m.Type != "event" || m.Event.ID != victim.ID {
					continue
				}
				switch m.Event.Kind {
				case hub.ReplicaDied:
					if !died {
						died = true
						// Kill returns only once the engine has the container
						// dead, so the client's read time is what counts.
						toScreen = append(toScreen, m.received.Sub(start))
					}
				case hub.BalancerEjected:
					if !ejected {
						ejected = true
						// Stamped when the balancer marked it down, in this process.
						toEject = append(toEject, m.Event.Time.Sub(start))
					}
				}
			case <-timeout:
				b.Fatalf("kill %d: died %v, ejected %v after 10s", i, died, ejected)
			}
		}
		b.StopTimer()
		st = s.waitReady(b, "web", 3)
		b.StartTimer()
	}
	b.StopTimer()
	fmt.Printf("\nkill to screen over %d kills: websocket event p50 %s p99 %s (target p99 <= 250ms); balancer ejection p50 %s p99 %s (target p99 <= 100ms)\n\n",
		kills, percentile(toScreen, 0.5).Round(time.Millisecond), percentile(toScreen, 0.99).Round(time.Millisecond),
		percentile(toEject, 0.5).Round(time.Millisecond), percentile(toEject, 0.99).Round(time.Millisecond))
	b.ReportMetric(float64(percentile(toScreen, 0.99).Milliseconds()), "screen-p99-ms")
	b.ReportMetric(float64(percentile(toEject, 0.99).Milliseconds()), "eject-p99-ms")
}

// BenchmarkSlowClients runs 50 websocket clients under a steady stream of
// events; 5 never read. The 5 must be dropped, the others must keep a
// p99 event latency under 250 ms, and the heap must stay bounded.
func BenchmarkSlowClients(b *testing.B) {
	s := newStack(b)
	const clients, slow = 50, 5
	const rate, duration = 500, 10 * time.Second

	var mu sync.Mutex
	var lat []time.Duration
	var closedFast atomic.Int64
	var wg sync.WaitGroup
	for i := range clients {
		if i < slow {
			s.dial(b, 4096) // never read; a small receive buffer, like a stalled tab
			continue
		}
		c := s.dial(b, 0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var m wsMessage
				if err := c.ReadJSON(&m); err != nil {
					closedFast.Add(1)
					return
				}
				if m.Type == "event" && m.Event.Kind == "bench.tick" {
					d := time.Since(m.Event.Time)
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
			}
		}()
	}

	var heapMax uint64
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapStart := ms.HeapAlloc
	payload := strings.Repeat("x", 200) // about the size of a real event's message
	b.ResetTimer()
	tick := time.NewTicker(time.Second / rate)
	end := time.Now().Add(duration)
	n := 0
	for time.Now().Before(end) {
		<-tick.C
		s.hub.Publish(hub.Event{Kind: "bench.tick", Message: payload})
		n++
		if n%rate == 0 {
			runtime.ReadMemStats(&ms)
			heapMax = max(heapMax, ms.HeapAlloc)
		}
	}
	tick.Stop()
	b.StopTimer()
	time.Sleep(500 * time.Millisecond) // let the last events arrive
	hs := s.hub.Stats()
	mu.Lock()
	p50, p99 := percentile(lat, 0.5), percentile(lat, 0.99)
	received := len(lat)
	mu.Unlock()
	fmt.Printf("\nslow clients: %d clients (%d never read), %d events at %d/s: dropped %d (want %d), readers closed %d (want 0), "+
		"readers' event latency p50 %s p99 %s (target p99 <= 250ms) over %d deliveries, heap %d MiB at start, %d MiB max\n\n",
		clients, slow, n, rate, hs.Dropped, slow, closedFast.Load(), p50.Round(time.Microsecond), p99.Round(time.Microsecond), received,
		heapStart>>20, heapMax>>20)
	b.ReportMetric(float64(hs.Dropped), "dropped")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(heapMax>>20), "heap-max-MiB")
	if hs.Dropped != slow {
		b.Errorf("dropped %d subscribers, want exactly the %d that never read", hs.Dropped, slow)
	}
	if closedFast.Load() != 0 {
		b.Errorf("%d reading clients were disconnected", closedFast.Load())
	}
	if want := (clients - slow) * n * 9 / 10; received < want {
		b.Errorf("readers received %d events, want at least %d", received, want)
	}
}

package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/orchestrator/bus/bustest"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/faults"
	"github.com/flotilla/flotilla/orchestrator/images/imagestest"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/orchestrator/store"
	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/bus/client"
	"github.com/flotilla/flotilla/sample-services/bus/consume"
)

const (
	// busBenchTarget is the bound on the subscribers' throughput
	// against bare clients of the same server.
	busBenchTarget = 0.8
	// busBenchWindow bounds the messages published and not yet acknowledged
	// by the stream, in the fanout (the same for both ways).
	busBenchWindow = 256
	// busBenchMemWindow is the same for the retention run.
	busBenchMemWindow = 4096
	// busBenchMemBound bounds the retention run's publishing.
	busBenchMemBound = 60 * time.Second
	// busBenchConc is how many shoppers check out at once.
	busBenchConc = 8
	// busBenchSlowMs is the slow subscriber's delay per event.
	busBenchSlowMs = 50
	// busBenchMemMiB is the bench's bus group memory (the default is 64).
	busBenchMemMiB = 512
)

var subscriberServices = []string{"notifications", "inventory", "analytics"}

// BenchmarkBus measures the bus of stage 7 in one run, on a real
// controller on the real engine: groups bus (given 512 MiB, not the
// default 64), notifications, inventory and analytics (one replica each,
// the shop's subscribers on their durable consumers of ORDERS), catalog,
// orders, cart, and checkout twice, with events=bus and events=http.
//
//  1. Fanout 1 -> 3 durable consumers, 1 KiB messages, acknowledged:
//     FLOTILLA_BENCH_MESSAGES (default 5,000) per trial, FLOTILLA_BENCH_TRIALS
//     (default 3) trials, in alternating order, medians. Flotilla: published
//     to orders.placed as the checkout user (asynchronously, at most 256 in
//     flight) and applied by the three services; a message's latency runs
//     from its publish to its record in the service's ledger, which the
//     service writes just before its ack (the ledger's "at", the engine's
//     clock being the host's). Bare: the same publisher to a stream of the
//     same configuration on the same server, three durable pull consumers of
//     nats.go in this process (Consume, the library's default batching)
//     acking each message; its latency runs to the ack. Bare 1 is the same
//     pulling one message at a time, to show what a pull window is worth
//     apart from the services' ledger (the services keep 8 in flight). Delivered per second
//     is 3 x messages over first publish to last ack. Each way runs a
//     burst (for the rate; its latency is mostly queueing) and then
//     FLOTILLA_BENCH_PACED (default 300) messages at FLOTILLA_BENCH_PACED_RATE
//     (default 100) per second, below what each way takes, for the latency
//     of the path itself.
//  2. Checkout latency with notifications slowed by a slow-consumer fault
//     of 50 ms, and before the fault for reference:
//     FLOTILLA_BENCH_CHECKOUTS (default 200) orders per mode and phase, 8
//     shoppers at once, each filling its cart first, measured on POST
//     /checkout alone through checkout's balancer.
//  3. Run first, on the idle bus: the bus's memory with
//     FLOTILLA_BENCH_RETAINED (default 1,000,000) messages of 100 bytes
//     retained in a file stream, published asynchronously as fast as the
//     bus takes them for at most 60 s: the engine's figure for its
//     container (less the page cache, median of three samples), and the
//     stream's bytes; the stream is deleted after.
//
// It skips without Docker, and when this host does not reach the project
// network (the bus publishes no port).
func BenchmarkBus(b *testing.B) {
	if testing.Short() {
		b.Skip("needs the Docker engine; skipped in -short mode")
	}
	msgs := dockertest.EnvInt(b, "FLOTILLA_BENCH_MESSAGES", 5000)
	trials := dockertest.EnvInt(b, "FLOTILLA_BENCH_TRIALS", 3)
	checkouts := dockertest.EnvInt(b, "FLOTILLA_BENCH_CHECKOUTS", 200)
	retained := dockertest.EnvInt(b, "FLOTILLA_BENCH_RETAINED", 1_000_000)
	paced := dockertest.EnvInt(b, "FLOTILLA_BENCH_PACED", 300)
	pacedRate := dockertest.EnvInt(b, "FLOTILLA_BENCH_PACED_RATE", 100)

	drv := dockertest.New(b)
	refs := imagestest.Images(b)
	st, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ctrl := controller.New(controller.Options{Runtime: drv, Store: st, Images: refs, StopTimeout: 2 * time.Second, BusSecret: bustest.Secret})
	inj := faults.New(faults.Options{Controller: ctrl, Runtime: drv})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { ctrl.Run(ctx); close(runDone) }()
	b.Cleanup(func() { cancel(); <-runDone })

	fast := spec.Probe{PeriodMs: 250, TimeoutMs: 200}
	none, rr := spec.Balancer{Policy: spec.PolicyNone}, spec.Balancer{Policy: spec.PolicyRoundRobin}
	groups := []spec.Group{
		{Name: "bus", Service: "bus", Replicas: 1, Resources: spec.Resources{MemoryMiB: busBenchMemMiB}, Balancer: none, Probe: fast},
		{Name: "notifications", Service: "notifications", Replicas: 1, Probe: fast},
		{Name: "inventory", Service: "inventory", Replicas: 1, Probe: fast},
		{Name: "analytics", Service: "analytics", Replicas: 1, Probe: fast},
		{Name: "catalog", Service: "catalog", Replicas: 1, Balancer: none, Probe: fast},
		{Name: "orders", Service: "orders", Replicas: 1, Balancer: none, Probe: fast},
		{Name: "cart", Service: "cart", Replicas: 1, Balancer: rr, Probe: fast},
		{Name: "checkout", Service: "checkout", Replicas: 1, Settings: map[string]string{"events": "bus"}, Balancer: rr, Probe: fast},
		{Name: "httpcheckout", Service: "checkout", Replicas: 1, Balancer: rr, Probe: fast},
	}
	for _, g := range groups {
		if _, _, err := ctrl.PutGroup(ctx, g); err != nil {
			b.Fatalf("put group %s: %v", g.Name, err)
		}
	}
	bus := benchReady(b, ctrl, drv, "bus")
	addr := bustest.Addr(b, replica.Replica{NetworkAddress: bus.NetworkAddress}, spec.BusClientPort)
	for _, s := range subscriberServices {
		benchReady(b, ctrl, drv, s)
	}
	checkoutUser := bustest.Connect(b, addr, "checkout")
	admin := bustest.Connect(b, addr, access.Admin)

	// 3, run first: the bus's memory at retained messages, from a bus that
	// did nothing else yet; the stream is deleted after.
	mem := retention(b, ctx, drv, bus.ID, admin, retained)

	// 1. Fanout.
	fl := &fanout{b: b, ctrl: ctrl, admin: admin, checkout: checkoutUser, addr: addr}
	fl.bareSetup(ctx)
	// Each trial runs each way twice: a burst of msgs as fast as the
	// stream takes them, for the rate, and paced msgs at a rate each way
	// keeps up with, for the latency of the path without a queue.
	every := time.Second / time.Duration(pacedRate)
	type wayResult struct{ burst, paced []fanoutResult }
	results := map[string]*wayResult{"flotilla": {}, "bare": {}, "bare 1": {}}
	b.ResetTimer()
	for trial := range trials {
		ways := []func(string, int, time.Duration) fanoutResult{
			func(run string, n int, every time.Duration) fanoutResult { return fl.flotilla(ctx, run, n, every) },
			func(run string, n int, every time.Duration) fanoutResult { return fl.bare(ctx, run, n, 0, every) },
			func(run string, n int, every time.Duration) fanoutResult { return fl.bare(ctx, run, n, 1, every) },
		}
		if trial%2 == 1 {
			slices.Reverse(ways)
		}
		for _, w := range ways {
			r := w(fmt.Sprintf("b%d", trial), msgs, 0)
			p := w(fmt.Sprintf("p%d", trial), paced, every)
			results[r.way].burst = append(results[r.way].burst, r)
			results[r.way].paced = append(results[r.way].paced, p)
			b.Logf("fanout trial %d %s: burst %.0f delivered/s, p50 %s p99 %s (%d redelivered, %d failed acks); paced at %d/s: p50 %s p99 %s", trial+1, r.way,
				r.rate, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.redelivered, r.ackErrors, pacedRate, p.p50.Round(time.Microsecond), p.p99.Round(time.Microsecond))
		}
	}
	fl.bareTeardown(ctx)

	// 2. Checkout, each mode without and then with a slow subscriber.
	cartURL := benchBalancer(b, ctrl, "cart")
	modes := map[string]checkoutResult{}
	var slow faults.Fault
	for _, phase := range []string{"unslowed", "slowed"} {
		if phase == "slowed" {
			if slow, err = inj.InjectFault(ctx, faults.Spec{Kind: faults.SlowConsumer, Group: "notifications", LatencyMs: busBenchSlowMs}); err != nil {
				b.Fatal(err)
			}
		}
		for _, m := range []struct{ mode, group string }{{"bus", "checkout"}, {"http", "httpcheckout"}} {
			key := m.mode + "-" + phase
			modes[key] = checkoutRun(b, ctx, cartURL, benchBalancer(b, ctrl, m.group), key, checkouts)
			b.Logf("checkout events=%s, %s: p50 %s p99 %s (%d ok)", m.mode, phase, modes[key].p50, modes[key].p99, modes[key].n)
		}
	}
	if _, err := inj.RevertFault(ctx, slow.ID); err != nil {
		b.Error(err)
	}
	b.StopTimer()

	// The table.
	med := func(rs []fanoutResult, f func(fanoutResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	rate := func(r fanoutResult) float64 { return r.rate }
	p50 := func(r fanoutResult) float64 { return float64(r.p50) / 1e6 }
	p99 := func(r fanoutResult) float64 { return float64(r.p99) / 1e6 }
	flotilla, bare, bare1 := results["flotilla"], results["bare"], results["bare 1"]
	fRate, bRate, b1Rate := med(flotilla.burst, rate), med(bare.burst, rate), med(bare1.burst, rate)
	ratio := fRate / bRate
	verdict := "met"
	if ratio < busBenchTarget {
		verdict = "NOT met"
	}
	fmt.Printf("\nbus: fanout 1 -> 3 durable consumers, 1 KiB messages, %d trial(s) in alternating order, medians\n", trials)
	fmt.Printf("flotilla = checkout publishes, notifications/inventory/analytics apply (ledger record + ack, up to 8 messages at once per replica);\n")
	fmt.Printf("bare = nats.go durable pull consumers acking, same server, with the library's default batching;\n")
	fmt.Printf("bare 1 = the same pulling one message at a time (no ledger).\n")
	fmt.Printf("burst: %d messages as fast as the stream acks them (at most %d in flight), latency queueing included;\n", msgs, busBenchWindow)
	fmt.Printf("paced: %d messages at %d/s. Latency = publish to ack (flotilla: to its ledger record, written just before)\n\n", paced, pacedRate)
	fmt.Printf("  %-34s %12s %12s %8s  %-16s %12s %8s\n", "metric", "flotilla", "bare", "ratio", "target", "bare 1", "ratio")
	fmt.Printf("  %-34s %12.0f %12.0f %7.2fx  >= %.1fx %-8s %12.0f %7.2fx\n", "burst: delivered messages/s", fRate, bRate, ratio, busBenchTarget, verdict, b1Rate, fRate/b1Rate)
	lrow := func(name string, pick func(*wayResult) []fanoutResult, q func(fanoutResult) float64) {
		f, b0, b1 := med(pick(flotilla), q), med(pick(bare), q), med(pick(bare1), q)
		fmt.Printf("  %-34s %12.1f %12.1f %7.2fx  %-16s %12.1f %7.2fx\n", name, f, b0, f/b0, "", b1, f/b1)
	}
	burst := func(w *wayResult) []fanoutResult { return w.burst }
	pacedOf := func(w *wayResult) []fanoutResult { return w.paced }
	lrow("burst: publish-to-ack p50 (ms)", burst, p50)
	lrow("burst: publish-to-ack p99 (ms)", burst, p99)
	lrow("paced: publish-to-ack p50 (ms)", pacedOf, p50)
	lrow("paced: publish-to-ack p99 (ms)", pacedOf, p99)
	hb, hh := modes["bus-slowed"], modes["http-slowed"]
	fmt.Printf("\n  checkout (POST /checkout through its balancer), %d orders per mode and phase, %d at once;\n", checkouts, busBenchConc)
	fmt.Printf("  slowed = notifications slowed %d ms per event (a slow-consumer fault); unslowed = without the fault\n", busBenchSlowMs)
	fmt.Printf("  %-34s %12s %12s %8s\n", "metric", "events=bus", "events=http", "bus/http")
	for _, phase := range []string{"unslowed", "slowed"} {
		mb, mh := modes["bus-"+phase], modes["http-"+phase]
		fmt.Printf("  %-34s %12.1f %12.1f %7.2fx\n", phase+": checkout p50 (ms)", ms(mb.p50), ms(mh.p50), ms(mb.p50)/ms(mh.p50))
		fmt.Printf("  %-34s %12.1f %12.1f %7.2fx\n", phase+": checkout p99 (ms)", ms(mb.p99), ms(mh.p99), ms(mb.p99)/ms(mh.p99))
	}
	ub, uh := modes["bus-unslowed"], modes["http-unslowed"]
	fmt.Printf("  %-34s %11.2fx %11.2fx\n", "p99 slowed / unslowed", ms(hb.p99)/ms(ub.p99), ms(hh.p99)/ms(uh.p99))
	fmt.Printf("\n  bus memory (group limit %d MiB, not the default %d), file stream of 100-byte messages:\n", busBenchMemMiB, spec.DefaultResources.MemoryMiB)
	reached := ""
	if mem.msgs < uint64(retained) {
		reached = fmt.Sprintf("  (only %d of %d reached in %s)", mem.msgs, retained, busBenchMemBound)
	}
	fmt.Printf("  %-34s %12d%s\n", "messages retained", mem.msgs, reached)
	fmt.Printf("  %-34s %12.1f   (in %s, %.0f msg/s)\n", "stream bytes (MiB)", float64(mem.bytes)/(1<<20), mem.took.Round(100*time.Millisecond), float64(mem.msgs)/mem.took.Seconds())
	fmt.Printf("  %-34s %12.1f   (before: %.1f)\n", "bus container memory (MiB)", float64(mem.after)/(1<<20), float64(mem.before)/(1<<20))
	fmt.Printf("  %-34s   (the engine's figure less the page cache, median of 3 samples; before = the idle bus, measured first)\n", "")
	fmt.Println()

	b.ReportMetric(ratio, "fanout-rate-x")
	b.ReportMetric(fRate/b1Rate, "fanout-rate-vs-1-at-a-time-x")
	b.ReportMetric(ms(hb.p99)/ms(hh.p99), "checkout-p99-bus/http")
	b.ReportMetric(ms(hb.p99)/ms(ub.p99), "checkout-p99-bus-slowed/unslowed")
	b.ReportMetric(float64(mem.after)/(1<<20), "bus-MiB")
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// benchReady waits until group has one ready replica and returns it as the
// runtime lists it.
func benchReady(b *testing.B, ctrl *controller.Controller, drv *docker.Driver, group string) struct{ ID, NetworkAddress string } {
	b.Helper()
	var got struct{ ID, NetworkAddress string }
	dockertest.Poll(b, 120*time.Second, group+" ready", func() error {
		st, err := ctrl.Group(group)
		if err != nil {
			return err
		}
		if st.Ready != 1 || st.Status != controller.StatusConverged || len(st.Replicas) != 1 {
			return fmt.Errorf("group %s: %d ready, status %s %s", group, st.Ready, st.Status, st.Message)
		}
		reps, err := drv.List(context.Background())
		if err != nil {
			return err
		}
		for _, r := range reps {
			if r.ID == st.Replicas[0].ID && r.NetworkAddress != "" {
				got.ID, got.NetworkAddress = r.ID, r.NetworkAddress
				return nil
			}
		}
		return fmt.Errorf("%s's replica is not listed with a network address", group)
	})
	return got
}

func benchBalancer(b *testing.B, ctrl *controller.Controller, group string) string {
	var endpoint string
	dockertest.Poll(b, 120*time.Second, group+" in rotation", func() error {
		st, err := ctrl.Group(group)
		if err != nil {
			return err
		}
		if st.Ready != 1 || st.Endpoint == "" {
			return fmt.Errorf("%s: %d ready, status %s %s", group, st.Ready, st.Status, st.Message)
		}
		for _, r := range st.Replicas {
			if r.Traffic == nil || r.Traffic.State != "ready" {
				return fmt.Errorf("%s not in rotation", r.Name)
			}
		}
		endpoint = "http://" + st.Endpoint
		return nil
	})
	return endpoint
}

type fanoutResult struct {
	way      string
	rate     float64
	p50, p99 time.Duration
	// redelivered counts the bare consumers' deliveries past the first
	// (after the ack wait), ackErrors their failed acks.
	redelivered, ackErrors int64
}

// fanout runs the fanout trials of both ways.
type fanout struct {
	b               *testing.B
	ctrl            *controller.Controller
	admin, checkout *client.Client
	addr            string
	bareConns       []*client.Client
	bareStream      jetstream.Stream
	bareConsumers   []jetstream.ConsumerConfig
}

const bareStream, bareSubject = "BENCHFANOUT", "bench.fanout"

// bareSetup declares a stream configured as ORDERS is; each bare run
// makes three durable consumers configured as ORDERS's are, fresh, so that
// no run inherits another's pull requests or pending messages.
//
// Seen in full runs: about one bare 1 burst in three, one consumer pulling
// one message at a time stalls until its pull request expires (30 s, the
// library's default) and then goes on; its messages arrive late on their
// first delivery (none redelivered, no ack failed). The services' loop
// pulls the same way. The medians keep such a trial out of the table.
func (f *fanout) bareSetup(ctx context.Context) {
	s, err := f.admin.JS.Stream(ctx, "ORDERS")
	if err != nil {
		f.b.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.Name, cfg.Subjects = bareStream, []string{bareSubject}
	if f.bareStream, err = f.admin.JS.CreateStream(ctx, cfg); err != nil {
		f.b.Fatal(err)
	}
	for _, name := range subscriberServices {
		c, err := s.Consumer(ctx, name)
		if err != nil {
			f.b.Fatal(err)
		}
		f.bareConsumers = append(f.bareConsumers, c.CachedInfo().Config)
		// Each consumer has a connection of its own, as a service would.
		f.bareConns = append(f.bareConns, bustest.Connect(f.b, f.addr, access.Admin))
	}
}

func (f *fanout) bareTeardown(ctx context.Context) {
	if err := f.admin.JS.DeleteStream(ctx, bareStream); err != nil {
		f.b.Error(err)
	}
}

// order is a 1 KiB order event body.
func benchOrder(id string) []byte {
	o := consume.Order{OrderID: id, Shopper: "bench", TotalCents: 1200, PlacedAt: time.Now().UTC(),
		Items: []consume.OrderItem{{ProductID: "tea-mug", Quantity: 1, PriceCents: 1200}}}
	body, _ := json.Marshal(o)
	// A note the services do not read pads it to 1 KiB.
	pad := 1024 - len(body) - len(`,"note":""`)
	return append(body[:len(body)-1], []byte(`,"note":"`+strings.Repeat("x", max(pad, 0))+`"}`)...)
}

// publish publishes n events to subject asynchronously, at most
// busBenchWindow unacknowledged, one every every (0: as fast as the stream
// acknowledges), and returns when each was sent.
func publish(b *testing.B, js jetstream.JetStream, subject, prefix string, n int, every time.Duration) []time.Time {
	sent := make([]time.Time, n)
	start := time.Now()
	for i := range n {
		if every > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * every)))
		}
		if i%busBenchWindow == 0 && i > 0 {
			waitAsync(b, js)
		}
		id := prefix + strconv.Itoa(i)
		m := &nats.Msg{Subject: subject, Data: benchOrder(id), Header: nats.Header{access.EventIDHeader: {id}}}
		sent[i] = time.Now()
		if _, err := js.PublishMsgAsync(m, jetstream.WithMsgID(id)); err != nil {
			b.Fatalf("publish %s: %v", id, err)
		}
	}
	waitAsync(b, js)
	return sent
}

func waitAsync(b *testing.B, js jetstream.JetStream) {
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		b.Fatalf("%d publishes unacknowledged by the stream after 30s", js.PublishAsyncPending())
	}
}

func quantiles(lat []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(lat)
	return lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
}

// flotilla publishes n orders as checkout and waits until each service
// applied them all; it reads when from the services' ledgers.
func (f *fanout) flotilla(ctx context.Context, run string, n int, every time.Duration) fanoutResult {
	prefix := "bench-" + run + "-"
	before := f.applied()
	sent := publish(f.b, f.checkout.JS, access.SubjectOrderPlaced, prefix, n, every)
	bound := 60*time.Second + time.Duration(n)*20*time.Millisecond
	dockertest.Poll(f.b, bound, "every service applied the trial's orders", func() error {
		now := f.applied()
		for _, s := range subscriberServices {
			if now[s]-before[s] < uint64(n) {
				return fmt.Errorf("applied %v, before %v", now, before)
			}
		}
		return nil
	})
	var lat []time.Duration
	var last time.Time
	for _, s := range subscriberServices {
		kv, err := f.admin.JS.KeyValue(ctx, access.AppliedBucket(s))
		if err != nil {
			f.b.Fatal(err)
		}
		w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
		if err != nil {
			f.b.Fatal(err)
		}
		got := 0
		timeout := time.After(60 * time.Second)
	read:
		for {
			select {
			case e := <-w.Updates():
				if e == nil {
					break read
				}
				i, ok := strings.CutPrefix(e.Key(), prefix)
				if !ok {
					continue
				}
				k, err := strconv.Atoi(i)
				if err != nil || k >= n {
					continue
				}
				var rec struct {
					At time.Time `json:"at"`
				}
				if err := json.Unmarshal(e.Value(), &rec); err != nil {
					f.b.Fatalf("%s's ledger entry %s: %v", s, e.Key(), err)
				}
				lat = append(lat, rec.At.Sub(sent[k]))
				if rec.At.After(last) {
					last = rec.At
				}
				got++
			case <-timeout:
				f.b.Fatalf("%s's ledger not read in 60s", s)
			}
		}
		w.Stop()
		if got != n {
			f.b.Fatalf("%s's ledger holds %d of the trial's %d orders", s, got, n)
		}
	}
	p50, p99 := quantiles(lat)
	return fanoutResult{way: "flotilla", rate: float64(3*n) / last.Sub(sent[0]).Seconds(), p50: p50, p99: p99}
}

// bare publishes n events to the bare stream and has its three consumers
// take and ack them.
// batch 1 pulls one message at a time; 0 takes the library's default.
func (f *fanout) bare(ctx context.Context, run string, n, batch int, every time.Duration) fanoutResult {
	way, prefix := "bare", "bare-"+run+"-"
	var opts []jetstream.PullConsumeOpt
	if batch > 0 {
		way, prefix = "bare 1", "bare1-"+run+"-"
		opts = append(opts, jetstream.PullMaxMessages(batch))
	}
	acked := make([][]time.Time, len(f.bareConns))
	var redelivered, ackErrors atomic.Int64
	var wg sync.WaitGroup
	var ccs []jetstream.ConsumeContext
	for c, conn := range f.bareConns {
		acked[c] = make([]time.Time, n)
		cfg := f.bareConsumers[c]
		cfg.Durable, cfg.Name, cfg.DeliverPolicy = strings.ReplaceAll(prefix, "-", "_")+subscriberServices[c], "", jetstream.DeliverNewPolicy
		if _, err := f.bareStream.CreateConsumer(ctx, cfg); err != nil {
			f.b.Fatal(err)
		}
		defer f.bareStream.DeleteConsumer(ctx, cfg.Durable)
		cons, err := conn.JS.Consumer(ctx, bareStream, cfg.Durable)
		if err != nil {
			f.b.Fatal(err)
		}
		wg.Add(n)
		var mu sync.Mutex
		cc, err := cons.Consume(func(m jetstream.Msg) {
			id := m.Headers().Get(access.EventIDHeader)
			if md, err := m.Metadata(); err == nil && md.NumDelivered > 1 {
				redelivered.Add(1)
			}
			if err := m.Ack(); err != nil {
				ackErrors.Add(1)
				return
			}
			now := time.Now()
			i, ok := strings.CutPrefix(id, prefix)
			k, err := strconv.Atoi(i)
			if !ok || err != nil || k >= n {
				return
			}
			mu.Lock()
			if acked[c][k].IsZero() {
				acked[c][k] = now
				wg.Done()
			}
			mu.Unlock()
		}, opts...)
		if err != nil {
			f.b.Fatal(err)
		}
		ccs = append(ccs, cc)
	}
	sent := publish(f.b, f.admin.JS, bareSubject, prefix, n, every)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60*time.Second + time.Duration(n)*20*time.Millisecond):
		f.b.Fatal("the bare consumers did not take every message in time")
	}
	for _, cc := range ccs {
		cc.Stop()
	}
	var lat []time.Duration
	var last time.Time
	for c := range acked {
		for k, t := range acked[c] {
			lat = append(lat, t.Sub(sent[k]))
			if t.After(last) {
				last = t
			}
		}
	}
	p50, p99 := quantiles(lat)
	return fanoutResult{way: way, rate: float64(3*n) / last.Sub(sent[0]).Seconds(), p50: p50, p99: p99,
		redelivered: redelivered.Load(), ackErrors: ackErrors.Load()}
}

type checkoutResult struct {
	n        int
	p50, p99 time.Duration
}

// checkoutRun places n orders through checkoutURL, busBenchConc shoppers at
// once, each filling its cart first, and times POST /checkout.
func checkoutRun(b *testing.B, ctx context.Context, cartURL, checkoutURL, mode string, n int) checkoutResult {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var errs []string
	next := make(chan int)
	var wg sync.WaitGroup
	for range busBenchConc {
		wg.Go(func() {
			for i := range next {
				shopper := fmt.Sprintf("bench-%s-%d", mode, i)
				if code, _, body, err := shopCall(ctx, "POST", cartURL+"/cart/items", shopper, `{"productId":"tea-mug","quantity":1}`); err != nil || code != http.StatusOK {
					mu.Lock()
					errs = append(errs, fmt.Sprintf("cart %d %s %v", code, body, err))
					mu.Unlock()
					continue
				}
				start := time.Now()
				code, _, body, err := shopCall(ctx, "POST", checkoutURL+"/checkout", shopper, "")
				took := time.Since(start)
				mu.Lock()
				if err != nil || code != http.StatusCreated {
					errs = append(errs, fmt.Sprintf("checkout %d %s %v", code, body, err))
				} else {
					lat = append(lat, took)
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		b.Errorf("events=%s: %d of %d orders failed, e.g. %s", mode, len(errs), n, errs[0])
	}
	if len(lat) == 0 {
		b.Fatalf("events=%s: no order went through", mode)
	}
	p50, p99 := quantiles(lat)
	return checkoutResult{n: len(lat), p50: p50, p99: p99}
}

type retentionResult struct {
	msgs, bytes   uint64
	took          time.Duration
	before, after uint64
}

// retention fills a file stream with n 100-byte messages, bounded by
// busBenchMemBound, and reads the bus container's memory.
func retention(b *testing.B, ctx context.Context, drv *docker.Driver, busID string, admin *client.Client, n int) retentionResult {
	const stream, subject = "BENCHRETAIN", "bench.retain"
	var r retentionResult
	u, err := drv.Stats(ctx, busID)
	if err != nil {
		b.Fatal(err)
	}
	r.before = u.MemBytes
	js, err := jetstream.New(admin.Conn, jetstream.WithPublishAsyncMaxPending(busBenchMemWindow))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy}); err != nil {
		b.Fatal(err)
	}
	data := []byte(strings.Repeat("m", 100))
	start := time.Now()
	deadline := start.Add(busBenchMemBound)
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		if i%busBenchMemWindow == 0 && i > 0 {
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(30 * time.Second):
				b.Fatalf("%d publishes unacknowledged after 30s", js.PublishAsyncPending())
			}
		}
		if _, err := js.PublishAsync(subject, data); err != nil {
			b.Fatalf("publish %d: %v", i, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		b.Fatalf("%d publishes unacknowledged after 30s", js.PublishAsyncPending())
	}
	r.took = time.Since(start)
	s, err := js.Stream(ctx, stream)
	if err != nil {
		b.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	r.msgs, r.bytes = info.State.Msgs, info.State.Bytes
	// Three samples of the engine's, a second apart once the store settled;
	// their median (the Go heap moves with its collections).
	time.Sleep(2 * time.Second)
	var samples []uint64
	for range 3 {
		if u, err = drv.Stats(ctx, busID); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, u.MemBytes)
		time.Sleep(time.Second)
	}
	slices.Sort(samples)
	r.after = samples[1]
	if err := js.DeleteStream(ctx, stream); err != nil {
		b.Error(err)
	}
	if r.msgs == 0 {
		b.Fatal("the retention stream holds nothing")
	}
	return r
}

// applied sums GET /stats's applied over each service's replicas.
func (f *fanout) applied() map[string]uint64 {
	out := map[string]uint64{}
	for _, s := range subscriberServices {
		for _, c := range bustest.Stats(f.b, f.ctrl, s) {
			out[s] += c.Applied
		}
	}
	return out
}

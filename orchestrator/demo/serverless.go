package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flotilla/flotilla/orchestrator/autoscale"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/sample-services/receipt"
)

// recommendAuto is recommend's autoscaling in this demo: the scenario's,
// with windows of seconds so each lesson shows quickly.
var recommendAuto = spec.Autoscale{Min: 0, Max: 4, TargetConcurrency: 2, IdleAfter: "6s", StableWindow: "6s", PanicWindow: "2s"}

// receiptIdleAfter is how long receipt's queue stays empty before it
// sleeps in this demo: long enough to count its receipts once the
// shoppers stop, since its replicas keep them in memory.
const receiptIdleAfter = "10s"

const (
	// recommendPath is what a shopper asks recommend.
	recommendPath = "/recommend/tea-mug"
	// burstClients ask recommend over and over for burstFor, each pausing
	// burstPause between answers so the engine keeps some CPU to start
	// replicas with; burstSettle is how long the watch goes on after it.
	burstClients = 40
	burstFor     = 6 * time.Second
	burstPause   = 10 * time.Millisecond
	burstSettle  = 15 * time.Second
	// herdSize requests arrive together at recommend asleep.
	herdSize = 100
	// sleepWithin bounds each wait for a group to go back to zero.
	sleepWithin = 90 * time.Second
)

// serverless shows stage 8: functions that cost nothing at zero, wake on
// a request or a message, scale out under a burst and sleep again.
func serverless(ctx context.Context, r *run) error {
	if err := r.scenario(ctx, "serverless"); err != nil {
		return err
	}
	r.say("Two functions join the shop: recommend answers GET /recommend/ID, receipt renders a receipt per order.")
	r.say("While nobody uses them no replica runs. To show each lesson in seconds, recommend sleeps after %s idle and", recommendAuto.IdleAfter)
	r.say("receipt %s after its queue empties (the scenario says 30s for both), and recommend scales on a %s stable", receiptIdleAfter, recommendAuto.StableWindow)
	r.say("window (60s), up to %d replicas at %g requests in flight each.", recommendAuto.Max, recommendAuto.TargetConcurrency)
	r.look("the Serverless panel on the recommend and receipt cards: serving, want and pooled over time, the starts,")
	r.look("the latest cold starts and the autoscaler's decisions.")
	if err := r.autoscaleGroup(ctx, "recommend", recommendAuto); err != nil {
		return err
	}
	rst, err := r.group(ctx, "receipt")
	if err != nil {
		return err
	}
	if rst.Autoscale == nil {
		return fmt.Errorf("group receipt is not autoscaled")
	}
	ra := rst.Autoscale.Settings
	ra.IdleAfter = receiptIdleAfter
	if err := r.autoscaleGroup(ctx, "receipt", ra); err != nil {
		return err
	}
	client := &http.Client{Timeout: 40 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: herdSize}}
	defer client.CloseIdleConnections()

	// 1. Asleep.
	r.say("")
	r.say("1. recommend at zero.")
	r.look("recommend's card has no replica tile, only its balancer's endpoint.")
	st, err := r.asleep(ctx, "recommend", 0, sleepWithin)
	if err != nil {
		return err
	}
	r.check(len(st.Replicas) == 0 && st.Autoscale.Want == 0, "recommend runs no replica, so it holds no memory (%d replicas, want %d)", len(st.Replicas), st.Autoscale.Want)
	r.check(st.Endpoint != "", "its balancer still listens, at %s", st.Endpoint)
	endpoint := st.Endpoint

	// 2. The first request wakes it.
	r.say("")
	r.say("2. A shopper asks GET %s on recommend's balancer.", recommendPath)
	r.look("under Latest cold starts, its waterfall: held at the balancer, created, started, first ready probe, answered.")
	sent := time.Now()
	status, took, err := timedGet(ctx, client, endpoint, recommendPath)
	if err != nil {
		return fmt.Errorf("the first request to recommend: %w", err)
	}
	r.say("It was answered %d after %s: held at the balancer while a replica started.", status, ms(took))
	cold, err := r.coldStart(ctx, "recommend", sent)
	if err != nil {
		return err
	}
	r.waterfall(cold)
	r.check(status == http.StatusOK && cold.Status == http.StatusOK && cold.From == "zero",
		"the request was answered %d, by a replica woken from %s (%s)", status, cold.From, cold.Replica)
	missing := missingPhases(cold, "wake decided", "create called", "created", "started", "first ready probe", "forwarded", "answered")
	r.check(len(missing) == 0, "its timeline has every phase of a start from zero (missing: %s)", orNone(missing))
	answered := time.Now()

	// 3. Idle, it sleeps.
	r.say("")
	r.say("3. Nobody asks for %s: recommend goes back to zero.", recommendAuto.IdleAfter)
	r.look("recommend-1 disappears; under Autoscaler decisions, an idle one.")
	st, err = r.asleep(ctx, "recommend", 0, sleepWithin)
	if err != nil {
		return err
	}
	r.say("It was back at zero %s after its last answer.", seconds(time.Since(answered)))
	d, ok := decision(st, answered, func(d autoscale.Decision) bool { return d.Mode == autoscale.ModeIdle && d.To == 0 })
	r.check(ok, "the autoscaler decided it: %s", d.Reason)

	// 4. A burst scales it out.
	r.say("")
	r.say("4. A burst: %d shoppers ask recommend at once, again and again, for %s.", burstClients, burstFor)
	r.look("the serving and want lines climb, never past %d; the decisions say panic.", recommendAuto.Max)
	began := time.Now()
	b, err := r.burst(ctx, client, endpoint)
	if err != nil {
		return err
	}
	r.say("%d requests in %s, %d not answered 200; at most %d replicas wanted, %d serving (%s after the burst began), %d in all.",
		b.ok+b.failed, seconds(b.span), b.failed, b.maxWant, b.maxServing, seconds(b.servingAt), b.maxReplicas)
	r.check(b.maxWant > 1 && b.maxServing > 1, "it scaled out: %d replicas wanted, %d serving at once", b.maxWant, b.maxServing)
	r.check(b.maxWant <= recommendAuto.Max && b.maxReplicas <= recommendAuto.Max, "never past its max %d: at most %d wanted, %d replicas", recommendAuto.Max, b.maxWant, b.maxReplicas)
	r.check(b.failed == 0, "every request was answered: %d of %d", b.ok, b.ok+b.failed)
	st, err = r.group(ctx, "recommend")
	if err != nil {
		return err
	}
	d, ok = decision(st, began, func(d autoscale.Decision) bool {
		return (d.Mode == autoscale.ModePanic || d.Mode == autoscale.ModeStable) && d.To > d.From && d.From >= 1
	})
	r.check(ok, "the autoscaler added replicas (%s %d → %d): %s", d.Mode, d.From, d.To, d.Reason)

	// 5. A herd at zero.
	r.say("")
	r.say("5. Once recommend is asleep again, %d requests arrive together.", herdSize)
	r.look("under Starts, cold goes up by one and held by about %d; held, failed does not move.", herdSize)
	if st, err = r.asleep(ctx, "recommend", 0, sleepWithin); err != nil {
		return err
	}
	startsBefore := st.Autoscale.Starts.Cold
	sent = time.Now()
	bad := herd(ctx, client, endpoint, herdSize)
	herdCold, err := r.coldStart(ctx, "recommend", sent)
	if err != nil {
		return err
	}
	st, err = r.group(ctx, "recommend")
	if err != nil {
		return err
	}
	woke := st.Autoscale.Starts.Cold - startsBefore
	r.say("The herd's cold start: %s, %d requests held by it.", ms(msDur(herdCold.TotalMs)), herdCold.Held)
	r.check(woke == 1 && herdCold.From == "zero", "the herd woke it exactly once (%d cold starts)", woke)
	r.check(len(bad) == 0, "no request failed: %d of %d not answered 200%s", len(bad), herdSize, firstOf(bad))

	// 6. A warm pool.
	r.say("")
	r.say("6. recommend gets a warm pool of one: a replica started, then paused, out of rotation, its memory kept.")
	r.look("a paused recommend tile, marked pooled; the next waterfall has unpaused instead of created and started.")
	pooled := recommendAuto
	pooled.WarmPool = 1
	if err := r.autoscaleGroup(ctx, "recommend", pooled); err != nil {
		return err
	}
	if st, err = r.asleep(ctx, "recommend", 1, sleepWithin); err != nil {
		return err
	}
	// The engine samples memory every other second.
	waitFor(ctx, 5*time.Second, func() (bool, error) {
		st, err = r.group(ctx, "recommend")
		return err == nil && st.Autoscale != nil && st.Autoscale.PoolMemBytes > 0, err
	})
	r.say("%s waits paused in the pool, holding %s.", st.Replicas[0].Name, mib(st.Autoscale.PoolMemBytes))
	sent = time.Now()
	status, took, err = timedGet(ctx, client, endpoint, recommendPath)
	if err != nil {
		return fmt.Errorf("the request to recommend with a warm pool: %w", err)
	}
	warm, err := r.coldStart(ctx, "recommend", sent)
	if err != nil {
		return err
	}
	r.waterfall(warm)
	zero := min(cold.TotalMs, herdCold.TotalMs)
	ratio := 0.0
	if warm.TotalMs > 0 {
		ratio = zero / warm.TotalMs
	}
	r.say("From the pool: %s (answered %d after %s here). From zero: %s for one request, %s for the herd.",
		ms(msDur(warm.TotalMs)), status, ms(took), ms(msDur(cold.TotalMs)), ms(msDur(herdCold.TotalMs)))
	made := len(missingPhases(warm, "create called", "created", "started")) < 3
	r.check(status == http.StatusOK && warm.From == "pool" && !made,
		"the request thawed the pooled replica instead of making one: answered %d, from %s", status, warm.From)
	r.check(ratio >= 2, "a wake from the pool is %.1f times faster than the fastest from zero", ratio)

	// 7. receipt follows its queue.
	r.say("")
	r.say("7. receipt scales on the orders waiting on its durable consumer, not on requests.")
	r.look("the Message bus panel's receipt consumer, and receipt's card waking and sleeping with its backlog.")
	if err := r.receiptLesson(ctx); err != nil {
		return err
	}

	r.say("")
	r.say("Figures: a start from zero %s (a herd of %d: %s), from the warm pool %s; up to %d replicas under %d clients.",
		ms(msDur(cold.TotalMs)), herdSize, ms(msDur(herdCold.TotalMs)), ms(msDur(warm.TotalMs)), b.maxServing, burstClients)
	r.say("Scale to zero trades the memory of idle replicas for a cold start paid by the first shopper; a warm pool")
	r.say("buys most of that wait back for the memory of the paused replicas.")
	return nil
}

// receiptLesson wakes receipt with orders and sees it sleep once its
// queue drains.
func (r *run) receiptLesson(ctx context.Context) error {
	var c = r.consumer(ctx, "ORDERS", "receipt")
	err := waitFor(ctx, sleepWithin, func() (bool, error) {
		c = r.consumer(ctx, "ORDERS", "receipt")
		st, err := r.group(ctx, "receipt")
		return err == nil && c.Name != "" && c.Pending == 0 && c.AckPending == 0 && len(st.Replicas) == 0, err
	})
	if err != nil {
		return fmt.Errorf("receipt at zero with no order waiting (consumer %+v): %w", c, err)
	}
	r.say("receipt is asleep and no order waits for it.")
	seqBefore := r.stream(ctx, "ORDERS").LastSeq
	r.say("10 shoppers start walking through the shop; every checkout publishes orders.placed.")
	began := time.Now()
	id, err := r.startLoad(ctx, journeys("gateway", 10))
	if err != nil {
		return err
	}
	var st controller.GroupStatus
	err = waitFor(ctx, time.Minute, func() (bool, error) {
		st, err = r.group(ctx, "receipt")
		return err == nil && st.Ready > 0, err
	})
	r.check(err == nil, "orders woke receipt: %d ready after %s", st.Ready, seconds(time.Since(began)))
	if err != nil {
		return nil
	}
	if d, ok := decision(st, began, func(d autoscale.Decision) bool { return d.To > d.From }); ok {
		r.say("The autoscaler's reason: %s.", d.Reason)
	}
	if err := sleep(ctx, 5*time.Second); err != nil {
		return err
	}
	if _, err := r.api.StopLoad(ctx, id); err != nil {
		return fmt.Errorf("stop the shoppers: %w", err)
	}
	r.loads = slices.DeleteFunc(r.loads, func(l string) bool { return l == id })
	stopped := time.Now()
	r.say("The shoppers stop: receipt works through what is left.")
	// Checkouts under way when the shoppers stopped still place their
	// orders: wait until the orders placed and the receipts rendered agree
	// twice in a row, read from the services themselves, before receipt
	// sleeps and its replicas' figures go with them.
	var (
		placed  int
		rs      receiptFigures
		agreed  int
		lastErr error
	)
	err = waitFor(ctx, time.Minute, func() (bool, error) {
		if placed, lastErr = r.ordersSince(ctx, began); lastErr == nil {
			// A replica still starting does not answer yet: try again.
			rs, lastErr = r.receipts(ctx)
		}
		if lastErr == nil && rs.replicas > 0 && rs.rendered == uint64(placed) {
			agreed++
		} else {
			agreed = 0
		}
		return agreed >= 2, nil
	})
	if err != nil && lastErr != nil {
		err = fmt.Errorf("%w: %v", err, lastErr)
	}
	r.say("%d orders placed; %d receipts rendered by %d replicas, %d repeats recognised and not rendered again.",
		placed, rs.rendered, rs.replicas, rs.duplicates)
	r.check(err == nil && placed > 0, "every order got exactly one receipt, each acknowledged only once rendered: %d of %d%s", rs.rendered, placed, errSuffix(err))
	if err != nil {
		return nil
	}
	// The bus panel is a reading a second old.
	var published uint64
	err = waitFor(ctx, 10*time.Second, func() (bool, error) {
		c = r.consumer(ctx, "ORDERS", "receipt")
		published = r.stream(ctx, "ORDERS").LastSeq - seqBefore
		return c.Name != "" && published == uint64(placed) && c.Pending == 0 && c.AckPending == 0, nil
	})
	r.check(err == nil, "the bus panel agrees: %d orders published on orders.placed, the receipt consumer has %d waiting and %d unacknowledged",
		published, c.Pending, c.AckPending)
	st, err = r.asleep(ctx, "receipt", 0, sleepWithin)
	if err != nil {
		return err
	}
	r.say("receipt was back at zero %s after the shoppers stopped.", seconds(time.Since(stopped)))
	d, ok := decision(st, stopped, func(d autoscale.Decision) bool { return d.Mode == autoscale.ModeIdle && d.To == 0 })
	r.check(ok, "it slept once the queue stayed empty: %s", d.Reason)
	return nil
}

// autoscaleGroup gives a group new autoscale settings, its other fields
// as they are.
func (r *run) autoscaleGroup(ctx context.Context, name string, a spec.Autoscale) error {
	st, err := r.group(ctx, name)
	if err != nil {
		return err
	}
	g := specOf(st, st.Balancer.Policy)
	g.Replicas, g.Autoscale = 0, &a
	if _, _, err := r.api.PutGroup(ctx, g); err != nil {
		return fmt.Errorf("autoscale settings of %s: %w", name, err)
	}
	return nil
}

// asleep waits until the group serves no replica: its autoscaler wants
// none and its only replicas are the pool's, paused.
func (r *run) asleep(ctx context.Context, name string, pool int, timeout time.Duration) (controller.GroupStatus, error) {
	var st controller.GroupStatus
	err := waitFor(ctx, timeout, func() (bool, error) {
		var err error
		if st, err = r.group(ctx, name); err != nil || st.Autoscale == nil {
			return false, err
		}
		if st.Autoscale.Want != 0 || len(st.Autoscale.Pool) != pool || len(st.Replicas) != pool {
			return false, nil
		}
		for _, rep := range st.Replicas {
			if !rep.Pooled || rep.State != replica.StatePaused {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return st, fmt.Errorf("%s asleep with %d pooled within %s: %w", name, pool, timeout, err)
	}
	return st, nil
}

// coldStart waits for the timeline of the group's wake by a request sent
// at sent.
func (r *run) coldStart(ctx context.Context, name string, sent time.Time) (controller.ColdStart, error) {
	var cs controller.ColdStart
	err := waitFor(ctx, 10*time.Second, func() (bool, error) {
		st, err := r.group(ctx, name)
		if err != nil || st.Autoscale == nil || len(st.Autoscale.ColdStarts) == 0 {
			return false, err
		}
		cs = st.Autoscale.ColdStarts[len(st.Autoscale.ColdStarts)-1]
		return !cs.At.Before(sent.Add(-time.Second)), nil
	})
	if err != nil {
		return cs, fmt.Errorf("the cold start of %s: %w", name, err)
	}
	return cs, nil
}

// waterfall prints a cold start's phases as text bars on one time axis.
func (r *run) waterfall(cs controller.ColdStart) {
	const width = 40
	r.say("   Cold start of %s from %s, %s in all:", cs.Replica, cs.From, ms(msDur(cs.TotalMs)))
	for _, p := range cs.Phases {
		at, n := 0, 1
		if cs.TotalMs > 0 {
			at = min(int(p.StartMs/cs.TotalMs*width), width-1)
			n = max(1, min(int(p.Ms/cs.TotalMs*width+0.5), width-at))
		}
		r.say("   %-18s +%8.1f ms %8.1f ms  |%s%s%s|", p.Name, p.StartMs, p.Ms,
			strings.Repeat(" ", at), strings.Repeat("█", n), strings.Repeat(" ", width-at-n))
	}
}

// burstFigures are what a burst saw: servingAt is when the most replicas
// served, from its start.
type burstFigures struct {
	ok, failed                       int
	maxWant, maxServing, maxReplicas int
	span, servingAt                  time.Duration
}

// burst has burstClients ask recommend over and over for burstFor (each
// at most 5000 times), watching the group meanwhile and for up to
// burstSettle after, until as many replicas serve as were wanted.
func (r *run) burst(ctx context.Context, client *http.Client, endpoint string) (burstFigures, error) {
	var (
		f    burstFigures
		mu   sync.Mutex
		wg   sync.WaitGroup
		done = make(chan struct{})
	)
	began := time.Now()
	end := began.Add(burstFor)
	for range burstClients {
		wg.Go(func() {
			for i := 0; i < 5000 && time.Now().Before(end) && ctx.Err() == nil; i++ {
				status, _, err := timedGet(ctx, client, endpoint, recommendPath)
				mu.Lock()
				if err == nil && status == http.StatusOK {
					f.ok++
				} else {
					f.failed++
				}
				mu.Unlock()
				sleep(ctx, burstPause)
			}
		})
	}
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			if st, err := r.group(ctx, "recommend"); err == nil && st.Autoscale != nil {
				serving := 0
				for _, rep := range st.Replicas {
					if rep.State == replica.StateRunning && !rep.Pooled && rep.Traffic != nil && rep.Traffic.State == "ready" {
						serving++
					}
				}
				mu.Lock()
				f.maxWant = max(f.maxWant, st.Autoscale.Want)
				if serving > f.maxServing {
					f.maxServing, f.servingAt = serving, time.Since(began)
				}
				f.maxReplicas = max(f.maxReplicas, len(st.Replicas))
				mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	wg.Wait()
	f.span = time.Since(began)
	// Replicas asked for late in the burst become ready after it.
	err := waitFor(ctx, burstSettle, func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return f.maxWant > 1 && f.maxServing >= f.maxWant, nil
	})
	if err != nil && ctx.Err() != nil {
		return f, err
	}
	close(done)
	<-watched
	mu.Lock()
	defer mu.Unlock()
	return f, nil
}

// herd sends n GETs to recommend at once and returns the answers that
// were not 200.
func herd(ctx context.Context, client *http.Client, endpoint string, n int) []string {
	var (
		mu    sync.Mutex
		bad   []string
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for range n {
		wg.Go(func() {
			<-start
			status, _, err := timedGet(ctx, client, endpoint, recommendPath)
			if err != nil || status != http.StatusOK {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%d %v", status, err))
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	return bad
}

// ordersSince counts the orders the orders service holds that were placed
// since t: it keeps only its latest thousand, so a count of all of them
// stops growing on a busy controller.
func (r *run) ordersSince(ctx context.Context, t time.Time) (int, error) {
	st, err := r.group(ctx, "orders")
	if err != nil {
		return 0, err
	}
	if len(st.Replicas) == 0 {
		return 0, fmt.Errorf("group orders has no replica to ask")
	}
	var list []struct {
		PlacedAt time.Time `json:"placedAt"`
	}
	if err := getJSON(ctx, st.Replicas[0].Address, "/orders", &list); err != nil {
		return 0, fmt.Errorf("the orders: %w", err)
	}
	n := 0
	for _, o := range list {
		if !o.PlacedAt.Before(t) {
			n++
		}
	}
	return n, nil
}

// receiptFigures are the sums of receipt's replicas' GET /stats.
type receiptFigures struct {
	rendered, duplicates uint64
	replicas             int
}

// receipts sums what receipt's replicas rendered, from their GET /stats.
func (r *run) receipts(ctx context.Context) (receiptFigures, error) {
	var out receiptFigures
	st, err := r.group(ctx, "receipt")
	if err != nil {
		return out, err
	}
	for _, rep := range st.Replicas {
		if rep.Address == "" {
			continue
		}
		var s receipt.Stats
		if err := getJSON(ctx, rep.Address, "/stats", &s); err != nil {
			return out, fmt.Errorf("the figures of %s: %w", rep.Name, err)
		}
		out.rendered += s.Rendered
		out.duplicates += s.Duplicates
		out.replicas++
	}
	return out, nil
}

// timedGet sends one GET and returns its status and how long it took.
func timedGet(ctx context.Context, client *http.Client, addr, path string) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, time.Since(start), err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, time.Since(start), nil
}

// decision is the group's latest decision since since that match holds.
func decision(st controller.GroupStatus, since time.Time, match func(autoscale.Decision) bool) (autoscale.Decision, bool) {
	if st.Autoscale == nil {
		return autoscale.Decision{Reason: "no autoscaler"}, false
	}
	for i := len(st.Autoscale.Decisions) - 1; i >= 0; i-- {
		if d := st.Autoscale.Decisions[i]; !d.At.Before(since) && match(d) {
			return d, true
		}
	}
	return autoscale.Decision{Reason: "no such decision"}, false
}

// missingPhases are the names among want that the cold start lacks.
func missingPhases(cs controller.ColdStart, want ...string) []string {
	var out []string
	for _, w := range want {
		if !slices.ContainsFunc(cs.Phases, func(p controller.Phase) bool { return p.Name == w }) {
			out = append(out, w)
		}
	}
	return out
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprintf(" (%v)", err)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func firstOf(bad []string) string {
	if len(bad) == 0 {
		return ""
	}
	return ", first: " + bad[0]
}

func msDur(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

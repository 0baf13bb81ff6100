package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/flotilla/flotilla/orchestrator/bus"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/faults"
	"github.com/flotilla/flotilla/sample-services/shopper"
)

// subscribers are the services that follow each order: each has its own
// durable consumer on ORDERS.
var subscribers = []string{"notifications", "inventory", "analytics"}

// subscriberStats is a subscriber replica's GET /stats.
type subscriberStats struct {
	Applied     uint64 `json:"applied"`
	Duplicates  uint64 `json:"duplicates"`
	Failed      uint64 `json:"failed"`
	LedgerCount int64  `json:"ledgerCount"`
}

// serviceStats is a subscriber group's figures: the sums over its running
// replicas, the ledger of what the service ever applied, and how many of
// its replicas applied anything.
type serviceStats struct {
	applied, duplicates, failed uint64
	ledger                      int64
	busy                        int
}

func events(ctx context.Context, r *run) error {
	if err := r.scenario(ctx, "event-driven"); err != nil {
		return err
	}
	r.say("The shop now has a message bus. Checkout places each order, then tells notifications, inventory")
	r.say("and analytics of it, and queues a job for the fulfillment workers.")
	r.look("the Message bus panel: checkout → ORDERS → three consumer groups, FULFILLMENT → fulfillment.")

	// 1. The synchronous alternative first.
	r.say("")
	r.say("1. Without the bus: checkout calls the three over HTTP, in line, before it answers.")
	if err := r.setSetting(ctx, "checkout", "events", "http"); err != nil {
		return err
	}
	id, _, err := r.journeysBefore(ctx, "gateway")
	if err != nil {
		return err
	}
	r.say("notifications starts failing every request.")
	f, err := r.inject(ctx, faults.Spec{Kind: faults.Errors, Group: "notifications", ErrorRate: 1})
	if err != nil {
		return err
	}
	w, _, err := r.measure(ctx, id, 5*time.Second)
	if err != nil {
		return err
	}
	r.say("With notifications failing: %s.", w.summary())
	checkout, ran := w.rate("checkout")
	r.check(ran && checkout < 0.5, "checkout fails with it: %s. A call in line makes every caller share the callee's outage", pct(checkout, ran))
	if err := r.revert(ctx, f.ID); err != nil {
		return err
	}

	// 2. The bus.
	r.say("")
	r.say("2. With the bus: checkout publishes orders.placed and answers at once.")
	if err := r.setSetting(ctx, "checkout", "events", "bus"); err != nil {
		return err
	}
	// The counts below are taken with no order on its way: the shoppers
	// stop and the bus drains first, then they walk again.
	r.stopLoads()
	r.loads = nil
	if err := sleep(ctx, 2*time.Second); err != nil {
		return err
	}
	if err := r.drained(ctx, time.Minute); err != nil {
		return err
	}
	ordersBefore, err := r.orderCount(ctx)
	if err != nil {
		return err
	}
	ledgerBefore := map[string]int64{}
	for _, s := range subscribers {
		st, err := r.subscriber(ctx, s)
		if err != nil {
			return err
		}
		ledgerBefore[s] = st.ledger
	}
	if id, _, err = r.journeysBefore(ctx, "gateway"); err != nil {
		return err
	}
	nst, err := r.group(ctx, "notifications")
	if err != nil {
		return err
	}
	r.say("Pausing both notifications replicas: notifications is down.")
	r.look("the notifications edge's lag climbs; checkout stays green.")
	var paused []faults.Fault
	for _, rep := range nst.Replicas {
		f, err := r.inject(ctx, faults.Spec{Kind: faults.Pause, Group: "notifications", Replica: rep.Name})
		if err != nil {
			return err
		}
		paused = append(paused, f)
	}
	w, _, err = r.measure(ctx, id, 5*time.Second)
	if err != nil {
		return err
	}
	checkout, ran = w.rate("checkout")
	r.check(ran && checkout >= 0.99, "checkout goes on without notifications: %s", pct(checkout, ran))
	lag := r.consumer(ctx, "ORDERS", "notifications")
	r.check(lag.Pending > 0 || lag.AckPending > 0, "the notifications consumer falls behind: %d orders wait, %d were delivered and not acknowledged", lag.Pending, lag.AckPending)
	for _, f := range paused {
		if err := r.revert(ctx, f.ID); err != nil {
			return err
		}
	}
	r.stopLoads()
	r.loads = nil
	r.say("notifications is back and the shoppers have stopped: the backlog drains.")
	if err := r.drained(ctx, time.Minute); err != nil {
		return err
	}
	ordersAfter, err := r.orderCount(ctx)
	if err != nil {
		return err
	}
	placed := int64(ordersAfter - ordersBefore)
	r.say("Orders placed since the bus took over: %d.", placed)

	// 3. Fanout and competing consumers.
	for _, s := range subscribers {
		// Checkout publishes from its outbox after it answers: the last
		// order may reach the bus a moment after the backlog looked drained.
		var st serviceStats
		err := waitFor(ctx, 15*time.Second, func() (bool, error) {
			var err error
			st, err = r.subscriber(ctx, s)
			return err == nil && st.ledger-ledgerBefore[s] >= placed, err
		})
		if err != nil && st.ledger == 0 {
			return err
		}
		got := st.ledger - ledgerBefore[s]
		r.check(placed > 0 && got == placed, "%s applied every order exactly once: %d of %d (%d repeats found and not applied again)", s, got, placed, st.duplicates)
		if s == "notifications" {
			r.check(st.busy == 2, "its two replicas shared the work, each order to one of them (%d of 2 replicas applied orders)", st.busy)
		}
	}

	// 4. A work queue, and a worker killed in the middle of a job.
	r.say("")
	r.say("4. Fulfillment: a work queue, each job to one worker. Each job now takes a worker 3 s.")
	fb, err := r.subscriber(ctx, "fulfillment")
	if err != nil {
		return err
	}
	fulfilledBefore := fb.ledger
	slow, err := r.inject(ctx, faults.Spec{Kind: faults.SlowConsumer, Group: "fulfillment", LatencyMs: 3000})
	if err != nil {
		return err
	}
	if err := r.orders(ctx, 4); err != nil {
		return err
	}
	if err := sleep(ctx, time.Second); err != nil {
		return err
	}
	fst, err := r.group(ctx, "fulfillment")
	if err != nil {
		return err
	}
	victim := fst.Replicas[0].Name
	r.say("Killing %s in the middle of its job.", victim)
	if _, err := r.inject(ctx, faults.Spec{Kind: faults.Kill, Group: "fulfillment", Replica: victim}); err != nil {
		return err
	}
	if err := r.revert(ctx, slow.ID); err != nil {
		return err
	}
	killed := time.Now()
	r.say("Its job is not acknowledged: it waits out the ack wait, then the bus delivers it again, to a worker that is there.")
	// The other worker ends its own 3 s job and the quick ones meanwhile.
	if err := sleep(ctx, 5*time.Second); err != nil {
		return err
	}
	held := r.consumer(ctx, "FULFILLMENT", "fulfillment")
	r.check(held.AckPending > 0, "5 s after the kill, the dead worker's job is still out, unacknowledged (%d)", held.AckPending)
	err = waitFor(ctx, time.Minute, func() (bool, error) {
		c := r.consumer(ctx, "FULFILLMENT", "fulfillment")
		return c.Name != "" && c.Pending == 0 && c.AckPending == 0, nil
	})
	if err != nil {
		return fmt.Errorf("the fulfillment queue did not drain: %w", err)
	}
	done, err := r.subscriber(ctx, "fulfillment")
	if err != nil {
		return err
	}
	st := r.stream(ctx, "FULFILLMENT")
	r.say("The queue was empty %.0f s after the kill.", time.Since(killed).Seconds())
	r.check(st.Messages == 0 && done.ledger == fulfilledBefore+4, "every job was done once, the dead worker's by another: %d of 4, %d left in the queue", done.ledger-fulfilledBefore, st.Messages)

	// 5. A poison message.
	r.say("")
	r.say("5. A poison message: analytics fails the next order on every attempt.")
	poison, err := r.inject(ctx, faults.Spec{Kind: faults.Poison, Group: "analytics", Messages: 1})
	if err != nil {
		return err
	}
	if err := r.orders(ctx, 1); err != nil {
		return err
	}
	var dead bus.DeadLetter
	found := waitFor(ctx, 45*time.Second, func() (bool, error) {
		s, err := r.api.Bus(ctx)
		if err != nil {
			return false, err
		}
		for _, d := range s.Dead {
			if d.Consumer == "analytics" {
				dead = d
				return true, nil
			}
		}
		return false, nil
	})
	r.check(found == nil, "after %d attempts it is a dead letter: seq %d, order %s, %q", dead.Deliveries, dead.Seq, dead.EventID, dead.Reason)
	if err := r.revert(ctx, poison.ID); err != nil {
		return err
	}
	if found == nil {
		before, err := r.subscriber(ctx, "analytics")
		if err != nil {
			return err
		}
		res, err := r.api.ReplayDeadLetter(ctx, dead.Seq)
		if err != nil {
			return fmt.Errorf("replay dead letter %d: %w", dead.Seq, err)
		}
		r.say("Fault reverted; the dead letter replayed as %s.", res.MsgID)
		err = waitFor(ctx, 20*time.Second, func() (bool, error) {
			after, err := r.subscriber(ctx, "analytics")
			return after.ledger == before.ledger+1, err
		})
		r.check(err == nil, "analytics applied it on replay; notifications and inventory, which had it, counted a repeat and did not apply it again")
	}

	// 6. The bus itself dies.
	r.say("")
	r.say("6. Killing the bus.")
	orders := r.stream(ctx, "ORDERS")
	bst, err := r.group(ctx, "bus")
	if err != nil {
		return err
	}
	if _, err := r.inject(ctx, faults.Spec{Kind: faults.Kill, Group: "bus", Replica: bst.Replicas[0].Name}); err != nil {
		return err
	}
	if err := r.converged(ctx, 2*time.Minute); err != nil {
		return err
	}
	var again bus.Stream
	err = waitFor(ctx, 30*time.Second, func() (bool, error) {
		again = r.stream(ctx, "ORDERS")
		return again.LastSeq >= orders.LastSeq && again.LastSeq > 0, nil
	})
	r.check(err == nil, "the new bus found every acknowledged order on its volume: ORDERS up to %d, %d before the kill", again.LastSeq, orders.LastSeq)

	// 7. Carts in the bucket.
	r.say("")
	r.say("7. Carts live in the bus's key-value bucket, not in a cart replica's memory.")
	jid, err := r.startLoad(ctx, journeys("gateway", 10))
	if err != nil {
		return err
	}
	w, _, err = r.measure(ctx, jid, 5*time.Second)
	if err != nil {
		return err
	}
	r.check(w.completeRate() >= 0.99, "carts come back complete under round-robin over two cart replicas (%.0f%%)", w.completeRate()*100)
	cst, err := r.group(ctx, "cart")
	if err != nil {
		return err
	}
	if _, err := r.inject(ctx, faults.Spec{Kind: faults.Kill, Group: "cart", Replica: cst.Replicas[0].Name}); err != nil {
		return err
	}
	w, _, err = r.measure(ctx, jid, 5*time.Second)
	if err != nil {
		return err
	}
	r.check(w.completeRate() >= 0.99, "and after %s is killed (%.0f%%): the carts outlive the replica that served them", cst.Replicas[0].Name, w.completeRate()*100)
	return nil
}

// setSetting sets one of a group's settings and waits until its replicas
// are replaced by ones made with it, and ready.
func (r *run) setSetting(ctx context.Context, group, key, value string) error {
	st, err := r.group(ctx, group)
	if err != nil {
		return err
	}
	old := map[string]bool{}
	for _, rep := range st.Replicas {
		old[rep.ID] = true
	}
	g := specOf(st, st.Balancer.Policy)
	g.Settings = map[string]string{key: value}
	if _, _, err := r.api.PutGroup(ctx, g); err != nil {
		return fmt.Errorf("set %s of %s to %s: %w", key, group, value, err)
	}
	r.say("%s's %s setting is now %s: its replicas are replaced.", group, key, value)
	err = waitFor(ctx, 2*time.Minute, func() (bool, error) {
		st, err := r.group(ctx, group)
		if err != nil || st.Status != controller.StatusConverged || st.Ready != st.Desired {
			return false, err
		}
		for _, rep := range st.Replicas {
			if old[rep.ID] {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("%s's replicas with %s=%s: %w", group, key, value, err)
	}
	return r.converged(ctx, time.Minute)
}

// orders places n orders through the gateway, as one shopper each.
func (r *run) orders(ctx context.Context, n int) error {
	gw, err := r.group(ctx, "gateway")
	if err != nil {
		return err
	}
	for i := range n {
		who := fmt.Sprintf("demo-%d-%d", time.Now().UnixNano(), i)
		if _, err := cartRequest(ctx, http.MethodPost, gw.Endpoint, who, `{"productId":"tea-mug","quantity":1}`); err != nil {
			return fmt.Errorf("add to cart: %w", err)
		}
		if err := post(ctx, gw.Endpoint, "/checkout", who); err != nil {
			return fmt.Errorf("checkout: %w", err)
		}
	}
	return nil
}

// orderCount is how many orders the orders service holds.
func (r *run) orderCount(ctx context.Context) (int, error) {
	st, err := r.group(ctx, "orders")
	if err != nil {
		return 0, err
	}
	var list []json.RawMessage
	if err := getJSON(ctx, st.Replicas[0].Address, "/orders", &list); err != nil {
		return 0, fmt.Errorf("the orders: %w", err)
	}
	return len(list), nil
}

// subscriber sums a subscriber group's GET /stats over its replicas.
func (r *run) subscriber(ctx context.Context, group string) (serviceStats, error) {
	var out serviceStats
	st, err := r.group(ctx, group)
	if err != nil {
		return out, err
	}
	out.ledger = -1
	for _, rep := range st.Replicas {
		if rep.Address == "" {
			continue
		}
		var s subscriberStats
		if err := getJSON(ctx, rep.Address, "/stats", &s); err != nil {
			return out, fmt.Errorf("the figures of %s: %w", rep.Name, err)
		}
		out.applied += s.Applied
		out.duplicates += s.Duplicates
		out.failed += s.Failed
		out.ledger = max(out.ledger, s.LedgerCount)
		if s.Applied > 0 {
			out.busy++
		}
	}
	return out, nil
}

// drained waits until every consumer of the bus that a group serves has
// nothing pending; a consumer no group runs (receipt, before stage 8) keeps
// its messages for when one does.
func (r *run) drained(ctx context.Context, timeout time.Duration) error {
	var behind []string
	err := waitFor(ctx, timeout, func() (bool, error) {
		s, err := r.api.Bus(ctx)
		if err != nil {
			return false, err
		}
		behind = behind[:0]
		for _, st := range s.Streams {
			for _, c := range st.Consumers {
				if c.Group != "" && (c.Pending > 0 || c.AckPending > 0) {
					behind = append(behind, fmt.Sprintf("%s %d pending, %d unacknowledged", c.Name, c.Pending, c.AckPending))
				}
			}
		}
		return s.Up && len(behind) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("the bus did not drain within %s: %v", timeout, behind)
	}
	return nil
}

func (r *run) stream(ctx context.Context, name string) bus.Stream {
	s, err := r.api.Bus(ctx)
	if err != nil {
		return bus.Stream{}
	}
	for _, st := range s.Streams {
		if st.Name == name {
			return st
		}
	}
	return bus.Stream{}
}

func (r *run) consumer(ctx context.Context, stream, name string) bus.Consumer {
	for _, c := range r.stream(ctx, stream).Consumers {
		if c.Name == name {
			return c
		}
	}
	return bus.Consumer{}
}

func getJSON(ctx context.Context, addr, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out)
}

// post sends an empty POST to path at addr as shopper who, and wants a 2xx.
func post(ctx context.Context, addr, path, who string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set(shopper.Header, who)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s answered %d: %s", path, resp.StatusCode, b)
	}
	return nil
}

// Package bustest helps tests that run the bus and its subscribers on the
// real engine through a controller: reaching the bus on the project
// network, publishing orders as checkout does, and reading what the
// subscribers applied.
package bustest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker/dockertest"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/bus/client"
	"github.com/flotilla/flotilla/sample-services/bus/consume"
)

// Secret is the bus secret the tests give their controllers.
const Secret = "the-bus-integration-test-secret-0123456789"

// ReadyGroup waits until group has n ready replicas and has converged.
func ReadyGroup(t testing.TB, ctrl *controller.Controller, group string, n int) controller.GroupStatus {
	t.Helper()
	var st controller.GroupStatus
	dockertest.Poll(t, 90*time.Second, group+" ready", func() error {
		var err error
		if st, err = ctrl.Group(group); err != nil {
			return err
		}
		if st.Ready != n || st.Status != controller.StatusConverged || len(st.Replicas) != n {
			return fmt.Errorf("group %s: %d ready, status %s %s", group, st.Ready, st.Status, st.Message)
		}
		return nil
	})
	return st
}

// Addr is port of replica r on the project network, where the services
// and the controller reach the bus; t skips if this host does not reach
// the project network (the engine runs in a VM).
func Addr(t testing.TB, r replica.Replica, port int) string {
	t.Helper()
	host, _, err := net.SplitHostPort(r.NetworkAddress)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Skipf("this host does not reach the project network (%v); the bus's ports are not published", err)
	}
	conn.Close()
	return addr
}

// Connect connects to the bus at addr as user, with the password Secret
// gives it, and closes the connection when t ends.
func Connect(t testing.TB, addr, user string) *client.Client {
	t.Helper()
	pw, err := access.Password(Secret, user)
	if err != nil {
		t.Fatal(err)
	}
	var c *client.Client
	dockertest.Poll(t, 20*time.Second, "connect to the bus as "+user, func() error {
		c, err = client.Connect("nats://"+addr, user, pw, nats.MaxReconnects(0))
		return err
	})
	t.Cleanup(c.Close)
	return c
}

// PublishOrders publishes orders order-<from>..order-<to> on orders.placed
// as checkout does: the order ID as event ID and as Nats-Msg-Id.
func PublishOrders(t testing.TB, ctx context.Context, checkout *client.Client, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		id := fmt.Sprintf("order-%03d", i)
		body, _ := json.Marshal(consume.Order{OrderID: id, Shopper: "alice", TotalCents: 1200, PlacedAt: time.Now(),
			Items: []consume.OrderItem{{ProductID: "tea-mug", Quantity: 1, PriceCents: 1200}}})
		m := &nats.Msg{Subject: access.SubjectOrderPlaced, Data: body, Header: nats.Header{access.EventIDHeader: {id}}}
		if _, err := checkout.PublishMsg(ctx, m, id); err != nil {
			t.Fatalf("publish %s: %v", id, err)
		}
	}
}

var quick = &http.Client{Timeout: 2 * time.Second}

// Stats reads GET /stats of every replica of group that answers; one
// paused, dying or not yet up has nothing to say.
func Stats(t testing.TB, ctrl *controller.Controller, group string) map[string]consume.Stats {
	t.Helper()
	st, err := ctrl.Group(group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]consume.Stats{}
	for _, r := range st.Replicas {
		resp, err := quick.Get("http://" + r.Address + "/stats")
		if err != nil {
			continue
		}
		var s consume.Stats
		err = json.NewDecoder(resp.Body).Decode(&s)
		resp.Body.Close()
		if err == nil {
			out[r.Name] = s
		}
	}
	return out
}

// LedgerCount is how many events the service of group applied over all
// its replicas, as its ledger says through any replica that answers; -1
// if none does.
func LedgerCount(t testing.TB, ctrl *controller.Controller, group string) int64 {
	t.Helper()
	for _, s := range Stats(t, ctrl, group) {
		if s.LedgerCount >= 0 {
			return s.LedgerCount
		}
	}
	return -1
}

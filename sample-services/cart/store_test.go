package cart_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flotilla/flotilla/sample-services/bus"
	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/bus/client"
	"github.com/flotilla/flotilla/sample-services/cart"
	"github.com/flotilla/flotilla/sample-services/catalog"
)

const secret = "a-test-secret-of-enough-length"

func startBus(t *testing.T) *bus.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.New(bus.Config{Host: "127.0.0.1", ClientPort: -1, StoreDir: t.TempDir(), Secret: secret, Topology: access.Shop},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return b
}

// replica is one cart replica on the bus: its own connection, as the cart
// user, its own store and service.
func replica(t *testing.T, b *bus.Broker) (*cart.Service, *cart.KVStore, http.Handler) {
	t.Helper()
	pw, _ := access.Password(secret, "cart")
	c, err := client.Connect(b.ClientURL(), "cart", pw, nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	st := cart.NewKVStore(c.JS, "carts")
	svc := cart.NewWithStore(catalog.New(), st)
	mux := http.NewServeMux()
	svc.Register(mux)
	return svc, st, mux
}

// Two replicas on one bucket see one cart, whichever of them is asked.
func TestKVStoreSharedByReplicas(t *testing.T) {
	b := startBus(t)
	_, st1, r1 := replica(t, b)
	_, _, r2 := replica(t, b)
	shopper := "Zoë O'Brien / 🛒"

	if c := decodeCart(t, do(t, r2, "GET", "/cart", shopper, "")); len(c.Items) != 0 {
		t.Fatalf("a new shopper's cart = %+v, want empty", c)
	}
	decodeCart(t, do(t, r1, "POST", "/cart/items", shopper, `{"productId":"tea-mug","quantity":2}`))
	decodeCart(t, do(t, r2, "POST", "/cart/items", shopper, `{"productId":"notebook","quantity":1}`))
	decodeCart(t, do(t, r1, "POST", "/cart/items", shopper, `{"productId":"tea-mug","quantity":1}`))
	for i, r := range []http.Handler{r1, r2} {
		c := decodeCart(t, do(t, r, "GET", "/cart", shopper, ""))
		if c.Shopper != shopper || len(c.Items) != 2 || c.Items[0].ProductID != "tea-mug" || c.Items[0].Quantity != 3 ||
			c.Items[1].ProductID != "notebook" || c.Items[1].Quantity != 1 || c.TotalCents == 0 {
			t.Errorf("replica %d sees %+v, want 3 tea mugs then a notebook", i+1, c)
		}
	}
	// Bad changes change nothing and answer as in memory.
	if rec := do(t, r2, "POST", "/cart/items", shopper, `{"productId":"tea-mug","quantity":99}`); rec.Code != http.StatusBadRequest {
		t.Errorf("over the cap: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, r2, "DELETE", "/cart/items/ghost", shopper, ""); rec.Code != http.StatusNotFound {
		t.Errorf("remove what is not there: %d %s", rec.Code, rec.Body)
	}
	decodeCart(t, do(t, r2, "DELETE", "/cart/items/notebook", shopper, ""))
	if c := decodeCart(t, do(t, r1, "GET", "/cart", shopper, "")); len(c.Items) != 1 || c.Items[0].Quantity != 3 {
		t.Errorf("after removing the notebook on replica 2, replica 1 sees %+v", c)
	}
	// Emptied on one, empty on the other; and filled again.
	decodeCart(t, do(t, r2, "DELETE", "/cart", shopper, ""))
	if c := decodeCart(t, do(t, r1, "GET", "/cart", shopper, "")); len(c.Items) != 0 {
		t.Errorf("after emptying on replica 2, replica 1 sees %+v", c)
	}
	decodeCart(t, do(t, r1, "POST", "/cart/items", shopper, `{"productId":"notebook","quantity":1}`))
	if c := decodeCart(t, do(t, r2, "GET", "/cart", shopper, "")); len(c.Items) != 1 {
		t.Errorf("a cart filled again after emptying: %+v", c)
	}
	if st1.Conflicts() != 0 {
		t.Errorf("%d conflicts without concurrency", st1.Conflicts())
	}
}

// Adds to one cart at once through two replicas all land: none is lost to
// another written over it.
func TestKVStoreConcurrentAddsAllLand(t *testing.T) {
	b := startBus(t)
	s1, st1, _ := replica(t, b)
	s2, st2, _ := replica(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const perReplica = 12
	var wg sync.WaitGroup
	errs := make(chan error, 2*perReplica)
	for _, s := range []*cart.Service{s1, s2} {
		for range perReplica {
			wg.Go(func() {
				if _, err := s.Add(ctx, "alice", "tea-mug", 1); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("add: %v", err)
	}
	c, err := s1.Get(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Items) != 1 || c.Items[0].Quantity != 2*perReplica {
		t.Errorf("cart %+v, want %d tea mugs", c, 2*perReplica)
	}
	t.Logf("%d writes found the cart changed under them and tried again", st1.Conflicts()+st2.Conflicts())
}

// With the bus gone the cart says so (502) rather than show an empty cart.
func TestKVStoreBusDown(t *testing.T) {
	b := startBus(t)
	_, st, r := replica(t, b)
	decodeCart(t, do(t, r, "POST", "/cart/items", "alice", `{"productId":"tea-mug","quantity":1}`))
	if err := st.Health(context.Background()); err != nil {
		t.Errorf("health with the bus up: %v", err)
	}
	b.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for st.Health(ctx) == nil && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if err := st.Health(ctx); err == nil {
		t.Fatal("health with the bus down: nil")
	}
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/cart", ""},
		{"POST", "/cart/items", `{"productId":"tea-mug","quantity":1}`},
		{"DELETE", "/cart/items/tea-mug", ""},
		{"DELETE", "/cart", ""},
	} {
		rec := do(t, r, req.method, req.path, "alice", req.body)
		if rec.Code != http.StatusBadGateway {
			t.Errorf("%s %s with the bus down = %d %s, want 502", req.method, req.path, rec.Code, rec.Body)
			continue
		}
		if msg := errorOf(t, rec); !strings.Contains(msg, "cart store") {
			t.Errorf("%s %s: error %q does not name the store", req.method, req.path, msg)
		}
	}
}

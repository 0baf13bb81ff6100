package bus

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/bus/client"
)

const testSecret = "a-test-secret-of-enough-length"

// startBroker runs a broker on free ports of 127.0.0.1 over store.
func startBroker(t *testing.T, store string) *Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := New(Config{Host: "127.0.0.1", ClientPort: -1, MonitorPort: -1, StoreDir: store, Secret: testSecret, Topology: access.Shop},
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

func connect(t *testing.T, b *Broker, user string) *client.Client {
	t.Helper()
	pw, err := access.Password(testSecret, user)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Connect(b.ClientURL(), user, pw, nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestProbes(t *testing.T) {
	// Before Start: live, not ready.
	early, err := New(Config{Host: "127.0.0.1", ClientPort: -1, StoreDir: t.TempDir(), Secret: testSecret, Topology: access.Shop}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/readyz": http.StatusServiceUnavailable} {
		rec := httptest.NewRecorder()
		early.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("before Start GET %s = %d %s, want %d", path, rec.Code, rec.Body, want)
		}
	}

	b := startBroker(t, t.TempDir())
	h := b.Handler()
	for _, path := range []string{"/healthz", "/readyz"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s = %d %s", path, rec.Code, rec.Body)
		}
	}
	// NATS's own monitoring shows the declared streams: two and a bucket's.
	resp, err := http.Get(b.MonitorURL() + "/jsz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var jsz struct {
		Streams   int `json:"streams"`
		Consumers int `json:"consumers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jsz); err != nil {
		t.Fatal(err)
	}
	if jsz.Streams != 9 || jsz.Consumers != 5 {
		t.Errorf("/jsz: %d streams, %d consumers; want 9 (ORDERS, FULFILLMENT, DEADLETTERS, KV_carts, five KV_applied_<service>) and 5", jsz.Streams, jsz.Consumers)
	}

	b.Shutdown()
	for path, want := range map[string]string{"/healthz": "not running", "/readyz": "not"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(string(body), want) {
			t.Errorf("after shutdown GET %s = %d %s", path, rec.Code, body)
		}
	}
}

func TestPermittedAndForbidden(t *testing.T) {
	b := startBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	checkout := connect(t, b, "checkout")
	ack, err := checkout.Publish(ctx, access.SubjectOrderPlaced, []byte(`{"order":"o-1"}`), "o-1")
	if err != nil {
		t.Fatalf("checkout publishes orders.placed: %v", err)
	}
	if ack.Stream != "ORDERS" || ack.Sequence != 1 || ack.Duplicate {
		t.Errorf("ack = %+v, want ORDERS seq 1", ack)
	}
	again, err := checkout.Publish(ctx, access.SubjectOrderPlaced, []byte(`{"order":"o-1"}`), "o-1")
	if err != nil || !again.Duplicate {
		t.Errorf("a repeated Nats-Msg-Id: ack %+v, err %v; want a duplicate", again, err)
	}

	// A subscriber may not publish an event: a clear error, at once.
	notif := connect(t, b, "notifications")
	start := time.Now()
	_, err = notif.Publish(ctx, access.SubjectOrderPlaced, []byte(`{"order":"forged"}`), "forged")
	if !errors.Is(err, client.ErrForbidden) || !errors.Is(err, nats.ErrPermissionViolation) {
		t.Fatalf("notifications publishes orders.placed: err = %v, want ErrForbidden", err)
	}
	if !strings.Contains(err.Error(), `"orders.placed"`) || time.Since(start) > 2*time.Second {
		t.Errorf("the refusal %q took %s; want it to name the subject, at once", err, time.Since(start))
	}
	mon := connect(t, b, access.Monitor)
	if n := streamMsgs(t, mon.JS, "ORDERS"); n != 1 {
		t.Errorf("ORDERS holds %d messages, want the one checkout published", n)
	}

	// It consumes from its own durable consumer...
	cons, err := notif.JS.Consumer(ctx, "ORDERS", "notifications")
	if err != nil {
		t.Fatalf("notifications binds its consumer: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, string(m.Data()))
		if err := m.DoubleAck(ctx); err != nil {
			t.Errorf("ack: %v", err)
		}
	}
	if len(got) != 1 || got[0] != `{"order":"o-1"}` {
		t.Errorf("notifications fetched %q, want the order", got)
	}
	// ...and not from another service's.
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	if _, err := notif.JS.Consumer(short, "ORDERS", "inventory"); err == nil {
		t.Error("notifications bound inventory's consumer")
	}
	if err := notif.Conn.LastError(); !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), "ORDERS.inventory") {
		t.Errorf("last error = %v, want a permissions violation on inventory's consumer", err)
	}

	// The cart keeps carts in its bucket; checkout may not touch them.
	cart := connect(t, b, "cart")
	kv, err := cart.JS.KeyValue(ctx, "carts")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "alice", []byte(`["apple"]`)); err != nil {
		t.Fatalf("cart puts a cart: %v", err)
	}
	if e, err := kv.Get(ctx, "alice"); err != nil || string(e.Value()) != `["apple"]` {
		t.Errorf("cart gets alice's cart: %v", err)
	}
	if _, err := checkout.Publish(ctx, "$KV.carts.alice", []byte(`[]`), ""); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("checkout writes a cart: err = %v, want ErrForbidden", err)
	}

	// A message over the server's limit is refused, saying so.
	if _, err := checkout.Publish(ctx, access.SubjectOrderPlaced, make([]byte, DefaultMaxPayload+1), "big"); !errors.Is(err, nats.ErrMaxPayload) {
		t.Errorf("an oversized order: err = %v, want ErrMaxPayload", err)
	}

	// A wrong password is refused.
	if _, err := client.Connect(b.ClientURL(), "checkout", "guess", nats.MaxReconnects(0)); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("wrong password: err = %v, want an authorization violation", err)
	}
}

// TestRestartKeepsStore: a broker started again on the same store finds
// its messages and its consumers' progress, and declaring again changes
// nothing.
func TestRestartKeepsStore(t *testing.T) {
	store := t.TempDir()
	b := startBroker(t, store)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	checkout := connect(t, b, "checkout")
	for _, id := range []string{"o-1", "o-2", "o-3"} {
		if _, err := checkout.Publish(ctx, access.SubjectOrderPlaced, []byte(id), id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := checkout.Publish(ctx, access.SubjectOrderFulfill, []byte("job-1"), "job-1"); err != nil {
		t.Fatal(err)
	}
	checkout.Close()
	b.Shutdown()

	b2 := startBroker(t, store)
	mon := connect(t, b2, access.Monitor)
	if n := streamMsgs(t, mon.JS, "ORDERS"); n != 3 {
		t.Errorf("after a restart ORDERS holds %d messages, want 3", n)
	}
	if n := streamMsgs(t, mon.JS, "FULFILLMENT"); n != 1 {
		t.Errorf("after a restart FULFILLMENT holds %d jobs, want 1", n)
	}
	c, err := mon.JS.Consumer(ctx, "ORDERS", "analytics")
	if err != nil {
		t.Fatal(err)
	}
	if info := c.CachedInfo(); info.NumPending != 3 {
		t.Errorf("analytics has %d pending, want 3", info.NumPending)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if _, err := ConfigFromEnv(getenv); err == nil || !strings.Contains(err.Error(), access.SecretEnv) {
		t.Errorf("no secret: err = %v", err)
	}
	env[access.SecretEnv] = "short"
	if _, err := ConfigFromEnv(getenv); !errors.Is(err, access.ErrShortSecret) {
		t.Errorf("short secret: err = %v", err)
	}
	env[access.SecretEnv] = testSecret
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StoreDir != DefaultStoreDir || cfg.ClientPort != access.ClientPort || cfg.MonitorPort != access.MonitorPort {
		t.Errorf("cfg = %+v", cfg)
	}
}

// TestAppliedLedgersExpire: a service's ledger of applied events forgets
// them after access.AppliedTTL; the carts bucket keeps its keys.
func TestAppliedLedgersExpire(t *testing.T) {
	b := startBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin := connect(t, b, access.Admin)
	for bucket, want := range map[string]time.Duration{access.AppliedBucket("analytics"): access.AppliedTTL, access.AppliedBucket("fulfillment"): access.AppliedTTL, "carts": 0} {
		kv, err := admin.JS.KeyValue(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.TTL() != want {
			t.Errorf("bucket %s keeps keys for %s, want %s", bucket, st.TTL(), want)
		}
	}
}

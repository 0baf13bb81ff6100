// Package bus is the shop's message broker: a real NATS server with
// JetStream, embedded in the bus binary (cmd/bus), plus the small HTTP
// face every catalogued service has, so the controller probes, lists and
// heals the bus like any other replica.
//
// One process listens on three ports:
//
//   - access.ClientPort (4222), NATS clients, on the project network only;
//   - access.MonitorPort (8222), NATS's own monitoring (/varz, /jsz,
//     /connz, /healthz), on the project network only: the controller reads
//     it there;
//   - PORT (8080), the replica's service port, published on 127.0.0.1 like
//     every replica's: GET /healthz answers while the process serves, GET
//     /readyz once JetStream is up and the topology is declared (503 with a
//     JSON error before), which is what the controller's probes ask.
//
// At start the broker declares the topology of package access (streams,
// durable consumers, key-value buckets), as its own admin user over an
// in-process connection, so services need no right to create or change
// any of it. Declaring is idempotent: a restart over an existing store
// finds everything in place and keeps every message.
//
// JetStream's store is a directory (default /data), meant to be a named
// volume, so that what was acknowledged survives the container. An ack
// means the message is written to the store's files; a killed process
// loses nothing written, and only a crash of the machine before the next
// sync could.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
)

// Config is what the broker is made from.
type Config struct {
	// Host is where the NATS ports listen; "0.0.0.0" in a container, whose
	// only network is the project's.
	Host string
	// ClientPort and MonitorPort are NATS's ports; -1 picks a free one
	// (tests), 0 leaves monitoring off.
	ClientPort, MonitorPort int
	// StoreDir holds JetStream's files.
	StoreDir string
	// Secret derives every user's password (access.Password).
	Secret string
	// Topology is what the broker declares and whose users it admits.
	Topology access.Topology
	// MaxStore and MaxMemory bound JetStream's file and memory storage;
	// MaxPayload bounds one message. Zero takes the defaults below.
	MaxStore, MaxMemory int64
	MaxPayload          int32
}

// Defaults of Config.
const (
	DefaultStoreDir   = "/data"
	DefaultMaxStore   = 1 << 30
	DefaultMaxMemory  = 16 << 20
	DefaultMaxPayload = 64 << 10
)

// ConfigFromEnv reads a container's Config: FLOTILLA_BUS_SECRET (required),
// BUS_STORE_DIR (default /data); the ports are the usual ones.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{
		Host:        "0.0.0.0",
		ClientPort:  access.ClientPort,
		MonitorPort: access.MonitorPort,
		StoreDir:    getenv("BUS_STORE_DIR"),
		Secret:      getenv(access.SecretEnv),
		Topology:    access.Shop,
	}
	if cfg.StoreDir == "" {
		cfg.StoreDir = DefaultStoreDir
	}
	if cfg.Secret == "" {
		return cfg, fmt.Errorf("%s is not set: the bus derives every user's password from it", access.SecretEnv)
	}
	if len(cfg.Secret) < access.MinSecretLen {
		return cfg, fmt.Errorf("%s: %w", access.SecretEnv, access.ErrShortSecret)
	}
	return cfg, nil
}

// Broker is a running NATS server with its topology declared.
type Broker struct {
	ns    *server.Server
	cfg   Config
	log   *slog.Logger
	ready atomic.Bool
	// stopped is set by Shutdown: the process is going, /healthz fails.
	stopped atomic.Bool
	// declareErr is why the topology is not declared yet, for /readyz.
	declareErr atomic.Pointer[string]
}

// serverOptions turns cfg into the NATS server's options: one user per
// user of the topology, each with its permissions and derived password.
func serverOptions(cfg Config) (*server.Options, error) {
	users := cfg.Topology.Users()
	opts := &server.Options{
		ServerName:         "flotilla-bus",
		Host:               cfg.Host,
		Port:               cfg.ClientPort,
		HTTPHost:           cfg.Host,
		HTTPPort:           cfg.MonitorPort,
		JetStream:          true,
		StoreDir:           cfg.StoreDir,
		JetStreamMaxStore:  orDefault(cfg.MaxStore, DefaultMaxStore),
		JetStreamMaxMemory: orDefault(cfg.MaxMemory, DefaultMaxMemory),
		MaxPayload:         int32(orDefault(int64(cfg.MaxPayload), DefaultMaxPayload)),
		NoSigs:             true,
		NoSystemAccount:    true,
	}
	for _, u := range users {
		pw, err := access.Password(cfg.Secret, u.Name)
		if err != nil {
			return nil, err
		}
		opts.Users = append(opts.Users, &server.User{
			Username: u.Name,
			Password: pw,
			Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: u.Publish},
				Subscribe: &server.SubjectPermission{Allow: u.Subscribe},
			},
		})
	}
	return opts, nil
}

func orDefault(v, def int64) int64 {
	if v == 0 {
		return def
	}
	return v
}

// New makes a broker from cfg; Start starts it.
func New(cfg Config, log *slog.Logger) (*Broker, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("bus: no store directory")
	}
	opts, err := serverOptions(cfg)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	ns.SetLogger(natsLog{log}, false, false)
	b := &Broker{ns: ns, cfg: cfg, log: log}
	pending := "starting JetStream"
	b.declareErr.Store(&pending)
	return b, nil
}

// Start starts the NATS server, waits until it takes connections, and
// declares the topology, retrying until ctx ends. The broker serves until
// Shutdown.
func (b *Broker) Start(ctx context.Context) error {
	ns := b.ns
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		b.Shutdown()
		return errors.New("start bus: the NATS server did not take connections within 30s")
	}
	if !ns.JetStreamEnabled() {
		b.Shutdown()
		return fmt.Errorf("start bus: JetStream did not start (store %s)", b.cfg.StoreDir)
	}
	for wait := 100 * time.Millisecond; ; wait = min(wait*2, 2*time.Second) {
		err := b.declare(ctx)
		if err == nil {
			break
		}
		msg := "topology not declared: " + err.Error()
		b.declareErr.Store(&msg)
		b.log.Warn("declare topology", "err", err)
		select {
		case <-ctx.Done():
			b.Shutdown()
			return fmt.Errorf("start bus: %w", err)
		case <-time.After(wait):
		}
	}
	b.ready.Store(true)
	b.log.Info("bus ready", "clients", b.ClientURL(), "store", b.cfg.StoreDir)
	return nil
}

// declare creates or updates every stream, consumer and bucket of the
// topology, as the admin user.
func (b *Broker) declare(ctx context.Context) error {
	pw, err := access.Password(b.cfg.Secret, access.Admin)
	if err != nil {
		return err
	}
	nc, err := nats.Connect("", nats.InProcessServer(b.ns), nats.UserInfo(access.Admin, pw), nats.CustomInboxPrefix(access.InboxPrefix(access.Admin)))
	if err != nil {
		return fmt.Errorf("connect as %s: %w", access.Admin, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, s := range b.cfg.Topology.Streams {
		if _, err := js.CreateOrUpdateStream(ctx, streamConfig(s)); err != nil {
			return fmt.Errorf("stream %s: %w", s.Name, err)
		}
		for _, c := range s.Consumers {
			if _, err := js.CreateOrUpdateConsumer(ctx, s.Name, consumerConfig(c)); err != nil {
				return fmt.Errorf("consumer %s of %s: %w", c.Durable, s.Name, err)
			}
		}
	}
	for _, bk := range b.cfg.Topology.Buckets {
		if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bk.Name, History: 1, TTL: bk.TTL, Storage: jetstream.FileStorage}); err != nil {
			return fmt.Errorf("bucket %s: %w", bk.Name, err)
		}
	}
	return nil
}

func streamConfig(s access.Stream) jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name:       s.Name,
		Subjects:   s.Subjects,
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Duplicates: s.Dedup,
		Discard:    jetstream.DiscardOld,
	}
	if s.WorkQueue {
		cfg.Retention = jetstream.WorkQueuePolicy
	}
	return cfg
}

func consumerConfig(c access.Consumer) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       c.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    c.MaxDeliver,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// ClientURL is where NATS clients connect.
func (b *Broker) ClientURL() string { return b.ns.ClientURL() }

// MonitorURL is the base URL of NATS's monitoring endpoints, or "" when
// monitoring is off.
func (b *Broker) MonitorURL() string {
	addr := b.ns.MonitorAddr()
	if addr == nil {
		return ""
	}
	return "http://127.0.0.1:" + strconv.Itoa(addr.Port)
}

// Ready reports whether JetStream answers and the topology is declared,
// and why not.
func (b *Broker) Ready() (bool, string) {
	if b.stopped.Load() {
		return false, "the NATS server is not running"
	}
	if !b.ready.Load() {
		return false, *b.declareErr.Load()
	}
	if !b.ns.Running() || !b.ns.JetStreamEnabled() {
		return false, "JetStream is not running"
	}
	if st := b.ns.Healthz(&server.HealthzOptions{JSEnabledOnly: true}); st.Status != "ok" {
		return false, "JetStream unhealthy: " + st.Error
	}
	return true, ""
}

// Handler serves the replica's probes: GET /healthz answers 200 from New
// to Shutdown, so restoring a large store does not count against liveness;
// GET /readyz answers 200 once Start has declared the topology.
func (b *Broker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if b.stopped.Load() {
			httpjson.Error(w, http.StatusServiceUnavailable, "the NATS server is not running")
			return
		}
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if ok, why := b.Ready(); !ok {
			httpjson.Error(w, http.StatusServiceUnavailable, why)
			return
		}
		httpjson.Write(w, http.StatusOK, map[string]any{"status": "ready", "jetstream": true})
	})
	return mux
}

// Shutdown stops the server, flushing the store, and waits until it is down.
func (b *Broker) Shutdown() {
	b.stopped.Store(true)
	b.ready.Store(false)
	b.ns.Shutdown()
	b.ns.WaitForShutdown()
}

// natsLog passes the NATS server's log to slog.
type natsLog struct{ log *slog.Logger }

func (l natsLog) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l natsLog) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l natsLog) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLog) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLog) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLog) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }

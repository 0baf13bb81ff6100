package lb

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultPolicy            = PolicyRoundRobin
	DefaultTryTimeout        = time.Second
	DefaultRetryRatio        = 0.2
	DefaultRetryFloor        = 5.0
	DefaultEjectAfter        = 3
	DefaultEjectBase         = time.Second
	DefaultEjectMax          = 30 * time.Second
	DefaultMaxEjectedPercent = 50
	// DefaultMaxRequestBody bounds a request body. Bodies are read whole
	// before the first try, which is what makes a retry possible; anything
	// larger is refused with 413 rather than streamed.
	DefaultMaxRequestBody = 4 << 20
	// DefaultMaxResponseBody bounds a response body read from a replica.
	DefaultMaxResponseBody = 64 << 20
	// DefaultMaxBufferedBytes bounds the bytes one balancer holds in
	// buffers at once, over all its connections.
	DefaultMaxBufferedBytes = 256 << 20
	// DefaultHeaderTimeout bounds the arrival of a request head, from its
	// first byte: a head trickled a field at a time is cut.
	DefaultHeaderTimeout = 10 * time.Second
	// DefaultBodyTimeout bounds the arrival of a request body, from the end
	// of its head.
	DefaultBodyTimeout = 30 * time.Second
	// DefaultWriteTimeout bounds the writing of one answer to a client: a
	// client that does not read its answers is cut.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultMaxConns bounds the open client connections of one balancer.
	DefaultMaxConns = 10000
)

// Headers and cookie the balancer reads or writes.
const (
	// ShopperHeader names the shopper a sticky balancer hashes on; it wins
	// over ShopperCookie. The sample shop uses the same names.
	ShopperHeader = "X-Shopper"
	// ShopperCookie names the shopper when ShopperHeader is absent.
	ShopperCookie = "shopper"
	// IdempotencyKeyHeader makes a POST (or PATCH) safe to retry.
	IdempotencyKeyHeader = "Idempotency-Key"
	// ReplicaHeader is set by the replica that answered; the balancer
	// passes it through untouched.
	ReplicaHeader = "X-Flotilla-Replica"
)

// Config configures a Balancer. The zero value of every field but Group is
// usable and means its default.
type Config struct {
	// Group names the scaling group; it labels metrics, events and the 503
	// body.
	Group string

	// Listen is the address to listen on; default "127.0.0.1:0" (an
	// ephemeral port). It must be a loopback address unless AllowNonLoopback.
	Listen string
	// AllowNonLoopback allows a Listen address that is not loopback.
	AllowNonLoopback bool

	// Policy is one of Policies(); default round-robin.
	Policy string

	// TryTimeout bounds one try at one replica, from dialling to the last
	// byte of the response (default 1s). A paused replica accepts and never
	// answers; this is what turns that into a retry on another replica.
	TryTimeout time.Duration

	// DisableRetry turns off retries; by default a failed try of a request
	// that is safe to repeat is retried once on another replica.
	DisableRetry bool
	// RetryRatio is the share of recent requests (a 10 s window) that may be
	// retries, default 0.2. Negative means none beyond RetryFloor.
	RetryRatio float64
	// RetryFloor is the number of retries per second always allowed, so a
	// quiet group can still retry; default 5. Negative means none.
	RetryFloor float64

	// EjectAfter is the number of consecutive failures (connection errors,
	// timeouts or 5xx responses) that eject a replica, default 3. Negative
	// disables outlier detection.
	EjectAfter int
	// EjectBase is the first ejection's length (default 1s); it doubles with
	// each repeat ejection, up to EjectMax (default 30s). A replica that
	// stayed in rotation for EjectMax since its last return starts again at
	// EjectBase.
	EjectBase time.Duration
	EjectMax  time.Duration
	// MaxEjectedPercent caps the share of the set that may be ejected at
	// once, default 50: the rest keeps serving, and its real errors reach the
	// client, rather than a blanket 503.
	MaxEjectedPercent int

	// MaxRequestBody and MaxResponseBody bound bodies, in bytes; defaults
	// DefaultMaxRequestBody and DefaultMaxResponseBody.
	MaxRequestBody  int
	MaxResponseBody int

	// MaxBufferedBytes bounds the bytes the balancer holds in buffers at
	// once over all its connections (default DefaultMaxBufferedBytes):
	// bodies being received, answers being read or written. Buffers grow
	// as bytes arrive, never from an announced length. A request that
	// would pass the bound is answered 503 and its connection closed; an
	// answer that would is a 502.
	MaxBufferedBytes int
	// HeaderTimeout bounds the arrival of a request head from its first
	// byte, BodyTimeout that of its body from the head's end; a client too
	// slow gets 408 and its connection closes. WriteTimeout bounds the
	// writing of one answer; a client that does not read it is cut off.
	// Defaults DefaultHeaderTimeout, DefaultBodyTimeout and
	// DefaultWriteTimeout. The event loop checks them once a second.
	HeaderTimeout time.Duration
	BodyTimeout   time.Duration
	WriteTimeout  time.Duration
	// MaxConns bounds the open client connections (default
	// DefaultMaxConns); one over it is answered 503 and closed.
	MaxConns int

	// DataPath chooses how requests are carried: DataPathEventLoop (the
	// default where it is built: Linux on amd64 and arm64) or
	// DataPathFasthttp (the default elsewhere). The event loop needs a
	// *net.TCPListener; a balancer given any other listener serves it on
	// DataPathFasthttp.
	DataPath string

	// OnEvent, if set, receives ejections and restorations, in order. It
	// runs on a goroutine of its own, never on the data path; when it falls
	// 256 events behind, further events are dropped and counted in
	// Totals().DroppedEvents.
	OnEvent func(Event)
}

// Data paths (Config.DataPath).
const (
	// DataPathEventLoop is one epoll loop per CPU that parses and forwards
	// requests itself (evloop_linux.go), handing the rare connection it does
	// not take to the fasthttp path.
	DataPathEventLoop = "event-loop"
	// DataPathFasthttp is a goroutine per connection on
	// github.com/valyala/fasthttp (proxy.go).
	DataPathFasthttp = "fasthttp"
)

// EventKind says what happened to a replica.
type EventKind string

// Kinds of events.
const (
	EventEjected  EventKind = "ejected"
	EventRestored EventKind = "restored"
)

// Event reports an ejection or a restoration.
type Event struct {
	Time    time.Time
	Group   string
	Kind    EventKind
	Replica string // the Upstream's Name, or its ID if Name is empty
	ID      string
	Reason  string
	Until   time.Time // for EventEjected: when the replica returns
}

// Errors.
var (
	// ErrUnknownUpstream means no upstream has the given ID.
	ErrUnknownUpstream = errors.New("unknown upstream")
	// ErrUnknownPolicy means the policy name is not one of Policies().
	ErrUnknownPolicy = errors.New("unknown policy")
	// ErrClosed means the balancer was closed.
	ErrClosed = errors.New("balancer closed")
)

// withDefaults returns cfg with its zero values replaced by defaults, or an
// error if it is invalid.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if !cfg.AllowNonLoopback {
		if err := checkLoopback(cfg.Listen); err != nil {
			return cfg, err
		}
	}
	if cfg.Policy == "" {
		cfg.Policy = DefaultPolicy
	}
	if _, err := newPolicy(cfg.Policy); err != nil {
		return cfg, err
	}
	switch cfg.DataPath {
	case "":
		cfg.DataPath = DataPathFasthttp
		if eventLoopBuilt {
			cfg.DataPath = DataPathEventLoop
		}
	case DataPathFasthttp:
	case DataPathEventLoop:
		if !eventLoopBuilt {
			return cfg, fmt.Errorf("data path %q is built only on Linux (amd64, arm64); use %q", cfg.DataPath, DataPathFasthttp)
		}
	default:
		return cfg, fmt.Errorf("unknown data path %q: use %q or %q", cfg.DataPath, DataPathEventLoop, DataPathFasthttp)
	}
	if cfg.TryTimeout <= 0 {
		cfg.TryTimeout = DefaultTryTimeout
	}
	cfg.RetryRatio = orDefault(cfg.RetryRatio, DefaultRetryRatio)
	cfg.RetryFloor = orDefault(cfg.RetryFloor, DefaultRetryFloor)
	if cfg.EjectAfter == 0 {
		cfg.EjectAfter = DefaultEjectAfter
	}
	if cfg.EjectBase <= 0 {
		cfg.EjectBase = DefaultEjectBase
	}
	if cfg.EjectMax <= 0 {
		cfg.EjectMax = DefaultEjectMax
	}
	if cfg.EjectMax < cfg.EjectBase {
		cfg.EjectMax = cfg.EjectBase
	}
	if cfg.MaxEjectedPercent <= 0 {
		cfg.MaxEjectedPercent = DefaultMaxEjectedPercent
	}
	if cfg.MaxEjectedPercent > 100 {
		return cfg, fmt.Errorf("max ejected percent %d is over 100", cfg.MaxEjectedPercent)
	}
	if cfg.MaxRequestBody <= 0 {
		cfg.MaxRequestBody = DefaultMaxRequestBody
	}
	if cfg.MaxResponseBody <= 0 {
		cfg.MaxResponseBody = DefaultMaxResponseBody
	}
	if cfg.MaxBufferedBytes <= 0 {
		cfg.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = DefaultHeaderTimeout
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	return cfg, nil
}

// orDefault maps zero to def and a negative value to zero.
func orDefault(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// checkLoopback refuses a listen address that is not on a loopback
// interface: only 127.0.0.1 may receive traffic on Flotilla's machines.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %q is not a loopback address (set AllowNonLoopback to allow it)", addr)
	}
	return nil
}

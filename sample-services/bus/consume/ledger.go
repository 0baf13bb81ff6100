package consume

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrDuplicate is a Record of an event that was already recorded.
var ErrDuplicate = errors.New("event already applied")

// Ledger records the events a service applied.
type Ledger interface {
	// Applied reports whether the event id was recorded.
	Applied(ctx context.Context, id string) (bool, error)
	// Record records the event id as applied by replica, atomically: of
	// concurrent Records of one id, one succeeds and the others get
	// ErrDuplicate.
	Record(ctx context.Context, id, replica string) error
	// Count is how many events are recorded.
	Count(ctx context.Context) (uint64, error)
	// String says where the records are kept.
	String() string
}

// Memory is a ledger in this replica's memory: what one process applied.
// Without a bus a replica has nothing better; its records die with it.
type Memory struct {
	mu  sync.Mutex
	ids map[string]bool
}

// NewMemory returns an empty memory ledger.
func NewMemory() *Memory { return &Memory{ids: map[string]bool{}} }

func (m *Memory) Applied(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ids[id], nil
}

func (m *Memory) Record(_ context.Context, id, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ids[id] {
		return ErrDuplicate
	}
	m.ids[id] = true
	return nil
}

func (m *Memory) Count(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(len(m.ids)), nil
}

func (m *Memory) String() string { return "memory" }

// Bucket is a ledger in a JetStream key-value bucket, one key per applied
// event, shared by every replica of the service. Record is a create: the
// server accepts it only if the key does not exist, so two replicas that
// raced on one event cannot both apply it.
type Bucket struct {
	name string
	kv   jetstream.KeyValue
}

// OpenBucket binds the bucket called name (created by the bus).
func OpenBucket(ctx context.Context, js jetstream.JetStream, name string) (*Bucket, error) {
	kv, err := js.KeyValue(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", name, err)
	}
	return &Bucket{name: name, kv: kv}, nil
}

func (b *Bucket) Applied(ctx context.Context, id string) (bool, error) {
	_, err := b.kv.Get(ctx, key(id))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	}
	return false, err
}

// record is the value of an applied event's key: who applied it, when.
type record struct {
	Replica string    `json:"replica"`
	At      time.Time `json:"at"`
}

func (b *Bucket) Record(ctx context.Context, id, replica string) error {
	v, _ := json.Marshal(record{Replica: replica, At: time.Now().UTC()})
	_, err := b.kv.Create(ctx, key(id), v)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return ErrDuplicate
	}
	return err
}

func (b *Bucket) Count(ctx context.Context) (uint64, error) {
	st, err := b.kv.Status(ctx)
	if err != nil {
		return 0, err
	}
	return st.Values(), nil
}

func (b *Bucket) String() string { return "bucket " + b.name }

var plainKey = regexp.MustCompile(`^[-_=a-zA-Z0-9]{1,200}$`)

// key is the bucket's key of an event ID: the ID itself when the bucket
// takes it as it is, else its base64 (URL alphabet) behind "b64.".
func key(id string) string {
	if plainKey.MatchString(id) {
		return id
	}
	return "b64." + base64.RawURLEncoding.EncodeToString([]byte(id))
}

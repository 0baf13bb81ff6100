package cart

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Store keeps every shopper's items.
type Store interface {
	// Items returns the shopper's items in the order they were added;
	// none if the shopper has no cart.
	Items(ctx context.Context, shopper string) ([]Item, error)
	// Change replaces the shopper's items with what f makes of them and
	// returns the new items. No other change to that cart comes between
	// what f is given and what it returns. If f fails, nothing changes and
	// its error is returned. f may modify the slice it is given.
	Change(ctx context.Context, shopper string, f func([]Item) ([]Item, error)) ([]Item, error)
	// Clear empties the shopper's cart.
	Clear(ctx context.Context, shopper string) error
}

// MemoryStore keeps carts in this process's memory.
type MemoryStore struct {
	mu    sync.Mutex
	carts map[string][]Item // by shopper
}

// NewMemoryStore returns a store with no carts.
func NewMemoryStore() *MemoryStore { return &MemoryStore{carts: map[string][]Item{}} }

// Items returns a copy of the shopper's items.
func (m *MemoryStore) Items(_ context.Context, shopper string) ([]Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.carts[shopper]), nil
}

// Change applies f under the store's lock.
func (m *MemoryStore) Change(_ context.Context, shopper string, f func([]Item) ([]Item, error)) ([]Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	items, err := f(slices.Clone(m.carts[shopper]))
	if err != nil {
		return nil, err
	}
	m.carts[shopper] = items
	return slices.Clone(items), nil
}

// Clear forgets the shopper's cart.
func (m *MemoryStore) Clear(_ context.Context, shopper string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.carts, shopper)
	return nil
}

// KVStore keeps carts in a JetStream key-value bucket (the bus's carts),
// one key per shopper holding the items as JSON, so every replica of the
// cart service sees the same carts and a cart outlives the replica that
// made it.
//
// Two replicas may change one cart at once (round-robin sends a shopper's
// requests anywhere). A change reads the cart and its revision and writes
// only if the revision is still the last (compare-and-set); if another
// change came first, it reads again and applies itself to the new cart, up
// to MaxAttempts times, so neither change is lost.
type KVStore struct {
	js     jetstream.JetStream
	bucket string

	mu sync.Mutex
	kv jetstream.KeyValue // bound on first use: the bus may come after the cart

	conflicts atomic.Int64
}

// MaxAttempts bounds the tries of one change of a cart that others keep
// changing under it.
const MaxAttempts = 8

// ErrContended means a cart changed under a change MaxAttempts times.
var ErrContended = errors.New("the cart kept changing under this change")

// NewKVStore keeps carts in bucket, reached through js.
func NewKVStore(js jetstream.JetStream, bucket string) *KVStore {
	return &KVStore{js: js, bucket: bucket}
}

func (s *KVStore) store(ctx context.Context) (jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kv != nil {
		return s.kv, nil
	}
	kv, err := s.js.KeyValue(ctx, s.bucket)
	if err != nil {
		return nil, fmt.Errorf("cart store: bucket %s of the bus: %w", s.bucket, err)
	}
	s.kv = kv
	return kv, nil
}

// key is the shopper's key: a shopper's name may hold any character, a key
// only letters, digits and -/_=.
func key(shopper string) string {
	return "s_" + base64.RawURLEncoding.EncodeToString([]byte(shopper))
}

// read returns the shopper's items and the revision they are at; 0 if
// there is no cart.
func (s *KVStore) read(ctx context.Context, kv jetstream.KeyValue, shopper string) ([]Item, uint64, error) {
	e, err := kv.Get(ctx, key(shopper))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("cart store: read the cart of %q: %w", shopper, err)
	}
	var items []Item
	if err := json.Unmarshal(e.Value(), &items); err != nil {
		return nil, 0, fmt.Errorf("cart store: the cart of %q: %w", shopper, err)
	}
	return items, e.Revision(), nil
}

// Items reads the shopper's cart from the bucket.
func (s *KVStore) Items(ctx context.Context, shopper string) ([]Item, error) {
	kv, err := s.store(ctx)
	if err != nil {
		return nil, err
	}
	items, _, err := s.read(ctx, kv, shopper)
	return items, err
}

// Change reads, applies f and writes if nobody wrote in between, else
// tries again.
func (s *KVStore) Change(ctx context.Context, shopper string, f func([]Item) ([]Item, error)) ([]Item, error) {
	kv, err := s.store(ctx)
	if err != nil {
		return nil, err
	}
	for attempt := range MaxAttempts {
		items, rev, err := s.read(ctx, kv, shopper)
		if err != nil {
			return nil, err
		}
		items, err = f(items)
		if err != nil {
			return nil, err
		}
		data, err := json.Marshal(items)
		if err != nil {
			return nil, err
		}
		if rev == 0 {
			_, err = kv.Create(ctx, key(shopper), data)
		} else {
			_, err = kv.Update(ctx, key(shopper), data, rev)
		}
		if err == nil {
			return items, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil, fmt.Errorf("cart store: write the cart of %q: %w", shopper, err)
		}
		s.conflicts.Add(1)
		// Another replica wrote first: let it finish, then read again.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(rand.Int64N(int64(time.Millisecond) << attempt))):
		}
	}
	return nil, fmt.Errorf("cart store: %w (%d tries); try again", ErrContended, MaxAttempts)
}

// Clear deletes the shopper's key.
func (s *KVStore) Clear(ctx context.Context, shopper string) error {
	kv, err := s.store(ctx)
	if err != nil {
		return err
	}
	if err := kv.Delete(ctx, key(shopper)); err != nil {
		return fmt.Errorf("cart store: clear the cart of %q: %w", shopper, err)
	}
	return nil
}

// Conflicts counts the changes that found the cart changed under them and
// tried again.
func (s *KVStore) Conflicts() int64 { return s.conflicts.Load() }

// Health is nil while the bus is connected and the bucket answers.
func (s *KVStore) Health(ctx context.Context) error {
	if !s.js.Conn().IsConnected() {
		return errors.New("cart store: not connected to the bus")
	}
	kv, err := s.store(ctx)
	if err != nil {
		return err
	}
	if _, err := kv.Status(ctx); err != nil {
		return fmt.Errorf("cart store: bucket %s: %w", s.bucket, err)
	}
	return nil
}

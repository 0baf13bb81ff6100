// Package store persists Flotilla's desired state in the state directory, so
// groups survive a restart of the controller. It also keeps the instance ID,
// the UUID that labels every object this controller owns.
//
// The store is an embedded bbolt database: one file, one writer. A second
// controller pointed at the same state directory fails to open it rather than
// fighting over the same containers.
package store

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/flotilla/flotilla/orchestrator/spec"
)

// ErrLocked: another controller holds the state directory.
var ErrLocked = errors.New("state directory is in use by another controller")

var (
	groupsBucket  = []byte("groups")
	metaBucket    = []byte("meta")
	historyBucket = []byte("history")
	scenarioKey   = []byte("scenario")
)

// Store holds the desired groups.
type Store struct {
	db *bolt.DB
}

// Open opens (creating if needed) the store in dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	path := filepath.Join(dir, "flotilla.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 500 * time.Millisecond})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(groupsBucket); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(historyBucket); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(metaBucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close releases the database.
func (s *Store) Close() error { return s.db.Close() }

// Groups returns every stored group, sorted by name.
func (s *Store) Groups() ([]spec.Group, error) {
	var out []spec.Group
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(groupsBucket).ForEach(func(k, v []byte) error {
			var g spec.Group
			if err := json.Unmarshal(v, &g); err != nil {
				return fmt.Errorf("decode group %q: %w", k, err)
			}
			out = append(out, g)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// PutGroup stores g, replacing any group of the same name.
func (s *Store) PutGroup(g spec.Group) error {
	b, err := json.Marshal(g)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(groupsBucket).Put([]byte(g.Name), b)
	})
}

// DeleteGroup removes a group and its history; deleting a missing group
// is not an error.
func (s *Store) DeleteGroup(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(historyBucket).Delete([]byte(name)); err != nil {
			return err
		}
		return tx.Bucket(groupsBucket).Delete([]byte(name))
	})
}

// PutHistory keeps a group's revisions and rollouts, as the controller
// encodes them.
func (s *Store) PutHistory(group string, data []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(historyBucket).Put([]byte(group), data)
	})
}

// History returns what PutHistory kept for group, or nil.
func (s *Store) History(group string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		out = append([]byte(nil), tx.Bucket(historyBucket).Get([]byte(group))...)
		return nil
	})
	if len(out) == 0 {
		out = nil
	}
	return out, err
}

// SetScenario records the scenario last applied.
func (s *Store) SetScenario(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(metaBucket).Put(scenarioKey, []byte(name))
	})
}

// Scenario returns the scenario last applied, or "".
func (s *Store) Scenario() (string, error) {
	var name string
	err := s.db.View(func(tx *bolt.Tx) error {
		name = string(tx.Bucket(metaBucket).Get(scenarioKey))
		return nil
	})
	return name, err
}

// InstanceID returns the UUID kept in dir, creating it on first use.
func InstanceID(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create state directory: %w", err)
	}
	path := filepath.Join(dir, "instance-id")
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if _, perr := uuid.Parse(id); perr != nil {
			return "", fmt.Errorf("%s holds %q, not a UUID: remove the file to get a new identity", path, id)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read instance id: %w", err)
	}
	id := uuid.NewString()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write instance id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write instance id: %w", err)
	}
	return id, nil
}

// BusSecret returns the secret kept in dir from which the bus's passwords
// derive, creating it on first use, readable by its owner only. It stays
// across restarts of the controller, so running replicas keep matching
// the bus; removing the file changes every password.
func BusSecret(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create state directory: %w", err)
	}
	path := filepath.Join(dir, "bus-secret")
	b, err := os.ReadFile(path)
	if err == nil {
		secret := strings.TrimSpace(string(b))
		if len(secret) < 32 {
			return "", fmt.Errorf("%s holds a secret shorter than 32 characters: remove the file to get a new one", path)
		}
		return secret, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read bus secret: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("make bus secret: %w", err)
	}
	secret := hex.EncodeToString(raw)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write bus secret: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write bus secret: %w", err)
	}
	return secret, nil
}

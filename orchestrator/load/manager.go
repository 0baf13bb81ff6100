package load

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Errors of the Manager.
var (
	// ErrNotFound means no run of that id is known, running or in history.
	ErrNotFound = errors.New("no such load run")
	// ErrBusy means MaxRunning runs are already running.
	ErrBusy = errors.New("too many load runs")
	// ErrClosed means the Manager was closed.
	ErrClosed = errors.New("load manager closed")
)

// Defaults of ManagerOptions.
const (
	DefaultMaxRunning = 2
	DefaultHistory    = 10
)

// ManagerOptions configure NewManager. Zero fields take the defaults.
type ManagerOptions struct {
	// MaxRunning bounds the runs going at once; the machine has few cores
	// and the runs share them with what they measure.
	MaxRunning int
	// History is how many ended runs are kept for Get and List.
	History int
}

// Manager keeps a few runs by id, for the REST API: the running ones and the
// last History that ended. Runs it starts live until they end, Stop or
// Close, not as long as the request that started them. Its methods are safe
// for concurrent use.
type Manager struct {
	opts   ManagerOptions
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	runs   []*Run // oldest first
	closed bool
}

// NewManager returns a Manager; Close it to stop its runs.
func NewManager(o ManagerOptions) *Manager {
	if o.MaxRunning <= 0 {
		o.MaxRunning = DefaultMaxRunning
	}
	if o.History <= 0 {
		o.History = DefaultHistory
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{opts: o, ctx: ctx, cancel: cancel}
}

// Start starts a run and returns its first report. The error wraps
// ErrInvalid for a bad spec (a *ValidationError names the field), or is
// ErrBusy or ErrClosed.
func (m *Manager) Start(s Spec) (Report, error) {
	if err := s.Validate(); err != nil {
		return Report{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Report{}, ErrClosed
	}
	running := 0
	for _, r := range m.runs {
		if !isDone(r) {
			running++
		}
	}
	if running >= m.opts.MaxRunning {
		return Report{}, fmt.Errorf("%w: %d already running, the most allowed; stop one first", ErrBusy, running)
	}
	r, err := Start(m.ctx, s)
	if err != nil {
		return Report{}, err
	}
	m.runs = append(m.runs, r)
	m.pruneLocked()
	go func() {
		<-r.Done()
		m.mu.Lock()
		m.pruneLocked()
		m.mu.Unlock()
	}()
	return r.Report(), nil
}

// Get returns the report of run id, or an error wrapping ErrNotFound.
func (m *Manager) Get(id string) (Report, error) {
	r, err := m.find(id)
	if err != nil {
		return Report{}, err
	}
	return r.Report(), nil
}

// List returns the reports of the runs kept, newest first.
func (m *Manager) List() []Report {
	m.mu.Lock()
	runs := slices.Clone(m.runs)
	m.mu.Unlock()
	out := make([]Report, 0, len(runs))
	for _, r := range slices.Backward(runs) {
		out = append(out, r.Report())
	}
	return out
}

// Stop stops run id, waits until it has ended, which takes no longer than
// it takes to cut off its requests in flight, and returns its final report.
// Stopping a run that has already ended just returns its report.
func (m *Manager) Stop(id string) (Report, error) {
	r, err := m.find(id)
	if err != nil {
		return Report{}, err
	}
	r.Stop()
	<-r.Done()
	return r.Report(), nil
}

// Close stops every run, waits for them to end, and refuses new ones.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	runs := slices.Clone(m.runs)
	m.mu.Unlock()
	m.cancel()
	for _, r := range runs {
		<-r.Done()
	}
}

func (m *Manager) find(id string) (*Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.runs {
		if r.id == id {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
}

// pruneLocked forgets the oldest ended runs beyond History.
func (m *Manager) pruneLocked() {
	done := make([]bool, len(m.runs)) // read once: a run may end meanwhile
	ended := 0
	for i, r := range m.runs {
		done[i] = isDone(r)
		if done[i] {
			ended++
		}
	}
	kept := m.runs[:0]
	for i, r := range m.runs {
		if done[i] && ended > m.opts.History {
			ended--
			continue
		}
		kept = append(kept, r)
	}
	clear(m.runs[len(kept):])
	m.runs = kept
}

func isDone(r *Run) bool {
	select {
	case <-r.Done():
		return true
	default:
		return false
	}
}

package dockertest

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// LockSwarm holds, until t ends, the one lock every test that uses the
// engine's swarm mode takes, in any test binary: go test runs packages at
// once, and one package's test must not leave the swarm it initialised
// while another's services run on it. Call it before anything else of the
// test registers a cleanup, so that the lock goes last.
func LockSwarm(t testing.TB) {
	t.Helper()
	SkipSwarmLater(t)
	unlock, err := LockSwarmProcess()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unlock)
}

// LockSwarmProcess takes the same lock for the caller to release, for a
// test binary that keeps one swarm across its tests.
func LockSwarmProcess() (unlock func(), err error) {
	path := filepath.Join(os.TempDir(), "flotilla-swarm-tests.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("swarm lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("swarm lock %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// SwarmLaterEnv, set to 1, skips the tests that use swarm mode: `make
// test` runs every other test first, then those alone (make test-swarm),
// so that initialising and leaving a swarm, which rewrites the engine's
// network rules, never happens beside other tests' containers.
const SwarmLaterEnv = "FLOTILLA_SWARM_LATER"

// SkipSwarmLater skips t when SwarmLaterEnv says swarm tests run later.
func SkipSwarmLater(t testing.TB) {
	t.Helper()
	if os.Getenv(SwarmLaterEnv) == "1" {
		t.Skipf("%s=1: the tests that use swarm mode run in a step of their own (make test-swarm)", SwarmLaterEnv)
	}
}

package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/flotilla/flotilla/orchestrator/docker"
)

// The runtimes Serve takes.
const (
	RuntimeEngine = "engine"
	RuntimeSwarm  = "swarm"
)

// swarmRecordFile, in the state directory, says that this controller
// initialised the swarm, so that down --leave-swarm may leave it.
const swarmRecordFile = "swarm-init.json"

// openSwarm returns the Swarm-mode runtime on drv's engine, initialising a
// single-node swarm first when asked and none is active. Whether this
// controller initialised it is kept in the state directory, so a restarted
// controller still knows; a swarm that was active before is never ours.
func openSwarm(ctx context.Context, drv *docker.Driver, cfg Config, stdout io.Writer, log *slog.Logger) (*docker.Swarm, *swarmLeaver, error) {
	leaver := &swarmLeaver{drv: drv, path: filepath.Join(cfg.StateDir, swarmRecordFile), log: log}
	sw, err := docker.NewSwarm(ctx, drv)
	if errors.Is(err, docker.ErrSwarmInactive) && cfg.SwarmInit {
		rec, ierr := docker.InitSwarm(ctx, drv)
		if ierr != nil {
			return nil, nil, fmt.Errorf("initialise a single-node swarm: %w", ierr)
		}
		if rec.Initialised {
			if werr := leaver.save(rec); werr != nil {
				return nil, nil, werr
			}
			fmt.Fprintf(stdout, "flotilla: initialised a single-node swarm advertised on 127.0.0.1 (node %s); `flotilla down --leave-swarm` leaves it\n", rec.NodeID)
		}
		sw, err = docker.NewSwarm(ctx, drv)
	}
	if err != nil {
		return nil, nil, err
	}
	return sw, leaver, nil
}

// swarmLeaver leaves the swarm this controller initialised, for
// POST /api/v1/down {"leaveSwarm": true}, then stops the controller.
type swarmLeaver struct {
	drv  *docker.Driver
	path string
	log  *slog.Logger
	// stop ends Serve once the answer is out: its runtime is gone.
	stop func()
	// left: this controller left its swarm.
	left atomic.Bool
}

func (l *swarmLeaver) load() (docker.SwarmRecord, error) {
	var rec docker.SwarmRecord
	b, err := os.ReadFile(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return rec, errors.New("this controller did not initialise the swarm (it was active when the controller started, or was started by hand); Flotilla never leaves a swarm it did not create: `docker swarm leave --force` does, if you mean it")
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("read %s: %w", l.path, err)
	}
	return rec, nil
}

func (l *swarmLeaver) save(rec docker.SwarmRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(l.path, b, 0o600); err != nil {
		return fmt.Errorf("record the swarm this controller initialised: %w", err)
	}
	return nil
}

// CanLeave refuses a swarm this controller did not initialise.
func (l *swarmLeaver) CanLeave(ctx context.Context) error {
	rec, err := l.load()
	if err != nil {
		return err
	}
	return docker.CanLeaveSwarm(ctx, l.drv, rec)
}

// Leave leaves the swarm, forgets it and stops the controller.
func (l *swarmLeaver) Leave(ctx context.Context) error {
	rec, err := l.load()
	if err != nil {
		return err
	}
	if err := docker.LeaveSwarm(ctx, l.drv, rec); err != nil && !docker.OnlyStale(err) {
		return err
	} else if err != nil {
		// Left; the engine keeps the empty bridge a while longer.
		l.log.Warn("left the swarm", "err", err)
	}
	l.left.Store(true)
	if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if l.stop != nil {
		// Let the answer go out first.
		time.AfterFunc(200*time.Millisecond, l.stop)
	}
	return nil
}

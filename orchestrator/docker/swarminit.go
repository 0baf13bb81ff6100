package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
)

// Initialising and leaving a swarm. Flotilla initialises a single-node
// swarm only when asked (flotilla serve --runtime swarm --swarm-init) and
// only if the engine is in none, and leaves only the swarm it initialised:
// SwarmRecord, kept by the caller (the state directory's swarm-init.json),
// is the proof. It never joins a swarm, and never leaves one it did not make.

// swarmAddr is where an initialised swarm listens and advertises: this
// host only, so nothing outside it can join or reach the swarm's ports.
const swarmAddr = "127.0.0.1"

// SwarmRecord is what InitSwarm did, for LeaveSwarm to undo exactly that.
type SwarmRecord struct {
	// Initialised: InitSwarm made this swarm. False: it found one active
	// and left it alone, so LeaveSwarm will too.
	Initialised bool `json:"initialised"`
	// NodeID is the engine's node in the swarm InitSwarm found or made; a
	// swarm whose node ID differs later is another one.
	NodeID string `json:"nodeID"`
	// GWBridgeExisted: the docker_gwbridge network was there before the
	// swarm was initialised, so leaving it must not remove it.
	GWBridgeExisted bool `json:"gwbridgeExisted"`
	// At is when InitSwarm ran.
	At time.Time `json:"at"`
}

// InitSwarm makes the engine the single manager of a new swarm, listening
// and advertised on 127.0.0.1, if it is in no swarm. An active swarm is
// returned as not ours (Initialised false) and left as it is. A swarm that
// is locked, pending or in error is an error: it is someone's, and not
// usable.
func InitSwarm(ctx context.Context, d *Driver) (SwarmRecord, error) {
	info, err := d.cli.Info(ctx)
	if err != nil {
		return SwarmRecord{}, translate("read the engine's swarm state", err)
	}
	init, err := initDecision(info.Swarm)
	if !init || err != nil {
		return SwarmRecord{NodeID: info.Swarm.NodeID, At: time.Now()}, err
	}
	_, err = d.cli.NetworkInspect(ctx, gwbridge, network.InspectOptions{})
	if err != nil && !isSDKNotFound(err) {
		return SwarmRecord{}, translate("inspect network "+gwbridge, err)
	}
	rec := SwarmRecord{Initialised: true, GWBridgeExisted: err == nil, At: time.Now()}
	mctx, cancel := making(ctx)
	defer cancel()
	rec.NodeID, err = d.cli.SwarmInit(mctx, swarm.InitRequest{
		ListenAddr:    swarmAddr + ":2377",
		AdvertiseAddr: swarmAddr,
	})
	if err != nil {
		return SwarmRecord{}, translate("swarm init", err)
	}
	return rec, nil
}

// initDecision says whether an engine in swarm state sw needs a swarm
// initialised, or why it cannot be used.
func initDecision(sw swarm.Info) (bool, error) {
	switch sw.LocalNodeState {
	case swarm.LocalNodeStateInactive, "":
		return true, nil
	case swarm.LocalNodeStateActive:
		return false, nil
	}
	return false, swarmUsable(sw)
}

// LeaveSwarm undoes InitSwarm: it leaves the swarm (forcing, as the last
// manager must) only if rec says InitSwarm made it and the engine is still
// that node of it, then removes docker_gwbridge if the swarm made that
// too. Anything else is left as it is; d's logger says why.
func LeaveSwarm(ctx context.Context, d *Driver, rec SwarmRecord) error {
	info, err := d.cli.Info(ctx)
	if err != nil {
		return translate("read the engine's swarm state", err)
	}
	leave, why := leaveDecision(rec, info.Swarm)
	if !leave {
		d.log.Info("not leaving the swarm", "reason", why)
		return nil
	}
	if err := d.cli.SwarmLeave(ctx, true); err != nil {
		return translate("swarm leave", err)
	}
	if rec.GWBridgeExisted {
		return nil
	}
	// The engine lets go of the bridge's last endpoint (the ingress
	// sandbox's) some time after the leave: seconds, more on a busy host,
	// or when the swarm was left just after it was made.
	var rmErr error
	for range 300 {
		rmErr = d.cli.NetworkRemove(ctx, gwbridge)
		if rmErr == nil || isSDKNotFound(rmErr) {
			return nil
		}
		if !strings.Contains(rmErr.Error(), "active endpoints") {
			break
		}
		select {
		case <-ctx.Done():
			return translate("remove network "+gwbridge, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if stale(gwbridge, d) {
		// Docker 20.10 can keep the ingress sandbox's endpoint for a long
		// while after the leave, more so on a busy host; the network is
		// empty and goes with a later `docker network rm docker_gwbridge`.
		return fmt.Errorf("left the swarm, but remove network %s: %w", gwbridge, ErrStaleEndpoint)
	}
	return fmt.Errorf("left the swarm, but %w", translate("remove network "+gwbridge, rmErr))
}

// CanLeaveSwarm says why LeaveSwarm would not leave the engine's swarm
// given rec, or nil when it would.
func CanLeaveSwarm(ctx context.Context, d *Driver, rec SwarmRecord) error {
	info, err := d.cli.Info(ctx)
	if err != nil {
		return translate("read the engine's swarm state", err)
	}
	if leave, why := leaveDecision(rec, info.Swarm); !leave {
		return errors.New(why + "; Flotilla never leaves a swarm it did not create")
	}
	return nil
}

// leaveDecision says whether to leave the swarm of state sw given what
// InitSwarm recorded, and if not, why.
func leaveDecision(rec SwarmRecord, sw swarm.Info) (bool, string) {
	switch {
	case !rec.Initialised:
		return false, "Flotilla did not initialise this swarm"
	case rec.NodeID == "":
		return false, "the record names no node"
	case sw.LocalNodeState == swarm.LocalNodeStateInactive || sw.LocalNodeState == "":
		return false, "the engine is in no swarm any more"
	case sw.NodeID != rec.NodeID:
		return false, fmt.Sprintf("the engine is node %s of another swarm, not node %s of the one Flotilla initialised", sw.NodeID, rec.NodeID)
	}
	return true, ""
}

//go:build !(linux && (amd64 || arm64))

package lb

import (
	"context"
	"errors"
	"net"
)

// The event-loop data path is built for Linux on amd64 and arm64 only;
// elsewhere Config.DataPath defaults to DataPathFasthttp and these are
// never used.

const eventLoopBuilt = false

type dialTarget struct{}

func resolveDial(string) dialTarget { return dialTarget{} }

type evEngine struct{ done chan struct{} }

func newEvEngine(*Balancer, net.Listener) (*evEngine, error) {
	return nil, errors.New("the event-loop data path is not built on this platform")
}

func (*evEngine) shutdown(context.Context) error { return nil }

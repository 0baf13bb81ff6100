package api

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"

	"github.com/flotilla/flotilla/orchestrator/bus"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/load"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// The stream's timing. A client must answer pings within pongWait; a write
// that takes longer than writeWait ends the connection.
const (
	writeWait    = 5 * time.Second
	pongWait     = 30 * time.Second
	pingPeriod   = pongWait * 2 / 3
	statsPeriod  = time.Second
	groupPeriod  = 100 * time.Millisecond
	readLimit    = 512
	sendBuffer   = 64 << 10
	closeTooSlow = 4000 // the client fell behind and was dropped: reconnect and resync
)

// Messages of GET /api/v1/stream, server to client. The first is always a
// snapshot; then events, group updates and stats follow.
type (
	// SnapshotMessage is the whole state; Seq is the last event it includes.
	SnapshotMessage struct {
		Type     string         `json:"type"` // "snapshot"
		Seq      uint64         `json:"seq"`
		Time     time.Time      `json:"time"`
		Groups   []Group        `json:"groups"`
		Services []spec.Service `json:"services"`
		Policies []string       `json:"policies"`
		Events   []hub.Event    `json:"events"`
		Loads    []load.Report  `json:"loads"`
		// Bus is the bus's last reading, when the controller reads one.
		Bus *bus.Status `json:"bus,omitempty"`
		// Nodes are the runtime's nodes with their replicas; left out
		// when they could not be read.
		Nodes *controller.NodesStatus `json:"nodes,omitempty"`
	}
	// NodesMessage carries the runtime's nodes with their replicas when
	// anything of them changed: a node's fields, or which replicas are on
	// which node. It is checked every statsPeriod and after group updates.
	NodesMessage struct {
		Type  string                 `json:"type"` // "nodes"
		Nodes controller.NodesStatus `json:"nodes"`
	}
	// BusMessage carries the bus's reading when it changed: at most every
	// statsPeriod, and only when a figure did.
	BusMessage struct {
		Type string     `json:"type"` // "bus"
		Bus  bus.Status `json:"bus"`
	}
	// EventMessage carries one event.
	EventMessage struct {
		Type  string    `json:"type"` // "event"
		Event hub.Event `json:"event"`
	}
	// GroupMessage carries a group's full, current status.
	GroupMessage struct {
		Type  string `json:"type"` // "group"
		Group Group  `json:"group"`
	}
	// GroupRemovedMessage says a group is gone.
	GroupRemovedMessage struct {
		Type string `json:"type"` // "group-removed"
		Name string `json:"name"`
	}
	// StatsMessage carries every replica's live figures, by replica name,
	// and the running load generator runs.
	StatsMessage struct {
		Type     string                             `json:"type"` // "stats"
		Time     time.Time                          `json:"time"`
		Replicas map[string]controller.ReplicaStats `json:"replicas"`
		Loads    []load.Report                      `json:"loads"`
	}
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 16 << 10,
	// The guard has already refused a foreign or null Origin and a foreign
	// Host with 403, before any upgrade.
	CheckOrigin: func(*http.Request) bool { return true },
}

func (s *server) stream(c *gin.Context) {
	if !websocket.IsWebSocketUpgrade(c.Request) {
		abort(c, http.StatusBadRequest, "this is a websocket: connect with a websocket client (Upgrade: websocket)")
		return
	}
	// Subscribe before taking the snapshot so nothing falls in between;
	// events already in the snapshot are skipped by their sequence number.
	sub := s.hub.Subscribe()
	defer sub.Cancel()
	conn, err := upgrader.Upgrade(c.Writer, c.Request, nil)
	if err != nil {
		return // the upgrader has answered the client
	}
	defer conn.Close()
	// A small kernel send buffer makes a client that stops reading push
	// back within a second, so the hub drops it instead of the kernel
	// holding megabytes for it.
	if tc, ok := conn.NetConn().(*net.TCPConn); ok {
		tc.SetWriteBuffer(sendBuffer)
	}

	snap := s.snapshot()
	conn.SetWriteDeadline(time.Now().Add(writeWait))
	if err := conn.WriteJSON(snap); err != nil {
		return
	}

	done := make(chan struct{})
	go readPump(conn, done)
	s.writePump(conn, sub, snap, done)
}

func (s *server) snapshot() SnapshotMessage {
	seq := s.hub.Seq()
	snap := SnapshotMessage{
		Type:     "snapshot",
		Seq:      seq,
		Time:     time.Now(),
		Services: s.ctl.Services(),
		Policies: spec.Policies,
		Loads:    []load.Report{},
	}
	for _, e := range s.hub.Recent() {
		if e.Seq <= seq {
			snap.Events = append(snap.Events, e)
		}
	}
	if snap.Events == nil {
		snap.Events = []hub.Event{}
	}
	snap.Groups = s.views(s.ctl.Groups())
	if s.load != nil {
		snap.Loads = s.load.List()
	}
	if s.bus != nil {
		st := emptyBusLists(s.bus.BusStatus())
		snap.Bus = &st
	}
	if st, ok := s.nodes(); ok {
		snap.Nodes = &st
	}
	return snap
}

// nodes reads the runtime's nodes for the stream, bounded in time: the
// controller keeps its last reading, so this rarely waits at all.
func (s *server) nodes() (controller.NodesStatus, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), writeWait)
	defer cancel()
	st, err := s.ctl.Nodes(ctx)
	if err != nil {
		return controller.NodesStatus{}, false
	}
	return emptyNodeLists(st), true
}

// nodesKey is what tells two readings of the nodes apart.
func nodesKey(st controller.NodesStatus) string {
	b, _ := json.Marshal(st)
	return string(b)
}

// busKey is what tells two readings of the bus apart: all but the time of
// the reading.
func busKey(st bus.Status) string {
	st.Time = time.Time{}
	b, _ := json.Marshal(st)
	return string(b)
}

// readPump reads (and discards) what the client sends, so control frames
// are handled, and closes done when the connection ends. A frame over
// readLimit ends the connection.
func readPump(conn *websocket.Conn, done chan<- struct{}) {
	defer close(done)
	conn.SetReadLimit(readLimit)
	conn.SetReadDeadline(time.Now().Add(pongWait))
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(pongWait))
	})
	for {
		if _, _, err := conn.NextReader(); err != nil {
			return
		}
	}
}

// writePump sends events as they come, each affected group's status at
// most every groupPeriod, and stats every statsPeriod.
func (s *server) writePump(conn *websocket.Conn, sub *hub.Subscription, snap SnapshotMessage, done <-chan struct{}) {
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	stats := time.NewTicker(statsPeriod)
	defer stats.Stop()
	flush := time.NewTicker(groupPeriod)
	defer flush.Stop()

	sent := map[string][]byte{} // last group status sent, by name
	for _, g := range snap.Groups {
		sent[g.Name], _ = json.Marshal(g)
	}
	pending := map[string]bool{}
	lastFlush := time.Time{}
	var busSent string
	if snap.Bus != nil {
		busSent = busKey(*snap.Bus)
	}
	write := func(v any) error {
		conn.SetWriteDeadline(time.Now().Add(writeWait))
		return conn.WriteJSON(v)
	}
	var nodesSent string
	if snap.Nodes != nil {
		nodesSent = nodesKey(*snap.Nodes)
	}
	// sendNodes sends the nodes if anything of them changed since last sent.
	sendNodes := func() error {
		st, ok := s.nodes()
		if !ok {
			return nil
		}
		key := nodesKey(st)
		if key == nodesSent {
			return nil
		}
		nodesSent = key
		return write(NodesMessage{Type: "nodes", Nodes: st})
	}

	// sendGroups sends the status of the named groups (all when names is
	// nil) if it changed since last sent.
	sendGroups := func(names map[string]bool) error {
		current := map[string]Group{}
		for _, g := range s.views(s.ctl.Groups()) {
			current[g.Name] = g
		}
		if names == nil {
			names = map[string]bool{}
			for n := range current {
				names[n] = true
			}
			for n := range sent {
				names[n] = true
			}
		}
		for name := range names {
			g, ok := current[name]
			if !ok {
				if _, had := sent[name]; had {
					delete(sent, name)
					if err := write(GroupRemovedMessage{Type: "group-removed", Name: name}); err != nil {
						return err
					}
				}
				continue
			}
			b, _ := json.Marshal(g)
			if string(b) == string(sent[name]) {
				continue
			}
			sent[name] = b
			if err := write(GroupMessage{Type: "group", Group: g}); err != nil {
				return err
			}
		}
		lastFlush = time.Now()
		// Replicas come and go with their groups, and so do the nodes'
		// tiles; on the stats tick, a node's own change is caught too.
		return sendNodes()
	}

	for {
		select {
		case <-done:
			return
		case e, ok := <-sub.C:
			if !ok {
				code, text := websocket.CloseGoingAway, "the controller is shutting down"
				if sub.Dropped() {
					code, text = closeTooSlow, "too slow: reconnect for a fresh snapshot"
				}
				conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(writeWait))
				return
			}
			if e.Seq <= snap.Seq {
				continue
			}
			if err := write(EventMessage{Type: "event", Event: e}); err != nil {
				return
			}
			if e.Group != "" {
				pending[e.Group] = true
				// The first change after a quiet spell goes out at once;
				// a burst is coalesced into the next flush.
				if time.Since(lastFlush) >= groupPeriod {
					if err := sendGroups(pending); err != nil {
						return
					}
					clear(pending)
				}
			}
		case <-flush.C:
			if len(pending) > 0 {
				if err := sendGroups(pending); err != nil {
					return
				}
				clear(pending)
			}
		case <-stats.C:
			// Also catch any status change that came without an event.
			if err := sendGroups(nil); err != nil {
				return
			}
			msg := StatsMessage{Type: "stats", Time: time.Now(), Replicas: s.ctl.Stats(), Loads: []load.Report{}}
			if s.load != nil {
				for _, r := range s.load.List() {
					if r.State == "running" || time.Since(r.Ended) < 10*time.Second {
						msg.Loads = append(msg.Loads, r)
					}
				}
			}
			if err := write(msg); err != nil {
				return
			}
			if s.bus != nil {
				st := emptyBusLists(s.bus.BusStatus())
				if key := busKey(st); key != busSent {
					busSent = key
					if err := write(BusMessage{Type: "bus", Bus: st}); err != nil {
						return
					}
				}
			}
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				return
			}
		}
	}
}

// replicaAction answers POST /api/v1/groups/:name/replicas/:replica/:action.
func (s *server) replicaAction(c *gin.Context) {
	name, ok := groupName(c)
	if !ok {
		return
	}
	var req struct{}
	if !s.decode(c, &req, false, "replica actions take no fields") {
		return
	}
	replica, action := c.Param("replica"), c.Param("action")
	switch action {
	case controller.ActionKill, controller.ActionPause, controller.ActionUnpause:
	default:
		abort(c, http.StatusNotFound, "unknown replica action "+action+": one of kill, pause, unpause")
		return
	}
	if err := s.ctl.ReplicaAction(c.Request.Context(), name, replica, action); err != nil {
		if errors.Is(err, controller.ErrNotFound) {
			abort(c, http.StatusNotFound, "replica "+replica+" of group "+name+" not found: list replicas with GET /api/v1/groups/"+name)
			return
		}
		if errors.Is(err, controller.ErrConflict) {
			abort(c, http.StatusConflict, err.Error())
			return
		}
		s.fail(c, name, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"replica": replica, "action": action})
}

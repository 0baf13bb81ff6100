package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/sample-services/bus/access"
)

// Errors of a replay.
var (
	// ErrNotFound: no dead letter of that sequence (or its message is gone).
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: no bus runs, or the controller cannot reach it.
	ErrUnavailable = errors.New("the bus is unavailable")
)

// DeadLetterStream is the stream of the server's max-deliveries
// advisories: one message per message a consumer gave up on.
const DeadLetterStream = access.DeadLetterStream

// EventIDHeader carries an event's stable ID (an order's ID).
const EventIDHeader = "Flotilla-Event-Id"

// Reader bounds.
const (
	// Timeout bounds one reading, one replay, and a connect.
	Timeout = 3 * time.Second
	// MaxDeadLetters is how many dead letters a reading shows, the newest.
	MaxDeadLetters = 100
	// dataBytes is how much of a dead letter's body a reading shows.
	dataBytes = 200
)

// Reader reads the bus as the monitor user (read-only), over one
// connection kept between readings, and replays dead letters as the admin
// user. Its methods are safe for concurrent use.
type Reader struct {
	secret string

	mu   sync.Mutex
	url  string     // the bus the connections are to
	mon  *nats.Conn // monitor; nil until first used
	adm  *nats.Conn // admin; nil until the first replay
	prev reading
	dead map[uint64]DeadLetter // dead letters already read, by their seq
}

// reading is what rates are computed from: the previous one's figures.
type reading struct {
	at        time.Time
	published map[string]uint64 // stream → last seq
	acked     map[string]uint64 // stream/consumer → settled messages
}

// NewReader returns a reader that derives its users' passwords from the
// bus's secret. It connects on first use.
func NewReader(secret string) *Reader {
	return &Reader{secret: secret, dead: map[uint64]DeadLetter{}}
}

// Close closes the connections.
func (r *Reader) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closeLocked()
}

func (r *Reader) closeLocked() {
	for _, nc := range []*nats.Conn{r.mon, r.adm} {
		if nc != nil {
			nc.Close()
		}
	}
	r.mon, r.adm, r.url = nil, nil, ""
	r.prev = reading{}
	clear(r.dead)
}

// conn returns the connection of user to the bus at addr, dialling it if
// there is none, it was closed, or the bus moved to another address.
func (r *Reader) conn(addr, user string) (*nats.Conn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if addr != r.url {
		r.closeLocked()
		r.url = addr
	}
	cur := &r.mon
	if user == access.Admin {
		cur = &r.adm
	}
	if *cur != nil && !(*cur).IsClosed() {
		if !(*cur).IsConnected() {
			return nil, fmt.Errorf("reconnecting to the bus at %s (%s)", addr, (*cur).Status())
		}
		return *cur, nil
	}
	pw, err := access.Password(r.secret, user)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(addr,
		nats.Name("flotilla-controller-"+user),
		nats.UserInfo(user, pw),
		nats.CustomInboxPrefix(access.InboxPrefix(user)),
		nats.Timeout(Timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.ReconnectBufSize(-1), // a request while reconnecting fails at once
		nats.NoCallbacksAfterClientClose(),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to the bus at %s as %s: %w", addr, user, err)
	}
	*cur = nc
	return nc, nil
}

// URL is the NATS URL of a bus at host (an IP or name) and port (its
// client port, access.ClientPort).
func URL(host string, port int) string {
	return (&url.URL{Scheme: "nats", Host: net.JoinHostPort(host, strconv.Itoa(port))}).String()
}

// Read takes one reading of the bus at addr (a nats:// URL). groups maps a
// consumer's name to the group consuming it, for those that run. A bus
// that cannot be read is a Status with Up false and Error saying why.
func (r *Reader) Read(ctx context.Context, addr string, groups map[string]string) Status {
	now := time.Now()
	st := Status{Time: now, Streams: []Stream{}, Dead: []DeadLetter{}}
	nc, err := r.conn(addr, access.Monitor)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	js, err := jetstream.New(nc)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()

	cur := reading{at: now, published: map[string]uint64{}, acked: map[string]uint64{}}
	r.mu.Lock()
	prev := r.prev
	r.mu.Unlock()
	dt := now.Sub(prev.at).Seconds()
	rate := func(now, before uint64, had bool) float64 {
		if !had || prev.at.IsZero() || dt <= 0 || now < before {
			return 0
		}
		return float64(now-before) / dt
	}

	var deadInfo *jetstream.StreamInfo
	streams := js.ListStreams(ctx)
	for info := range streams.Info() {
		switch {
		case info.Config.Name == DeadLetterStream:
			deadInfo = info
			continue
		case strings.HasPrefix(info.Config.Name, "KV_"):
			continue // a key-value bucket's stream, not one of events
		}
		s := Stream{
			Name:      info.Config.Name,
			Subjects:  slices.Clone(info.Config.Subjects),
			WorkQueue: info.Config.Retention == jetstream.WorkQueuePolicy,
			Messages:  info.State.Msgs,
			Bytes:     info.State.Bytes,
			FirstSeq:  info.State.FirstSeq,
			LastSeq:   info.State.LastSeq,
			Consumers: []Consumer{},
		}
		cur.published[s.Name] = s.LastSeq
		before, had := prev.published[s.Name]
		s.PublishedPerSec = rate(s.LastSeq, before, had)
		st.Streams = append(st.Streams, s)
	}
	if err := streams.Err(); err != nil {
		st.Error = "list the bus's streams: " + err.Error()
		st.Streams = []Stream{}
		return st
	}
	for i := range st.Streams {
		s := &st.Streams[i]
		str, err := js.Stream(ctx, s.Name)
		if err != nil {
			st.Error = fmt.Sprintf("stream %s: %v", s.Name, err)
			return st
		}
		cons := str.ListConsumers(ctx)
		for ci := range cons.Info() {
			if ci.Config.Durable == "" {
				continue // an ephemeral consumer: a client's own, passing
			}
			c := Consumer{
				Name:        ci.Name,
				Group:       groups[ci.Name],
				Delivered:   ci.Delivered.Stream,
				AckFloor:    ci.AckFloor.Stream,
				AckPending:  ci.NumAckPending,
				Pending:     ci.NumPending,
				Redelivered: ci.NumRedelivered,
				Waiting:     ci.NumWaiting,
				MaxDeliver:  ci.Config.MaxDeliver,
			}
			key := s.Name + "/" + c.Name
			settled := Settled(c)
			cur.acked[key] = settled
			before, had := prev.acked[key]
			c.AckedPerSec = rate(settled, before, had)
			s.Consumers = append(s.Consumers, c)
		}
		if err := cons.Err(); err != nil {
			st.Error = fmt.Sprintf("consumers of %s: %v", s.Name, err)
			return st
		}
		slices.SortFunc(s.Consumers, func(a, b Consumer) int { return strings.Compare(a.Name, b.Name) })
	}
	slices.SortFunc(st.Streams, func(a, b Stream) int { return strings.Compare(a.Name, b.Name) })

	if deadInfo != nil {
		dead, err := r.deadLetters(ctx, js, deadInfo)
		if err != nil {
			st.Error = "dead letters: " + err.Error()
			return st
		}
		st.Dead = dead
	}
	st.Up = true
	r.mu.Lock()
	if r.url == addr {
		r.prev = cur
	}
	r.mu.Unlock()
	return st
}

// Settled is how many of the stream's messages c is done with: delivered
// and no longer waiting for an ack (acknowledged, or given up on after
// MaxDeliver). Its growth is the consumer's rate of acks.
func Settled(c Consumer) uint64 {
	if uint64(c.AckPending) > c.Delivered {
		return 0
	}
	return c.Delivered - uint64(c.AckPending)
}

// advisory is the server's io.nats.jetstream.advisory.v1.max_deliver. The
// advisory of a message a subscriber terminated (…v1.terminated) has the
// same fields and a reason, so a dead-letter stream that also kept those
// would show the subscriber's own words.
type advisory struct {
	Stream     string    `json:"stream"`
	Consumer   string    `json:"consumer"`
	StreamSeq  uint64    `json:"stream_seq"`
	Deliveries uint64    `json:"deliveries"`
	Time       time.Time `json:"timestamp"`
	Reason     string    `json:"reason"`
}

// deadLetters reads the newest MaxDeadLetters dead letters, newest first,
// reading each only once: a dead letter does not change.
func (r *Reader) deadLetters(ctx context.Context, js jetstream.JetStream, info *jetstream.StreamInfo) ([]DeadLetter, error) {
	out := []DeadLetter{}
	if info.State.Msgs == 0 {
		r.mu.Lock()
		clear(r.dead)
		r.mu.Unlock()
		return out, nil
	}
	str, err := js.Stream(ctx, DeadLetterStream)
	if err != nil {
		return nil, err
	}
	full, err := str.Info(ctx, jetstream.WithDeletedDetails(true))
	if err != nil {
		return nil, err
	}
	deleted := map[uint64]bool{}
	for _, d := range full.State.Deleted {
		deleted[d] = true
	}
	r.mu.Lock()
	known := make(map[uint64]DeadLetter, len(r.dead))
	for k, v := range r.dead {
		known[k] = v
	}
	r.mu.Unlock()
	keep := map[uint64]DeadLetter{}
	first, last := full.State.FirstSeq, full.State.LastSeq
	for seq := last; seq >= first && seq > 0 && len(out) < MaxDeadLetters; seq-- {
		if deleted[seq] {
			continue
		}
		d, ok := known[seq]
		if !ok {
			d, err = readDeadLetter(ctx, js, str, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
		}
		keep[seq] = d
		out = append(out, d)
	}
	r.mu.Lock()
	r.dead = keep
	r.mu.Unlock()
	return out, nil
}

// readDeadLetter reads dead letter seq and the message it names.
func readDeadLetter(ctx context.Context, js jetstream.JetStream, dead jetstream.Stream, seq uint64) (DeadLetter, error) {
	m, err := dead.GetMsg(ctx, seq)
	if err != nil {
		return DeadLetter{}, err
	}
	var a advisory
	if err := json.Unmarshal(m.Data, &a); err != nil {
		// Not an advisory: shown as it is, and replayable by no one.
		return DeadLetter{Seq: seq, Time: m.Time, Reason: "not a max-deliveries advisory: " + err.Error()}, nil
	}
	d := DeadLetter{
		Seq: seq, Stream: a.Stream, StreamSeq: a.StreamSeq, Consumer: a.Consumer, Deliveries: a.Deliveries,
		Time:   m.Time,
		Reason: fmt.Sprintf("delivered %d times without an ack", a.Deliveries),
	}
	if a.Reason != "" {
		d.Reason = fmt.Sprintf("%s (after %d deliveries)", a.Reason, a.Deliveries)
	}
	orig, err := original(ctx, js, a)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrStreamNotFound):
		d.Reason += fmt.Sprintf("; the message is no longer in stream %s", a.Stream)
		return d, nil
	case err != nil:
		return DeadLetter{}, err
	}
	d.Subject, d.EventID = orig.Subject, orig.Header.Get(EventIDHeader)
	data := orig.Data
	if len(data) > dataBytes {
		data = data[:dataBytes]
	}
	d.Data = strings.ToValidUTF8(string(data), "\uFFFD")
	return d, nil
}

func original(ctx context.Context, js jetstream.JetStream, a advisory) (*jetstream.RawStreamMsg, error) {
	if a.Stream == "" || a.StreamSeq == 0 {
		return nil, jetstream.ErrMsgNotFound
	}
	s, err := js.Stream(ctx, a.Stream)
	if err != nil {
		return nil, err
	}
	return s.GetMsg(ctx, a.StreamSeq)
}

// ReplayMsgID is the Nats-Msg-Id a replay of dead letter seq publishes an
// event with: not the event's own, which the stream would drop as a repeat.
func ReplayMsgID(eventID string, seq uint64) string {
	return eventID + ".replay." + strconv.FormatUint(seq, 10)
}

// Replay publishes dead letter seq's message again, body and headers, to
// its subject, as the admin user of the bus at addr, and deletes the dead
// letter. The original of a work queue's message, which would otherwise
// stay in the queue undelivered, is deleted too. Errors wrap ErrNotFound
// (no such dead letter, or its message is gone) or ErrUnavailable.
func (r *Reader) Replay(ctx context.Context, addr string, seq uint64) (ReplayResult, error) {
	nc, err := r.conn(addr, access.Admin)
	if err != nil {
		return ReplayResult{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return ReplayResult{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	unavailable := func(what string, err error) error {
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
	}

	dead, err := js.Stream(ctx, DeadLetterStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return ReplayResult{}, fmt.Errorf("dead letter %d: %w: the bus has no %s stream", seq, ErrNotFound, DeadLetterStream)
	}
	if err != nil {
		return ReplayResult{}, unavailable("read "+DeadLetterStream, err)
	}
	m, err := dead.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return ReplayResult{}, fmt.Errorf("dead letter %d: %w: no such dead letter (already replayed, or never there)", seq, ErrNotFound)
	}
	if err != nil {
		return ReplayResult{}, unavailable("read the dead letter", err)
	}
	var a advisory
	if err := json.Unmarshal(m.Data, &a); err != nil || a.Stream == "" {
		return ReplayResult{}, fmt.Errorf("dead letter %d: %w: it is not a max-deliveries advisory", seq, ErrNotFound)
	}
	orig, err := original(ctx, js, a)
	if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return ReplayResult{}, fmt.Errorf("dead letter %d: %w: its message %d is no longer in stream %s", seq, ErrNotFound, a.StreamSeq, a.Stream)
	}
	if err != nil {
		return ReplayResult{}, unavailable("read the message", err)
	}
	d, err := readDeadLetter(ctx, js, dead, seq)
	if err != nil {
		return ReplayResult{}, unavailable("read the dead letter", err)
	}

	eventID := orig.Header.Get(EventIDHeader)
	if eventID == "" {
		eventID = a.Stream + "-" + strconv.FormatUint(a.StreamSeq, 10)
	}
	msgID := ReplayMsgID(eventID, seq)
	out := nats.NewMsg(orig.Subject)
	for k, vs := range orig.Header {
		// The server's own headers (Nats-Msg-Id, expectations) are not the
		// event's; the replay sets its own ID.
		if strings.HasPrefix(k, "Nats-") {
			continue
		}
		out.Header[k] = slices.Clone(vs)
	}
	out.Data = orig.Data
	if _, err := js.PublishMsg(ctx, out, jetstream.WithMsgID(msgID)); err != nil {
		return ReplayResult{}, unavailable("publish the replay", err)
	}
	// A repeated replay (the delete below failed before) is dropped by the
	// stream as a duplicate; either way the dead letter goes.
	if err := dead.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return ReplayResult{}, unavailable("delete the dead letter", err)
	}
	if s, err := js.Stream(ctx, a.Stream); err == nil && s.CachedInfo().Config.Retention == jetstream.WorkQueuePolicy {
		_ = s.DeleteMsg(ctx, a.StreamSeq) // gone already is as good
	}
	r.mu.Lock()
	delete(r.dead, seq)
	r.mu.Unlock()
	return ReplayResult{Replayed: d, Subject: orig.Subject, MsgID: msgID}, nil
}

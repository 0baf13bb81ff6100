// Package access says who may do what on the shop's message bus: the
// streams, consumers and key-value buckets the bus declares, the users that
// connect to it, and each user's permissions, which follow from the
// topology rather than being written out by hand.
//
// Every sample service connects as a user of its own name and may publish
// and consume only its own subjects:
//
//   - a publisher (checkout) may publish its events (orders.placed,
//     orders.fulfill) and read the replies to them;
//   - a subscriber (notifications, inventory, analytics, fulfillment,
//     receipt) may pull from, ack and read the info of its own durable
//     consumer and no other; it cannot publish an event, nor create,
//     change or delete a stream or consumer;
//   - the cart may use its key-value bucket (carts), and nothing else;
//   - monitor, the controller, may read the state of every stream and
//     consumer, and read a stream's messages (dead letters), but change
//     nothing and publish no event;
//   - admin is the bus itself, which declares the topology at start; its
//     password is known only to the bus and the controller.
//
// Each user reads its replies on an inbox of its own, _INBOX.<user>.>
// (nats.CustomInboxPrefix(InboxPrefix(user))), so no user can read another's
// answers. All users share one account: the streams are the account's,
// and the permissions, not account boundaries, keep the services apart.
//
// Passwords are never stored in an image: the controller gives the bus one
// secret (env SecretEnv) and each service its own password, derived from
// the secret by Password, so the bus can check every user while a service
// knows only its own password.
//
// Nothing here does I/O or imports the NATS server, so the controller can
// use it without linking the broker.
package access

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"
)

// Environment variables: the bus reads SecretEnv; a service reads URLEnv,
// UserEnv and PasswordEnv.
const (
	SecretEnv   = "FLOTILLA_BUS_SECRET"
	URLEnv      = "NATS_URL"
	UserEnv     = "NATS_USER"
	PasswordEnv = "NATS_PASSWORD"
)

// Ports of the bus, on the project network.
const (
	// ClientPort is NATS's client port.
	ClientPort = 4222
	// MonitorPort is NATS's monitoring port (/varz, /jsz, /connz, /healthz).
	MonitorPort = 8222
)

// Users that are not sample services.
const (
	// Admin is the bus itself: it declares streams, consumers and buckets.
	Admin = "admin"
	// Monitor is the controller: it reads the bus's state.
	Monitor = "monitor"
)

// Stream is one JetStream stream the bus declares.
type Stream struct {
	Name     string
	Subjects []string
	// WorkQueue makes it a work queue: a message is removed once one
	// consumer acked it, so each job is done once.
	WorkQueue bool
	// Dedup is the window in which a repeated Nats-Msg-Id is dropped.
	Dedup     time.Duration
	Consumers []Consumer
}

// Consumer is a durable pull consumer of a stream. Its service's replicas
// share it: each message goes to one of them.
type Consumer struct {
	// Durable names the consumer; it is also the service, and the user,
	// that consumes from it.
	Durable string
	// AckWait is how long a delivered message may stay unacked before it
	// is delivered again.
	AckWait time.Duration
	// MaxDeliver bounds the attempts at one message.
	MaxDeliver int
}

// Bucket is a JetStream key-value bucket and the one user that uses it.
type Bucket struct {
	Name string
	User string
	// TTL is how long a key lives after its last write; 0 keeps keys until
	// they are deleted.
	TTL time.Duration
}

// AppliedTTL is how long a service's ledger remembers an applied event.
// Every duplicate arrives well within it: a redelivery within the ack
// wait and the backoff of MaxDeliver attempts, a publisher's repeat within
// minutes. A replay from the dead letters is of an event no replica
// applied. Without it the ledgers would grow with every order, forever.
const AppliedTTL = 24 * time.Hour

// Stream is the stream backing a bucket, as JetStream names it.
func (b Bucket) Stream() string { return "KV_" + b.Name }

// Publisher is a user that publishes events on Subjects.
type Publisher struct {
	User     string
	Subjects []string
}

// Subjects of the shop's events.
const (
	SubjectOrderPlaced  = "orders.placed"
	SubjectOrderFulfill = "orders.fulfill"
)

// Dead letters: the server publishes an advisory on
// SubjectMaxDeliveries.<stream>.<consumer> each time a consumer gives up on
// a message after its MaxDeliver attempts; the stream DeadLetterStream
// keeps them, and the message itself stays in its stream, read by sequence.
const (
	DeadLetterStream     = "DEADLETTERS"
	SubjectMaxDeliveries = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
)

// EventIDHeader carries an event's stable ID (an order's ID) on every
// message and on the synchronous POST /events: subscribers key their
// idempotency on it, so a redelivery or a replay is applied once.
const EventIDHeader = "Flotilla-Event-Id"

// AppliedBucket is the key-value bucket where the replicas of a
// subscriber service record the event IDs they applied, one key per event:
// a redelivery that reaches another replica is still recognised.
func AppliedBucket(service string) string { return "applied_" + service }

// Topology is what the bus declares: streams with their consumers,
// buckets, and who publishes what.
type Topology struct {
	Streams    []Stream
	Buckets    []Bucket
	Publishers []Publisher
}

// Shop is the shop's topology: checkout publishes each placed order, which
// fans out to three services and the receipt function, each with its own
// durable consumer; the
// fulfillment jobs form a work queue; carts live in a bucket; each
// subscriber records what it applied in a bucket of its own; the messages
// a consumer gave up on are recorded in DeadLetterStream.
var Shop = Topology{
	Streams: []Stream{
		{
			Name: "ORDERS", Subjects: []string{SubjectOrderPlaced}, Dedup: 2 * time.Minute,
			Consumers: []Consumer{
				{Durable: "notifications", AckWait: 30 * time.Second, MaxDeliver: 5},
				{Durable: "inventory", AckWait: 30 * time.Second, MaxDeliver: 5},
				{Durable: "analytics", AckWait: 30 * time.Second, MaxDeliver: 5},
				// The receipt function: the controller wakes its replicas
				// while this consumer has messages waiting.
				{Durable: "receipt", AckWait: 30 * time.Second, MaxDeliver: 5},
			},
		},
		{
			Name: "FULFILLMENT", Subjects: []string{SubjectOrderFulfill}, WorkQueue: true, Dedup: 2 * time.Minute,
			Consumers: []Consumer{{Durable: "fulfillment", AckWait: 10 * time.Second, MaxDeliver: 5}},
		},
		// The controller reads it (monitor) and replays from it (admin).
		{Name: DeadLetterStream, Subjects: []string{SubjectMaxDeliveries + ".>"}},
	},
	Buckets: []Bucket{
		{Name: "carts", User: "cart"},
		{Name: AppliedBucket("notifications"), User: "notifications", TTL: AppliedTTL},
		{Name: AppliedBucket("inventory"), User: "inventory", TTL: AppliedTTL},
		{Name: AppliedBucket("analytics"), User: "analytics", TTL: AppliedTTL},
		{Name: AppliedBucket("fulfillment"), User: "fulfillment", TTL: AppliedTTL},
		{Name: AppliedBucket("receipt"), User: "receipt", TTL: AppliedTTL},
	},
	Publishers: []Publisher{{User: "checkout", Subjects: []string{SubjectOrderPlaced, SubjectOrderFulfill}}},
}

// User is one account user and what it may do.
type User struct {
	Name string
	// Publish and Subscribe are the subjects it may publish to and
	// subscribe to, with NATS wildcards; nothing else is allowed.
	Publish   []string
	Subscribe []string
}

// InboxPrefix is the inbox prefix user must connect with: its replies
// arrive on InboxPrefix(user).<id>, the only inbox it may subscribe to.
func InboxPrefix(user string) string { return "_INBOX." + user }

func inbox(user string) string { return InboxPrefix(user) + ".>" }

// Users returns every user of t and its permissions, sorted by name: the
// admin, the monitor, and one user per publisher, consumer and bucket
// (a service that is several of these gets the union).
func (t Topology) Users() []User {
	by := map[string]*User{}
	get := func(name string) *User {
		u := by[name]
		if u == nil {
			u = &User{Name: name, Subscribe: []string{inbox(name)}}
			by[name] = u
		}
		return u
	}
	admin := get(Admin)
	admin.Publish, admin.Subscribe = []string{">"}, []string{">"}

	mon := get(Monitor)
	mon.Publish = append(mon.Publish,
		"$JS.API.INFO",
		"$JS.API.STREAM.NAMES",
		"$JS.API.STREAM.LIST",
		"$JS.API.STREAM.INFO.*",
		"$JS.API.STREAM.MSG.GET.*",
		"$JS.API.CONSUMER.NAMES.*",
		"$JS.API.CONSUMER.LIST.*",
		"$JS.API.CONSUMER.INFO.*.*",
	)

	for _, p := range t.Publishers {
		u := get(p.User)
		u.Publish = append(u.Publish, p.Subjects...)
	}
	for _, s := range t.Streams {
		for _, c := range s.Consumers {
			u := get(c.Durable)
			u.Publish = append(u.Publish,
				"$JS.API.STREAM.INFO."+s.Name,
				"$JS.API.CONSUMER.INFO."+s.Name+"."+c.Durable,
				"$JS.API.CONSUMER.MSG.NEXT."+s.Name+"."+c.Durable,
				"$JS.ACK."+s.Name+"."+c.Durable+".>",
			)
		}
	}
	for _, b := range t.Buckets {
		u := get(b.User)
		st := b.Stream()
		u.Publish = append(u.Publish,
			"$KV."+b.Name+".>",
			"$JS.API.STREAM.INFO."+st,
			"$JS.API.STREAM.MSG.GET."+st,
			"$JS.API.DIRECT.GET."+st+".>",
			// Keys and watches read through ordered consumers of their own.
			"$JS.API.CONSUMER.CREATE."+st,
			"$JS.API.CONSUMER.CREATE."+st+".>",
			"$JS.API.CONSUMER.DELETE."+st+".>",
			"$JS.FC."+st+".>",
		)
	}

	out := make([]User, 0, len(by))
	for _, u := range by {
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Subscription returns the stream and durable consumer that service
// consumes from; ok is false for a service that subscribes to nothing.
func (t Topology) Subscription(service string) (stream string, c Consumer, ok bool) {
	for _, s := range t.Streams {
		for _, c := range s.Consumers {
			if c.Durable == service {
				return s.Name, c, true
			}
		}
	}
	return "", Consumer{}, false
}

// Subscribers returns the services that consume from a stream, in the
// topology's order.
func (t Topology) Subscribers() []string {
	var out []string
	for _, s := range t.Streams {
		for _, c := range s.Consumers {
			out = append(out, c.Durable)
		}
	}
	return out
}

// Lookup returns the user called name.
func (t Topology) Lookup(name string) (User, bool) {
	for _, u := range t.Users() {
		if u.Name == name {
			return u, true
		}
	}
	return User{}, false
}

// MayPublish reports whether u may publish to subject.
func (u User) MayPublish(subject string) bool { return anyMatch(u.Publish, subject) }

// MaySubscribe reports whether u may subscribe to subject.
func (u User) MaySubscribe(subject string) bool { return anyMatch(u.Subscribe, subject) }

func anyMatch(patterns []string, subject string) bool {
	for _, p := range patterns {
		if Match(p, subject) {
			return true
		}
	}
	return false
}

// Match reports whether subject matches pattern as NATS matches them: '*'
// is one token, a final '>' is one or more.
func Match(pattern, subject string) bool {
	pt, st := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, p := range pt {
		if p == ">" && i == len(pt)-1 {
			return len(st) > i
		}
		if i >= len(st) || p != "*" && p != st[i] {
			return false
		}
	}
	return len(pt) == len(st)
}

// MinSecretLen is the shortest secret the bus accepts.
const MinSecretLen = 16

// ErrShortSecret is returned for a secret under MinSecretLen bytes.
var ErrShortSecret = errors.New("the bus secret is shorter than 16 bytes")

// Password is user's password derived from the bus's secret: the
// HMAC-SHA256 of the user's name, in hex. Whoever holds one password
// learns nothing of the secret or of the other users' passwords.
func Password(secret, user string) (string, error) {
	if len(secret) < MinSecretLen {
		return "", ErrShortSecret
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("flotilla-bus-user/" + user))
	return hex.EncodeToString(m.Sum(nil)), nil
}

// Package bus is the controller's view of the shop's message bus: what it
// reads of the broker's streams, consumers and dead letters through its
// monitor user, and the replay of a dead letter. The broker itself is
// sample-services/bus; who may do what on it is sample-services/bus/access.
package bus

import "time"

// Status is GET /api/v1/bus: the bus's streams, each with its consumers,
// and the dead letters waiting for a replay. Up is false (and the rest
// empty) when no bus runs or the controller cannot reach it; Error then
// says why.
type Status struct {
	Up      bool         `json:"up"`
	Error   string       `json:"error,omitempty"`
	Time    time.Time    `json:"time"`
	Streams []Stream     `json:"streams"`
	Dead    []DeadLetter `json:"deadLetters"`
}

// Stream is one JetStream stream.
type Stream struct {
	Name     string   `json:"name"`
	Subjects []string `json:"subjects"`
	// WorkQueue: a message goes to one consumer and is removed once acked.
	WorkQueue bool   `json:"workQueue,omitempty"`
	Messages  uint64 `json:"messages"`
	Bytes     uint64 `json:"bytes"`
	FirstSeq  uint64 `json:"firstSeq"`
	LastSeq   uint64 `json:"lastSeq"`
	// PublishedPerSec is the rate of new messages since the last reading.
	PublishedPerSec float64    `json:"publishedPerSec"`
	Consumers       []Consumer `json:"consumers"`
}

// Consumer is one durable consumer: a subscriber service, whose replicas
// share it (each message goes to one of them).
type Consumer struct {
	Name string `json:"name"`
	// Group is the controller group of the subscriber service consuming
	// it, if one runs; empty if none does (its messages wait).
	Group string `json:"group,omitempty"`
	// Delivered is the stream sequence last delivered; AckFloor the one
	// up to which every message is acknowledged.
	Delivered uint64 `json:"delivered"`
	AckFloor  uint64 `json:"ackFloor"`
	// AckPending are delivered and not yet acknowledged; Pending are not
	// yet delivered (the lag); Redelivered were delivered more than once.
	AckPending  int    `json:"ackPending"`
	Pending     uint64 `json:"pending"`
	Redelivered int    `json:"redelivered"`
	// Waiting are the replicas' pull requests waiting for messages: how
	// many of the group's replicas are asking.
	Waiting int `json:"waiting"`
	// AckedPerSec is the rate of acknowledgements since the last reading.
	AckedPerSec float64 `json:"ackedPerSec"`
	MaxDeliver  int     `json:"maxDeliver"`
}

// DeadLetter is a message a consumer gave up on after MaxDeliver attempts.
type DeadLetter struct {
	// Seq is its sequence in the dead-letter stream, which a replay names.
	Seq uint64 `json:"seq"`
	// Stream, StreamSeq and Subject say which message it was; Consumer
	// which subscriber gave up on it, after Deliveries attempts.
	Stream     string    `json:"stream"`
	StreamSeq  uint64    `json:"streamSeq"`
	Subject    string    `json:"subject"`
	Consumer   string    `json:"consumer"`
	Deliveries uint64    `json:"deliveries"`
	Time       time.Time `json:"time"`
	// Reason is why, as the subscriber said when it last refused it, or
	// "delivered N times without an ack" if it never said.
	Reason string `json:"reason"`
	// EventID is the message's event (an order's ID); Data the start of
	// its body.
	EventID string `json:"eventId,omitempty"`
	Data    string `json:"data,omitempty"`
}

// ReplayResult is POST /api/v1/bus/deadletters/{seq}/replay.
type ReplayResult struct {
	Replayed DeadLetter `json:"replayed"`
	// Subject and MsgID are where and as what it was published again.
	Subject string `json:"subject"`
	MsgID   string `json:"msgId"`
}

package consume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
)

// SubjectHeader names the subject of an event sent over HTTP (POST
// /events), as the bus's message would have it.
const SubjectHeader = "Flotilla-Subject"

// maxEventBody bounds an event over HTTP like the bus bounds a message.
const maxEventBody = 64 << 10

// Service is a subscriber service's events, whether they come from the bus
// (Loop) or over HTTP: both take the same idempotent path, Processor.
type Service struct {
	// Name is the service and its durable consumer, Stream and Subject
	// where its events come from.
	Name, Stream, Subject string
	Processor             *Processor
	// Loop is the pull loop; nil when the replica has no bus.
	Loop *Loop
	// Version is the release the replica runs, shown in GET /stats.
	Version string
	// StatsBody, if set, turns the figures into the body of GET /stats,
	// so a service can add figures of its own.
	StatsBody func(Stats) any
}

// ConsumerState is the "consumer" of GET /stats.
type ConsumerState struct {
	Stream  string `json:"stream"`
	Durable string `json:"durable"`
	Subject string `json:"subject"`
	// Bound is true while the pull loop holds the consumer; Reason says
	// why not.
	Bound  bool   `json:"bound"`
	Reason string `json:"reason,omitempty"`
}

// Stats is the body of GET /stats.
type Stats struct {
	Counts
	Consumer ConsumerState `json:"consumer"`
}

// Stats returns the service's figures.
func (s *Service) Stats(ctx context.Context) Stats {
	st := Stats{Counts: s.Processor.Counts(ctx), Consumer: ConsumerState{Stream: s.Stream, Durable: s.Name, Subject: s.Subject}}
	st.Version = s.Version
	st.Consumer.Bound, st.Consumer.Reason = s.Ready()
	return st
}

// Ready reports whether events can come from the bus, and why not.
func (s *Service) Ready() (bool, string) {
	if s.Loop == nil {
		return false, "no bus configured (" + access.URLEnv + " is not set)"
	}
	return s.Loop.Ready()
}

// EventReply is the answer of POST /events.
type EventReply struct {
	Applied   bool `json:"applied"`
	Duplicate bool `json:"duplicate"`
}

// Register mounts GET /stats and POST /events on mux.
//
// POST /events takes what a bus message carries: the body, and headers
// Flotilla-Event-Id and Flotilla-Subject (the service's subject). It is
// processed like a message: 200 {"applied":true,"duplicate":false} once
// applied, 200 with duplicate true if it was already, 400 for an event that
// can never be applied, 503 when processing failed (a poison fault, the
// ledger out of reach), after any slow-consumer delay.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		st := s.Stats(ctx)
		if s.StatsBody != nil {
			httpjson.Write(w, http.StatusOK, s.StatsBody(st))
			return
		}
		httpjson.Write(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /events", s.postEvent)
}

func (s *Service) postEvent(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(access.EventIDHeader)
	if id == "" {
		httpjson.Error(w, http.StatusBadRequest, "header "+access.EventIDHeader+" is required: the event's ID")
		return
	}
	if subj := r.Header.Get(SubjectHeader); subj != s.Subject {
		httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("header %s is %q; %s takes only %q", SubjectHeader, subj, s.Name, s.Subject))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventBody))
	if err != nil {
		httpjson.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the event is over %d bytes, the bus's limit for a message", maxEventBody))
		return
	}
	out, err := s.Processor.Process(r.Context(), Event{ID: id, Subject: s.Subject, Data: body})
	switch {
	case errors.Is(err, ErrBadEvent):
		httpjson.Error(w, http.StatusBadRequest, err.Error())
	case err != nil:
		httpjson.Error(w, http.StatusServiceUnavailable, s.Name+" failed the event: "+err.Error())
	default:
		httpjson.Write(w, http.StatusOK, EventReply{Applied: out == Applied, Duplicate: out == Duplicate})
	}
}

// Order is the body of orders.placed, as checkout publishes it.
type Order struct {
	OrderID    string      `json:"orderId"`
	Shopper    string      `json:"shopper"`
	Items      []OrderItem `json:"items"`
	TotalCents int64       `json:"totalCents"`
	PlacedAt   time.Time   `json:"placedAt"`
}

// OrderItem is one line of an order.
type OrderItem struct {
	ProductID  string `json:"productId"`
	Quantity   int    `json:"quantity"`
	PriceCents int64  `json:"priceCents"`
}

// Job is the body of orders.fulfill: an order to ship.
type Job struct {
	OrderID string      `json:"orderId"`
	Items   []OrderItem `json:"items"`
}

// DecodeOrder parses an orders.placed event; an order without its ID or
// items is ErrBadEvent.
func DecodeOrder(ev Event) (Order, error) {
	var o Order
	if err := json.Unmarshal(ev.Data, &o); err != nil {
		return o, fmt.Errorf("%w: the order does not parse: %v", ErrBadEvent, err)
	}
	if o.OrderID == "" || len(o.Items) == 0 {
		return o, fmt.Errorf("%w: an order needs an orderId and items", ErrBadEvent)
	}
	return o, validItems(o.Items)
}

// DecodeJob parses an orders.fulfill event.
func DecodeJob(ev Event) (Job, error) {
	var j Job
	if err := json.Unmarshal(ev.Data, &j); err != nil {
		return j, fmt.Errorf("%w: the job does not parse: %v", ErrBadEvent, err)
	}
	if j.OrderID == "" || len(j.Items) == 0 {
		return j, fmt.Errorf("%w: a job needs an orderId and items", ErrBadEvent)
	}
	return j, validItems(j.Items)
}

func validItems(items []OrderItem) error {
	for _, it := range items {
		if it.ProductID == "" || it.Quantity < 1 || it.PriceCents < 0 {
			return fmt.Errorf("%w: an item needs a productId, a quantity of at least 1 and a price not below 0", ErrBadEvent)
		}
	}
	return nil
}

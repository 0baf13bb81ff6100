// Package notifications is the shop's subscriber that would e-mail each
// shopper about their order. It sends nothing: it records the message it
// would send, so a learner can count that every order was notified once.
//
// It serves GET /sent: the number of notices this replica recorded and the
// latest of them. Events reach it through package consume.
package notifications

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/flotilla/flotilla/sample-services/bus/consume"
	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
)

// Keep is how many of the latest notices GET /sent lists.
const Keep = 100

// Notice is one e-mail it would have sent.
type Notice struct {
	OrderID string    `json:"orderId"`
	Shopper string    `json:"shopper"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// Sent is the body of GET /sent.
type Sent struct {
	Count  int      `json:"count"`
	Latest []Notice `json:"latest"`
}

// Service records notices in memory.
type Service struct {
	mu     sync.Mutex
	count  int
	latest []Notice // the last Keep, oldest first
}

// New returns a service that has sent nothing.
func New() *Service { return &Service{} }

// Handle is the consume.Handler of orders.placed.
func (s *Service) Handle(_ context.Context, ev consume.Event) (func(), error) {
	o, err := consume.DecodeOrder(ev)
	if err != nil {
		return nil, err
	}
	n := Notice{OrderID: o.OrderID, Shopper: o.Shopper, At: time.Now().UTC(),
		Message: fmt.Sprintf("would e-mail shopper %s about order %s (%d items, %d cents)", o.Shopper, o.OrderID, len(o.Items), o.TotalCents)}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.count++
		s.latest = append(s.latest, n)
		if len(s.latest) > Keep {
			s.latest = append(s.latest[:0:0], s.latest[len(s.latest)-Keep:]...)
		}
	}, nil
}

// Sent returns what this replica recorded.
func (s *Service) Sent() Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Sent{Count: s.count, Latest: append([]Notice{}, s.latest...)}
}

// Register mounts GET /sent.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /sent", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, s.Sent())
	})
}

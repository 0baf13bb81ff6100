package checkout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flotilla/flotilla/sample-services/bus/access"
	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
	"github.com/flotilla/flotilla/sample-services/orders"
)

// Headers every event carries, on the bus and over HTTP alike.
const (
	// HeaderEventID is the event's stable ID, the order's: a subscriber
	// that sees it again counts a duplicate and applies nothing.
	HeaderEventID = "Flotilla-Event-Id"
	// HeaderSubject names the subject of an event sent over HTTP, as the
	// bus would have carried it.
	HeaderSubject = "Flotilla-Subject"
)

// EventItem is one line of an order as events carry it.
type EventItem struct {
	ProductID  string `json:"productId"`
	Quantity   int    `json:"quantity"`
	PriceCents int64  `json:"priceCents"`
}

// OrderPlaced is the body of an orders.placed event.
type OrderPlaced struct {
	OrderID    string      `json:"orderId"`
	Shopper    string      `json:"shopper"`
	Items      []EventItem `json:"items"`
	TotalCents int64       `json:"totalCents"`
	PlacedAt   time.Time   `json:"placedAt"`
}

// FulfillJob is the body of an orders.fulfill job.
type FulfillJob struct {
	OrderID string      `json:"orderId"`
	Items   []EventItem `json:"items"`
}

func eventItems(o orders.Order) []EventItem {
	items := make([]EventItem, len(o.Items))
	for i, it := range o.Items {
		items[i] = EventItem{ProductID: it.ProductID, Quantity: it.Quantity, PriceCents: it.PriceCents}
	}
	return items
}

// PlacedEvent is the orders.placed event of o.
func PlacedEvent(o orders.Order) OrderPlaced {
	return OrderPlaced{OrderID: o.ID, Shopper: o.Shopper, Items: eventItems(o), TotalCents: o.TotalCents, PlacedAt: o.PlacedAt}
}

// Job is the orders.fulfill job of o.
func Job(o orders.Order) FulfillJob {
	return FulfillJob{OrderID: o.ID, Items: eventItems(o)}
}

// Events tells the rest of the shop that an order was placed.
type Events interface {
	// Placed tells of o. An error means it could not be told and fails
	// the checkout (the order stands); it names who could not be told.
	Placed(ctx context.Context, o orders.Order) error
	// Admit is asked before an order is placed: an error wrapping
	// ErrUnavailable refuses the checkout before anything is placed.
	Admit() error
	// Stats is what GET /checkout/events shows.
	Stats() any
}

// ErrUnavailable refuses a checkout for now: answered 503, nothing placed.
var ErrUnavailable = errors.New("checkout unavailable")

// Subscriber is a service checkout tells of each order in http mode.
type Subscriber struct {
	Name string
	// URL is its base, such as http://notifications:8080; events go to
	// URL + "/events".
	URL string
}

// DefaultSubscribers are the services told of an order in http mode, by
// their names on the project network.
var DefaultSubscribers = []Subscriber{
	{Name: "notifications", URL: "http://notifications:8080"},
	{Name: "inventory", URL: "http://inventory:8080"},
	{Name: "analytics", URL: "http://analytics:8080"},
}

// HTTPEvents is the synchronous way (setting events=http): each order is
// POSTed to every subscriber's /events, all at once, and checkout waits
// for every answer. A subscriber that fails or times out fails the
// checkout (502, naming it); a slow one slows it.
//
// A subscriber whose name DNS does not know is not deployed (the stages
// before the bus have none), and is skipped: checkout then works as it did
// before events existed. One that is deployed but fails is an error. What
// DNS says is kept for a second and refreshed in the background, so a
// slow resolver costs at most one checkout a second.
type HTTPEvents struct {
	subs   []Subscriber
	client *http.Client // carries the timeout of a call
	log    *slog.Logger
	// Resolve reports whether host is known to DNS; tests play DNS with it.
	resolve func(ctx context.Context, host string) error

	mu       sync.Mutex
	verdicts map[string]*verdict // by host

	counts map[string]*subscriberCounts // by subscriber; fixed at New
}

type verdict struct {
	err        error // nil: deployed
	checked    time.Time
	refreshing bool
}

type subscriberCounts struct {
	told, skipped, failed atomic.Int64
}

// dnsTTL is how long a DNS verdict is used before it is asked again.
const dnsTTL = time.Second

// NewHTTPEvents tells subs of each order with client, which should carry
// a timeout. A nil resolve asks the system's resolver.
func NewHTTPEvents(subs []Subscriber, client *http.Client, resolve func(ctx context.Context, host string) error, log *slog.Logger) *HTTPEvents {
	if resolve == nil {
		resolve = func(ctx context.Context, host string) error {
			_, err := net.DefaultResolver.LookupHost(ctx, host)
			return err
		}
	}
	if log == nil {
		log = slog.Default()
	}
	e := &HTTPEvents{subs: subs, client: client, log: log, resolve: resolve,
		verdicts: map[string]*verdict{}, counts: map[string]*subscriberCounts{}}
	for _, s := range subs {
		e.counts[s.Name] = &subscriberCounts{}
	}
	return e
}

// Admit always admits: there is nothing to fill up.
func (e *HTTPEvents) Admit() error { return nil }

// Placed POSTs o's event to every deployed subscriber and waits for all.
func (e *HTTPEvents) Placed(ctx context.Context, o orders.Order) error {
	body, err := json.Marshal(PlacedEvent(o))
	if err != nil {
		return err
	}
	errs := make([]error, len(e.subs))
	var wg sync.WaitGroup
	for i, s := range e.subs {
		wg.Go(func() {
			if err := e.deployed(ctx, s); err != nil {
				e.counts[s.Name].skipped.Add(1)
				return
			}
			if err := e.tell(ctx, s, o.ID, body); err != nil {
				e.counts[s.Name].failed.Add(1)
				errs[i] = fmt.Errorf("%s: %w", s.Name, err)
				return
			}
			e.counts[s.Name].told.Add(1)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (e *HTTPEvents) tell(ctx context.Context, s Subscriber, id string, body []byte) error {
	req, err := httpjson.NewRequest(ctx, http.MethodPost, s.URL+"/events", json.RawMessage(body))
	if err != nil {
		return err
	}
	req.Header.Set(HeaderEventID, id)
	req.Header.Set(HeaderSubject, access.SubjectOrderPlaced)
	return httpjson.Do(e.client, req, nil)
}

// deployed reports whether DNS knows s's host, from a verdict at most
// dnsTTL old if there is one (a stale one is refreshed in the background).
func (e *HTTPEvents) deployed(ctx context.Context, s Subscriber) error {
	u, err := url.Parse(s.URL)
	if err != nil {
		return err
	}
	host := u.Hostname()
	if net.ParseIP(host) != nil {
		return nil
	}
	e.mu.Lock()
	v := e.verdicts[host]
	if v != nil {
		err := v.err
		if time.Since(v.checked) >= dnsTTL && !v.refreshing {
			v.refreshing = true
			go e.lookup(context.WithoutCancel(ctx), s.Name, host)
		}
		e.mu.Unlock()
		return err
	}
	e.mu.Unlock()
	return e.lookup(ctx, s.Name, host)
}

// lookup asks DNS about host and records the verdict, logging a change.
func (e *HTTPEvents) lookup(ctx context.Context, name, host string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := e.resolve(ctx, host)
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.verdicts[host]
	switch {
	case err != nil && (old == nil || old.err == nil):
		e.log.Info("subscriber not deployed: its name is unknown to DNS; orders are not sent to it", "subscriber", name, "err", err)
	case err == nil && old != nil && old.err != nil:
		e.log.Info("subscriber deployed: orders are sent to it", "subscriber", name)
	}
	e.verdicts[host] = &verdict{err: err, checked: time.Now()}
	return err
}

// HTTPStats is GET /checkout/events in http mode.
type HTTPStats struct {
	Mode        string                  `json:"mode"` // "http"
	Subscribers map[string]HTTPCountsOf `json:"subscribers"`
}

// HTTPCountsOf counts the orders one subscriber was told of, skipped for
// not being deployed, or failed.
type HTTPCountsOf struct {
	Told    int64 `json:"told"`
	Skipped int64 `json:"skipped"`
	Failed  int64 `json:"failed"`
}

// Stats counts, per subscriber, what it was told.
func (e *HTTPEvents) Stats() any {
	st := HTTPStats{Mode: "http", Subscribers: map[string]HTTPCountsOf{}}
	for name, c := range e.counts {
		st.Subscribers[name] = HTTPCountsOf{Told: c.told.Load(), Skipped: c.skipped.Load(), Failed: c.failed.Load()}
	}
	return st
}

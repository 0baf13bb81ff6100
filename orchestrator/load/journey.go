package load

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
)

// Steps of a shopper's journey, in the order they are walked.
const (
	StepBrowse   = "browse"   // GET /catalog: 200 and a non-empty product list
	StepDeals    = "deals"    // GET /deals: 200
	StepAdd      = "add"      // POST /cart/items, a product from the catalog: 200
	StepCart     = "cart"     // GET /cart: 200, complete if it holds what was added
	StepCheckout = "checkout" // POST /checkout: 201; 409 "cart is empty" is a failure
)

type stepID int

const (
	browse stepID = iota
	deals
	add
	cartStep
	checkout
	numSteps
)

const (
	// maxStepBody bytes of a reply are kept for a step to check; the shop's
	// replies are a few hundred bytes, and a longer one fails the step.
	maxStepBody = 64 << 10
	// maxProductID bounds the product id a shopper keeps from the catalog.
	maxProductID = 128
)

// JourneyCounts counts shoppers' journeys. A journey starts with its browse
// step and ends at its first failed step, except deals: a shopper whose deals
// page fails goes on to the cart and checkout, since they need nothing from
// it. A journey succeeds when all five steps succeeded and its cart step
// found the cart complete. Started - Succeeded
// - Failed journeys are under way, or were cut off by the end of the run.
type JourneyCounts struct {
	Started   int64 `json:"started"`
	Succeeded int64 `json:"succeeded"`
	Failed    int64 `json:"failed"`
	// SuccessRate is Succeeded / (Succeeded + Failed); 0 before any ended.
	SuccessRate float64 `json:"successRate"`
}

// StepCounts counts one step of the journeys: the requests of the step that
// succeeded (OK) and failed. A step cut off by Stop is in neither.
type StepCounts struct {
	OK     int64 `json:"ok"`
	Failed int64 `json:"failed"`
	// SuccessRate is OK / (OK + Failed); 0 before any ended.
	SuccessRate float64 `json:"successRate"`
	// Errors counts the failures by kind, as Report.Errors does.
	Errors map[string]int64 `json:"errors,omitempty"`
}

// CartStepCounts counts the cart step. Incomplete of its OK replies were
// missing something the shopper had added since its journey began: behind
// a balancer spreading a shopper over replicas that each keep their own
// carts in memory, the cart is wherever the add happened to land.
type CartStepCounts struct {
	StepCounts
	Incomplete int64 `json:"incomplete"`
	// CompleteRate is (OK - Incomplete) / OK; 0 before any cart came back.
	CompleteRate float64 `json:"completeRate"`
}

// JourneySteps counts each step of a journey run.
type JourneySteps struct {
	Browse   StepCounts     `json:"browse"`
	Deals    StepCounts     `json:"deals"`
	Add      StepCounts     `json:"add"`
	Cart     CartStepCounts `json:"cart"`
	Checkout StepCounts     `json:"checkout"`
}

type stepCounters struct {
	ok, failed atomic.Int64
	errs       [len(kinds)]atomic.Int64
}

func (c *stepCounters) get() StepCounts {
	s := StepCounts{OK: c.ok.Load(), Failed: c.failed.Load()}
	s.SuccessRate = ratio(s.OK, s.OK+s.Failed)
	for i, k := range kinds {
		if n := c.errs[i].Load(); n > 0 {
			if s.Errors == nil {
				s.Errors = map[string]int64{}
			}
			s.Errors[k] = n
		}
	}
	return s
}

// shopperState is where one shopper is in its journey.
type shopperState struct {
	offset      int     // the shopper's number, to spread the products picked
	journeys    int     // journeys started, likewise
	next        stepID  // the step to send next
	product     string  // picked from the catalog by browse, for add
	added       []added // what add put in the cart during this journey
	incomplete  bool    // the cart step found something missing
	dealsFailed bool    // the deals step failed; the shopper went on without it
}

type added struct {
	product  string
	quantity int
}

// reset starts the shopper afresh from browse, forgetting what it added.
func (st *shopperState) reset() {
	st.next = browse
	st.product = ""
	st.added = st.added[:0] // at most one item per journey: stays small
	st.incomplete = false
	st.dealsFailed = false
}

// addBody is the body of POST /cart/items.
type addBody struct {
	ProductID string `json:"productId"`
	Quantity  int    `json:"quantity"`
}

// step sends shopper i's next step, as request number seq, and moves the
// shopper on. Only the worker holding shopper i calls it.
func (r *Run) step(seq int64, i int) {
	st := &r.shoppers[i]
	target := i % len(r.targets)
	tc, sc := &r.perTarget[target], &r.perShopper[i]
	tc.sent.Add(1)
	sc.sent.Add(1)
	id := st.next
	if id == browse {
		r.jStarted.Add(1)
		st.journeys++
	}

	method, path, keep := http.MethodGet, "", 0
	var body []byte
	switch id {
	case browse:
		path, keep = "/catalog", maxStepBody
	case deals:
		path = "/deals"
	case add:
		method, path = http.MethodPost, "/cart/items"
		body, _ = json.Marshal(addBody{ProductID: st.product, Quantity: 1}) // never fails
	case cartStep:
		path, keep = "/cart", maxStepBody
	case checkout:
		method, path = http.MethodPost, "/checkout"
	}

	ctx, cancel := context.WithTimeout(r.ctx, r.spec.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	kind := ""
	req, err := r.newRequest(ctx, method, r.bases[target]+path, rd, seq, r.names[i])
	if err != nil {
		kind = KindOther
	} else {
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		status, reply, err := r.send(r.clients[i], req, keep)
		switch {
		case err != nil && r.ctx.Err() != nil:
			r.canceled.Add(1) // the run is ending: the journey is left unfinished
			return
		case err != nil:
			kind = classify(err)
		default:
			kind = st.check(id, status, reply)
		}
	}

	r.outcome(tc, sc, kind)
	c := &r.steps[id]
	if kind != "" {
		c.failed.Add(1)
		c.errs[kindIndex[kind]].Add(1)
		if id == deals {
			// A shopper whose deals page fails still shops: the other steps
			// need nothing from it. That is what makes a broken feature's
			// blast radius visible, step by step; the journey still fails.
			st.dealsFailed = true
			st.next++
			return
		}
		r.jFailed.Add(1)
		st.reset()
		return
	}
	c.ok.Add(1)
	if id == cartStep && st.incomplete {
		r.cartIncomplete.Add(1) // after ok, so a report never sees more incomplete than ok
	}
	if id == checkout {
		if st.incomplete || st.dealsFailed {
			r.jFailed.Add(1)
		} else {
			r.jSucceeded.Add(1)
		}
		st.reset()
		return
	}
	st.next++
}

// check judges the reply to step id and, when it is right, keeps what the
// next steps need. It returns "" or the kind of failure.
func (st *shopperState) check(id stepID, status int, body []byte) string {
	want := http.StatusOK
	if id == checkout {
		want = http.StatusCreated
	}
	if status != want {
		if k := statusKind(status); k != "" {
			return k
		}
		return KindBadReply
	}
	if len(body) > maxStepBody {
		return KindBadReply
	}
	switch id {
	case browse:
		var products []struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(body, &products) != nil {
			return KindBadReply
		}
		var ids []string
		for _, p := range products {
			if p.ID != "" && len(p.ID) <= maxProductID {
				ids = append(ids, p.ID)
			}
		}
		if len(ids) == 0 {
			return KindBadReply
		}
		st.product = ids[(st.offset+st.journeys)%len(ids)]
	case add:
		for k := range st.added {
			if st.added[k].product == st.product {
				st.added[k].quantity++
				return ""
			}
		}
		st.added = append(st.added, added{product: st.product, quantity: 1})
	case cartStep:
		var c struct {
			Items []struct {
				ProductID string `json:"productId"`
				Quantity  int    `json:"quantity"`
			} `json:"items"`
		}
		if json.Unmarshal(body, &c) != nil {
			return KindBadReply
		}
		for _, a := range st.added {
			have := 0
			for _, it := range c.Items {
				if it.ProductID == a.product {
					have += it.Quantity
				}
			}
			if have < a.quantity {
				st.incomplete = true
			}
		}
	}
	return ""
}

// journeyReport reads the journey counters.
func (r *Run) journeyReport() (*JourneyCounts, *JourneySteps) {
	// Each journey counts as started before it counts as ended, so reading
	// the ends first keeps Started >= Succeeded + Failed.
	j := &JourneyCounts{Succeeded: r.jSucceeded.Load(), Failed: r.jFailed.Load()}
	j.Started = r.jStarted.Load()
	j.SuccessRate = ratio(j.Succeeded, j.Succeeded+j.Failed)

	incomplete := r.cartIncomplete.Load() // before ok: see step
	s := &JourneySteps{
		Browse:   r.steps[browse].get(),
		Deals:    r.steps[deals].get(),
		Add:      r.steps[add].get(),
		Cart:     CartStepCounts{StepCounts: r.steps[cartStep].get(), Incomplete: incomplete},
		Checkout: r.steps[checkout].get(),
	}
	s.Cart.CompleteRate = ratio(s.Cart.OK-incomplete, s.Cart.OK)
	return j, s
}

func ratio(n, of int64) float64 {
	if of <= 0 {
		return 0
	}
	return float64(n) / float64(of)
}

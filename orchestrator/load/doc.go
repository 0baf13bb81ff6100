// Package load is Flotilla's load generator: it sends paced HTTP traffic to a
// group's balancer or straight at its replicas, as anonymous clients or as a
// crowd of shoppers, and counts what comes back (status, kind of failure,
// which replica answered, latency) so a learner can see traffic spread,
// fail and recover.
//
// Traffic goes to loopback addresses only. Spec.Validate refuses any other
// target, the dialer refuses any other resolved address, redirects are
// never followed and no proxy is used, so a run cannot reach past the
// machine it runs on.
//
// Pacing is open-loop: request k is due at start + k/Rate whatever happened
// to the requests before it, so a slow server shows up as latency and
// dropped ticks rather than as a quietly lower rate. At most
// Spec.Concurrency requests are in flight; a tick that finds every slot busy
// is counted in Report.Dropped and not sent. Every run is bounded by its
// Duration, its optional MaxRequests and, per request, its Timeout.
//
// With Spec.Journey each shopper walks the shop's journey instead of a list
// of paths: browse the catalog, look at the deals, add a product from the
// catalog to the cart, read the cart back and check out. Each step is one
// request of the schedule; a shopper sends its next step only once the
// last has answered, and a failed step ends the journey. The cart step
// checks that the cart holds what the shopper added, so a balancer
// spreading one shopper over replicas that each keep their own carts shows
// up as incomplete carts (Report.Steps.Cart) and failed journeys
// (Report.Journeys), while browsing stays fine.
//
// Start runs one load; Manager keeps a few runs by id for the REST API.
package load

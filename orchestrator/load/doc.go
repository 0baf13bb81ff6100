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
// Start runs one load; Manager keeps a few runs by id for the REST API.
package load

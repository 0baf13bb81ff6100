package load

import (
	"maps"
	"sync/atomic"
	"time"
)

// States of a run.
const (
	StateRunning  = "running"
	StateFinished = "finished" // ran its Duration or MaxRequests
	StateStopped  = "stopped"  // ended early by Stop or its context
)

const (
	// ReplicaHeader names the replica that answered; the shop's services and
	// the balancer set it.
	ReplicaHeader = "X-Flotilla-Replica"
	// ShopperHeader and ShopperCookie carry a shopper's name, as the shop
	// reads it.
	ShopperHeader = "X-Shopper"
	ShopperCookie = "shopper"

	// maxReplicaKeys bounds Report.ByReplica whatever the servers answer;
	// replicas past it are counted under otherReplicas.
	maxReplicaKeys = 256
	otherReplicas  = "(other)"
	// maxReadBytes of a response body are read so the connection can be
	// reused; a longer body is cut off and its connection closed.
	maxReadBytes = 1 << 20
)

// Counts are the requests sent to one target or by one shopper and their
// outcome. Requests cut off by Stop are in Sent only.
type Counts struct {
	Sent      int64 `json:"sent"`
	Succeeded int64 `json:"succeeded"`
	Failed    int64 `json:"failed"`
}

type counters struct{ sent, succeeded, failed atomic.Int64 }

func (c *counters) get() Counts {
	return Counts{Sent: c.sent.Load(), Succeeded: c.succeeded.Load(), Failed: c.failed.Load()}
}

// Report is a run's state: a live snapshot while it runs, final after.
// Sent = Succeeded + Failed + Canceled + InFlight.
type Report struct {
	ID string `json:"id"`
	// Spec is the run's spec with its defaults applied.
	Spec    Spec      `json:"spec"`
	State   string    `json:"state"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`

	// Sent requests left for the server. Succeeded got a status below 400;
	// Failed got 4xx, 5xx or no response at all; Canceled were cut off by
	// Stop. Dropped are ticks of the schedule that found Concurrency
	// requests already in flight, or in a journey run every shopper waiting
	// for its step, and so were never sent. In a journey run each request
	// is one step: Succeeded counts the steps that succeeded and Failed
	// those that failed, so a reply below 400 that is not what its step
	// wants is Failed too, as KindBadReply.
	Sent      int64 `json:"sent"`
	Succeeded int64 `json:"succeeded"`
	Failed    int64 `json:"failed"`
	Canceled  int64 `json:"canceled"`
	Dropped   int64 `json:"dropped"`
	InFlight  int64 `json:"inFlight"`

	// Errors counts failures by kind (KindRefused, ...); Status counts
	// responses by HTTP status code.
	Errors map[string]int64 `json:"errors"`
	Status map[int]int64    `json:"status"`
	// ByReplica counts responses by the replica that named itself in header
	// X-Flotilla-Replica: how traffic spread.
	ByReplica map[string]int64 `json:"byReplica"`
	// ByTarget counts requests by target address.
	ByTarget map[string]Counts `json:"byTarget"`
	// ByShopper counts requests by shopper name; empty when anonymous.
	ByShopper map[string]Counts `json:"byShopper,omitempty"`

	// LatencyMs is measured over the requests that got a whole response,
	// whatever its status, from sending to the last byte of the body.
	LatencyMs Latency `json:"latencyMs"`
	// RatePerSec is the achieved rate: Sent over the time spent pacing.
	RatePerSec float64 `json:"ratePerSec"`

	// Journeys and Steps count the shoppers' journeys and each step of
	// them; set only for a journey run.
	Journeys *JourneyCounts `json:"journeys,omitempty"`
	Steps    *JourneySteps  `json:"steps,omitempty"`
}

// Report returns a snapshot of the run: live while it runs, final once Done
// is closed.
func (r *Run) Report() Report {
	r.mu.Lock()
	rep := Report{
		ID:        r.id,
		Spec:      clone(r.spec),
		State:     r.state,
		Started:   r.started,
		Ended:     r.ended,
		ByReplica: maps.Clone(r.replicas),
	}
	paced := r.paced
	r.mu.Unlock()

	rep.Sent = r.sent.Load()
	rep.Succeeded = r.succeeded.Load()
	rep.Failed = r.failed.Load()
	rep.Canceled = r.canceled.Load()
	rep.Dropped = r.dropped.Load()
	rep.InFlight = r.inflight.Load()
	rep.Errors = map[string]int64{}
	for i, k := range kinds {
		if n := r.errs[i].Load(); n > 0 {
			rep.Errors[k] = n
		}
	}
	rep.Status = map[int]int64{}
	for code := range r.status {
		if n := r.status[code].Load(); n > 0 {
			rep.Status[code] = n
		}
	}
	rep.ByTarget = map[string]Counts{}
	for i, t := range r.targets {
		c := r.perTarget[i].get()
		old := rep.ByTarget[t] // a target listed twice adds up
		rep.ByTarget[t] = Counts{Sent: old.Sent + c.Sent, Succeeded: old.Succeeded + c.Succeeded, Failed: old.Failed + c.Failed}
	}
	if len(r.names) > 0 {
		rep.ByShopper = make(map[string]Counts, len(r.names))
		for i, n := range r.names {
			rep.ByShopper[n] = r.perShopper[i].get()
		}
	}
	rep.LatencyMs = r.hist.snapshot()
	if paced == 0 {
		// Still pacing: tick 0 left at the start, so count one interval
		// more than has passed, or the first milliseconds show a wild rate.
		paced = time.Since(r.started) + time.Second/time.Duration(r.spec.Rate)
	}
	if paced > 0 {
		rep.RatePerSec = float64(rep.Sent) / paced.Seconds()
	}
	if r.journey {
		rep.Journeys, rep.Steps = r.journeyReport()
	}
	return rep
}

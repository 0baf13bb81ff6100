package lb

import (
	"encoding/json"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/flotilla/flotilla/orchestrator/lb/http1"
)

// The per-request decisions of the balancer, the same for both data paths
// (evloop_linux.go and proxy.go): which replica to try, whether a failed try
// goes again elsewhere, how a try is counted, and what the balancer answers
// itself, status, text and head. The data paths only carry bytes.

// maxPicks bounds the picks of one try: a pick may race with a Drain and
// have to be made again.
const maxPicks = 4

var (
	errEOF             = errors.New("the replica closed the connection before answering")
	errMalformed       = errors.New("malformed response")
	errMalformedChunks = errors.New("malformed chunked body")
)

// continue100 is the interim answer to Expect: 100-continue, sent when the
// head has arrived and the body has not.
var continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// overBudget is the problem a request is refused with when the balancer
// holds Config.MaxBufferedBytes already.
const overBudget = "the balancer is holding as many buffered bytes as it may; try again"

// acquire picks a host and counts the try in its in-flight gauge; the
// caller must call end on it (through endTry). It re-picks if the host left
// rotation between the pick and the count, so a drained host gets no
// request after Drain has seen it idle.
func (b *Balancer) acquire(p *policy, key []byte, exclude *host) *host {
	for range maxPicks {
		rot := b.rotation.Load()
		hosts := rot.side(key)
		if exclude != nil {
			hosts = rot.hosts // a retry may go to either side of a split
		}
		h := b.pick(p, hosts, key, exclude)
		if h == nil {
			return nil
		}
		h.begin()
		if !h.draining.Load() {
			return h
		}
		h.end()
	}
	return nil
}

// repeatable reports whether a request may be tried on a second replica.
func (b *Balancer) repeatable(method []byte, hasKey bool) bool {
	return !b.cfg.DisableRetry && safeToRepeat(method, hasKey)
}

// endTry ends a try on h that took d: the in-flight gauge, the metrics
// (status 0 for a try without an answer) and outlier detection.
func (b *Balancer) endTry(h *host, out tryOutcome, status int, d time.Duration, sec int64) {
	h.end()
	b.busyNanos.Add(int64(d))
	class := classError
	if out == outcomeResponse {
		class = classOf(status)
	}
	h.m.observe(class, d, sec)
	b.recordTry(h, out.failed(status))
}

// retryAfter reports whether a request whose try on h failed with out goes
// to another replica: it was the first try, the request is safe to repeat,
// the replica never started to answer, and the retry budget allows it.
func (b *Balancer) retryAfter(prev *host, repeatable bool, out tryOutcome, sec int64) bool {
	if prev != nil || !repeatable || !out.retryable() {
		return false
	}
	if !b.budget.withdraw(sec) {
		b.retriesDenied.Add(1)
		return false
	}
	b.retries.Add(1)
	return true
}

// tryError is the balancer's answer to a try on h that got no usable
// response: 504 for a timeout, 502 otherwise, naming the replica.
func (b *Balancer) tryError(h *host, out tryOutcome, err error) (int, []byte) {
	if out == outcomeTimeout {
		return 504, errorBody(fmt.Sprintf("replica %s did not answer within %s", h.up.label(), b.cfg.TryTimeout))
	}
	// The same failure reads the same on both paths: the socket's own
	// error, not the wrapping one path or the other adds.
	var errno syscall.Errno
	if errors.As(err, &errno) {
		err = errno
	}
	return 502, errorBody(fmt.Sprintf("replica %s: %v", h.up.label(), err))
}

// unroutable is the answer when no replica is in rotation.
func (b *Balancer) unroutable() (int, []byte) {
	b.unrouted.Add(1)
	return 503, b.noReplicas
}

// rejectBody is the body of the answer to a request refused before any
// try.
func rejectBody(code int, problem string) []byte {
	switch code {
	case 400:
		return errorBody("bad request: " + problem)
	case 413:
		return errorBody("request body over the balancer's limit")
	case 431:
		return errorBody("request head over the balancer's limit")
	}
	return errorBody(problem)
}

// appendOwnAnswer appends the head (and, unless isHEAD, the body) of an
// answer the balancer makes itself. Both data paths send exactly these
// bytes: status line, Content-Type, Content-Length, and Connection: close
// when closing; no Date, no Server.
func (b *Balancer) appendOwnAnswer(dst []byte, code int, body []byte, closing, isHEAD bool) []byte {
	return http1.AppendErrorResponse(dst, code, body, closing, isHEAD)
}

// errorBody is the JSON body of an answer the balancer makes itself.
func errorBody(msg string) []byte {
	body, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	return append(body, '\n')
}

// earlyAnswer reports whether an answer with status to a request with a
// body of bodyLen bytes may have been sent before the replica read the
// body: an error status. Such a replica may read the rest of the body
// later, or as a request of its own, so its connection is not reused.
func earlyAnswer(bodyLen, status int) bool {
	return bodyLen > 0 && status >= 400
}

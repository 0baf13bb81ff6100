package load

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
)

// Kinds of failure counted in Report.Errors.
const (
	KindRefused   = "refused"    // nothing listens: connection refused
	KindReset     = "reset"      // the peer closed or reset the connection mid-request
	KindTimeout   = "timeout"    // no full response within Spec.Timeout
	KindStatus5xx = "status_5xx" // a response with status 500..599
	KindStatus4xx = "status_4xx" // a response with status 400..499
	KindOther     = "other"      // anything else
	// KindBadReply is a journey step's reply below 400 that is not what the
	// step wants: another status than its own (200, or 201 for checkout),
	// or a body that does not parse, or an empty catalog.
	KindBadReply = "bad_reply"
)

// classify names the kind of a transport error. The run's own cancellation
// is told apart by the caller, before this is asked.
func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindRefused
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return KindReset
	}
	// net/http does not wrap every cause it reports; fall back to its words.
	msg := err.Error()
	for _, s := range []string{"connection reset", "broken pipe", "EOF", "server closed idle connection", "connection closed"} {
		if strings.Contains(msg, s) {
			return KindReset
		}
	}
	if strings.Contains(msg, "connection refused") {
		return KindRefused
	}
	return KindOther
}

var kindIndex = map[string]int{KindRefused: 0, KindReset: 1, KindTimeout: 2, KindStatus5xx: 3, KindStatus4xx: 4, KindOther: 5, KindBadReply: 6}
var kinds = [...]string{KindRefused, KindReset, KindTimeout, KindStatus5xx, KindStatus4xx, KindOther, KindBadReply}

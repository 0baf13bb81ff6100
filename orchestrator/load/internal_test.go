package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestBucketsCoverEveryValue(t *testing.T) {
	prevHi := int64(-1)
	for i := range histBuckets {
		lo, hi := bucketRange(i)
		if lo != prevHi+1 || hi < lo {
			t.Fatalf("bucket %d is [%d, %d], previous ended at %d", i, lo, hi, prevHi)
		}
		for _, v := range []int64{lo, hi} {
			if got := bucketOf(v); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", v, got, i)
			}
		}
		if lo >= histSub && float64(hi-lo+1)/float64(lo) > 1.0/histSub+1e-9 {
			t.Fatalf("bucket %d [%d, %d] is wider than 1/%d of its value", i, lo, hi, histSub)
		}
		prevHi = hi
	}
	if prevHi != histMaxUs {
		t.Errorf("last bucket ends at %d, want %d", prevHi, histMaxUs)
	}
	if bucketOf(-5) != 0 || bucketOf(math.MaxInt64) != histBuckets-1 {
		t.Errorf("out-of-range values are not clamped")
	}
}

func TestHistogramPercentiles(t *testing.T) {
	var h histogram
	for us := 1; us <= 10000; us++ { // 1 µs .. 10 ms, uniform
		h.record(time.Duration(us) * time.Microsecond)
	}
	got := h.snapshot()
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"p50", got.P50, 5}, {"p90", got.P90, 9}, {"p99", got.P99, 9.9}, {"max", got.Max, 10}, {"mean", got.Mean, 5.0005},
	} {
		if math.Abs(c.got-c.want)/c.want > 0.02 {
			t.Errorf("%s = %v ms, want %v within 2%%", c.name, c.got, c.want)
		}
	}
	if got.Count != 10000 {
		t.Errorf("count = %d, want 10000", got.Count)
	}
	if (&histogram{}).snapshot() != (Latency{}) {
		t.Errorf("empty histogram has a non-zero snapshot")
	}
}

func TestClassify(t *testing.T) {
	urlErr := func(err error) error { return &url.Error{Op: "Get", URL: "http://127.0.0.1:1/", Err: err} }
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: errno}}
	}
	tests := []struct {
		err  error
		want string
	}{
		{urlErr(opErr(syscall.ECONNREFUSED)), KindRefused},
		{urlErr(opErr(syscall.ECONNRESET)), KindReset},
		{urlErr(opErr(syscall.EPIPE)), KindReset},
		{urlErr(io.EOF), KindReset},
		{urlErr(io.ErrUnexpectedEOF), KindReset},
		{urlErr(fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", io.ErrUnexpectedEOF)), KindReset},
		{urlErr(context.DeadlineExceeded), KindTimeout},
		{urlErr(os.ErrDeadlineExceeded), KindTimeout},
		{errors.New("malformed HTTP response"), KindOther},
	}
	for _, tt := range tests {
		if got := classify(tt.err); got != tt.want {
			t.Errorf("classify(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestDialerRefusesNonLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:80":          true,
		"127.9.9.9:80":          true,
		"[::1]:80":              true,
		"[::ffff:127.0.0.1]:80": true,
		"10.0.0.1:80":           false,
		"0.0.0.0:80":            false,
		"[::]:80":               false,
		"93.184.216.34:80":      false,
		"garbage":               false,
	} {
		if err := loopbackOnly("tcp", addr, nil); (err == nil) != ok {
			t.Errorf("loopbackOnly(%s) = %v, want allowed %v", addr, err, ok)
		}
	}
}

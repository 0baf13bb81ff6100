package load

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Run is one load run, started by Start. Its methods are safe for
// concurrent use.
type Run struct {
	id      string
	spec    Spec
	targets []string
	urls    [][]string // [target][path]
	headers []header
	names   []string       // shopper names; nil when anonymous
	clients []*http.Client // one per shopper, or one for anonymous
	tr      *http.Transport

	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	jobs    chan job
	started time.Time

	sent, succeeded, failed, canceled, dropped, inflight atomic.Int64
	errs                                                 [len(kinds)]atomic.Int64
	status                                               [1000]atomic.Int64
	hist                                                 histogram
	perTarget, perShopper                                []counters

	// A journey run's own. shoppers[i] is touched only by whoever holds
	// shopper i: the pacer takes it out of idle, one worker sends its
	// step, and puts it back, so it has one request in flight at most.
	journey                       bool
	bases                         []string // "http://" + target
	shoppers                      []shopperState
	idleMu                        sync.Mutex
	idle                          []int // shoppers with no step in flight
	jStarted, jSucceeded, jFailed atomic.Int64
	steps                         [numSteps]stepCounters
	cartIncomplete                atomic.Int64

	mu       sync.Mutex // guards the fields below
	replicas map[string]int64
	state    string
	ended    time.Time
	paced    time.Duration // time spent pacing, once pacing ended
}

// job is one request for a worker: request number seq, and in a journey
// run the shopper whose next step it is (-1 otherwise).
type job struct {
	seq     int64
	shopper int
}

type header struct {
	name, value string
	expand      bool
}

// Start validates s, applies its defaults and starts sending. The run ends
// on its own after s.Duration or s.MaxRequests, or early on Stop or when ctx
// ends.
func Start(ctx context.Context, s Spec) (*Run, error) {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s = clone(s)
	r := &Run{
		id:       newID(),
		spec:     s,
		targets:  s.TargetList(),
		done:     make(chan struct{}),
		jobs:     make(chan job, s.Concurrency),
		replicas: map[string]int64{},
		state:    StateRunning,
		journey:  s.Journey,
	}
	r.urls = make([][]string, len(r.targets))
	for i, t := range r.targets {
		r.bases = append(r.bases, "http://"+t)
		for _, p := range s.Paths {
			u := "http://" + t + p
			pu, err := url.Parse(u)
			if err != nil || pu.Host != t {
				return nil, invalid("paths", "%q does not make a URL on %s", p, t)
			}
			r.urls[i] = append(r.urls[i], u)
		}
	}
	for k, v := range s.Headers {
		r.headers = append(r.headers, header{name: k, value: v, expand: strings.Contains(v, "{")})
	}
	if s.Body != "" && !hasHeader(s.Headers, "Content-Type") {
		r.headers = append(r.headers, header{name: "Content-Type", value: "application/json"})
	}

	r.tr = &http.Transport{
		Proxy: nil, // never through a proxy: the traffic stays on this machine
		DialContext: (&net.Dialer{
			Timeout:   s.Timeout,
			KeepAlive: 30 * time.Second,
			Control:   loopbackOnly,
		}).DialContext,
		MaxIdleConns:        min(s.Concurrency*len(r.targets), 1024),
		MaxIdleConnsPerHost: s.Concurrency,
		MaxConnsPerHost:     s.Concurrency,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r.perTarget = make([]counters, len(r.targets))
	if s.Shoppers == 0 {
		r.clients = []*http.Client{{Transport: r.tr, CheckRedirect: noRedirect}}
	} else {
		r.perShopper = make([]counters, s.Shoppers)
		for i := range s.Shoppers {
			name := "s-" + strconv.Itoa(i)
			jar, _ := cookiejar.New(nil) // never fails without options
			for _, t := range r.targets {
				u := &url.URL{Scheme: "http", Host: t, Path: "/"}
				jar.SetCookies(u, []*http.Cookie{{Name: ShopperCookie, Value: name, Path: "/"}})
			}
			r.names = append(r.names, name)
			r.clients = append(r.clients, &http.Client{Transport: r.tr, Jar: jar, CheckRedirect: noRedirect})
		}
	}
	if r.journey {
		r.shoppers = make([]shopperState, s.Shoppers)
		r.idle = make([]int, s.Shoppers)
		for i := range r.shoppers {
			r.shoppers[i].offset = i
			r.idle[i] = i
		}
	}

	r.ctx, r.cancel = context.WithCancel(ctx)
	r.started = time.Now()
	var wg sync.WaitGroup
	for range s.Concurrency {
		wg.Go(func() {
			for j := range r.jobs {
				if j.shopper >= 0 {
					r.step(j.seq, j.shopper)
					r.release(j.shopper) // before the slot, so a free slot finds a shopper
				} else {
					r.do(j.seq)
				}
				r.inflight.Add(-1)
			}
		})
	}
	go func() {
		r.pace()
		close(r.jobs)
		wg.Wait()
		r.finish()
	}()
	return r, nil
}

// ID returns the run's id.
func (r *Run) ID() string { return r.id }

// Stop ends the run early: no more requests are sent and those in flight are
// cut off. It does not wait; Done closes when the run has ended.
func (r *Run) Stop() { r.cancel() }

// Done is closed when the run has ended and its Report is final.
func (r *Run) Done() <-chan struct{} { return r.done }

// pace hands out request numbers on the open-loop schedule until the
// duration is over, MaxRequests were sent, or the run is stopped.
func (r *Run) pace() {
	var (
		nsPer = float64(time.Second) / float64(r.spec.Rate)
		end   = r.started.Add(r.spec.Duration)
		limit = int64(r.spec.MaxRequests)
		slots = int64(r.spec.Concurrency)
		timer = time.NewTimer(time.Hour)
	)
	timer.Stop()
	defer timer.Stop()
	setPaced := func(d time.Duration) {
		r.mu.Lock()
		r.paced = d
		r.mu.Unlock()
	}
	for k := int64(0); ; k++ {
		// Each due time is computed from the start, not from the previous
		// tick, so late wake-ups do not add up to drift; a late pacer sends
		// what is due at once.
		due := r.started.Add(time.Duration(float64(k) * nsPer))
		if !due.Before(end) {
			setPaced(max(r.spec.Duration, time.Since(r.started)))
			return
		}
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-r.ctx.Done():
				setPaced(time.Since(r.started))
				return
			case <-timer.C:
			}
		}
		if r.ctx.Err() != nil { // the select above may pick the timer over a stop
			setPaced(time.Since(r.started))
			return
		}
		// Only this goroutine adds to inflight, so the check cannot be
		// overtaken, and jobs, sized Concurrency, never blocks.
		if r.inflight.Load() >= slots {
			r.dropped.Add(1)
			continue
		}
		shopper := -1
		if r.journey {
			// Each shopper waits for its step's reply before the next, so a
			// tick that finds every shopper waiting is dropped too.
			if shopper = r.take(); shopper < 0 {
				r.dropped.Add(1)
				continue
			}
		}
		r.inflight.Add(1)
		seq := r.sent.Add(1) - 1
		r.jobs <- job{seq: seq, shopper: shopper}
		if limit > 0 && seq+1 >= limit {
			setPaced(max(time.Since(r.started), time.Duration(float64(k+1)*nsPer)))
			return
		}
	}
}

// take picks an idle shopper at random and marks it busy; -1 if none is
// idle. At random, not in turn: shoppers that took turns in lockstep would
// each meet the same replica of a round-robin balancer every time, and
// hide what the balancer does to their carts.
func (r *Run) take() int {
	r.idleMu.Lock()
	defer r.idleMu.Unlock()
	n := len(r.idle)
	if n == 0 {
		return -1
	}
	k := mrand.IntN(n)
	i := r.idle[k]
	r.idle[k] = r.idle[n-1]
	r.idle = r.idle[:n-1]
	return i
}

// release marks shopper i idle again.
func (r *Run) release(i int) {
	r.idleMu.Lock()
	r.idle = append(r.idle, i) // within its capacity: every shopper is in it at most once
	r.idleMu.Unlock()
}

// do sends request number seq of a run of paths and counts its outcome.
func (r *Run) do(seq int64) {
	shopper, target, path := -1, 0, 0
	nt, np := int64(len(r.targets)), int64(len(r.spec.Paths))
	if n := int64(len(r.names)); n > 0 {
		// Shoppers take turns; each walks the paths on its own and keeps to
		// its own target.
		shopper = int(seq % n)
		target = shopper % int(nt)
		path = int(seq / n % np)
	} else {
		target = int(seq % nt)
		path = int(seq / nt % np)
	}
	var sc *counters
	name := ""
	client := r.clients[0]
	if shopper >= 0 {
		sc, name, client = &r.perShopper[shopper], r.names[shopper], r.clients[shopper]
		sc.sent.Add(1)
	}
	tc := &r.perTarget[target]
	tc.sent.Add(1)

	ctx, cancel := context.WithTimeout(r.ctx, r.spec.Timeout)
	defer cancel()
	var body io.Reader
	if r.spec.Body != "" {
		body = strings.NewReader(r.spec.Body)
	}
	req, err := r.newRequest(ctx, r.spec.Method, r.urls[target][path], body, seq, name)
	if err != nil {
		r.outcome(tc, sc, KindOther)
		return
	}
	status, _, err := r.send(client, req, 0)
	if err != nil {
		if r.ctx.Err() != nil {
			r.canceled.Add(1)
			return
		}
		r.outcome(tc, sc, classify(err))
		return
	}
	r.outcome(tc, sc, statusKind(status))
}

// newRequest builds a request with the run's headers, expanded for request
// seq and shopper name, and the shopper's own header.
func (r *Run) newRequest(ctx context.Context, method, url string, body io.Reader, seq int64, name string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	for _, h := range r.headers {
		v := h.value
		if h.expand {
			v = strings.ReplaceAll(v, "{seq}", strconv.FormatInt(seq, 10))
			v = strings.ReplaceAll(v, "{shopper}", name)
		}
		req.Header.Set(h.name, v)
	}
	if name != "" {
		req.Header.Set(ShopperHeader, name)
	}
	return req, nil
}

// send sends req with client and reads the whole reply, keeping its first
// keep+1 bytes at most (none if keep is 0) so a caller can tell a reply
// longer than keep. A reply is counted in Status, ByReplica and the
// latency; a transport error, the reading of the body included, is
// returned for the caller to classify.
func (r *Run) send(client *http.Client, req *http.Request, keep int) (status int, body []byte, err error) {
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	if keep > 0 {
		body, err = io.ReadAll(io.LimitReader(resp.Body, int64(keep)+1))
	}
	if err == nil {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxReadBytes-int64(len(body))))
	}
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		return 0, nil, err
	}
	r.hist.record(took)
	r.status[resp.StatusCode%1000].Add(1)
	if rep := resp.Header.Get(ReplicaHeader); rep != "" {
		r.countReplica(rep)
	}
	return resp.StatusCode, body, nil
}

// outcome counts a request that ended, other than by being cut off: kind
// is "" for a success, else the kind of failure.
func (r *Run) outcome(tc, sc *counters, kind string) {
	if kind == "" {
		r.succeeded.Add(1)
		tc.succeeded.Add(1)
		if sc != nil {
			sc.succeeded.Add(1)
		}
		return
	}
	r.failed.Add(1)
	r.errs[kindIndex[kind]].Add(1)
	tc.failed.Add(1)
	if sc != nil {
		sc.failed.Add(1)
	}
}

// statusKind is the kind of failure of a reply with status code, or "".
func statusKind(code int) string {
	switch {
	case code >= 500:
		return KindStatus5xx
	case code >= 400:
		return KindStatus4xx
	}
	return ""
}

func (r *Run) countReplica(name string) {
	if len(name) > 64 {
		name = name[:64]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.replicas[name]; !ok && len(r.replicas) >= maxReplicaKeys {
		name = otherReplicas
	}
	r.replicas[name]++
}

func (r *Run) finish() {
	stopped := r.ctx.Err() != nil
	r.cancel()
	r.tr.CloseIdleConnections()
	r.mu.Lock()
	r.ended = time.Now()
	r.state = StateFinished
	if stopped {
		r.state = StateStopped
	}
	r.mu.Unlock()
	close(r.done)
}

// loopbackOnly is the dialer's last word: whatever a name resolved to, only
// a loopback address is dialled.
func loopbackOnly(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		return fmt.Errorf("load: refusing to dial %s: not a loopback address", address)
	}
	return nil
}

func hasHeader(h map[string]string, name string) bool {
	for k := range h {
		if http.CanonicalHeaderKey(k) == name {
			return true
		}
	}
	return false
}

// clone copies s's slices and map so a report never shares them.
func clone(s Spec) Spec {
	s.Targets = slices.Clone(s.Targets)
	s.Paths = slices.Clone(s.Paths)
	s.Headers = maps.Clone(s.Headers)
	return s
}

func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "ld-" + hex.EncodeToString(b[:])
}

//go:build linux && (amd64 || arm64)

package lb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/flotilla/flotilla/orchestrator/lb/http1"
)

// The event-loop data path. One loop per P, each with an epoll set of its
// own: the loops take turns accepting from the shared listener
// (EPOLLEXCLUSIVE) and deal the connections round-robin among themselves.
// A loop reads and parses requests (package http1), decides as request.go
// says (the pick, retries, the balancer's own answers, as the fasthttp path
// does), forwards over its pool of idle connections per replica, and
// writes the answer back. A loop owns its connections: nothing on them is shared or locked.
// Reads are level-triggered, so a loop never reads a socket it was not told
// is readable, and socket calls are raw (no scheduler hand-off per call).
// When nothing is ready, a loop parks in the runtime's poller on its epoll
// set, so its P serves other goroutines meanwhile. Try timeouts are a FIFO
// (every try has the same TryTimeout, so deadlines come in order); idle
// timeouts, and the header, body and write timeouts, are a sweep once a
// second. A connection whose request the loop does not take (see package
// http1) leaves the loop and is served by the fasthttp path on a goroutine
// of its own (takeOver, serveTakenOver: all the loop knows of that path).

const eventLoopBuilt = true

const (
	epollExclusive = 1 << 28 // EPOLLEXCLUSIVE, not in package syscall
	// idleUpstream closes a pooled connection to a replica after this long
	// unused: below the shop's 60 s idle timeout, so the balancer closes
	// first.
	idleUpstream = 30 * time.Second
	// maxIdlePerHost bounds a loop's pool of idle connections to a replica.
	maxIdlePerHost = 256
	// minNap is the shortest park of a loop with nothing to do (see wait).
	minNap = time.Millisecond
	// keepBuffer is the largest buffer a connection keeps between messages;
	// a larger one, grown for a large message, is let go.
	keepBuffer = 64 << 10
)

// dialTarget is where a host's connections go. It holds the address, not
// a syscall.Sockaddr: Connect writes into the Sockaddr it is given, so each
// dial makes its own.
type dialTarget struct {
	addr netip.AddrPort
	err  error
}

func resolveDial(addr string) dialTarget {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		ta, rerr := net.ResolveTCPAddr("tcp", addr)
		if rerr != nil {
			return dialTarget{err: rerr}
		}
		ap = ta.AddrPort()
	}
	return dialTarget{addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}
}

// sockaddr returns a new Sockaddr for t and its address family.
func (t dialTarget) sockaddr() (syscall.Sockaddr, int) {
	if ip := t.addr.Addr(); ip.Is4() {
		return &syscall.SockaddrInet4{Port: int(t.addr.Port()), Addr: ip.As4()}, syscall.AF_INET
	}
	return &syscall.SockaddrInet6{Port: int(t.addr.Port()), Addr: t.addr.Addr().As16()}, syscall.AF_INET6
}

// evEngine is the set of loops of one balancer.
type evEngine struct {
	b     *Balancer
	lfd   int
	loops []*evLoop
	done  chan struct{} // closed when every loop has returned
	wg    sync.WaitGroup
	next  atomic.Uint32 // deals accepted connections to loops
	stop  atomic.Bool   // accept nothing more; close connections once idle
	force atomic.Bool   // close everything now

	tooMany []byte // the answer to a client over Config.MaxConns

	hmu    sync.Mutex
	handed map[net.Conn]struct{}
	hwg    sync.WaitGroup
}

// newEvEngine starts the loops on ln, which must be a TCP listener.
func newEvEngine(b *Balancer, ln net.Listener) (*evEngine, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, fmt.Errorf("the event loop needs a TCP listener, not %T", ln)
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return nil, err
	}
	lfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			derr = e
			return
		}
		lfd = int(r)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("dup listener: %w", derr)
	}
	e := &evEngine{b: b, lfd: lfd, done: make(chan struct{}), handed: map[net.Conn]struct{}{}, tooMany: b.tooManyConns()}
	n := max(1, runtime.GOMAXPROCS(0))
	for range n {
		l, err := newEvLoop(e)
		if err != nil {
			for _, l := range e.loops {
				l.closeFds()
			}
			syscall.Close(lfd)
			return nil, err
		}
		e.loops = append(e.loops, l)
	}
	e.wg.Add(len(e.loops))
	for _, l := range e.loops {
		go l.run()
	}
	go func() {
		e.wg.Wait()
		for _, l := range e.loops { // dealt to a loop as it stopped
			for _, a := range l.inbox {
				syscall.Close(a.fd)
				b.open.Add(-1)
			}
		}
		syscall.Close(e.lfd)
		close(e.done)
	}()
	return e, nil
}

// wake interrupts every loop's wait.
func (e *evEngine) wake() {
	one := []byte{1}
	for _, l := range e.loops {
		syscall.Write(l.wakeW, one)
	}
}

// shutdown stops accepting, lets requests in flight finish until ctx ends,
// then closes every connection, the handed-off ones too.
func (e *evEngine) shutdown(ctx context.Context) error {
	e.stop.Store(true)
	e.wake()
	var err error
	select {
	case <-e.done:
	case <-ctx.Done():
		err = ctx.Err()
		e.force.Store(true)
		e.wake()
		<-e.done
	}
	e.hmu.Lock()
	for c := range e.handed {
		c.Close()
	}
	e.hmu.Unlock()
	e.hwg.Wait()
	return err
}

// serveHandoff serves c on the fasthttp path until it closes.
func (e *evEngine) serveHandoff(c net.Conn) {
	e.hmu.Lock()
	if e.stop.Load() {
		e.hmu.Unlock()
		c.Close()
		return
	}
	e.handed[c] = struct{}{}
	e.hwg.Add(1)
	e.hmu.Unlock()
	go func() {
		defer e.hwg.Done()
		e.b.serveTakenOver(c)
		e.hmu.Lock()
		delete(e.handed, c)
		e.hmu.Unlock()
	}()
}

// prefixConn is a handed-off connection: what the loop had read of it
// comes first.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// evConn is one socket of a loop: a client's connection or one to a
// replica.
type evConn struct {
	fd      int
	client  bool
	closed  bool
	inEpoll bool
	events  uint32
	in      []byte // read, not yet consumed
	last    int64  // last activity, loop clock
	held    int    // bytes of its buffers charged to the balancer's budget

	// A client's connection.
	ip         []byte
	busy       bool  // a request is being served, from its parse to its answer's last byte
	eof        bool  // the client closed its side
	closeAfter bool  // close once the answer is written
	since      int64 // when the head began arriving, or (bodyWait) the body
	bodyWait   bool  // the head is in, the body is arriving
	writing    bool  // the answer is being written, since wstart
	wstart     int64
	req        http1.Request
	fwd        []byte // the request as the replica gets it
	out        []byte // the answer
	outOff     int
	p          *policy
	key        []byte
	repeatable bool
	h          *host   // the replica of the try in flight
	prev       *host   // the replica of the failed first try
	up         *evConn // the connection of the try in flight
	tryStart   int64

	// A connection to a replica.
	host       *host
	peer       *evConn // the client whose request is on it
	seq        uint32  // bumped when a try ends, so its timer is stale
	connecting bool
	reused     bool
	sent       int
	headDone   bool
	rh         http1.Response
}

type evTimer struct {
	u   *evConn
	seq uint32
	at  int64
}

// evLoop is one event loop.
type evLoop struct {
	e            *evEngine
	b            *Balancer
	ep           int
	epf          *os.File // ep, in the runtime's poller
	eprc         syscall.RawConn
	waitFn       func(uintptr) bool
	nready       int
	nap          time.Duration // the longest park, see wait
	wakeR, wakeW int
	listening    bool

	imu   sync.Mutex
	inbox []accepted // accepted by another loop for this one

	conns   []*evConn // by fd
	clients int
	pools   map[*host][]*evConn
	timers  []evTimer
	thead   int
	events  []syscall.EpollEvent
	scratch [64]byte

	base      time.Time
	mono      int64 // nanoseconds since base, read once per wake-up
	sec       int64 // Unix seconds of the same reading
	lastSweep int64
}

func newEvLoop(e *evEngine) (*evLoop, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	// The epoll set is itself waited on in the runtime's poller (wait), so
	// it must be non-blocking, and the os.File owns it.
	if err := syscall.SetNonblock(ep, true); err != nil {
		syscall.Close(ep)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	l := &evLoop{e: e, b: e.b, ep: ep, wakeR: -1, wakeW: -1, pools: map[*host][]*evConn{}, nap: minNap,
		events: make([]syscall.EpollEvent, 128), base: time.Now()}
	l.epf = os.NewFile(uintptr(ep), "epoll")
	l.waitFn = func(uintptr) bool {
		l.nready = l.poll()
		return l.nready > 0
	}
	var p [2]int
	if err = syscall.Pipe2(p[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err == nil {
		l.wakeR, l.wakeW = p[0], p[1]
		l.eprc, err = l.epf.SyscallConn()
	}
	if err == nil {
		err = l.ctl(syscall.EPOLL_CTL_ADD, l.wakeR, syscall.EPOLLIN)
	}
	if err == nil {
		err = l.ctl(syscall.EPOLL_CTL_ADD, e.lfd, syscall.EPOLLIN|epollExclusive)
	}
	if err != nil {
		l.closeFds()
		return nil, fmt.Errorf("event loop: %w", err)
	}
	l.listening = true
	return l, nil
}

func (l *evLoop) closeFds() {
	l.epf.Close()
	if l.wakeR >= 0 {
		syscall.Close(l.wakeR)
		syscall.Close(l.wakeW)
	}
}

func (l *evLoop) ctl(op, fd int, events uint32) error {
	ev := syscall.EpollEvent{Events: events, Fd: int32(fd)}
	return syscall.EpollCtl(l.ep, op, fd, &ev)
}

// watch sets c's epoll interest; 0 takes it out of the set.
func (l *evLoop) watch(c *evConn, events uint32) {
	switch {
	case c.closed || (c.inEpoll && c.events == events):
		return
	case events == 0:
		if c.inEpoll {
			l.ctl(syscall.EPOLL_CTL_DEL, c.fd, 0)
		}
		c.inEpoll = false
	case c.inEpoll:
		l.ctl(syscall.EPOLL_CTL_MOD, c.fd, events)
	default:
		l.ctl(syscall.EPOLL_CTL_ADD, c.fd, events)
		c.inEpoll = true
	}
	c.events = events
}

func (l *evLoop) track(c *evConn) {
	for c.fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*evConn, len(l.conns)+64)...)
	}
	l.conns[c.fd] = c
}

func (l *evLoop) tick() {
	t := time.Now()
	l.mono = int64(t.Sub(l.base))
	l.sec = t.Unix()
}

func (l *evLoop) run() {
	defer l.e.wg.Done()
	l.tick()
	l.lastSweep = l.mono
	for {
		n, err := l.wait()
		l.tick()
		if err != nil {
			break // the epoll set was closed: nothing more can arrive
		}
		// Replicas first: a pooled connection the replica wrote to (or
		// closed) since the last wait is closed before a client of this
		// batch can be given it.
		for i := range max(n, 0) {
			ev := &l.events[i]
			fd := int(ev.Fd)
			switch {
			case fd == l.wakeR:
				syscall.Read(l.wakeR, l.scratch[:])
				l.takeInbox()
			case fd == l.e.lfd:
				l.accept()
			case fd < len(l.conns) && l.conns[fd] != nil && !l.conns[fd].client:
				l.onUpstream(l.conns[fd], ev.Events)
			}
		}
		for i := range max(n, 0) {
			ev := &l.events[i]
			if fd := int(ev.Fd); fd != l.wakeR && fd != l.e.lfd && fd < len(l.conns) && l.conns[fd] != nil && l.conns[fd].client {
				l.onClient(l.conns[fd], ev.Events)
			}
		}
		l.expire()
		if l.mono-l.lastSweep >= int64(time.Second) {
			l.sweep()
		}
		if l.e.stop.Load() {
			l.onStop()
			if l.clients == 0 {
				break
			}
		}
	}
	for _, c := range l.conns {
		if c != nil {
			l.closeConn(c)
		}
	}
	l.closeFds()
}

// wait waits for events: without blocking when some are ready, as under
// load they always are; otherwise parked in the runtime's poller, which
// watches the epoll set like any socket, until it has events or the next
// deadline comes. (A loop blocking in epoll_wait itself holds its P in a
// system call: with every P so held, the runtime's monitor thread kept
// waking to take them back, and cost a tenth of the loop's CPU.)
//
// A park is also a nap of at most l.nap, which starts at minNap and doubles
// with each nap that ends with nothing to do. The runtime notices a parked
// loop's events when some thread polls the network: one idle in the
// poller, or a P looking for work. While the other loops run flat out and
// the runtime's monitor sleeps deeply, nobody may poll for a long time
// (over 200 ms was seen, with all the loop's answers waiting); the nap's
// timer bounds that, and costs a few wake-ups a second once idle.
func (l *evLoop) wait() (int, error) {
	if n := l.poll(); n > 0 {
		return n, nil
	}
	l.nready = 0
	nap := min(time.Duration(l.waitMillis())*time.Millisecond, l.nap)
	l.epf.SetReadDeadline(time.Now().Add(nap))
	err := l.eprc.Read(l.waitFn)
	switch {
	case err == nil:
		l.nap = minNap
	case errors.Is(err, os.ErrDeadlineExceeded):
		l.nap = min(2*l.nap, time.Second)
	default:
		return 0, err
	}
	return l.nready, nil
}

// poll returns the events ready now, without waiting.
func (l *evLoop) poll() int {
	n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(l.ep),
		uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
	if e != 0 {
		return 0
	}
	return int(n)
}

// waitMillis is how long the loop may sleep: until the next try deadline,
// and at most a second, for the idle sweep.
func (l *evLoop) waitMillis() int {
	for l.thead < len(l.timers) {
		t := &l.timers[l.thead]
		if t.u.seq == t.seq && t.u.peer != nil {
			ms := (t.at-l.mono)/int64(time.Millisecond) + 1
			return int(min(max(ms, 0), 1000))
		}
		l.timers[l.thead] = evTimer{}
		l.thead++
	}
	return 1000
}

// onStop carries out the shutdown: no more accepting, idle clients closed;
// with force, every client closed.
func (l *evLoop) onStop() {
	if l.listening {
		l.ctl(syscall.EPOLL_CTL_DEL, l.e.lfd, 0)
		l.listening = false
	}
	force := l.e.force.Load()
	for _, c := range l.conns {
		if c != nil && c.client && (force || !c.busy) {
			l.closeConn(c)
		}
	}
}

// accept takes the connections waiting on the listener and deals them
// round-robin over the loops, so that each carries its share however the
// kernel woke them.
func (l *evLoop) accept() {
	for range 64 {
		fd, sa, err := syscall.Accept4(l.e.lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN: another loop took it, or none left
		}
		if l.e.stop.Load() {
			syscall.Close(fd)
			continue
		}
		if !l.b.admit() {
			if len(l.e.tooMany) > 0 {
				rawWrite(fd, l.e.tooMany) // best effort: the socket buffer is empty
			}
			syscall.Close(fd)
			continue
		}
		a := accepted{fd: fd}
		switch sa := sa.(type) {
		case *syscall.SockaddrInet4:
			a.ip = netip.AddrFrom4(sa.Addr).AppendTo(nil)
		case *syscall.SockaddrInet6:
			a.ip = netip.AddrFrom16(sa.Addr).Unmap().AppendTo(nil)
		}
		to := l.e.loops[int(l.e.next.Add(1)%uint32(len(l.e.loops)))]
		if to == l {
			l.addClient(a)
			continue
		}
		to.imu.Lock()
		to.inbox = append(to.inbox, a)
		to.imu.Unlock()
		syscall.Write(to.wakeW, []byte{1})
	}
}

// accepted is a client's connection on its way to its loop.
type accepted struct {
	fd int
	ip []byte
}

// takeInbox adds the connections other loops accepted for this one.
func (l *evLoop) takeInbox() {
	l.imu.Lock()
	in := l.inbox
	l.inbox = nil
	l.imu.Unlock()
	for _, a := range in {
		if l.e.stop.Load() {
			syscall.Close(a.fd)
			l.b.open.Add(-1)
			continue
		}
		l.addClient(a)
	}
}

func (l *evLoop) addClient(a accepted) {
	syscall.SetsockoptInt(a.fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	c := &evConn{fd: a.fd, client: true, in: make([]byte, 0, 4096), last: l.mono, ip: a.ip}
	l.recount(c)
	l.track(c)
	l.clients++
	l.watch(c, syscall.EPOLLIN)
}

// closeConn closes c; a client's try in flight is abandoned (the replica is
// not blamed: the client left).
func (l *evLoop) closeConn(c *evConn) {
	if c.closed {
		return
	}
	if c.client {
		if u := c.up; u != nil {
			c.up, u.peer = nil, nil
			l.closeConn(u)
			c.h.end()
			c.h = nil
		}
		l.clients--
		l.b.open.Add(-1)
	} else if c.peer == nil && !c.connecting && c.host != nil {
		l.unpool(c)
	}
	c.closed = true
	c.seq++
	l.b.mem.give(c.held)
	c.held = 0
	syscall.Close(c.fd) // also leaves the epoll set: the fd has no duplicate
	l.conns[c.fd] = nil
}

// --- clients ---------------------------------------------------------------

func (l *evLoop) onClient(c *evConn, ev uint32) {
	// An answer is being written: any event (room, reset) goes on with it.
	// c.out alone does not say so: while a retry is in flight it holds the
	// first try's error, kept in case the retry fails too.
	if c.writing {
		l.flush(c)
		return
	}
	if ev&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
		l.readClient(c)
	}
}

func (l *evLoop) readClient(c *evConn) {
	if len(c.in) == cap(c.in) {
		if c.busy {
			// Full while a request is served (the client sends ahead): stop
			// reading until the answer is out.
			l.watch(c, 0)
			return
		}
		if !l.growIn(c, 2*cap(c.in)) {
			l.reject(c, 503, overBudget, false)
			return
		}
	}
	n, errno := rawRead(c.fd, c.in[len(c.in):cap(c.in)])
	switch {
	case errno == syscall.EAGAIN || errno == syscall.EINTR:
		return
	case errno != 0 || n == 0:
		if c.busy { // answer the request in flight, then close
			c.eof = true
			l.watch(c, 0)
			return
		}
		l.closeConn(c)
		return
	}
	if len(c.in) == 0 && !c.busy {
		c.since = l.mono // a head begins
	}
	c.in = c.in[:len(c.in)+n]
	c.last = l.mono
	if !c.busy {
		l.nextRequest(c)
	}
}

// nextRequest serves the request at the head of c.in once it is whole.
func (l *evLoop) nextRequest(c *evConn) {
	if len(c.in) == 0 {
		return
	}
	r, fwd, st := http1.ParseRequest(c.in, c.ip, l.b.cfg.MaxRequestBody, c.fwd[:0])
	c.fwd = fwd
	switch st {
	case http1.Handoff:
		l.handoff(c)
		return
	case http1.Bad:
		l.reject(c, r.Code, r.Problem, r.IsHEAD)
		return
	case http1.NeedMore:
		if len(c.in) == cap(c.in) && !l.growIn(c, min(2*cap(c.in), http1.MaxRequestHead)) {
			l.reject(c, 503, overBudget, false)
		}
		return
	}
	if len(c.in) < r.Total() {
		// The body comes as it comes: the buffer grows with what arrived,
		// never to the length announced.
		if !c.bodyWait {
			c.bodyWait, c.since = true, l.mono
			if r.Expect100 { // no answer is being written: !c.busy
				rawWrite(c.fd, continue100) // 25 bytes into an idle socket: whole, or the client is gone
			}
		}
		if len(c.in) == cap(c.in) && !l.growIn(c, min(2*cap(c.in), r.Total())) {
			l.reject(c, 503, overBudget, r.IsHEAD)
		}
		return
	}
	c.bodyWait = false
	if l.b.holding() {
		// No replica: the request waits for one on the fasthttp path, which
		// can hold it (activator.go).
		l.handoff(c)
		return
	}
	c.fwd = append(c.fwd, c.in[r.HeadLen:r.Total()]...)
	l.recount(c)
	c.req = r
	c.busy = true
	b := l.b
	b.countArrival(l.sec)
	c.p = b.policy.Load()
	c.key = nil
	if c.p.keyed {
		c.key = r.Shopper
	}
	c.repeatable = b.repeatable(r.Method, r.HasKey)
	c.prev = nil
	l.try(c)
}

// reject answers a request the balancer refuses without a try, and closes
// the connection once the answer is out: what follows on it cannot be
// framed.
func (l *evLoop) reject(c *evConn, code int, problem string, isHEAD bool) {
	c.busy, c.bodyWait = true, false
	c.in = c.in[:0]
	c.req = http1.Request{}
	c.out = l.b.appendOwnAnswer(c.out[:0], code, rejectBody(code, problem), true, isHEAD)
	c.closeAfter = true
	c.outOff = 0
	c.writing, c.wstart = true, l.mono
	l.watch(c, 0)
	l.flush(c)
}

// growIn grows c.in to n bytes if the balancer's budget has room for the
// difference.
func (l *evLoop) growIn(c *evConn, n int) bool {
	if n <= cap(c.in) {
		return true
	}
	if l.b.mem.used.Load()+int64(n-cap(c.in)) > l.b.mem.max {
		return false
	}
	c.in = grow(c.in, n)
	l.recount(c)
	return true
}

// recount charges the budget with what c's buffers hold now.
func (l *evLoop) recount(c *evConn) {
	if t := cap(c.in) + cap(c.out) + cap(c.fwd); t != c.held {
		l.b.mem.used.Add(int64(t - c.held))
		c.held = t
	}
}

// grow returns buf with room for n bytes.
func grow(buf []byte, n int) []byte {
	if cap(buf) >= n {
		return buf
	}
	out := make([]byte, len(buf), n)
	copy(out, buf)
	return out
}

// handoff gives c to the fasthttp server, with what was read of it.
func (l *evLoop) handoff(c *evConn) {
	l.watch(c, 0) // before the fd is duplicated: the epoll entry would outlive it
	l.clients--   // still open: the count of open connections goes with it
	l.b.mem.give(c.held)
	c.held = 0
	c.closed = true
	l.conns[c.fd] = nil
	f := os.NewFile(uintptr(c.fd), "client")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		l.b.open.Add(-1)
		return
	}
	pc := &prefixConn{Conn: newRawConn(nc), pre: append([]byte(nil), c.in...)}
	l.e.serveHandoff(l.b.takeOver(pc, c.ip))
}

// try sends the request to a replica: the first pick, or another one after
// a failure.
func (l *evLoop) try(c *evConn) {
	b := l.b
	h := b.acquire(c.p, c.key, c.prev)
	if h == nil {
		if c.prev == nil {
			code, body := b.unroutable()
			c.out = b.appendOwnAnswer(c.out[:0], code, body, l.closing(c), c.req.IsHEAD)
		} // else the first try's error stands, already in c.out
		l.respond(c)
		return
	}
	c.h, c.tryStart = h, l.mono
	u, err := l.pooled(h)
	if u == nil {
		if u, err = l.dial(h); u == nil {
			l.tryFailed(c, outcomeConnFailed, err)
			return
		}
	}
	l.attach(c, u)
}

// attach puts c's request on u, with its deadline.
func (l *evLoop) attach(c *evConn, u *evConn) {
	c.up, u.peer = u, c
	u.sent, u.headDone, u.in = 0, false, u.in[:0]
	u.seq++
	// Deadlines must not decrease along the FIFO; only a try sent again on
	// a fresh connection (its start kept) could, and it waits a little more.
	at := c.tryStart + int64(l.b.cfg.TryTimeout)
	if n := len(l.timers); n > l.thead {
		at = max(at, l.timers[n-1].at)
	}
	l.timers = append(l.timers, evTimer{u: u, seq: u.seq, at: at})
	if !u.connecting {
		l.send(u)
	}
}

func (l *evLoop) pooled(h *host) (*evConn, error) {
	pool := l.pools[h]
	if len(pool) == 0 {
		return nil, nil
	}
	u := pool[len(pool)-1]
	pool[len(pool)-1] = nil
	l.pools[h] = pool[:len(pool)-1]
	u.reused = true
	return u, nil
}

func (l *evLoop) unpool(u *evConn) {
	pool := l.pools[u.host]
	for i, x := range pool {
		if x == u {
			pool[i] = pool[len(pool)-1]
			pool[len(pool)-1] = nil
			l.pools[u.host] = pool[:len(pool)-1]
			return
		}
	}
}

// dial starts a non-blocking connect to h.
func (l *evLoop) dial(h *host) (*evConn, error) {
	if h.dial.err != nil {
		return nil, h.dial.err
	}
	sa, family := h.dial.sockaddr()
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	u := &evConn{fd: fd, host: h, in: make([]byte, 0, 8192), last: l.mono}
	l.recount(u)
	switch err := syscall.Connect(fd, sa); err {
	case nil:
	case syscall.EINPROGRESS, syscall.EINTR:
		u.connecting = true
	default:
		syscall.Close(fd)
		return nil, err
	}
	l.track(u)
	if u.connecting {
		l.watch(u, syscall.EPOLLIN|syscall.EPOLLOUT)
	} else {
		l.watch(u, syscall.EPOLLIN)
	}
	return u, nil
}

// closing reports whether c closes after the answer being made.
func (l *evLoop) closing(c *evConn) bool {
	return c.req.Close || c.eof || l.e.stop.Load()
}

// respond writes c.out, the answer to the request in flight.
func (l *evLoop) respond(c *evConn) {
	c.closeAfter = l.closing(c)
	n := c.req.Total()
	c.in = c.in[:copy(c.in, c.in[n:])]
	c.req = http1.Request{}
	c.key = nil
	c.outOff = 0
	c.writing, c.wstart = true, l.mono
	l.recount(c)
	l.flush(c)
}

// flush writes what is left of c.out; once all is out, the next request
// may start.
func (l *evLoop) flush(c *evConn) {
	for c.outOff < len(c.out) {
		n, errno := rawWrite(c.fd, c.out[c.outOff:])
		switch errno {
		case 0:
			c.outOff += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			l.watch(c, syscall.EPOLLOUT)
			return
		default:
			l.closeConn(c)
			return
		}
	}
	if cap(c.out) > keepBuffer {
		c.out = nil
	}
	c.out, c.outOff = c.out[:0], 0
	c.busy, c.writing = false, false
	if c.closeAfter {
		l.closeConn(c)
		return
	}
	if cap(c.in) > keepBuffer && len(c.in) <= 4096 {
		c.in = append(make([]byte, 0, 4096), c.in...)
	}
	if cap(c.fwd) > keepBuffer {
		c.fwd = nil
	}
	l.recount(c)
	c.last, c.since = l.mono, l.mono // what is left of c.in starts the next head now
	l.watch(c, syscall.EPOLLIN)
	l.nextRequest(c)
}

// --- replicas --------------------------------------------------------------

func (l *evLoop) onUpstream(u *evConn, ev uint32) {
	if u.peer == nil { // idle in a pool: the replica closed it, or sent what nobody asked for
		l.closeConn(u)
		return
	}
	if u.connecting {
		if ev&(syscall.EPOLLOUT|syscall.EPOLLERR|syscall.EPOLLHUP) == 0 {
			return
		}
		if soerr, err := syscall.GetsockoptInt(u.fd, syscall.SOL_SOCKET, syscall.SO_ERROR); err != nil || soerr != 0 {
			if err == nil {
				err = syscall.Errno(soerr)
			}
			l.upstreamFailed(u, err)
			return
		}
		u.connecting = false
		l.send(u)
		return
	}
	if ev&syscall.EPOLLOUT != 0 && u.sent < len(u.peer.fwd) {
		l.send(u)
		return
	}
	if ev&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
		l.readUpstream(u)
	}
}

// send writes the request to u.
func (l *evLoop) send(u *evConn) {
	fwd := u.peer.fwd
	for u.sent < len(fwd) {
		n, errno := rawWrite(u.fd, fwd[u.sent:])
		switch errno {
		case 0:
			u.sent += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			l.watch(u, syscall.EPOLLIN|syscall.EPOLLOUT)
			return
		default:
			l.upstreamFailed(u, errno)
			return
		}
	}
	l.watch(u, syscall.EPOLLIN)
}

func (l *evLoop) readUpstream(u *evConn) {
	c := u.peer
	if len(u.in) == cap(u.in) {
		limit := http1.MaxResponseHead + l.b.cfg.MaxResponseBody
		if cap(u.in) >= limit {
			l.closeConn(u)
			l.tryFailed(c, outcomeLocal, fmt.Errorf("response larger than %d bytes", l.b.cfg.MaxResponseBody))
			return
		}
		if !l.growIn(u, min(2*cap(u.in), limit)) {
			l.closeConn(u)
			l.tryFailed(c, outcomeLocal, errors.New("the balancer's buffer budget is spent"))
			return
		}
	}
	n, errno := rawRead(u.fd, u.in[len(u.in):cap(u.in)])
	switch {
	case errno == syscall.EAGAIN || errno == syscall.EINTR:
		return
	case errno != 0 || n == 0:
		if u.headDone && u.rh.Kind == http1.BodyToEOF {
			l.finish(u, len(u.in), true)
			return
		}
		var err error = errEOF
		if errno != 0 {
			err = errno
		}
		l.upstreamFailed(u, err)
		return
	}
	u.in = u.in[:len(u.in)+n]
	for !u.headDone {
		rh, st := http1.ParseResponse(u.in, c.req.IsHEAD)
		switch {
		case st == http1.NeedMore:
			return
		case st == http1.Bad || rh.Status == 101:
			l.closeConn(u)
			l.tryFailed(c, outcomeBadResponse, errMalformed)
			return
		case rh.Status < 200: // interim: dropped
			u.in = u.in[:copy(u.in, u.in[rh.HeadLen:])]
			continue
		}
		u.rh, u.headDone = rh, true
	}
	switch end, st := http1.ResponseEnd(u.in, &u.rh); st {
	case http1.Bad:
		l.closeConn(u)
		l.tryFailed(c, outcomeBadResponse, errMalformedChunks)
	case http1.OK:
		l.finish(u, end, false)
	}
}

// upstreamFailed ends a try whose connection failed before a whole answer.
// A pooled connection that the replica had closed is not the replica's
// failure: the request goes again on a fresh connection to the same
// replica, if it is safe to repeat.
func (l *evLoop) upstreamFailed(u *evConn, err error) {
	c, h := u.peer, u.host
	stale := u.reused && len(u.in) == 0 && (err == errEOF || err == syscall.ECONNRESET || err == syscall.EPIPE)
	l.closeConn(u)
	if stale && safeToRepeat(c.req.Method, c.req.HasKey) {
		c.up = nil
		if nu, derr := l.dial(h); nu != nil {
			l.attach(c, nu)
			return
		} else {
			err = derr
		}
	}
	l.tryFailed(c, outcomeConnFailed, err)
}

// tryFailed ends a try that got no usable answer: the client gets a 502 or
// 504 unless the request may be retried on another replica.
func (l *evLoop) tryFailed(c *evConn, out tryOutcome, err error) {
	b, h := l.b, c.h
	if h == nil {
		return // the try already ended and c has its answer
	}
	c.h, c.up = nil, nil
	b.endTry(h, out, 0, time.Duration(l.mono-c.tryStart), l.sec)
	code, body := b.tryError(h, out, err)
	c.out = b.appendOwnAnswer(c.out[:0], code, body, l.closing(c), c.req.IsHEAD)
	if !b.retryAfter(c.prev, c.repeatable, out, l.sec) {
		l.respond(c)
		return
	}
	c.prev = h
	l.try(c)
}

// finish ends a try with the replica's answer, u.in[:end].
func (l *evLoop) finish(u *evConn, end int, toEOF bool) {
	c, h, b := u.peer, u.host, l.b
	b.endTry(h, outcomeResponse, u.rh.Status, time.Duration(l.mono-c.tryStart), l.sec)

	closing := l.closing(c)
	head := u.in[:u.rh.HeadLen]
	switch {
	case toEOF:
		c.out = http1.AppendResponseHead(c.out[:0], head, end-u.rh.HeadLen, closing)
	case u.rh.HopByHop || closing:
		c.out = http1.AppendResponseHead(c.out[:0], head, -1, closing)
	default:
		c.out = append(c.out[:0], head...)
	}
	c.out = append(c.out, u.in[u.rh.HeadLen:end]...)

	c.h, c.up, u.peer = nil, nil, nil
	u.seq++
	// A connection goes back to the pool only when the request went out
	// whole and the answer came back whole with nothing after it: a replica
	// that answered early (401, 413) may still be reading the body, and the
	// next request would be read as the rest of it. An error answer to a
	// request with a body may be such an early one: that connection is not
	// kept either (see earlyAnswer).
	if u.rh.Reusable && !toEOF && end == len(u.in) && u.sent == len(c.fwd) && !earlyAnswer(c.req.BodyLen, u.rh.Status) &&
		!h.draining.Load() && !l.e.stop.Load() &&
		len(l.pools[h]) < maxIdlePerHost {
		u.in = u.in[:0]
		if cap(u.in) > keepBuffer {
			u.in = make([]byte, 0, 8192)
			l.recount(u)
		}
		u.last = l.mono
		l.pools[h] = append(l.pools[h], u)
	} else {
		l.closeConn(u)
	}
	l.respond(c)
}

// expire fails the tries past their deadline.
func (l *evLoop) expire() {
	for l.thead < len(l.timers) {
		t := l.timers[l.thead]
		if t.u.seq == t.seq && t.u.peer != nil && t.at > l.mono {
			break
		}
		l.timers[l.thead] = evTimer{}
		l.thead++
		if t.u.seq != t.seq || t.u.peer == nil {
			continue
		}
		c := t.u.peer
		if c.up != t.u || c.h == nil {
			// The try on t.u ended another way and left its connection
			// claiming c: only the connection goes.
			t.u.peer = nil
			l.closeConn(t.u)
			continue
		}
		l.closeConn(t.u)
		l.tryFailed(c, outcomeTimeout, nil)
	}
	if l.thead == len(l.timers) {
		l.timers, l.thead = l.timers[:0], 0
	} else if l.thead > 1024 && l.thead*2 > len(l.timers) {
		n := copy(l.timers, l.timers[l.thead:])
		clear(l.timers[n:])
		l.timers, l.thead = l.timers[:n], 0
	}
}

// sweep closes idle connections: clients quiet for idleClient, pooled
// connections unused for idleUpstream or to a replica that left.
func (l *evLoop) sweep() {
	l.lastSweep = l.mono
	cfg := &l.b.cfg
	for _, c := range l.conns {
		switch {
		case c == nil || !c.client:
		case c.writing:
			if l.mono-c.wstart > int64(cfg.WriteTimeout) {
				l.closeConn(c) // a client that does not read its answer
			}
		case c.busy:
		case c.bodyWait && l.mono-c.since > int64(cfg.BodyTimeout):
			l.reject(c, 408, "request body not received in time", false)
		case !c.bodyWait && len(c.in) > 0 && l.mono-c.since > int64(cfg.HeaderTimeout):
			l.reject(c, 408, "request head not received in time", false)
		case len(c.in) == 0 && l.mono-c.last > int64(idleClientTimeout):
			l.closeConn(c)
		}
	}
	for h, pool := range l.pools {
		for i := len(pool) - 1; i >= 0; i-- {
			if u := pool[i]; h.draining.Load() || l.mono-u.last > int64(idleUpstream) {
				l.closeConn(u) // unpools it
			}
		}
		if len(l.pools[h]) == 0 {
			delete(l.pools, h)
		}
	}
}

// --- socket calls ----------------------------------------------------------

func rawRead(fd int, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
	return int(n), e
}

func rawWrite(fd int, p []byte) (int, syscall.Errno) {
	// MSG_NOSIGNAL: a peer that has gone is an EPIPE, not a SIGPIPE.
	n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), syscall.MSG_NOSIGNAL, 0, 0)
	return int(n), e
}

//go:build linux && (amd64 || arm64)

package lb

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// rawConn is a TCP connection whose reads and writes call the kernel
// without telling the Go scheduler that they do (syscall.RawSyscall rather
// than syscall.Syscall). The sockets are non-blocking, so a read or write
// never blocks: on EAGAIN it waits in the runtime's poller like any Go
// read. What it saves is the scheduler's bookkeeping of a blocking call:
// with one read and one write per message, a proxy spends most of its time
// in short socket calls, and each one marked as a blocking call lets the
// runtime's monitor thread take the P away, hand it to another thread and
// wake that thread, which showed as about a tenth of the balancer's CPU.
//
// A rawConn is read by one goroutine and written by one goroutine at a
// time, as net.Conn users do; its callbacks are made once so a call
// allocates nothing.
type rawConn struct {
	*net.TCPConn
	rc syscall.RawConn
	// raddr and ip are the peer's address and its IP as text, kept because
	// both are asked for on every request.
	raddr net.Addr
	ip    []byte

	rbuf   []byte
	rn     int
	rerrno syscall.Errno
	readFn func(uintptr) bool

	wbuf    []byte
	wn      int
	werrno  syscall.Errno
	writeFn func(uintptr) bool
}

func newRawConn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	r := &rawConn{TCPConn: tc, rc: rc, raddr: tc.RemoteAddr()}
	r.ip = appendIP(nil, r.raddr)
	r.readFn = r.doRead
	r.writeFn = r.doWrite
	return r
}

// RemoteAddr returns the peer's address without a call into the runtime.
func (c *rawConn) RemoteAddr() net.Addr { return c.raddr }

func (c *rawConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rbuf, c.rn, c.rerrno = p, 0, 0
	err := c.rc.Read(c.readFn)
	n, errno := c.rn, c.rerrno
	c.rbuf = nil
	switch {
	case err != nil: // closed, or past the deadline
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	case errno != 0:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: errno}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *rawConn) doRead(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd,
			uintptr(unsafe.Pointer(&c.rbuf[0])), uintptr(len(c.rbuf)), 0, 0, 0)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait for the poller, then call again
		}
		c.rn, c.rerrno = int(n), e
		return true
	}
}

func (c *rawConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.wbuf, c.wn, c.werrno = p, 0, 0
	err := c.rc.Write(c.writeFn)
	n, errno := c.wn, c.werrno
	c.wbuf = nil
	switch {
	case err != nil:
		return n, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	case errno != 0:
		return n, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: errno}
	}
	return n, nil
}

func (c *rawConn) doWrite(fd uintptr) bool {
	for len(c.wbuf) > 0 {
		// MSG_NOSIGNAL: a peer that has gone is an EPIPE, not a SIGPIPE.
		n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd,
			uintptr(unsafe.Pointer(&c.wbuf[0])), uintptr(len(c.wbuf)), syscall.MSG_NOSIGNAL, 0, 0)
		switch e {
		case 0:
			c.wn += int(n)
			c.wbuf = c.wbuf[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // the socket buffer is full: wait for room
		default:
			c.werrno = e
			return true
		}
	}
	return true
}

// pending reports whether c, a pooled connection to a replica, has bytes
// waiting or was closed by the replica: either way it must not carry a
// request.
func pending(c net.Conn) bool {
	rc, ok := c.(*rawConn)
	if !ok {
		return false
	}
	var b [1]byte
	n, errno := -1, syscall.EAGAIN     // as if nothing were there, should the peek not run
	rc.rc.Read(func(fd uintptr) bool { //nolint:errcheck // a closed connection shows in the write
		r, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		n, errno = int(r), e
		return true
	})
	return errno != syscall.EAGAIN && (errno != 0 || n >= 0)
}

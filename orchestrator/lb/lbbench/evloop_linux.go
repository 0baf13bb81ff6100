//go:build linux && (amd64 || arm64)

package main

// The event-loop prototype behind --engine evloop-prototype. It is not
// Flotilla's balancer and not fit to be one: it handles only the
// benchmark's shape (requests without bodies, responses with
// Content-Length, replicas that never fail), with no timeouts, retries,
// policies or metrics. It exists to measure what the data path could gain
// from an event loop of its own instead of a goroutine per connection: one
// epoll loop per P on a locked thread, SO_REUSEPORT listeners, level-
// triggered reads (no read that finds nothing), raw socket calls, idle
// upstream connections pooled per loop. See the package doc of
// orchestrator/lb for the figures.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/flotilla/flotilla/orchestrator/lb"
)

const soReusePort = 0xf

type conn struct {
	fd     int
	client bool
	peer   *conn // client <-> upstream while a request is in flight
	buf    []byte
	up     int // upstream index (for upstream conns)
	ip     []byte
}

type loop struct {
	ep     int
	lfd    int
	conns  map[int]*conn
	idle   [][]*conn // per upstream
	ups    []syscall.SockaddrInet4
	next   int
	events []syscall.EpollEvent
	out    []byte
}

func rawRead(fd int, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
	return int(n), e
}

func rawWrite(fd int, p []byte) syscall.Errno {
	for len(p) > 0 {
		n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), syscall.MSG_NOSIGNAL, 0, 0)
		if e == syscall.EAGAIN {
			continue // a prototype spins: small messages never fill a socket buffer
		}
		if e != 0 {
			return e
		}
		p = p[n:]
	}
	return 0
}

func (l *loop) add(fd int) {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
	if err := syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		panic(err)
	}
}

func (l *loop) close(c *conn) {
	syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_DEL, c.fd, nil)
	syscall.Close(c.fd)
	delete(l.conns, c.fd)
}

func (l *loop) upstream(i int) *conn {
	if n := len(l.idle[i]); n > 0 {
		c := l.idle[i][n-1]
		l.idle[i] = l.idle[i][:n-1]
		return c
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		panic(err)
	}
	sa := l.ups[i]
	if err := syscall.Connect(fd, &sa); err != nil { // a blocking connect: a prototype
		panic(err)
	}
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	syscall.SetNonblock(fd, true)
	c := &conn{fd: fd, up: i, buf: make([]byte, 0, 8192)}
	l.conns[fd] = c
	l.add(fd)
	return c
}

var crlf2 = []byte("\r\n\r\n")
var clKey = []byte("\r\ncontent-length:")

func (l *loop) onClient(c *conn) {
	if len(c.buf) == cap(c.buf) {
		l.close(c)
		return
	}
	n, e := rawRead(c.fd, c.buf[len(c.buf):cap(c.buf)])
	if e == syscall.EAGAIN {
		return
	}
	if e != 0 || n == 0 {
		if c.peer != nil {
			c.peer.peer = nil
		}
		l.close(c)
		return
	}
	c.buf = c.buf[:len(c.buf)+n]
	end := bytes.Index(c.buf, crlf2)
	if end < 0 || c.peer != nil {
		return
	}
	head := c.buf[:end+2]
	// forward: head + X-Forwarded-For + CRLF
	l.out = append(l.out[:0], head...)
	l.out = append(l.out, "X-Forwarded-For: "...)
	l.out = append(l.out, c.ip...)
	l.out = append(l.out, "\r\n\r\n"...)
	c.buf = c.buf[:copy(c.buf, c.buf[end+4:])]
	i := l.next % len(l.ups)
	l.next++
	u := l.upstream(i)
	u.peer, c.peer = c, u
	if e := rawWrite(u.fd, l.out); e != 0 {
		l.close(u)
		c.peer = nil
		rawWrite(c.fd, []byte("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"))
	}
}

func (l *loop) onUpstream(u *conn) {
	n, e := rawRead(u.fd, u.buf[len(u.buf):cap(u.buf)])
	if e == syscall.EAGAIN {
		return
	}
	if e != 0 || n == 0 {
		if u.peer != nil {
			rawWrite(u.peer.fd, []byte("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"))
			u.peer.peer = nil
		}
		l.close(u)
		return
	}
	u.buf = u.buf[:len(u.buf)+n]
	end := bytes.Index(u.buf, crlf2)
	if end < 0 {
		return
	}
	lower := bytes.ToLower(u.buf[:end+2]) // prototype: allocates
	k := bytes.Index(lower, clKey)
	cl := 0
	if k >= 0 {
		rest := lower[k+len(clKey):]
		rest = rest[:bytes.IndexByte(rest, '\r')]
		cl, _ = strconv.Atoi(strings.TrimSpace(string(rest)))
	}
	total := end + 4 + cl
	if len(u.buf) < total {
		return
	}
	c := u.peer
	if c != nil {
		rawWrite(c.fd, u.buf[:total])
		c.peer = nil
	}
	u.buf = u.buf[:0]
	u.peer = nil
	l.idle[u.up] = append(l.idle[u.up], u)
}

func (l *loop) run() {
	runtime.LockOSThread()
	for {
		n, err := syscall.EpollWait(l.ep, l.events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			panic(err)
		}
		for _, ev := range l.events[:n] {
			fd := int(ev.Fd)
			if fd == l.lfd {
				for {
					nfd, sa, err := syscall.Accept4(l.lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
					if err != nil {
						break
					}
					syscall.SetsockoptInt(nfd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
					c := &conn{fd: nfd, client: true, buf: make([]byte, 0, 16384)}
					if a, ok := sa.(*syscall.SockaddrInet4); ok {
						c.ip = []byte(net.IP(a.Addr[:]).String())
					}
					l.conns[nfd] = c
					l.add(nfd)
				}
				continue
			}
			c := l.conns[fd]
			if c == nil {
				continue
			}
			if c.client {
				l.onClient(c)
			} else {
				l.onUpstream(c)
			}
		}
	}
}

func runEvloop(ctx context.Context, listen string, ups []lb.Upstream, stdout io.Writer) error {
	var addrs []syscall.SockaddrInet4
	for _, u := range ups {
		sa, err := inet4(u.Addr)
		if err != nil {
			return err
		}
		addrs = append(addrs, sa)
	}
	lsa, err := inet4(listen)
	if err != nil {
		return err
	}
	for i := range runtime.GOMAXPROCS(0) {
		lfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, soReusePort, 1)
		if err := syscall.Bind(lfd, &lsa); err != nil {
			return fmt.Errorf("bind %s: %w", listen, err)
		}
		if err := syscall.Listen(lfd, 1024); err != nil {
			return err
		}
		ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return err
		}
		l := &loop{ep: ep, lfd: lfd, conns: map[int]*conn{}, idle: make([][]*conn, len(addrs)), ups: addrs, events: make([]syscall.EpollEvent, 256), next: i}
		l.add(lfd)
		go l.run()
	}
	fmt.Fprintln(stdout, "listening on", listen)
	<-ctx.Done()
	return nil
}

func inet4(addr string) (syscall.SockaddrInet4, error) {
	var sa syscall.SockaddrInet4
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return sa, err
	}
	ip := net.ParseIP(h).To4()
	if ip == nil {
		return sa, fmt.Errorf("%s: the prototype takes IPv4 addresses only", addr)
	}
	sa.Port, err = strconv.Atoi(p)
	copy(sa.Addr[:], ip)
	return sa, err
}

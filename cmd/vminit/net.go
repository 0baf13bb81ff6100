//go:build linux

package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flotilla/flotilla/orchestrator/images/vmboot"
)

// configureNetwork brings lo and eth0 up, gives eth0 cfg.Addr, routes by
// default through cfg.Gateway and points the resolver at cfg.DNS. It speaks
// rtnetlink itself: the initramfs holds no ip(8).
func configureNetwork(ctx context.Context, cfg vmboot.Config) error {
	eth, err := waitForInterface(ctx, "eth0")
	if err != nil {
		return err
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	nl, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open netlink: %w", err)
	}
	defer unix.Close(nl)
	if err := unix.Bind(nl, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind netlink: %w", err)
	}
	steps := []struct {
		what string
		typ  uint16
		body []byte
	}{
		{"bring lo up", unix.RTM_NEWLINK, linkUp(lo.Index)},
		{"address eth0", unix.RTM_NEWADDR, address(eth.Index, cfg)},
		{"bring eth0 up", unix.RTM_NEWLINK, linkUp(eth.Index)},
		{"add the default route", unix.RTM_NEWROUTE, defaultRoute(eth.Index, cfg)},
	}
	for i, s := range steps {
		flags := uint16(unix.NLM_F_REQUEST | unix.NLM_F_ACK)
		if s.typ != unix.RTM_NEWLINK {
			flags |= unix.NLM_F_CREATE | unix.NLM_F_EXCL
		}
		if err := request(nl, s.typ, flags, uint32(i+1), s.body); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	resolv := fmt.Sprintf("nameserver %s\n", cfg.DNS)
	if err := os.MkdirAll("/etc", 0o755); err != nil {
		return err
	}
	return os.WriteFile("/etc/resolv.conf", []byte(resolv), 0o644)
}

// waitForInterface polls for name: the driver's probe runs asynchronously
// after its module loads.
func waitForInterface(ctx context.Context, name string) (*net.Interface, error) {
	for {
		ifc, err := net.InterfaceByName(name)
		if err == nil {
			return ifc, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %s: %w (last: %v)", name, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func linkUp(index int) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	b[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	binary.NativeEndian.PutUint32(b[8:], unix.IFF_UP)  // flags
	binary.NativeEndian.PutUint32(b[12:], unix.IFF_UP) // change
	return b
}

func address(index int, cfg vmboot.Config) []byte {
	b := make([]byte, unix.SizeofIfAddrmsg)
	b[0] = unix.AF_INET
	b[1] = byte(cfg.Addr.Bits())
	b[3] = unix.RT_SCOPE_UNIVERSE
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	ip := cfg.Addr.Addr().AsSlice()
	b = attr(b, unix.IFA_LOCAL, ip)
	return attr(b, unix.IFA_ADDRESS, ip)
}

func defaultRoute(index int, cfg vmboot.Config) []byte {
	b := make([]byte, unix.SizeofRtMsg)
	b[0] = unix.AF_INET
	b[4] = unix.RT_TABLE_MAIN
	b[5] = unix.RTPROT_BOOT
	b[6] = unix.RT_SCOPE_UNIVERSE
	b[7] = unix.RTN_UNICAST
	b = attr(b, unix.RTA_GATEWAY, cfg.Gateway.AsSlice())
	oif := make([]byte, 4)
	binary.NativeEndian.PutUint32(oif, uint32(index))
	return attr(b, unix.RTA_OIF, oif)
}

// attr appends one rtattr, padded to four bytes.
func attr(b []byte, typ uint16, data []byte) []byte {
	hdr := make([]byte, unix.SizeofRtAttr)
	binary.NativeEndian.PutUint16(hdr[0:], uint16(unix.SizeofRtAttr+len(data)))
	binary.NativeEndian.PutUint16(hdr[2:], typ)
	b = append(append(b, hdr...), data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// request sends one message and waits for the kernel's acknowledgement.
func request(fd int, typ, flags uint16, seq uint32, body []byte) error {
	msg := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	binary.NativeEndian.PutUint32(msg[0:], uint32(unix.SizeofNlMsghdr+len(body)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], flags)
	binary.NativeEndian.PutUint32(msg[8:], seq)
	msg = append(msg, body...)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Seq != seq || m.Header.Type != unix.NLMSG_ERROR {
				continue
			}
			if len(m.Data) < 4 {
				return errors.New("short netlink answer")
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
				return unix.Errno(-code)
			}
			return nil
		}
	}
}

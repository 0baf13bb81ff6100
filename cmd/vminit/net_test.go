//go:build linux

package main

import (
	"bytes"
	"net/netip"
	"syscall"
	"testing"

	"github.com/flotilla/flotilla/orchestrator/images/vmboot"
)

// The messages are checked by parsing them back with the standard library's
// rtattr parser, an implementation independent of attr.
func TestRouteMessageParsesBack(t *testing.T) {
	cfg := vmboot.Default
	cfg.Gateway = netip.MustParseAddr("10.0.2.2")
	body := defaultRoute(7, cfg)
	if len(body)%4 != 0 {
		t.Fatalf("length %d is not 4-aligned", len(body))
	}
	attrs := parseAttrs(t, syscall.RTM_NEWROUTE, body)
	if len(attrs) != 2 {
		t.Fatalf("%d attributes, want 2", len(attrs))
	}
	if attrs[0].Attr.Type != syscall.RTA_GATEWAY || !bytes.Equal(attrs[0].Value, []byte{10, 0, 2, 2}) {
		t.Errorf("gateway attribute = %+v", attrs[0])
	}
	if attrs[1].Attr.Type != syscall.RTA_OIF || attrs[1].Value[0] != 7 {
		t.Errorf("oif attribute = %+v", attrs[1])
	}
}

func TestAddressMessageParsesBack(t *testing.T) {
	cfg := vmboot.Default
	body := address(3, cfg)
	if body[1] != 24 {
		t.Errorf("prefix length = %d, want 24", body[1])
	}
	attrs := parseAttrs(t, syscall.RTM_NEWADDR, body)
	if len(attrs) != 2 || !bytes.Equal(attrs[0].Value, []byte{10, 0, 2, 15}) || !bytes.Equal(attrs[1].Value, []byte{10, 0, 2, 15}) {
		t.Errorf("attributes = %+v, want local and address 10.0.2.15", attrs)
	}
}

func parseAttrs(t *testing.T, typ uint16, body []byte) []syscall.NetlinkRouteAttr {
	t.Helper()
	hdr := make([]byte, syscall.SizeofNlMsghdr)
	msg := append(hdr, body...)
	msg[0] = byte(len(msg))
	msg[4] = byte(typ)
	msgs, err := syscall.ParseNetlinkMessage(msg)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("ParseNetlinkMessage = %v, %v", msgs, err)
	}
	attrs, err := syscall.ParseNetlinkRouteAttr(&msgs[0])
	if err != nil {
		t.Fatalf("ParseNetlinkRouteAttr: %v", err)
	}
	return attrs
}

//go:build !(linux && (amd64 || arm64))

package lb

import "net"

// newRawConn is the identity where raw socket calls are not implemented
// (all but Linux on amd64 and arm64):
// the connection keeps the standard library's reads and writes.
func newRawConn(c net.Conn) net.Conn { return c }

// rawConn is never made here; the type keeps proxy.go portable.
type rawConn struct {
	net.Conn
	ip []byte
}

// pending is false where the pooled connection cannot be peeked at; the
// read of the answer then finds what is wrong.
func pending(net.Conn) bool { return false }

package lb

import (
	"net"
	"strconv"
	"time"
)

// dialRaw dials addr within timeout and returns a rawConn.
func dialRaw(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return newRawConn(c), nil
}

// appendIP appends addr's IP to dst.
func appendIP(dst []byte, addr net.Addr) []byte {
	a, ok := addr.(*net.TCPAddr)
	if !ok {
		return dst
	}
	if ip4 := a.IP.To4(); ip4 != nil {
		for i, b := range ip4 {
			if i > 0 {
				dst = append(dst, '.')
			}
			dst = strconv.AppendUint(dst, uint64(b), 10)
		}
		return dst
	}
	return a.AddrPort().Addr().AppendTo(dst)
}

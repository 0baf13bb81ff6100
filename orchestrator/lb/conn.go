package lb

import (
	"net"
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

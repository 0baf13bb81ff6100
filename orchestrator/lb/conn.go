package lb

import (
	"net"
	"time"
)

// rawListener hands out rawConns (conn_linux.go; elsewhere the plain
// connections).
type rawListener struct{ net.Listener }

func (l rawListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newRawConn(c), nil
}

// dialRaw dials addr within timeout and returns a rawConn.
func dialRaw(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return newRawConn(c), nil
}

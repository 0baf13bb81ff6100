package http1

import "testing"

var (
	benchReq = []byte("GET /catalog?page=2 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk/4.2\r\nAccept: */*\r\n" +
		"Cookie: theme=dark; shopper=s-42\r\nX-Forwarded-For: 192.0.2.1\r\n\r\n")
	benchResp = []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\n" +
		"X-Flotilla-Replica: shop-1\r\nContent-Length: 2\r\n\r\n{}")
)

func BenchmarkParseRequest(b *testing.B) {
	dst := make([]byte, 0, 4096)
	ip := []byte("127.0.0.1")
	for b.Loop() {
		if _, _, st := ParseRequest(benchReq, ip, 1<<20, dst[:0]); st != OK {
			b.Fatal(st)
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	for b.Loop() {
		r, st := ParseResponse(benchResp, false)
		if _, est := ResponseEnd(benchResp, &r); st != OK || est != OK {
			b.Fatal(st, est)
		}
	}
}

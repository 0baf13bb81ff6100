package lb

import (
	"bufio"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDataPathsAgreeOnMutatedRequests sends the same requests, mutated a
// byte or a field at a time, to both data paths: each gets the same status
// from both, and what reaches the replica is one strict request per
// request served.
func TestDataPathsAgreeOnMutatedRequests(t *testing.T) {
	if len(dataPaths()) < 2 {
		t.Skip("one data path here")
	}
	bases := []string{
		"GET /a?b=c HTTP/1.1\r\nHost: shop\r\nAccept: */*\r\nCookie: shopper=s1\r\n\r\n",
		"POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
		"POST /c HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"GET /old HTTP/1.0\r\nHost: shop\r\n\r\n",
	}
	inserts := []string{"\r", "\n", "\x00", " ", "\t", "\x7f", "\x80", ":", ",", ";", "_", "\r\n", "\r\n ", "\x0b", "\"", "%", "#"}
	fields := []string{
		"Content-Length: 7", "Content-Length: 0", "Transfer-Encoding: chunked", "Transfer-Encoding: identity",
		"Host: other", "Connection: close", "Connection: X-A", "X-A: 1", "Expect: 100-continue",
		"Upgrade: h2c", "TE: trailers", "X-Forwarded-For: 1.2.3.4", "Content_Length: 3", "X-!#$%&'*+.^`|~: ok",
		"X-Obs: caf\xc3\xa9", "X-Empty:", "X-Sp:  lots   of   space  ",
	}
	rng := rand.New(rand.NewPCG(9, 112))
	var cases []string
	for range 300 {
		b := bases[rng.IntN(len(bases))]
		head := strings.Index(b, "\r\n\r\n")
		switch rng.IntN(3) {
		case 0: // a byte inserted in the head
			i := rng.IntN(head + 2)
			cases = append(cases, b[:i]+inserts[rng.IntN(len(inserts))]+b[i:])
		case 1: // a field added after the request line
			i := strings.Index(b, "\r\n") + 2
			cases = append(cases, b[:i]+fields[rng.IntN(len(fields))]+"\r\n"+b[i:])
		default: // a byte of the head replaced
			i := rng.IntN(head)
			cases = append(cases, b[:i]+inserts[rng.IntN(len(inserts))]+b[i+1:])
		}
	}
	status := map[string][]string{}
	for _, p := range dataPaths() {
		rec := newRecorder(t, okAnswer)
		lb := startLB(t, Config{DataPath: p, TryTimeout: 300 * time.Millisecond}, rec.up())
		for _, c := range cases {
			got, _ := exchange(t, lb, c+"GET /end HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n", 400*time.Millisecond)
			var st []string // the status of every answer on the connection
			br := bufio.NewReader(strings.NewReader(got))
			for {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					break
				}
				io.Copy(io.Discard, resp.Body)
				st = append(st, resp.Status[:3])
			}
			status[p] = append(status[p], strings.Join(st, " "))
		}
		for _, conv := range rec.received() {
			for _, bad := range []string{"\x00", "\r\r", "\n\n", "\nContent_Length:", "HTTP/1.0", "HTTP/2", "\nTransfer-Encoding:"} {
				if i := strings.Index(conv, bad); i >= 0 {
					t.Errorf("%s: %q reached the replica: %q", p, bad, conv[max(i-200, 0):min(i+50, len(conv))])
				}
			}
		}
	}
	for i, c := range cases {
		if ev, fh := status[DataPathEventLoop][i], status[DataPathFasthttp][i]; ev != fh {
			t.Errorf("%q: event loop %s, fasthttp %s", c, ev, fh)
		}
	}
}

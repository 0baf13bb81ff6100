package lb

import (
	"bufio"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
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

// TestDataPathsAgreeOnMutatedAnswers: the same replica answers, mutated a
// byte or a field at a time, give the client the same status on both
// paths, and no client ever gets a head with a control byte in it.
func TestDataPathsAgreeOnMutatedAnswers(t *testing.T) {
	if len(dataPaths()) < 2 {
		t.Skip("one data path here")
	}
	bases := []string{
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	}
	inserts := []string{"\r", "\n", "\x00", " ", "\t", "\x7f", "\x80", ":", ",", ";", "\r\n", "\r\n ", "\x0b"}
	fields := []string{
		"Content-Length: 5", "Content-Length: 3", "Transfer-Encoding: chunked", "Transfer-Encoding: gzip",
		"Connection: close", "Connection: X-A", "X-A: 1", "Keep-Alive: 5", "Trailer: X", "Upgrade: h2c", "Set-Cookie: a=b",
	}
	rng := rand.New(rand.NewPCG(7, 9))
	var answers []string
	for range 200 {
		b := bases[rng.IntN(len(bases))]
		head := strings.Index(b, "\r\n\r\n")
		switch rng.IntN(3) {
		case 0:
			i := rng.IntN(head + 2)
			answers = append(answers, b[:i]+inserts[rng.IntN(len(inserts))]+b[i:])
		case 1:
			i := strings.Index(b, "\r\n") + 2
			answers = append(answers, b[:i]+fields[rng.IntN(len(fields))]+"\r\n"+b[i:])
		default:
			i := rng.IntN(head)
			answers = append(answers, b[:i]+inserts[rng.IntN(len(inserts))]+b[i+1:])
		}
	}
	rec := newRecorder(t, func(br *bufio.Reader, w net.Conn) bool {
		req, err := http.ReadRequest(br)
		if err != nil {
			return false
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/r/"))
		w.Write([]byte(answers[n]))
		return false // the answer ends when the connection does, if nothing else ends it
	})
	status := map[string][]string{}
	for _, p := range dataPaths() {
		lb := startLB(t, Config{DataPath: p, TryTimeout: 300 * time.Millisecond, DisableRetry: true, EjectAfter: -1}, rec.up())
		for i := range answers {
			got, _ := exchange(t, lb, "GET /r/"+strconv.Itoa(i)+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", time.Second)
			st := "none"
			if resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(got)), nil); err == nil {
				st = resp.Status[:3]
			}
			status[p] = append(status[p], st)
			if h := strings.Index(got, "\r\n\r\n"); h >= 0 {
				for _, c := range []byte(got[:h]) {
					if c < ' ' && c != '\r' && c != '\n' && c != '\t' || c == 0x7f {
						t.Errorf("%s: %q: a control byte reached the client: %q", p, answers[i], got)
						break
					}
				}
				if strings.Contains(got[:h], "\r\r") || strings.Contains(strings.ReplaceAll(got[:h], "\r\n", ""), "\n") {
					t.Errorf("%s: %q: a bare CR or LF reached the client: %q", p, answers[i], got)
				}
			}
		}
	}
	for i, a := range answers {
		if ev, fh := status[DataPathEventLoop][i], status[DataPathFasthttp][i]; ev != fh {
			t.Errorf("%q: event loop %s, fasthttp %s", a, ev, fh)
		}
	}
}

// TestAnswersPassThroughAlike: a replica's answer reaches the client with
// the same fields on both paths: nothing added (no Date, no Content-Type
// it did not send), nothing of its own dropped.
func TestAnswersPassThroughAlike(t *testing.T) {
	rec := newRecorder(t, func(br *bufio.Reader, w net.Conn) bool {
		if _, err := http.ReadRequest(br); err != nil {
			return false
		}
		_, err := io.WriteString(w, "HTTP/1.1 200 OK\r\nX-B: 2\r\nX-A: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\nok")
		return err == nil
	})
	for _, p := range dataPaths() {
		lb := startLB(t, Config{DataPath: p}, rec.up())
		for _, req := range []string{"GET", "HEAD"} {
			got, _ := exchange(t, lb, req+" / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", time.Second)
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(got)), &http.Request{Method: req})
			if err != nil {
				t.Fatalf("%s %s: %q: %v", p, req, got, err)
			}
			want := http.Header{"X-B": {"2"}, "X-A": {"1"}, "Set-Cookie": {"a=1", "b=2"}, "Content-Length": {"2"}}
			if !reflectEqualHeader(resp.Header, want) || !resp.Close {
				t.Errorf("%s %s: header %v close %v, want %v and close", p, req, resp.Header, resp.Close, want)
			}
		}
	}
}

func reflectEqualHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb := b[k]
		if strings.Join(va, "\x00") != strings.Join(vb, "\x00") {
			return false
		}
	}
	return true
}

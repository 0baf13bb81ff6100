package http1

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"
)

// The fuzz targets: whatever the bytes, the parsers neither panic nor read
// past their input, what they accept reads back the same through net/http,
// and they agree with net/http (checkRequest, checkResponse) but for the
// deliberate differences. The seeds are every request and response of the
// table tests (wire_test.go) and the hostile classes below; crashes found
// are kept in testdata/fuzz.

var (
	seedsOnce           sync.Once
	reqSeeds, respSeeds []string
)

// literal matches a Go string literal in a test file.
var literal = regexp.MustCompile(`"(?:[^"\\\n]|\\.)*"`)

// tableSeeds reads the string literals of the table tests that look like a
// request or a response.
func tableSeeds() {
	src, err := os.ReadFile("wire_test.go")
	if err != nil {
		panic(err)
	}
	for _, q := range literal.FindAll(src, -1) {
		s, err := strconv.Unquote(string(q))
		if err != nil {
			continue
		}
		switch {
		case len(s) > 5 && s[:5] == "HTTP/":
			respSeeds = append(respSeeds, s)
		case bytes.Contains([]byte(s), []byte(" HTTP/")) || bytes.Contains([]byte(s), []byte(" http/")):
			reqSeeds = append(reqSeeds, s)
		}
	}
	reqSeeds = append(reqSeeds,
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\n\r\n",
		"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
	)
	respSeeds = append(respSeeds,
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: a\rContent-Length: 0\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.0 200 OK\r\n\r\nuntil the end",
	)
}

func requestSeeds() []string  { seedsOnce.Do(tableSeeds); return reqSeeds }
func responseSeeds() []string { seedsOnce.Do(tableSeeds); return respSeeds }

func FuzzParseRequest(f *testing.F) {
	for _, s := range requestSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, fwd, st := ParseRequest(msg, []byte("192.0.2.1"), diffMaxBody, nil)
		switch st {
		case OK:
			if r.HeadLen <= 0 || r.HeadLen > len(msg) || r.BodyLen < 0 || r.BodyLen > diffMaxBody || r.Chunked {
				t.Fatalf("OK with head %d body %d chunked %v of %d bytes", r.HeadLen, r.BodyLen, r.Chunked, len(msg))
			}
			// What the replica gets is one strict request with the same
			// framing, read the same by net/http.
			out := append(fwd, msg[r.HeadLen:min(r.Total(), len(msg))]...)
			r2, _, st2 := ParseRequest(out, []byte("192.0.2.1"), diffMaxBody, nil)
			if st2 != OK || r2.BodyLen != r.BodyLen {
				t.Fatalf("forwarded head %q parses as %d (%s)", fwd, st2, r2.Problem)
			}
			if _, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(out))); err != nil {
				t.Fatalf("net/http cannot read the forwarded %q: %v", out, err)
			}
		case Bad:
			if r.Code != 400 && r.Code != 413 && r.Code != 417 || r.Problem == "" {
				t.Fatalf("Bad with code %d %q", r.Code, r.Problem)
			}
		}
		checkRequest(t, msg)
	})
}

func FuzzParseResponse(f *testing.F) {
	for _, s := range responseSeeds() {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, msg []byte, isHEAD bool) {
		r, st := ParseResponse(msg, isHEAD)
		if st == OK {
			if r.HeadLen <= 0 || r.HeadLen > len(msg) || r.BodyLen < 0 {
				t.Fatalf("OK with head %d body %d of %d bytes", r.HeadLen, r.BodyLen, len(msg))
			}
			// Incremental scanning ends where one pass does.
			whole := r
			end, est := ResponseEnd(msg, &whole)
			inc := r
			var iend int
			var ist Status = NeedMore
			for n := r.HeadLen; n <= len(msg) && ist == NeedMore; n++ {
				iend, ist = ResponseEnd(msg[:n], &inc)
			}
			if est != ist || (est == OK && end != iend) {
				t.Fatalf("one pass %d at %d, byte by byte %d at %d", est, end, ist, iend)
			}
			if est == OK && (end < r.HeadLen || end > len(msg)) {
				t.Fatalf("end %d out of %d..%d", end, r.HeadLen, len(msg))
			}
			if r.Status >= 200 {
				closing := r.Kind == BodyToEOF
				bodyLen := -1
				if closing {
					bodyLen = len(msg) - r.HeadLen
				}
				h := AppendResponseHead(nil, msg[:r.HeadLen], bodyLen, closing)
				if _, hst := ParseResponse(h, isHEAD); hst != OK {
					t.Fatalf("the client's head %q does not parse", h)
				}
			}
		}
		checkResponse(t, msg, isHEAD)
	})
}

func FuzzChunkedEnd(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), 3)
	f.Add([]byte("5;a=\"b\\\"c\"\r\nhello\r\n0\r\nX: y\r\n\r\n"), 1)
	f.Fuzz(func(t *testing.T, body []byte, step int) {
		var c Chunks
		end, st := ChunkedEnd(body, &c, diffMaxBody)
		n := c.Data
		if st == OK && (end > len(body) || n > end) {
			t.Fatalf("end %d of %d, %d data bytes", end, len(body), n)
		}
		if step <= 0 || step > 64 {
			step = 1
		}
		var ic Chunks
		var iend int
		ist := NeedMore
		for l := 0; ist == NeedMore && l <= len(body); l += step {
			iend, ist = ChunkedEnd(body[:l], &ic, diffMaxBody)
		}
		if ist == NeedMore && len(body)%step != 0 {
			iend, ist = ChunkedEnd(body, &ic, diffMaxBody)
		}
		if ist != st || (st == OK && (iend != end || ic.Data != n)) {
			t.Fatalf("one pass %d at %d (%d), in steps of %d: %d at %d (%d)", st, end, n, step, ist, iend, ic.Data)
		}
	})
}

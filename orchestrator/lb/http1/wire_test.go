package http1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// These tests pin down the HTTP/1.1 wire parser of the balancer without
// any network: what a request becomes on its way to a replica, which
// requests are handed off or refused, how a response is delimited, and what
// the client is sent.

const (
	// The names package lb reads; lb's tests check they match its own.
	IdempotencyKeyHeader = "Idempotency-Key"
	ShopperHeader        = "X-Shopper"

	wireIP      = "10.1.2.3"
	wireMaxBody = 1 << 20
)

// reqView is the comparable part of a Request.
type reqView struct {
	headLen, bodyLen int
	method           string
	isHEAD, close    bool
	hasKey           bool
	shopper          string
	shopperHdr       bool
	expect100        bool
}

func viewOf(r Request) reqView {
	return reqView{
		headLen: r.HeadLen, bodyLen: r.BodyLen, method: string(r.Method),
		isHEAD: r.IsHEAD, close: r.Close, hasKey: r.HasKey,
		shopper: string(r.Shopper), shopperHdr: r.ShopperHdr, expect100: r.Expect100,
	}
}

func TestParseRequestRewritesTheHead(t *testing.T) {
	xff := "X-Forwarded-For: " + wireIP + "\r\n\r\n"
	tests := []struct {
		name string
		head string // the request head, blank line included
		rest string // what follows it in the buffer
		fwd  string // the head the replica gets
		want reqView
	}{
		{
			name: "simple GET",
			head: "GET /cart?item=7 HTTP/1.1\r\nHost: shop.local\r\nAccept: */*\r\n\r\n",
			fwd:  "GET /cart?item=7 HTTP/1.1\r\nHost: shop.local\r\nAccept: */*\r\n" + xff,
			want: reqView{method: "GET"},
		},
		{
			name: "existing X-Forwarded-For is extended, not duplicated",
			head: "GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2\r\nHost: a\r\n\r\n",
			fwd:  "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2, " + wireIP + "\r\n\r\n",
			want: reqView{method: "GET"},
		},
		{
			name: "lower-case X-Forwarded-For",
			head: "GET / HTTP/1.1\r\nhost: a\r\nx-forwarded-for: 1.1.1.1\r\n\r\n",
			fwd:  "GET / HTTP/1.1\r\nhost: a\r\nX-Forwarded-For: 1.1.1.1, " + wireIP + "\r\n\r\n",
			want: reqView{method: "GET"},
		},
		{
			name: "hop-by-hop headers are dropped",
			head: "GET / HTTP/1.1\r\nConnection: keep-alive\r\nHost: a\r\nKeep-Alive: timeout=5\r\n" +
				"Proxy-Connection: keep-alive\r\nX-Kept: 1\r\nTE: trailers\r\nTrailer: X-Sum\r\nX-Also-Kept: 2\r\n\r\n",
			fwd:  "GET / HTTP/1.1\r\nHost: a\r\nX-Kept: 1\r\nX-Also-Kept: 2\r\n" + xff,
			want: reqView{method: "GET"},
		},
		{
			name: "Connection: close",
			head: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
			fwd:  "GET / HTTP/1.1\r\nHost: a\r\n" + xff,
			want: reqView{method: "GET", close: true},
		},
		{
			name: "Connection lists keep-alive and close",
			head: "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive , Close\r\n\r\n",
			fwd:  "GET / HTTP/1.1\r\nHost: a\r\n" + xff,
			want: reqView{method: "GET", close: true},
		},
		{
			name: "header names ignore case",
			head: "POST /x HTTP/1.1\r\nhOST: a\r\ncONNECTION: CLOSE\r\nKEEP-ALIVE: 5\r\nte: trailers\r\n" +
				"content-LENGTH: 3\r\nIDEMPOTENCY-KEY: k1\r\nx-shopper: ann\r\n\r\n",
			rest: "abc",
			fwd:  "POST /x HTTP/1.1\r\nhOST: a\r\ncontent-LENGTH: 3\r\nIDEMPOTENCY-KEY: k1\r\nx-shopper: ann\r\n" + xff,
			want: reqView{method: "POST", bodyLen: 3, close: true, hasKey: true, shopper: "ann", shopperHdr: true},
		},
		{
			name: "Content-Length body",
			head: "POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\n",
			rest: "hello world",
			fwd:  "POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n" + xff,
			want: reqView{method: "POST", bodyLen: 11},
		},
		{
			name: "Content-Length equal to the limit",
			head: "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n",
			fwd:  "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n" + xff,
			want: reqView{method: "PUT", bodyLen: wireMaxBody},
		},
		{
			name: "pipelined request after the first",
			head: "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n",
			rest: "GET /2 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
			fwd:  "GET /1 HTTP/1.1\r\nHost: a\r\n" + xff,
			want: reqView{method: "GET"},
		},
		{
			name: "X-Shopper",
			head: "GET / HTTP/1.1\r\nHost: a\r\nX-Shopper: alice\r\n\r\n",
			fwd:  "GET / HTTP/1.1\r\nHost: a\r\nX-Shopper: alice\r\n" + xff,
			want: reqView{method: "GET", shopper: "alice", shopperHdr: true},
		},
		{
			name: "X-Shopper wins over the cookie",
			head: "GET / HTTP/1.1\r\nHost: a\r\nCookie: shopper=bob\r\nX-Shopper: alice\r\n\r\n",
			fwd:  "GET / HTTP/1.1\r\nHost: a\r\nCookie: shopper=bob\r\nX-Shopper: alice\r\n" + xff,
			want: reqView{method: "GET", shopper: "alice", shopperHdr: true},
		},
		{
			name: "shopper cookie among others",
			head: "GET / HTTP/1.1\r\nHost: a\r\nCookie: theme=dark; shopper=bob; lang=en\r\n\r\n",
			fwd:  "GET / HTTP/1.1\r\nHost: a\r\nCookie: theme=dark; shopper=bob; lang=en\r\n" + xff,
			want: reqView{method: "GET", shopper: "bob"},
		},
		{
			name: "quoted shopper cookie",
			head: "GET / HTTP/1.1\r\nHost: a\r\nCookie: shopper=\"carol\"\r\n\r\n",
			fwd:  "GET / HTTP/1.1\r\nHost: a\r\nCookie: shopper=\"carol\"\r\n" + xff,
			want: reqView{method: "GET", shopper: "carol"},
		},
		{
			name: "empty X-Shopper falls back to the cookie",
			head: "GET / HTTP/1.1\r\nHost: a\r\nX-Shopper:\r\nCookie: shopper=dave\r\n\r\n",
			fwd:  "GET / HTTP/1.1\r\nHost: a\r\nX-Shopper:\r\nCookie: shopper=dave\r\n" + xff,
			want: reqView{method: "GET", shopper: "dave"},
		},
		{
			name: "no shopper cookie",
			head: "GET / HTTP/1.1\r\nHost: a\r\nCookie: shopperx=1; xshopper=2\r\n\r\n",
			fwd:  "GET / HTTP/1.1\r\nHost: a\r\nCookie: shopperx=1; xshopper=2\r\n" + xff,
			want: reqView{method: "GET"},
		},
		{
			name: "Idempotency-Key",
			head: "POST /pay HTTP/1.1\r\nHost: a\r\nIdempotency-Key: 4f2a\r\nContent-Length: 0\r\n\r\n",
			fwd:  "POST /pay HTTP/1.1\r\nHost: a\r\nIdempotency-Key: 4f2a\r\nContent-Length: 0\r\n" + xff,
			want: reqView{method: "POST", hasKey: true},
		},
		{
			name: "Expect: 100-continue is the balancer's to answer",
			head: "PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
			rest: "abc",
			fwd:  "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n" + xff,
			want: reqView{method: "PUT", bodyLen: 3, expect100: true},
		},
		{
			name: "HEAD",
			head: "HEAD /big HTTP/1.1\r\nHost: a\r\n\r\n",
			fwd:  "HEAD /big HTTP/1.1\r\nHost: a\r\n" + xff,
			want: reqView{method: "HEAD", isHEAD: true},
		},
		{
			name: "a method is not HEAD by prefix",
			head: "HEADX / HTTP/1.1\r\nHost: a\r\n\r\n",
			fwd:  "HEADX / HTTP/1.1\r\nHost: a\r\n" + xff,
			want: reqView{method: "HEADX"},
		},

		{
			name: "names that only look like special ones are ordinary fields",
			head: "GET / HTTP/1.1\r\nHost: a\r\nXost: b\r\nXonnection: close\r\nKeep-Alivf: 1\r\nT: e\r\n" +
				"Content-Lengths: 5\r\nX-Forwarded-Fox: 1\r\nUpgrades: x\r\n\r\n",
			fwd: "GET / HTTP/1.1\r\nHost: a\r\nXost: b\r\nXonnection: close\r\nKeep-Alivf: 1\r\nT: e\r\n" +
				"Content-Lengths: 5\r\nX-Forwarded-Fox: 1\r\nUpgrades: x\r\n" + xff,
			want: reqView{method: "GET"},
		},
		{
			name: "field values keep their spacing",
			head: "GET / HTTP/1.1\r\nHost: a\r\nX-Pad:   a  b \r\n\r\n",
			fwd:  "GET / HTTP/1.1\r\nHost: a\r\nX-Pad:   a  b \r\n" + xff,
			want: reqView{method: "GET"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := []byte(tt.head + tt.rest)
			prefix := []byte("kept:")
			r, fwd, st := ParseRequest(buf, []byte(wireIP), wireMaxBody, prefix)
			if st != OK {
				t.Fatalf("status %d, want OK", st)
			}
			if !bytes.HasPrefix(fwd, prefix) {
				t.Fatalf("dst %q lost what it held", fwd)
			}
			if got := string(fwd[len(prefix):]); got != tt.fwd {
				t.Errorf("forwarded head\n got %q\nwant %q", got, tt.fwd)
			}
			want := tt.want
			want.headLen = len(tt.head)
			if got := viewOf(r); got != want {
				t.Errorf("Request\n got %+v\nwant %+v", got, want)
			}
			if r.Total() != len(tt.head)+tt.want.bodyLen {
				t.Errorf("total() = %d, want %d", r.Total(), len(tt.head)+tt.want.bodyLen)
			}
		})
	}
}

func TestParseRequestBeforeTheBodyArrives(t *testing.T) {
	head := "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n"
	for _, body := range []string{"", "abc", "abcdefghi"} {
		buf := []byte(head + body)
		r, _, st := ParseRequest(buf, []byte(wireIP), wireMaxBody, nil)
		if st != OK {
			t.Fatalf("body %q: status %d, want OK", body, st)
		}
		if r.HeadLen != len(head) || r.BodyLen != 10 || r.Total() != len(head)+10 {
			t.Errorf("body %q: headLen %d bodyLen %d total %d, want %d 10 %d",
				body, r.HeadLen, r.BodyLen, r.Total(), len(head), len(head)+10)
		}
		if r.Total() <= len(buf) {
			t.Errorf("body %q: total() %d does not exceed the %d bytes buffered", body, r.Total(), len(buf))
		}
	}
}

func TestParseRequestNeedsTheWholeHead(t *testing.T) {
	head := "POST /x HTTP/1.1\r\nHost: a\r\nCookie: shopper=s\r\nContent-Length: 3\r\n\r\n"
	for i := range len(head) {
		if _, _, st := ParseRequest([]byte(head[:i]), []byte(wireIP), wireMaxBody, nil); st != NeedMore {
			t.Fatalf("prefix %q: status %d, want NeedMore", head[:i], st)
		}
	}
	if _, _, st := ParseRequest([]byte(head), []byte(wireIP), wireMaxBody, nil); st != OK {
		t.Fatalf("whole head: status %d, want OK", st)
	}
}

func TestParseRequestHandsOff(t *testing.T) {
	// A head that is still growing at MaxRequestHead bytes.
	long := "GET / HTTP/1.1\r\nX-Pad: "
	long += strings.Repeat("a", MaxRequestHead-len(long))
	manyLines := "GET / HTTP/1.1\r\n"
	for len(manyLines) < MaxRequestHead {
		manyLines += "X-Pad: aaaaaaaaaaaaaaaa\r\n"
	}
	tests := []struct {
		name string
		in   string
	}{
		{"Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
		{"lower-case transfer-encoding", "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: Chunked\r\n\r\n"},
		{"Upgrade", "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\n\r\n"},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n"},
		{"absolute-form target", "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"asterisk-form target", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"Connection names another header", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Foo\r\nX-Foo: 1\r\n\r\n"},
		{"Connection: upgrade", "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n"},
		{"two X-Forwarded-For", "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2\r\n\r\n"},
		{"request line of MaxRequestHead bytes", "GET /" + strings.Repeat("a", MaxRequestHead)},
		{"head of MaxRequestHead bytes without an end", long},
		{"head over MaxRequestHead bytes without an end", manyLines},
		{"whole head over MaxRequestHead bytes", manyLines + "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, st := ParseRequest([]byte(tt.in), []byte(wireIP), wireMaxBody, nil); st != Handoff {
				t.Errorf("status %d, want Handoff", st)
			}
		})
	}
}

// TestParseRequestRejects: requests whose framing or head has more than one
// reading are refused, with the status to answer.
func TestParseRequestRejects(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		maxBody int
		code    int
	}{
		{"Transfer-Encoding with Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 400},
		{"Content-Length after Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 0, 400},
		{"Transfer-Encoding identity", "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: identity\r\n\r\n", 0, 400},
		{"Transfer-Encoding gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0, 400},
		{"Transfer-Encoding chunked, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 0, 400},
		{"two Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 400},
		{"Transfer-Encoding xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 0, 400},
		{"Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 400},
		{"Transfer-Encoding with a space before the colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 0, 400},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, 400},
		{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 0, 400},
		{"HTTP/0.9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 0, 400},
		{"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 0, 400},
		{"authority-form target", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 0, 400},
		{"Expect other than 100-continue", "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 200-ok\r\n\r\n", 0, 417},
		{"no version", "GET /\r\n\r\n", 0, 400},
		{"extra field in the request line", "GET / HTTP/1.1 x\r\nHost: a\r\n\r\n", 0, 400},
		{"double space in the request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
		{"method is not a token", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
		{"NUL in the target", "GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
		{"tab in the target", "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
		{"bare CR in the target", "GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
		{"DEL in the target", "GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
		{"non-ASCII in the target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
		{"obs-fold with a space", "GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\r\n b\r\n\r\n", 0, 400},
		{"obs-fold with a tab", "GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\r\n\tb\r\n\r\n", 0, 400},
		{"a field name that is not a token", "GET / HTTP/1.1\r\nHost: a\r\nFoo Bar: x\r\n\r\n", 0, 400},
		{"a stray CR in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\rb\r\n\r\n", 0, 400},
		{"a stray CR, head unfinished", "GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\rb", 0, 400},
		{"a bare CR ending a line", "GET / HTTP/1.1\r\nHost: a\rX-Foo: b\r\n\r\n", 0, 400},
		{"NUL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\x00b\r\n\r\n", 0, 400},
		{"escape byte in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\x1bb\r\n\r\n", 0, 400},
		{"DEL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\x7f\r\n\r\n", 0, 400},
		{"NUL in a name", "GET / HTTP/1.1\r\nHost: a\r\nX-F\x00o: a\r\n\r\n", 0, 400},
		{"LF-only line endings", "POST /x HTTP/1.1\nHost: a\nContent-Length: 2\n\nhi", 0, 400},
		{"one bare LF among CRLFs", "GET / HTTP/1.1\r\nHost: a\nX-Foo: b\r\n\r\n", 0, 400},
		{"bare LF ending the head", "GET / HTTP/1.1\r\nHost: a\r\n\n", 0, 400},
		{"line without a colon", "GET / HTTP/1.1\r\nHost: a\r\nnonsense\r\n\r\n", 0, 400},
		{"empty field name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 0, 400},
		{"space before the colon", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 3\r\n\r\nabc", 0, 400},
		{"Content-Length not a number", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", 0, 400},
		{"Content-Length negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 0, 400},
		{"Content-Length with a sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", 0, 400},
		{"Content-Length empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 0, 400},
		{"Content-Length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", 0, 400},
		{"Content-Length hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc", 0, 400},
		{"Content-Length too many digits", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0000000000000000003\r\n\r\nabc", 0, 400},
		{"duplicate Content-Length, same value", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 0, 400},
		{"duplicate Content-Length, other value", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\ncontent-length: 4\r\n\r\nabcd", 0, 400},
		{"Content-Length above maxBody", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", 10, 413},
		{"Connection names Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 3\r\n\r\nabc", 0, 400},
		{"Connection names Transfer-Encoding", "GET / HTTP/1.1\r\nHost: a\r\nConnection: transfer-encoding\r\n\r\n", 0, 400},
		{"Connection names Host", "GET / HTTP/1.1\r\nHost: a\r\nConnection: host\r\n\r\n", 0, 400},
		{"Connection not a token list", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close; x\r\n\r\n", 0, 400},
		{"no Host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 0, 400},
		{"Content_Length", "POST / HTTP/1.1\r\nHost: a\r\nContent_Length: 3\r\n\r\nabc", 0, 400},
		{"Transfer_Encoding", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer_Encoding: chunked\r\n\r\nabc", 0, 400},
		{"two Host", "GET / HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\n", 0, 400},
		{"Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 0, 400},
		{"Host with a port not a number", "GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", 0, 400},
		{"Host with a bad escape", "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 0, 400},
		{"Host with a stray bracket", "GET / HTTP/1.1\r\nHost: a]\r\n\r\n", 0, 400},
		{"Host with two colons", "GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", 0, 400},
		{"Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 0, 400},
		{"Host with obs-text", "GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n", 0, 400},
		{"empty line before the request", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maxBody := tt.maxBody
			if maxBody == 0 {
				maxBody = wireMaxBody
			}
			r, _, st := ParseRequest([]byte(tt.in), []byte(wireIP), maxBody, nil)
			if st != Bad || r.Code != tt.code || r.Problem == "" {
				t.Errorf("status %d code %d (%q), want Bad with %d", st, r.Code, r.Problem, tt.code)
			}
		})
	}
}

func TestCookieValue(t *testing.T) {
	tests := []struct{ header, want string }{
		{"shopper=abc", "abc"},
		{"theme=dark; shopper=abc; lang=en", "abc"},
		{"theme=dark;shopper=abc", "abc"},
		{"theme=dark;\tshopper=abc ", "abc"},
		{`shopper="abc"`, "abc"},
		{`lang=en; shopper="a b"; x=1`, "a b"},
		{"shopper=first; shopper=second", "first"},
		{"shopperx=abc", ""},
		{"xshopper=abc", ""},
		{"Shopper=abc", ""},
		{"a=shopper=abc", ""},
		{"shopper", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := string(CookieValue([]byte(tt.header), ShopperCookie)); got != tt.want {
			t.Errorf("CookieValue(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}

// TestParseRequestRoundTrip checks, for requests net/http writes, that
// what the replica gets reads back as the same request, hop-by-hop headers
// aside and the client's IP added to X-Forwarded-For.
func TestParseRequestRoundTrip(t *testing.T) {
	type spec struct {
		method, url, body string
		header            http.Header
		close             bool
	}
	specs := []spec{
		{method: "GET", url: "http://shop.local/"},
		{method: "GET", url: "http://shop.local/search?q=a+b&page=2", header: http.Header{
			"Accept-Language": {"en", "fr"},
			"Cookie":          {"theme=dark; shopper=s-17"},
			"Keep-Alive":      {"timeout=5"},
			"Te":              {"trailers"},
		}},
		{method: "POST", url: "http://shop.local:8080/orders", body: `{"item":7,"qty":2}`, header: http.Header{
			"Content-Type":    {"application/json"},
			"Idempotency-Key": {"k-123"},
			"X-Shopper":       {"s-9"},
			"X-Forwarded-For": {"192.0.2.1"},
		}},
		{method: "PUT", url: "http://shop.local/cart/3", body: strings.Repeat("x", 5000), close: true, header: http.Header{
			"Proxy-Connection": {"keep-alive"},
		}},
		{method: "DELETE", url: "http://shop.local/cart/3", body: "", header: http.Header{"X-Request-Id": {"r1"}}},
		{method: "HEAD", url: "http://shop.local/img.png"},
	}
	hopByHop := []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer"}
	for _, s := range specs {
		t.Run(s.method+" "+s.url, func(t *testing.T) {
			var body io.Reader
			if s.body != "" {
				body = strings.NewReader(s.body)
			}
			req, err := http.NewRequest(s.method, s.url, body)
			if err != nil {
				t.Fatal(err)
			}
			for k, vs := range s.header {
				req.Header[k] = vs
			}
			req.Close = s.close
			var raw bytes.Buffer
			if err := req.Write(&raw); err != nil {
				t.Fatal(err)
			}
			orig, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw.Bytes())))
			if err != nil {
				t.Fatal(err)
			}

			r, fwd, st := ParseRequest(raw.Bytes(), []byte(wireIP), wireMaxBody, nil)
			if st != OK {
				t.Fatalf("status %d, want OK for\n%s", st, raw.Bytes())
			}
			if r.Total() != raw.Len() {
				t.Fatalf("total() = %d, want the %d bytes written", r.Total(), raw.Len())
			}
			if string(r.Method) != orig.Method || r.IsHEAD != (orig.Method == "HEAD") || r.Close != orig.Close ||
				r.HasKey != (orig.Header.Get(IdempotencyKeyHeader) != "") {
				t.Errorf("Request %+v does not match the request", viewOf(r))
			}
			wantShopper := orig.Header.Get(ShopperHeader)
			if wantShopper == "" {
				if c, err := orig.Cookie(ShopperCookie); err == nil {
					wantShopper = c.Value
				}
			}
			if string(r.Shopper) != wantShopper {
				t.Errorf("shopper %q, want %q", r.Shopper, wantShopper)
			}

			fwd = append(fwd, raw.Bytes()[r.HeadLen:r.Total()]...)
			got, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(fwd)))
			if err != nil {
				t.Fatalf("forwarded request does not parse: %v\n%s", err, fwd)
			}
			if got.Method != orig.Method || got.RequestURI != orig.RequestURI || got.Host != orig.Host ||
				got.ContentLength != orig.ContentLength || got.Close {
				t.Errorf("forwarded %s %s host %q length %d close %v, want %s %s host %q length %d close false",
					got.Method, got.RequestURI, got.Host, got.ContentLength, got.Close,
					orig.Method, orig.RequestURI, orig.Host, orig.ContentLength)
			}
			want := orig.Header.Clone()
			for _, h := range hopByHop {
				want.Del(h)
			}
			xff := wireIP
			if prev := orig.Header.Get("X-Forwarded-For"); prev != "" {
				xff = prev + ", " + wireIP
			}
			want.Set("X-Forwarded-For", xff)
			if !headersEqual(got.Header, want) {
				t.Errorf("forwarded headers\n got %v\nwant %v", got.Header, want)
			}
			gotBody, err := io.ReadAll(got.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(gotBody) != s.body {
				t.Errorf("forwarded body %q, want %q", gotBody, s.body)
			}
		})
	}
}

// headersEqual reports whether a and b hold the same fields and values, in
// the same order within a field.
func headersEqual(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		if !slices.Equal(va, b[k]) {
			return false
		}
	}
	return true
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name   string
		head   string // the response head, blank line included
		isHEAD bool
		want   Response // HeadLen and Chunks.Next are filled in
	}{
		{
			name: "Content-Length",
			head: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n",
			want: Response{Status: 200, Kind: BodyLength, BodyLen: 5, Reusable: true},
		},
		{
			name: "no reason phrase",
			head: "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
			want: Response{Status: 404, Kind: BodyLength, Reusable: true},
		},
		{
			name: "reason phrase with spaces",
			head: "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 12\r\n\r\n",
			want: Response{Status: 503, Kind: BodyLength, BodyLen: 12, Reusable: true},
		},
		{
			name: "chunked",
			head: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
			want: Response{Status: 200, Kind: BodyChunked, Reusable: true},
		},
		{
			name:   "answer to HEAD",
			head:   "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
			isHEAD: true,
			want:   Response{Status: 200, Kind: BodyNone, Reusable: true},
		},
		{
			name:   "chunked answer to HEAD",
			head:   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
			isHEAD: true,
			want:   Response{Status: 200, Kind: BodyNone, Reusable: true},
		},
		{
			name: "204",
			head: "HTTP/1.1 204 No Content\r\n\r\n",
			want: Response{Status: 204, Kind: BodyNone, Reusable: true},
		},
		{
			name: "304 with Content-Length",
			head: "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n",
			want: Response{Status: 304, Kind: BodyNone, Reusable: true},
		},
		{
			name: "100 Continue",
			head: "HTTP/1.1 100 Continue\r\n\r\n",
			want: Response{Status: 100, Kind: BodyNone, Reusable: true},
		},
		{
			name: "103 Early Hints",
			head: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
			want: Response{Status: 103, Kind: BodyNone, Reusable: true},
		},
		{
			name: "neither length nor chunked",
			head: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
			want: Response{Status: 200, Kind: BodyToEOF},
		},
		{
			name: "HTTP/1.0",
			head: "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n",
			want: Response{Status: 200, Kind: BodyLength, BodyLen: 5},
		},
		{
			name: "HTTP/1.0 keep-alive",
			head: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 5\r\n\r\n",
			want: Response{Status: 200, Kind: BodyLength, BodyLen: 5, Reusable: true, HopByHop: true},
		},
		{
			name: "HTTP/1.0 keep-alive without a length",
			head: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n",
			want: Response{Status: 200, Kind: BodyToEOF, HopByHop: true},
		},
		{
			name: "HTTP/1.0 keep-alive and close",
			head: "HTTP/1.0 200 OK\r\nConnection: close, keep-alive\r\nContent-Length: 5\r\n\r\n",
			want: Response{Status: 200, Kind: BodyLength, BodyLen: 5, HopByHop: true},
		},
		{
			name: "HTTP/1.0 close, then keep-alive in another field",
			head: "HTTP/1.0 200 OK\r\nConnection: close\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\n",
			want: Response{Status: 200, Kind: BodyLength, BodyLen: 5, HopByHop: true},
		},
		{
			name: "HTTP/1.0 keep-alive, then close",
			head: "HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 5\r\n\r\n",
			want: Response{Status: 200, Kind: BodyLength, BodyLen: 5, HopByHop: true},
		},
		{
			name: "keep-alive means nothing to HTTP/1.1",
			head: "HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\n",
			want: Response{Status: 200, Kind: BodyLength, BodyLen: 5, HopByHop: true},
		},
		{
			name: "Connection: close",
			head: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nconnection: CLOSE\r\n\r\n",
			want: Response{Status: 200, Kind: BodyLength, BodyLen: 5, HopByHop: true},
		},
		{
			name: "Connection: keep-alive",
			head: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n",
			want: Response{Status: 200, Kind: BodyLength, BodyLen: 5, Reusable: true, HopByHop: true},
		},
		{
			name: "Keep-Alive",
			head: "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 5\r\n\r\n",
			want: Response{Status: 200, Kind: BodyLength, BodyLen: 5, Reusable: true, HopByHop: true},
		},
		{
			name: "Upgrade",
			head: "HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nContent-Length: 5\r\n\r\n",
			want: Response{Status: 200, Kind: BodyLength, BodyLen: 5, Reusable: true, HopByHop: true},
		},
		{
			name: "Trailer",
			head: "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n",
			want: Response{Status: 200, Kind: BodyChunked, Reusable: true, HopByHop: true},
		},
		{
			name: "Proxy-Authenticate",
			head: "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n",
			want: Response{Status: 407, Kind: BodyLength, Reusable: true, HopByHop: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := []byte(tt.head + "hello" + "HTTP/1.1 200 OK\r\n") // a body, then more
			got, st := ParseResponse(buf, tt.isHEAD)
			if st != OK {
				t.Fatalf("status %d, want OK", st)
			}
			want := tt.want
			want.HeadLen = len(tt.head)
			if want.Kind == BodyChunked {
				want.Chunks.Next = len(tt.head)
			}
			if got != want {
				t.Errorf("Response\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseResponseRejects(t *testing.T) {
	tests := []struct{ name, in string }{
		{"not HTTP", "SSH-2.0-OpenSSH_9.6\r\n\r\n"},
		{"empty status line", "\r\n\r\n"},
		{"lower-case protocol", "http/1.1 200 OK\r\n\r\n"},
		{"short status code", "HTTP/1.1 20 OK\r\n\r\n"},
		{"long status code", "HTTP/1.1 2000 OK\r\n\r\n"},
		{"status code not a number", "HTTP/1.1 2x0 OK\r\n\r\n"},
		{"signed status code", "HTTP/1.1 +20 OK\r\n\r\n"},
		{"status code below 100", "HTTP/1.1 099 Low\r\n\r\n"},
		{"no space after the code", "HTTP/1.1 200OK\r\n\r\n"},
		{"two spaces after the version", "HTTP/1.1  200 OK\r\n\r\n"},
		{"no space after the version", "HTTP/1.11200 OK\r\n\r\n"},
		{"line without a colon", "HTTP/1.1 200 OK\r\nnonsense\r\n\r\n"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\n\r\n"},
		{"space before the colon", "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n"},
		{"Content-Length not a number", "HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\n"},
		{"Content-Length negative", "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n"},
		{"Content-Length empty", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n"},
		{"Content-Length list", "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n"},
		{"conflicting Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"},
		{"the same Content-Length twice", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"},
		{"Transfer-Encoding gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"},
		{"Transfer-Encoding gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"},
		{"Transfer-Encoding identity", "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n"},
		{"chunked and Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\ntransfer-encoding: Chunked\r\n\r\n"},
		{"Content-Length after chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"},
		{"two Transfer-Encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"chunked in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"LF-only line endings", "HTTP/1.1 200 OK\nContent-Length: 5\n\n"},
		{"a bare LF among CRLFs", "HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 5\r\n\r\n"},
		{"bare CR in a field", "HTTP/1.1 200 OK\r\nX-A: 1\rContent-Length: 0\r\nContent-Length: 5\r\n\r\n"},
		{"bare CR in an unfinished head", "HTTP/1.1 200 OK\r\nX-A: 1\rB"},
		{"NUL in a field", "HTTP/1.1 200 OK\r\nX-A: \x00\r\nContent-Length: 5\r\n\r\n"},
		{"control byte in the reason", "HTTP/1.1 200 O\x01K\r\nContent-Length: 5\r\n\r\n"},
		{"HTTP/1.2", "HTTP/1.2 200 OK\r\nContent-Length: 5\r\n\r\n"},
		{"HTTP/2.0", "HTTP/2.0 200 OK\r\nContent-Length: 5\r\n\r\n"},
		{"Connection names Content-Length", "HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\n"},
		{"status line of MaxResponseHead bytes", "HTTP/1.1 200 " + strings.Repeat("k", MaxResponseHead)},
		{"head of MaxResponseHead bytes without an end",
			"HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Pad: 0123456789abcdef\r\n", MaxResponseHead/24)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, st := ParseResponse([]byte(tt.in), false); st != Bad {
				t.Errorf("status %d, want Bad", st)
			}
		})
	}
}

func TestParseResponseNeedsTheWholeHead(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"
	for i := range len(head) {
		if _, st := ParseResponse([]byte(head[:i]), false); st != NeedMore {
			t.Fatalf("prefix %q: status %d, want NeedMore", head[:i], st)
		}
	}
	if _, st := ParseResponse([]byte(head), false); st != OK {
		t.Fatalf("whole head: status %d, want OK", st)
	}
}

func TestResponseEndDelimitedBodies(t *testing.T) {
	const next = "HTTP/1.1 200 OK\r\n" // a pipelined response after this one
	tests := []struct {
		name    string
		head    string
		isHEAD  bool
		body    string
		bodyEnd int // where the response ends within body, or -1 for never
	}{
		{"Content-Length, incomplete", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, "hel", 5},
		{"Content-Length, complete", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, "hello", 5},
		{"Content-Length, more behind it", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, "hello" + next, 5},
		{"Content-Length: 0", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, next, 0},
		{"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, next, 0},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", false, next, 0},
		{"until EOF", "HTTP/1.1 200 OK\r\n\r\n", false, strings.Repeat("z", 100), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := []byte(tt.head + tt.body)
			r, st := ParseResponse(buf, tt.isHEAD)
			if st != OK {
				t.Fatalf("parseResponse: status %d", st)
			}
			end, est := ResponseEnd(buf, &r)
			ok, bad := est == OK, est == Bad
			if bad {
				t.Fatal("bad")
			}
			wantOK := tt.bodyEnd >= 0 && len(tt.body) >= tt.bodyEnd
			if ok != wantOK {
				t.Fatalf("ok = %v, want %v", ok, wantOK)
			}
			if ok && end != len(tt.head)+tt.bodyEnd {
				t.Errorf("end = %d, want %d", end, len(tt.head)+tt.bodyEnd)
			}
		})
	}
}

func TestResponseEndChunked(t *testing.T) {
	const head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
	tests := []struct {
		name     string
		chunks   string // the chunked body, last chunk and trailers included
		decoded  string
		trailers http.Header
		lenient  bool // net/http refuses it (BWS before ";", bare LF): not cross-checked
	}{
		{name: "one chunk", chunks: "5\r\nhello\r\n0\r\n\r\n", decoded: "hello"},
		{name: "no chunks", chunks: "0\r\n\r\n"},
		{name: "several chunks", chunks: "5\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\n\r\n",
			decoded: "hello 0123456789"},
		{name: "extensions", chunks: "5;x=y\r\nhello\r\n6;name=\"v\";flag\r\n world\r\n0;last\r\n\r\n",
			decoded: "hello world"},
		{name: "whitespace around an extension", chunks: "5 ; x = y\r\nhello\r\n0\t;last\r\n\r\n",
			decoded: "hello", lenient: true},
		{name: "upper- and lower-case hex, leading zeros",
			chunks: "00a\r\n0123456789\r\n0B\r\nabcdefghijk\r\n000\r\n\r\n", decoded: "0123456789abcdefghijk"},
		{name: "chunk data holding CRLF and digits", chunks: "8\r\n0\r\n\r\n0\r\n\r\n0\r\n\r\n", decoded: "0\r\n\r\n0\r\n"},
		{name: "trailer fields", chunks: "5\r\nhello\r\n0\r\nX-Sum: 42\r\nX-Other: a\r\n\r\n", decoded: "hello",
			trailers: http.Header{"X-Sum": {"42"}, "X-Other": {"a"}}},
		{name: "a large chunk", chunks: "2000\r\n" + strings.Repeat("q", 0x2000) + "\r\n0\r\n\r\n",
			decoded: strings.Repeat("q", 0x2000)},
	}
	const next = "HTTP/1.1 204 No Content\r\n\r\n" // a pipelined response after this one
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			full := []byte(head + tt.chunks + next)
			wantEnd := len(head) + len(tt.chunks)

			// The fixture is what net/http reads as this chunked response.
			if !tt.lenient {
				br := bufio.NewReader(bytes.NewReader(full))
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				if err != nil || string(body) != tt.decoded {
					t.Fatalf("fixture: net/http reads body %q (%v), want %q", body, err, tt.decoded)
				}
				if tt.trailers != nil && !headersEqual(resp.Trailer, tt.trailers) {
					t.Fatalf("fixture: net/http reads trailers %v, want %v", resp.Trailer, tt.trailers)
				}
				if rest, _ := io.ReadAll(br); string(rest) != next {
					t.Fatalf("fixture: net/http leaves %q after the response, want %q", rest, next)
				}
			}

			// The data path calls responseEnd on a growing buffer with the
			// same Response until it reports the end.
			for _, step := range []int{1, 2, 3, 7, 64, len(full)} {
				r, st := ParseResponse(full, false)
				if st != OK || r.Kind != BodyChunked {
					t.Fatalf("parseResponse: status %d kind %d", st, r.Kind)
				}
				n := r.HeadLen
				for {
					end, est := ResponseEnd(full[:n], &r)
					ok, bad := est == OK, est == Bad
					if bad {
						t.Fatalf("step %d: bad at %d bytes", step, n)
					}
					if ok {
						if n < wantEnd || end != wantEnd {
							t.Fatalf("step %d: ended at %d with %d bytes buffered, want the end at %d", step, end, n, wantEnd)
						}
						break
					}
					if n >= wantEnd {
						t.Fatalf("step %d: not ended with %d bytes buffered, want the end at %d", step, n, wantEnd)
					}
					n = min(n+step, len(full))
				}
			}
		})
	}
}

func TestResponseEndBadChunks(t *testing.T) {
	const head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	tests := []struct{ name, chunks string }{
		{"size not hex", "zz\r\nhello\r\n"},
		{"empty size line", "\r\nhello\r\n"},
		{"negative size", "-5\r\nhello\r\n"},
		{"0x prefix", "0x5\r\nhello\r\n"},
		{"size overflows", "1ffffffffffffffff\r\n"},
		{"size above the bound", "10000000001\r\n"},
		{"data longer than the size", "3\r\nhello\r\n0\r\n\r\n"},
		{"CR without LF after the data", "5\r\nhello\rX0\r\n\r\n"},
		{"bad size after a good chunk", "5\r\nhello\r\nG\r\n"},
		{"size line without an end", strings.Repeat("0", 5000)},
		{"LF-only line endings", "5\nhello\n0\n\n"},
		{"bare LF after the data", "5\r\nhello\n0\r\n\r\n"},
		{"bare CR in an extension", "5;a\rb\r\nhello\r\n0\r\n\r\n"},
		{"extension not a token", "5;(x)\r\nhello\r\n0\r\n\r\n"},
		{"extension value unterminated", "5;a=\"b\r\nhello\r\n0\r\n\r\n"},
		{"extension line too long", "5;" + strings.Repeat("a", 2000) + "\r\nhello\r\n0\r\n\r\n"},
		{"trailer not a field", "0\r\nnonsense\r\n\r\n"},
		{"trailer with NUL", "0\r\nX-A: \x00\r\n\r\n"},
		{"size with spaces inside", "5 5\r\nhello\r\n"},
		{"too much framing for the data", strings.Repeat("1;"+strings.Repeat("e", 200)+"\r\nx\r\n", 100)},
		{"trailers without an end", "0\r\n" + strings.Repeat("X-Pad: 0123456789abcdef\r\n", MaxResponseHead/24+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := []byte(head + tt.chunks)
			r, st := ParseResponse(buf, false)
			if st != OK {
				t.Fatalf("parseResponse: status %d", st)
			}
			if _, est := ResponseEnd(buf, &r); est != Bad {
				t.Errorf("status %d, want Bad", est)
			}
		})
	}
}

func TestAppendResponseHead(t *testing.T) {
	const hopHead = "HTTP/1.1 200 OK\r\nConnection: keep-alive, Upgrade\r\nKeep-Alive: timeout=5\r\nX-A: 1\r\n" +
		"Content-Length: 3\r\nUpgrade: h2c\r\nX-B: 2\r\nTrailer: X-Sum\r\nProxy-Authenticate: Basic\r\nX-A: 3\r\n\r\n"
	tests := []struct {
		name    string
		head    string
		body    string
		bodyLen int
		closing bool
		want    string
	}{
		{
			name: "hop-by-hop dropped", head: hopHead, body: "abc", bodyLen: -1,
			want: "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 3\r\nX-B: 2\r\nX-A: 3\r\n\r\n",
		},
		{
			name: "closing", head: hopHead, body: "abc", bodyLen: -1, closing: true,
			want: "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 3\r\nX-B: 2\r\nX-A: 3\r\nConnection: close\r\n\r\n",
		},
		{
			name: "Content-Length replaced", head: hopHead, body: "abcdef", bodyLen: 6,
			want: "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-B: 2\r\nX-A: 3\r\nContent-Length: 6\r\n\r\n",
		},
		{
			name: "body read to EOF", head: "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
			body: "until eof", bodyLen: 9, closing: true,
			want: "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\n",
		},
		{
			name: "empty body read to EOF", head: "HTTP/1.1 500 Internal Server Error\r\nconnection: close\r\n\r\n",
			bodyLen: 0,
			want:    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
		},
		{
			name: "fields named by Connection dropped", body: "abc", bodyLen: -1,
			head: "HTTP/1.1 200 OK\r\nConnection: X-Internal\r\nX-Internal: secret\r\nContent-Length: 3\r\n\r\n",
			want: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("kept")
			out := AppendResponseHead(prefix, []byte(tt.head), tt.bodyLen, tt.closing)
			if !bytes.HasPrefix(out, prefix) {
				t.Fatalf("dst %q lost what it held", out)
			}
			out = out[len(prefix):]
			if string(out) != tt.want {
				t.Errorf("head\n got %q\nwant %q", out, tt.want)
			}

			wire := string(out) + tt.body + "HTTP/1.1 204 No Content\r\n\r\n"
			br := bufio.NewReader(strings.NewReader(wire))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("net/http cannot read %q: %v", wire, err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != tt.body || resp.ContentLength != int64(len(tt.body)) {
				t.Errorf("body %q length %d, want %q", body, resp.ContentLength, tt.body)
			}
			if resp.Close != tt.closing {
				t.Errorf("Close = %v, want %v", resp.Close, tt.closing)
			}
			for _, h := range []string{"Keep-Alive", "Upgrade", "Trailer", "Proxy-Authenticate"} {
				if v, ok := resp.Header[h]; ok {
					t.Errorf("%s: %q reached the client", h, v)
				}
			}
			if !tt.closing {
				if next, err := http.ReadResponse(br, nil); err != nil || next.StatusCode != 204 {
					t.Errorf("the next response does not follow: %v", err)
				}
			}
		})
	}
}

// TestAppendErrorResponseToHEAD: the answer to a HEAD request announces
// its body's length and sends no body, so the next response follows at once.
func TestAppendErrorResponseToHEAD(t *testing.T) {
	body := `{"error":"no ready replicas in group shop"}` + "\n"
	out := AppendErrorResponse(nil, 503, []byte(body), false, true)
	out = AppendErrorResponse(out, 502, []byte(`{}`), false, false)
	br := bufio.NewReader(bytes.NewReader(out))
	head, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
	if err != nil {
		t.Fatal(err)
	}
	if head.StatusCode != 503 || head.ContentLength != int64(len(body)) {
		t.Errorf("HEAD answer: %d, length %d", head.StatusCode, head.ContentLength)
	}
	next, err := http.ReadResponse(br, nil)
	if err != nil || next.StatusCode != 502 {
		t.Fatalf("the next response does not follow the HEAD answer: %v", err)
	}
	if got, _ := io.ReadAll(next.Body); string(got) != "{}" {
		t.Errorf("next body %q", got)
	}
}

func TestAppendErrorResponse(t *testing.T) {
	tests := []struct {
		code    int
		status  string
		body    string
		closing bool
	}{
		{502, "502 Bad Gateway", `{"error":"replica a: connection refused"}`, false},
		{503, "503 Service Unavailable", `{"error":"no replica"}`, true},
		{504, "504 Gateway Timeout", `{"error":"replica b did not answer within 1s"}`, false},
		{500, "500 Error", `{}`, true},
		{502, "502 Bad Gateway", ``, false},
	}
	for _, tt := range tests {
		prefix := []byte("kept")
		out := AppendErrorResponse(prefix, tt.code, []byte(tt.body), tt.closing, false)
		if !bytes.HasPrefix(out, prefix) {
			t.Fatalf("dst %q lost what it held", out)
		}
		br := bufio.NewReader(bytes.NewReader(out[len(prefix):]))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%d: net/http cannot read %q: %v", tt.code, out, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tt.code || resp.Status != tt.status || resp.ProtoMajor != 1 || resp.ProtoMinor != 1 {
			t.Errorf("%d: status %q %s, want %q HTTP/1.1", tt.code, resp.Status, resp.Proto, tt.status)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%d: Content-Type %q", tt.code, ct)
		}
		if string(body) != tt.body || resp.ContentLength != int64(len(tt.body)) {
			t.Errorf("%d: body %q length %d, want %q", tt.code, body, resp.ContentLength, tt.body)
		}
		if resp.Close != tt.closing {
			t.Errorf("%d: Close = %v, want %v", tt.code, resp.Close, tt.closing)
		}
		if br.Buffered() != 0 {
			t.Errorf("%d: %d bytes after the body", tt.code, br.Buffered())
		}
	}
}

func TestWireDoesNotAllocate(t *testing.T) {
	req := []byte("POST /orders?x=1 HTTP/1.1\r\nHost: shop.local\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n" +
		"Cookie: theme=dark; shopper=s-42\r\nConnection: keep-alive\r\nX-Forwarded-For: 192.0.2.1\r\n" +
		"Idempotency-Key: k-1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\n" +
		"X-Flotilla-Replica: web-1\r\nContent-Length: 2\r\n\r\n{}")
	chunked := []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n" +
		"5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n")
	chunkedHead := chunked[:bytes.Index(chunked, []byte("\r\n\r\n"))+4]
	ip := []byte(wireIP)
	dst := make([]byte, 0, 4096)

	var reqSt, respSt, chunkSt Status
	var fwdLen, respEnd, chunkEnd int
	tests := []struct {
		name string
		f    func()
	}{
		{"ParseRequest", func() {
			var r Request
			var fwd []byte
			r, fwd, reqSt = ParseRequest(req, ip, wireMaxBody, dst[:0])
			fwdLen = len(fwd) + r.Total()
		}},
		{"parseResponse", func() {
			var r Response
			r, respSt = ParseResponse(resp, false)
			respEnd, _ = ResponseEnd(resp, &r)
		}},
		{"chunked responseEnd", func() {
			var r Response
			r, chunkSt = ParseResponse(chunked, false)
			chunkEnd, _ = ResponseEnd(chunked, &r)
		}},
		{"appendResponseHead", func() {
			_ = AppendResponseHead(dst[:0], chunkedHead, -1, true)
		}},
	}
	for _, tt := range tests {
		if allocs := testing.AllocsPerRun(100, tt.f); allocs != 0 {
			t.Errorf("%s: %v allocations, want 0", tt.name, allocs)
		}
	}
	// The functions measured did their work.
	if reqSt != OK || fwdLen == 0 || respSt != OK || respEnd != len(resp) ||
		chunkSt != OK || chunkEnd != len(chunked) {
		t.Errorf("request %d (%d), response %d (end %d of %d), chunked %d (end %d of %d)",
			reqSt, fwdLen, respSt, respEnd, len(resp), chunkSt, chunkEnd, len(chunked))
	}
}

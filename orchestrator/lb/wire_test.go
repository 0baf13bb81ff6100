package lb

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// These tests pin down the HTTP/1.1 wire parser of the event-loop data path
// (wire.go) without any network: what a request becomes on its way to a
// replica, which requests are handed off, how a response is delimited, and
// what the client is sent.

const (
	wireIP      = "10.1.2.3"
	wireMaxBody = 1 << 20
)

// reqView is the comparable part of a reqHead.
type reqView struct {
	headLen, bodyLen int
	method           string
	isHEAD, close    bool
	hasKey           bool
	shopper          string
	shopperHdr       bool
}

func viewOf(r reqHead) reqView {
	return reqView{
		headLen: r.headLen, bodyLen: r.bodyLen, method: string(r.method),
		isHEAD: r.isHEAD, close: r.close, hasKey: r.hasKey,
		shopper: string(r.shopper), shopperHdr: r.shopperHdr,
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
			head: "PUT /x HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n",
			fwd:  "PUT /x HTTP/1.1\r\nContent-Length: 1048576\r\n" + xff,
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
			head: "GET / HTTP/1.1\r\nX-Shopper: alice\r\n\r\n",
			fwd:  "GET / HTTP/1.1\r\nX-Shopper: alice\r\n" + xff,
			want: reqView{method: "GET", shopper: "alice", shopperHdr: true},
		},
		{
			name: "X-Shopper wins over the cookie",
			head: "GET / HTTP/1.1\r\nCookie: shopper=bob\r\nX-Shopper: alice\r\n\r\n",
			fwd:  "GET / HTTP/1.1\r\nCookie: shopper=bob\r\nX-Shopper: alice\r\n" + xff,
			want: reqView{method: "GET", shopper: "alice", shopperHdr: true},
		},
		{
			name: "shopper cookie among others",
			head: "GET / HTTP/1.1\r\nCookie: theme=dark; shopper=bob; lang=en\r\n\r\n",
			fwd:  "GET / HTTP/1.1\r\nCookie: theme=dark; shopper=bob; lang=en\r\n" + xff,
			want: reqView{method: "GET", shopper: "bob"},
		},
		{
			name: "quoted shopper cookie",
			head: "GET / HTTP/1.1\r\nCookie: shopper=\"carol\"\r\n\r\n",
			fwd:  "GET / HTTP/1.1\r\nCookie: shopper=\"carol\"\r\n" + xff,
			want: reqView{method: "GET", shopper: "carol"},
		},
		{
			name: "empty X-Shopper falls back to the cookie",
			head: "GET / HTTP/1.1\r\nX-Shopper:\r\nCookie: shopper=dave\r\n\r\n",
			fwd:  "GET / HTTP/1.1\r\nX-Shopper:\r\nCookie: shopper=dave\r\n" + xff,
			want: reqView{method: "GET", shopper: "dave"},
		},
		{
			name: "no shopper cookie",
			head: "GET / HTTP/1.1\r\nCookie: shopperx=1; xshopper=2\r\n\r\n",
			fwd:  "GET / HTTP/1.1\r\nCookie: shopperx=1; xshopper=2\r\n" + xff,
			want: reqView{method: "GET"},
		},
		{
			name: "Idempotency-Key",
			head: "POST /pay HTTP/1.1\r\nIdempotency-Key: 4f2a\r\nContent-Length: 0\r\n\r\n",
			fwd:  "POST /pay HTTP/1.1\r\nIdempotency-Key: 4f2a\r\nContent-Length: 0\r\n" + xff,
			want: reqView{method: "POST", hasKey: true},
		},
		{
			name: "HEAD",
			head: "HEAD /big HTTP/1.1\r\nHost: a\r\n\r\n",
			fwd:  "HEAD /big HTTP/1.1\r\nHost: a\r\n" + xff,
			want: reqView{method: "HEAD", isHEAD: true},
		},
		{
			name: "a method is not HEAD by prefix",
			head: "HEADX / HTTP/1.1\r\n\r\n",
			fwd:  "HEADX / HTTP/1.1\r\n" + xff,
			want: reqView{method: "HEADX"},
		},
		{
			name: "LF-only line endings",
			head: "POST /x HTTP/1.1\nHost: a\nConnection: close\nContent-Length: 2\n\n",
			rest: "hi",
			fwd:  "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n" + xff,
			want: reqView{method: "POST", bodyLen: 2, close: true},
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
			head: "GET / HTTP/1.1\r\nX-Pad:   a  b \r\n\r\n",
			fwd:  "GET / HTTP/1.1\r\nX-Pad:   a  b \r\n" + xff,
			want: reqView{method: "GET"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := []byte(tt.head + tt.rest)
			prefix := []byte("kept:")
			r, fwd, st := parseRequest(buf, []byte(wireIP), wireMaxBody, prefix)
			if st != wireOK {
				t.Fatalf("status %d, want wireOK", st)
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
				t.Errorf("reqHead\n got %+v\nwant %+v", got, want)
			}
			if r.total() != len(tt.head)+tt.want.bodyLen {
				t.Errorf("total() = %d, want %d", r.total(), len(tt.head)+tt.want.bodyLen)
			}
		})
	}
}

func TestParseRequestBeforeTheBodyArrives(t *testing.T) {
	head := "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n"
	for _, body := range []string{"", "abc", "abcdefghi"} {
		buf := []byte(head + body)
		r, _, st := parseRequest(buf, []byte(wireIP), wireMaxBody, nil)
		if st != wireOK {
			t.Fatalf("body %q: status %d, want wireOK", body, st)
		}
		if r.headLen != len(head) || r.bodyLen != 10 || r.total() != len(head)+10 {
			t.Errorf("body %q: headLen %d bodyLen %d total %d, want %d 10 %d",
				body, r.headLen, r.bodyLen, r.total(), len(head), len(head)+10)
		}
		if r.total() <= len(buf) {
			t.Errorf("body %q: total() %d does not exceed the %d bytes buffered", body, r.total(), len(buf))
		}
	}
}

func TestParseRequestNeedsTheWholeHead(t *testing.T) {
	head := "POST /x HTTP/1.1\r\nHost: a\r\nCookie: shopper=s\r\nContent-Length: 3\r\n\r\n"
	for i := range len(head) {
		if _, _, st := parseRequest([]byte(head[:i]), []byte(wireIP), wireMaxBody, nil); st != wireNeedMore {
			t.Fatalf("prefix %q: status %d, want wireNeedMore", head[:i], st)
		}
	}
	if _, _, st := parseRequest([]byte(head), []byte(wireIP), wireMaxBody, nil); st != wireOK {
		t.Fatalf("whole head: status %d, want wireOK", st)
	}
}

func TestParseRequestHandsOff(t *testing.T) {
	// A head that is still growing at maxRequestHead bytes.
	long := "GET / HTTP/1.1\r\nX-Pad: "
	long += strings.Repeat("a", maxRequestHead-len(long))
	manyLines := "GET / HTTP/1.1\r\n"
	for len(manyLines) < maxRequestHead {
		manyLines += "X-Pad: aaaaaaaaaaaaaaaa\r\n"
	}
	tests := []struct {
		name    string
		in      string
		maxBody int
	}{
		{"Transfer-Encoding", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 0},
		{"lower-case transfer-encoding", "POST / HTTP/1.1\r\ntransfer-encoding: identity\r\n\r\n", 0},
		{"Transfer-Encoding with Content-Length", "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 0},
		{"Expect", "PUT / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", 0},
		{"Upgrade", "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", 0},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\n\r\n", 0},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0},
		{"absolute-form target", "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 0},
		{"asterisk-form target", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 0},
		{"authority-form target", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 0},
		{"no version", "GET /\r\n\r\n", 0},
		{"extra field in the request line", "GET / HTTP/1.1 x\r\n\r\n", 0},
		{"double space in the request line", "GET  / HTTP/1.1\r\n\r\n", 0},
		{"method is not a token", "G(T / HTTP/1.1\r\n\r\n", 0},
		{"obs-fold with a space", "GET / HTTP/1.1\r\nX-Foo: a\r\n b\r\n\r\n", 0},
		{"obs-fold with a tab", "GET / HTTP/1.1\r\nX-Foo: a\r\n\tb\r\n\r\n", 0},
		{"a field name that is not a token", "GET / HTTP/1.1\r\nFoo Bar: x\r\n\r\n", 0},
		{"a stray CR in a value", "GET / HTTP/1.1\r\nX-Foo: a\rb\r\n\r\n", 0},
		{"line without a colon", "GET / HTTP/1.1\r\nnonsense\r\n\r\n", 0},
		{"space before the colon", "GET / HTTP/1.1\r\nContent-Length : 3\r\n\r\nabc", 0},
		{"Content-Length not a number", "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 0},
		{"Content-Length negative", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 0},
		{"Content-Length with a sign", "POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc", 0},
		{"Content-Length empty", "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 0},
		{"Content-Length list", "POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc", 0},
		{"Content-Length too many digits", "POST / HTTP/1.1\r\nContent-Length: 0000000000000000003\r\n\r\nabc", 0},
		{"duplicate Content-Length, same value", "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 0},
		{"duplicate Content-Length, other value", "POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 4\r\n\r\nabcd", 0},
		{"Content-Length above maxBody", "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 10},
		{"Connection names another header", "GET / HTTP/1.1\r\nConnection: close, X-Foo\r\nX-Foo: 1\r\n\r\n", 0},
		{"Connection: upgrade", "GET / HTTP/1.1\r\nConnection: Upgrade\r\n\r\n", 0},
		{"two X-Forwarded-For", "GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2\r\n\r\n", 0},
		{"two Host", "GET / HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\n", 0},
		{"request line of maxRequestHead bytes", "GET /" + strings.Repeat("a", maxRequestHead), 0},
		{"head of maxRequestHead bytes without an end", long, 0},
		{"head over maxRequestHead bytes without an end", manyLines, 0},
		{"whole head over maxRequestHead bytes", manyLines + "\r\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maxBody := tt.maxBody
			if maxBody == 0 {
				maxBody = wireMaxBody
			}
			if _, _, st := parseRequest([]byte(tt.in), []byte(wireIP), maxBody, nil); st != wireHandoff {
				t.Errorf("status %d, want wireHandoff", st)
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
		if got := string(cookieValue([]byte(tt.header), ShopperCookie)); got != tt.want {
			t.Errorf("cookieValue(%q) = %q, want %q", tt.header, got, tt.want)
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

			r, fwd, st := parseRequest(raw.Bytes(), []byte(wireIP), wireMaxBody, nil)
			if st != wireOK {
				t.Fatalf("status %d, want wireOK for\n%s", st, raw.Bytes())
			}
			if r.total() != raw.Len() {
				t.Fatalf("total() = %d, want the %d bytes written", r.total(), raw.Len())
			}
			if string(r.method) != orig.Method || r.isHEAD != (orig.Method == "HEAD") || r.close != orig.Close ||
				r.hasKey != (orig.Header.Get(IdempotencyKeyHeader) != "") {
				t.Errorf("reqHead %+v does not match the request", viewOf(r))
			}
			wantShopper := orig.Header.Get(ShopperHeader)
			if wantShopper == "" {
				if c, err := orig.Cookie(ShopperCookie); err == nil {
					wantShopper = c.Value
				}
			}
			if string(r.shopper) != wantShopper {
				t.Errorf("shopper %q, want %q", r.shopper, wantShopper)
			}

			fwd = append(fwd, raw.Bytes()[r.headLen:r.total()]...)
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
		want   respHead // headLen and chunkNext are filled in
	}{
		{
			name: "Content-Length",
			head: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n",
			want: respHead{status: 200, kind: bodyLength, bodyLen: 5, reusable: true},
		},
		{
			name: "no reason phrase",
			head: "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
			want: respHead{status: 404, kind: bodyLength, reusable: true},
		},
		{
			name: "reason phrase with spaces",
			head: "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 12\r\n\r\n",
			want: respHead{status: 503, kind: bodyLength, bodyLen: 12, reusable: true},
		},
		{
			name: "the same Content-Length twice",
			head: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
			want: respHead{status: 200, kind: bodyLength, bodyLen: 5, reusable: true},
		},
		{
			name: "chunked",
			head: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
			want: respHead{status: 200, kind: bodyChunked, reusable: true},
		},
		{
			name: "chunked wins over Content-Length",
			head: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\ntransfer-encoding: Chunked\r\n\r\n",
			want: respHead{status: 200, kind: bodyChunked, reusable: true},
		},
		{
			name:   "answer to HEAD",
			head:   "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
			isHEAD: true,
			want:   respHead{status: 200, kind: bodyNone, reusable: true},
		},
		{
			name:   "chunked answer to HEAD",
			head:   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
			isHEAD: true,
			want:   respHead{status: 200, kind: bodyNone, reusable: true},
		},
		{
			name: "204",
			head: "HTTP/1.1 204 No Content\r\n\r\n",
			want: respHead{status: 204, kind: bodyNone, reusable: true},
		},
		{
			name: "304 with Content-Length",
			head: "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n",
			want: respHead{status: 304, kind: bodyNone, reusable: true},
		},
		{
			name: "100 Continue",
			head: "HTTP/1.1 100 Continue\r\n\r\n",
			want: respHead{status: 100, kind: bodyNone, reusable: true},
		},
		{
			name: "103 Early Hints",
			head: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
			want: respHead{status: 103, kind: bodyNone, reusable: true},
		},
		{
			name: "neither length nor chunked",
			head: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
			want: respHead{status: 200, kind: bodyToEOF},
		},
		{
			name: "HTTP/1.0",
			head: "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n",
			want: respHead{status: 200, kind: bodyLength, bodyLen: 5},
		},
		{
			name: "HTTP/1.0 keep-alive",
			head: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 5\r\n\r\n",
			want: respHead{status: 200, kind: bodyLength, bodyLen: 5, reusable: true, hopByHop: true},
		},
		{
			name: "HTTP/1.0 keep-alive without a length",
			head: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n",
			want: respHead{status: 200, kind: bodyToEOF, hopByHop: true},
		},
		{
			name: "HTTP/1.0 keep-alive and close",
			head: "HTTP/1.0 200 OK\r\nConnection: close, keep-alive\r\nContent-Length: 5\r\n\r\n",
			want: respHead{status: 200, kind: bodyLength, bodyLen: 5, hopByHop: true},
		},
		{
			name: "HTTP/1.0 close, then keep-alive in another field",
			head: "HTTP/1.0 200 OK\r\nConnection: close\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\n",
			want: respHead{status: 200, kind: bodyLength, bodyLen: 5, hopByHop: true},
		},
		{
			name: "HTTP/1.0 keep-alive, then close",
			head: "HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 5\r\n\r\n",
			want: respHead{status: 200, kind: bodyLength, bodyLen: 5, hopByHop: true},
		},
		{
			name: "keep-alive means nothing to HTTP/1.1",
			head: "HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\n",
			want: respHead{status: 200, kind: bodyLength, bodyLen: 5, hopByHop: true},
		},
		{
			name: "Connection: close",
			head: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nconnection: CLOSE\r\n\r\n",
			want: respHead{status: 200, kind: bodyLength, bodyLen: 5, hopByHop: true},
		},
		{
			name: "Connection: keep-alive",
			head: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n",
			want: respHead{status: 200, kind: bodyLength, bodyLen: 5, reusable: true, hopByHop: true},
		},
		{
			name: "Keep-Alive",
			head: "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 5\r\n\r\n",
			want: respHead{status: 200, kind: bodyLength, bodyLen: 5, reusable: true, hopByHop: true},
		},
		{
			name: "Upgrade",
			head: "HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nContent-Length: 5\r\n\r\n",
			want: respHead{status: 200, kind: bodyLength, bodyLen: 5, reusable: true, hopByHop: true},
		},
		{
			name: "Trailer",
			head: "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n",
			want: respHead{status: 200, kind: bodyChunked, reusable: true, hopByHop: true},
		},
		{
			name: "Proxy-Authenticate",
			head: "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n",
			want: respHead{status: 407, kind: bodyLength, reusable: true, hopByHop: true},
		},
		{
			name: "LF-only line endings",
			head: "HTTP/1.1 200 OK\nContent-Length: 5\n\n",
			want: respHead{status: 200, kind: bodyLength, bodyLen: 5, reusable: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := []byte(tt.head + "hello" + "HTTP/1.1 200 OK\r\n") // a body, then more
			got, st := parseResponse(buf, tt.isHEAD)
			if st != wireOK {
				t.Fatalf("status %d, want wireOK", st)
			}
			want := tt.want
			want.headLen = len(tt.head)
			if want.kind == bodyChunked {
				want.chunkNext = len(tt.head)
			}
			if got != want {
				t.Errorf("respHead\n got %+v\nwant %+v", got, want)
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
		{"Transfer-Encoding gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"},
		{"Transfer-Encoding gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"},
		{"Transfer-Encoding identity", "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n"},
		{"status line of maxResponseHead bytes", "HTTP/1.1 200 " + strings.Repeat("k", maxResponseHead)},
		{"head of maxResponseHead bytes without an end",
			"HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Pad: 0123456789abcdef\r\n", maxResponseHead/24)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, st := parseResponse([]byte(tt.in), false); st != wireBad {
				t.Errorf("status %d, want wireBad", st)
			}
		})
	}
}

func TestParseResponseNeedsTheWholeHead(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"
	for i := range len(head) {
		if _, st := parseResponse([]byte(head[:i]), false); st != wireNeedMore {
			t.Fatalf("prefix %q: status %d, want wireNeedMore", head[:i], st)
		}
	}
	if _, st := parseResponse([]byte(head), false); st != wireOK {
		t.Fatalf("whole head: status %d, want wireOK", st)
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
			r, st := parseResponse(buf, tt.isHEAD)
			if st != wireOK {
				t.Fatalf("parseResponse: status %d", st)
			}
			end, ok, bad := responseEnd(buf, &r)
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
		{name: "LF-only line endings", chunks: "5\nhello\n0\nX-Sum: 1\n\n", decoded: "hello", lenient: true},
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
			// same respHead until it reports the end.
			for _, step := range []int{1, 2, 3, 7, 64, len(full)} {
				r, st := parseResponse(full, false)
				if st != wireOK || r.kind != bodyChunked {
					t.Fatalf("parseResponse: status %d kind %d", st, r.kind)
				}
				n := r.headLen
				for {
					end, ok, bad := responseEnd(full[:n], &r)
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
		{"trailers without an end", "0\r\n" + strings.Repeat("X-Pad: 0123456789abcdef\r\n", maxResponseHead/24+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := []byte(head + tt.chunks)
			r, st := parseResponse(buf, false)
			if st != wireOK {
				t.Fatalf("parseResponse: status %d", st)
			}
			if _, ok, bad := responseEnd(buf, &r); ok || !bad {
				t.Errorf("ok %v bad %v, want bad", ok, bad)
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
		{
			name: "LF-only head", head: "HTTP/1.1 200 OK\nKeep-Alive: 5\nContent-Length: 2\nX-A: 1\n\n",
			body: "ok", bodyLen: -1,
			want: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("kept")
			out := appendResponseHead(prefix, []byte(tt.head), tt.bodyLen, tt.closing)
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
	out := appendErrorResponse(nil, 503, []byte(body), false, true)
	out = appendErrorResponse(out, 502, []byte(`{}`), false, false)
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
		out := appendErrorResponse(prefix, tt.code, []byte(tt.body), tt.closing, false)
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

	var reqSt, respSt, chunkSt wireStatus
	var fwdLen, respEnd, chunkEnd int
	tests := []struct {
		name string
		f    func()
	}{
		{"parseRequest", func() {
			var r reqHead
			var fwd []byte
			r, fwd, reqSt = parseRequest(req, ip, wireMaxBody, dst[:0])
			fwdLen = len(fwd) + r.total()
		}},
		{"parseResponse", func() {
			var r respHead
			r, respSt = parseResponse(resp, false)
			respEnd, _, _ = responseEnd(resp, &r)
		}},
		{"chunked responseEnd", func() {
			var r respHead
			r, chunkSt = parseResponse(chunked, false)
			chunkEnd, _, _ = responseEnd(chunked, &r)
		}},
		{"appendResponseHead", func() {
			_ = appendResponseHead(dst[:0], chunkedHead, -1, true)
		}},
	}
	for _, tt := range tests {
		if allocs := testing.AllocsPerRun(100, tt.f); allocs != 0 {
			t.Errorf("%s: %v allocations, want 0", tt.name, allocs)
		}
	}
	// The functions measured did their work.
	if reqSt != wireOK || fwdLen == 0 || respSt != wireOK || respEnd != len(resp) ||
		chunkSt != wireOK || chunkEnd != len(chunked) {
		t.Errorf("request %d (%d), response %d (end %d of %d), chunked %d (end %d of %d)",
			reqSt, fwdLen, respSt, respEnd, len(resp), chunkSt, chunkEnd, len(chunked))
	}
}

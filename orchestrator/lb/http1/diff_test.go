package http1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"regexp"
	"testing"
)

// The differential check: every message is read by this package and by
// net/http's reader (http.ReadRequest, http.ReadResponse over bufio), the
// reference. A message one accepts and the other refuses, or that both
// accept but frame differently (where the body ends, whether it is
// chunked, whether the connection closes), fails the test, unless it falls
// in one of the deliberate differences below. Every deliberate difference
// is this package refusing what net/http accepts: never the other way.

// difference is a class of messages this package refuses on purpose while
// net/http accepts them.
type difference struct {
	name string
	why  string
	is   func(msg []byte) bool
}

// head returns the message's head as net/http would find it: up to the
// first blank line, bare LFs counted.
func head(msg []byte) []byte {
	for i := 0; i < len(msg); i++ {
		if msg[i] != '\n' {
			continue
		}
		if bytes.HasPrefix(msg[i+1:], []byte("\n")) || bytes.HasPrefix(msg[i+1:], []byte("\r\n")) {
			return msg[:i+1]
		}
	}
	return msg
}

// headLines splits a head into lines at LF, CRs kept.
func headLines(msg []byte) [][]byte { return bytes.Split(head(msg), []byte("\n")) }

// fieldsNamed returns the values of the fields of the head named name.
func fieldsNamed(msg []byte, name string) [][]byte {
	var out [][]byte
	for _, l := range headLines(msg)[1:] {
		if i := bytes.IndexByte(l, ':'); i > 0 && bytes.EqualFold(bytes.TrimRight(l[:i], " \t"), []byte(name)) {
			out = append(out, bytes.Trim(l[i+1:], " \t\r"))
		}
	}
	return out
}

var (
	chunkExt     = regexp.MustCompile(`(?m)^[0-9a-fA-F]+[ \t]*;`)
	httpVersion  = regexp.MustCompile(`^HTTP/1\.[01]$`)
	hasBadConnTk = regexp.MustCompile(`(?i)(^|,)[ \t]*(host|content-length|transfer-encoding)[ \t]*(,|$)`)
)

// shared are the deliberate differences on both sides.
var shared = []difference{
	{"line endings", "a bare LF or a bare CR ends or splits a line differently for other readers: smuggling", func(m []byte) bool {
		h := head(m)
		for i, c := range h {
			if (c == '\n' && (i == 0 || h[i-1] != '\r')) || (c == '\r' && (i+1 >= len(h) || h[i+1] != '\n')) {
				return true
			}
		}
		return bytes.HasSuffix(h, []byte("\n")) && len(m) > len(h) && m[len(h)] == '\n'
	}},
	{"obs-fold", "a folded field is joined by some readers and not by others (RFC 9112, 5.2)", func(m []byte) bool {
		for _, l := range headLines(m)[1:] {
			if len(l) > 0 && (l[0] == ' ' || l[0] == '\t') {
				return true
			}
		}
		return false
	}},
	{"space before a colon", "RFC 9112, 5.1: a server must reject it; net/http keeps it in the name", func(m []byte) bool {
		for _, l := range headLines(m)[1:] {
			if i := bytes.IndexByte(l, ':'); i > 0 && (l[i-1] == ' ' || l[i-1] == '\t') {
				return true
			}
		}
		return false
	}},
	{"field names", "a field name is a token (RFC 9110, 5.1); net/http takes spaces and more in it", func(m []byte) bool {
		for _, l := range headLines(m)[1:] {
			if i := bytes.IndexByte(l, ':'); i > 0 && !isToken(l[:i]) {
				return true
			}
		}
		return false
	}},
	{"HTTP version", "only HTTP/1.0 and HTTP/1.1 are spoken; net/http takes any HTTP/x.y", func(m []byte) bool {
		l := bytes.TrimSuffix(headLines(m)[0], []byte("\r"))
		if bytes.HasPrefix(l, []byte("HTTP/")) { // a status line
			return len(l) < 8 || !httpVersion.Match(l[:8])
		}
		i := bytes.LastIndexByte(l, ' ')
		return i < 0 || !httpVersion.Match(l[i+1:])
	}},
	{"Connection naming framing", "a Connection field naming Host, Content-Length or Transfer-Encoding, or not a token list, would strip what frames the message", func(m []byte) bool {
		for _, v := range fieldsNamed(m, "Connection") {
			if hasBadConnTk.Match(v) {
				return true
			}
			for _, tok := range bytes.Split(v, []byte(",")) {
				if tok = bytes.Trim(tok, " \t"); len(tok) > 0 && !isToken(tok) {
					return true
				}
			}
		}
		return false
	}},
	{"repeated Content-Length", "a message repeating even the same length is refused; net/http folds equal values", func(m []byte) bool {
		cl := fieldsNamed(m, "Content-Length")
		return len(cl) > 1 || (len(cl) == 1 && bytes.IndexByte(cl[0], ',') >= 0)
	}},
	{"Transfer-Encoding with Content-Length", "RFC 9112, 6.1 and 6.3: ambiguous framing is refused, not resolved", func(m []byte) bool {
		return len(fieldsNamed(m, "Transfer-Encoding")) > 0 && len(fieldsNamed(m, "Content-Length")) > 0
	}},
	{"Transfer-Encoding in HTTP/1.0", "RFC 9112, 6.1: faulty framing; net/http ignores it", func(m []byte) bool {
		return len(fieldsNamed(m, "Transfer-Encoding")) > 0 && bytes.Contains(headLines(m)[0], []byte("HTTP/1.0"))
	}},
	{"chunk extensions", "extensions must be ;token[=token|quoted-string]; net/http skips anything after ;", func(m []byte) bool {
		return chunkExt.Match(m[len(head(m)):])
	}},
	{"chunk size line length", "a chunk-size line over 1 KiB is extension abuse", func(m []byte) bool {
		for _, l := range bytes.Split(m[len(head(m)):], []byte("\n")) {
			if len(l) > maxChunkLine {
				return true
			}
		}
		return false
	}},
}

// requestOnly are the deliberate differences for requests.
var requestOnly = []difference{
	{"Host", "an HTTP/1.1 request has exactly one Host (RFC 9112, 3.2); net/http's server checks it after ReadRequest", func(m []byte) bool {
		return len(fieldsNamed(m, "Host")) != 1 && !bytes.Contains(headLines(m)[0], []byte("HTTP/1.0"))
	}},
	{"Host value", "a Host that is no host name is refused, as net/http's server does after ReadRequest", func(m []byte) bool {
		for _, v := range fieldsNamed(m, "Host") {
			if !validHost(v) {
				return true
			}
		}
		return false
	}},
	{"target bytes", "a request target holds visible ASCII only; net/http takes bytes over 0x7F", func(m []byte) bool {
		for _, c := range headLines(m)[0] {
			if c >= 0x7f {
				return true
			}
		}
		return false
	}},
	{"target form", "a target is a path, *, or an http or https URI; net/http takes any URI (A:, mailto:...)", func(m []byte) bool {
		parts := bytes.SplitN(bytes.TrimSuffix(headLines(m)[0], []byte("\r")), []byte(" "), 3)
		if len(parts) < 2 || len(parts[1]) == 0 {
			return false
		}
		t := parts[1]
		return t[0] != '/' && string(t) != "*" && !hasPrefixFold(t, "http://") && !hasPrefixFold(t, "https://")
	}},
	{"percent-encoding", "a % that starts no %XX escape is refused anywhere in the target; net/http checks the path only", func(m []byte) bool {
		parts := bytes.SplitN(bytes.TrimSuffix(headLines(m)[0], []byte("\r")), []byte(" "), 3)
		return len(parts) >= 2 && !validPercent(parts[1])
	}},
	{"Expect", "an expectation other than 100-continue is answered 417 (RFC 9110, 10.1.1); net/http leaves it to the handler", func(m []byte) bool {
		for _, v := range fieldsNamed(m, "Expect") {
			if !headerIs(v, "100-continue") {
				return true
			}
		}
		return false
	}},
	{"framing lookalikes", "Content_Length or Transfer_Encoding frame a message for servers that map _ to -", func(m []byte) bool {
		return len(fieldsNamed(m, "Content_Length")) > 0 || len(fieldsNamed(m, "Transfer_Encoding")) > 0
	}},
	{"CONNECT", "the balancer does not tunnel", func(m []byte) bool { return bytes.HasPrefix(m, []byte("CONNECT ")) }},
	{"body limit", "a Content-Length over the limit is answered 413", func(m []byte) bool {
		for _, v := range fieldsNamed(m, "Content-Length") {
			if n, ok := parseDecimal(v); ok && n > diffMaxBody {
				return true
			}
		}
		return false
	}},
	{"Content-Length digits", "more than 18 digits is refused; net/http takes up to 19", func(m []byte) bool {
		for _, v := range fieldsNamed(m, "Content-Length") {
			if len(v) > 18 {
				return true
			}
		}
		return false
	}},
}

// responseOnly are the deliberate differences for responses.
var responseOnly = []difference{
	{"status line", "a status code below 100 or a control byte in the reason; net/http takes them", func(m []byte) bool {
		l := bytes.TrimSuffix(headLines(m)[0], []byte("\r"))
		if len(l) < 12 || l[9] == '0' {
			return true
		}
		for _, c := range l[9:12] {
			if c < '0' || c > '9' {
				return true
			}
		}
		for _, c := range l {
			if c < ' ' && c != '\t' || c == 0x7f {
				return true
			}
		}
		return false
	}},
}

func deliberate(m []byte, side []difference) (string, bool) {
	for _, d := range append(shared[:len(shared):len(shared)], side...) {
		if d.is(m) {
			return d.name, true
		}
	}
	return "", false
}

const diffMaxBody = 1 << 20

// checkRequest compares ParseRequest (and ChunkedEnd for a chunked body)
// with http.ReadRequest on msg.
func checkRequest(t *testing.T, msg []byte) {
	t.Helper()
	r, _, st := ParseRequest(msg, []byte("192.0.2.1"), diffMaxBody, nil)
	if st == Handoff && r.HeadLen == 0 {
		return // a head over MaxRequestHead: answered 431 elsewhere, not compared
	}
	oursEnd := -1 // where the whole message ends, for ours; -1: refused or incomplete
	if st == OK || st == Handoff {
		oursEnd = r.Total()
		if r.Chunked {
			end, cst := ChunkedEnd(msg, &Chunks{Next: r.HeadLen}, diffMaxBody)
			oursEnd = -1
			if cst == OK {
				oursEnd = end
			} else if cst == Bad {
				st = Bad
			}
		}
		if oursEnd > len(msg) {
			oursEnd = -1
		}
	}

	rd := bytes.NewReader(msg)
	br := bufio.NewReader(rd)
	req, err := http.ReadRequest(br)
	theirsEnd := -1
	if err == nil {
		if _, err = io.ReadAll(req.Body); err == nil {
			theirsEnd = len(msg) - rd.Len() - br.Buffered()
		}
	}
	switch {
	case st == Bad && err == nil:
		if _, ok := deliberate(msg, requestOnly); !ok {
			t.Errorf("refused (%s) what net/http reads: %q", r.Problem, msg)
		}
	case st == Bad || st == NeedMore:
		return // both refuse, or both lack bytes
	case err != nil:
		if oursEnd >= 0 {
			t.Errorf("read what net/http refuses (%v): %q", err, msg)
		}
	case oursEnd != theirsEnd:
		if _, ok := deliberate(msg, requestOnly); !ok {
			t.Errorf("message ends at %d, net/http says %d: %q", oursEnd, theirsEnd, msg)
		}
	case oursEnd >= 0 && !r.HTTP10 && r.Close != req.Close:
		t.Errorf("close %v, net/http says %v: %q", r.Close, req.Close, msg)
	case oursEnd >= 0 && r.Chunked != (len(req.TransferEncoding) > 0):
		t.Errorf("chunked %v, net/http says %v: %q", r.Chunked, req.TransferEncoding, msg)
	}
}

// checkResponse compares ParseResponse and ResponseEnd with
// http.ReadResponse on msg, the answer to a GET or, with isHEAD, a HEAD.
func checkResponse(t *testing.T, msg []byte, isHEAD bool) {
	t.Helper()
	r, st := ParseResponse(msg, isHEAD)
	for st == OK && r.Status < 200 && r.Status != 101 { // interim heads: dropped, as the data path does
		msg = msg[r.HeadLen:]
		r, st = ParseResponse(msg, isHEAD)
	}
	oursEnd := -1
	if st == OK {
		end, est := ResponseEnd(msg, &r)
		switch est {
		case OK:
			oursEnd = end
		case Bad:
			st = Bad
		case NeedMore:
			if r.Kind == BodyToEOF {
				oursEnd = len(msg)
			}
		}
	}
	method := "GET"
	if isHEAD {
		method = "HEAD"
	}
	rd := bytes.NewReader(msg)
	br := bufio.NewReader(rd)
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	theirsEnd := -1
	if err == nil {
		if _, err = io.ReadAll(resp.Body); err == nil {
			theirsEnd = len(msg) - rd.Len() - br.Buffered()
		}
	}
	switch {
	case st == Bad && err == nil:
		if _, ok := deliberate(msg, responseOnly); !ok {
			t.Errorf("refused what net/http reads: %q", msg)
		}
	case st == Bad || st == NeedMore:
		return
	case err != nil:
		if oursEnd >= 0 {
			t.Errorf("read what net/http refuses (%v): %q", err, msg)
		}
	case oursEnd != theirsEnd:
		if _, ok := deliberate(msg, responseOnly); !ok {
			t.Errorf("response ends at %d, net/http says %d: %q", oursEnd, theirsEnd, msg)
		}
	case oursEnd >= 0 && r.Status != 101 && r.Reusable == resp.Close:
		t.Errorf("reusable %v, net/http says close %v: %q", r.Reusable, resp.Close, msg)
	}
}

func TestDifferentialRequests(t *testing.T) {
	for _, s := range requestSeeds() {
		checkRequest(t, []byte(s))
	}
}

func TestDifferentialResponses(t *testing.T) {
	for _, s := range responseSeeds() {
		checkResponse(t, []byte(s), false)
		checkResponse(t, []byte(s), true)
	}
}

// TestDeliberateDifferencesAreReal: each deliberate difference names a
// message net/http reads and this package refuses, so none is dead.
func TestDeliberateDifferencesAreReal(t *testing.T) {
	reqs := map[string]string{
		"line endings":                          "GET / HTTP/1.1\nHost: a\n\n",
		"obs-fold":                              "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
		"space before a colon":                  "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
		"HTTP version":                          "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
		"Connection naming framing":             "GET / HTTP/1.1\r\nHost: a\r\nConnection: content-length\r\n\r\n",
		"Transfer-Encoding with Content-Length": "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"Transfer-Encoding in HTTP/1.0":         "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		"chunk extensions":                      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;(x)\r\na\r\n0\r\n\r\n",
		"chunk size line length":                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1" + string(bytes.Repeat([]byte("0"), 1100)) + "\r\n",
		"Host":                                  "GET / HTTP/1.1\r\n\r\n",
		"repeated Content-Length":               "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
		"target bytes":                          "GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n",
		"body limit":                            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n",
	}
	for name, m := range reqs {
		r, _, st := ParseRequest([]byte(m), nil, diffMaxBody, nil)
		if st == OK || st == Handoff {
			if _, cst := ChunkedEnd([]byte(m), &Chunks{Next: r.HeadLen}, diffMaxBody); !r.Chunked || cst != Bad {
				t.Errorf("%s: accepted %q", name, m)
			}
		}
		if got, ok := deliberate([]byte(m), requestOnly); !ok {
			t.Errorf("%s: %q is no deliberate difference", name, m)
		} else if got != name && name != "chunk size line length" {
			t.Logf("%s: classed as %s", name, got)
		}
		if _, err := http.ReadRequest(bufio.NewReader(bytes.NewReader([]byte(m)))); err != nil && name != "chunk size line length" && name != "chunk extensions" {
			t.Errorf("%s: net/http refuses %q too (%v): not a difference", name, m, err)
		}
	}
}

// TestChunkFramingBoundMatchesNetHTTP: the bound on chunk framing is
// net/http's: the same bodies pass and fail.
func TestChunkFramingBoundMatchesNetHTTP(t *testing.T) {
	for _, ext := range []int{100, 150, 160, 170, 200} {
		for _, chunks := range []int{50, 100, 120} {
			body := bytes.Repeat([]byte("1;"+string(bytes.Repeat([]byte("e"), ext))+"\r\nx\r\n"), chunks)
			body = append(body, "0\r\n\r\n"...)
			msg := append([]byte("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), body...)
			checkRequest(t, msg)
		}
	}
}

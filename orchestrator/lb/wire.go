package lb

import (
	"bytes"
	"strconv"
	"strings"
)

// The HTTP/1.1 wire format as the event-loop data path (evloop_linux.go)
// reads it: a request head is parsed and rewritten for the replica in one
// pass over the bytes, a response head is parsed and, only when it carries
// hop-by-hop headers, rewritten for the client. Anything outside the common
// shape (a chunked or announced-but-unread request body, Expect, Upgrade,
// HTTP/1.0, an absolute-form target, folded headers, a request head too
// large, ...) is not parsed here at all: the connection is handed whole to
// the fasthttp path, which knows every corner of the protocol. Nothing here
// allocates unless a buffer has to grow.

// wireStatus is what a parse concluded.
type wireStatus uint8

const (
	wireNeedMore wireStatus = iota // the message is not complete yet
	wireOK                         // parsed
	wireHandoff                    // a request the fast path does not take
	wireBad                        // a response that is not HTTP
)

// maxRequestHead bounds a request head on the fast path; a larger one is
// handed off (and answered 431 there). maxResponseHead bounds a replica's
// response head.
const (
	maxRequestHead  = 16 << 10
	maxResponseHead = 64 << 10
)

// reqHead is what the data path needs of a request.
type reqHead struct {
	headLen    int // bytes of the head, blank line included
	bodyLen    int // Content-Length
	method     []byte
	isHEAD     bool
	close      bool   // the client sent Connection: close
	hasKey     bool   // an Idempotency-Key header is present
	shopper    []byte // X-Shopper, or else the shopper cookie
	shopperHdr bool
}

// total is the request's length on the wire.
func (r *reqHead) total() int { return r.headLen + r.bodyLen }

// nextLine returns the line of buf starting at off without its CRLF (or
// LF), and the offset after it; ok is false when buf holds no whole line.
func nextLine(buf []byte, off int) (line []byte, next int, ok bool) {
	i := bytes.IndexByte(buf[off:], '\n')
	if i < 0 {
		return nil, off, false
	}
	line = buf[off : off+i]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, off + i + 1, true
}

// splitHeader splits "Name: value" into the name and the trimmed value; ok
// is false for a line that is not a header field.
func splitHeader(line []byte) (name, value []byte, ok bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 || line[0] == ' ' || line[0] == '\t' || line[i-1] == ' ' || line[i-1] == '\t' {
		return nil, nil, false
	}
	return line[:i], bytes.Trim(line[i+1:], " \t"), true
}

// headerIs reports whether name is want, ignoring ASCII case; want is
// lower case.
func headerIs(name []byte, want string) bool {
	if len(name) != len(want) {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// parseDecimal parses a Content-Length value; it reports false for
// anything but 1 to 18 digits.
func parseDecimal(v []byte) (int, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// tokenChars marks the bytes allowed in an HTTP token (RFC 9110, 5.6.2).
var tokenChars = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c > ' ' && c < 0x7f && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, rune(c))
	}
	return t
}()

// isToken reports whether b is a non-empty HTTP token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChars[c] {
			return false
		}
	}
	return true
}

// parseRequest parses the request at the start of buf and appends to dst
// the head the replica gets: hop-by-hop headers dropped, the client's IP
// appended to X-Forwarded-For, everything else (Host included) as sent. It
// returns wireNeedMore until the head is complete (dst then holds partial
// output and must be discarded); the body need not have arrived yet
// (compare total() with len(buf)). maxBody bounds Content-Length.
func parseRequest(buf []byte, clientIP []byte, maxBody int, dst []byte) (reqHead, []byte, wireStatus) {
	var r reqHead
	line, off, ok := nextLine(buf, 0)
	if !ok {
		if len(buf) >= maxRequestHead {
			return r, dst, wireHandoff
		}
		return r, dst, wireNeedMore
	}
	// Request line: METHOD SP /target SP HTTP/1.1
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return r, dst, wireHandoff
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 <= 0 {
		return r, dst, wireHandoff
	}
	sp2 += sp1 + 1
	r.method = line[:sp1]
	target, version := line[sp1+1:sp2], line[sp2+1:]
	if !isToken(r.method) || target[0] != '/' || string(version) != "HTTP/1.1" ||
		bytes.IndexByte(target, ' ') >= 0 {
		return r, dst, wireHandoff
	}
	r.isHEAD = string(r.method) == "HEAD"
	dst = append(append(dst, line...), "\r\n"...)

	var xff []byte
	seenXFF, seenCL, seenHost := false, false, false
	var cookie []byte
	for {
		line, off, ok = nextLine(buf, off)
		if !ok {
			if len(buf) >= maxRequestHead {
				return r, dst, wireHandoff
			}
			return r, dst, wireNeedMore
		}
		if off > maxRequestHead {
			return r, dst, wireHandoff
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := splitHeader(line)
		if !ok || !isToken(name) || bytes.IndexByte(value, '\r') >= 0 {
			return r, dst, wireHandoff // obs-fold, not a field, or a stray CR
		}
		keep := true
		switch len(name) {
		case 2:
			if headerIs(name, "te") {
				keep = false
			}
		case 4:
			if headerIs(name, "host") {
				if seenHost {
					return r, dst, wireHandoff
				}
				seenHost = true
			}
		case 6:
			if headerIs(name, "expect") {
				return r, dst, wireHandoff
			}
			if headerIs(name, "cookie") {
				cookie = value
			}
		case 7:
			if headerIs(name, "upgrade") {
				return r, dst, wireHandoff
			}
			if headerIs(name, "trailer") {
				keep = false
			}
		case 9:
			if headerIs(name, "x-shopper") && len(value) > 0 {
				r.shopper, r.shopperHdr = value, true
			}
		case 10:
			switch {
			case headerIs(name, "connection"):
				keep = false
				for tok := range bytes.SplitSeq(value, []byte(",")) {
					tok = bytes.Trim(tok, " \t")
					switch {
					case headerIs(tok, "close"):
						r.close = true
					case headerIs(tok, "keep-alive"), len(tok) == 0:
					default:
						return r, dst, wireHandoff // it names more hop-by-hop headers
					}
				}
			case headerIs(name, "keep-alive"):
				keep = false
			}
		case 14:
			if headerIs(name, "content-length") {
				n, ok := parseDecimal(value)
				if !ok || seenCL || n > maxBody {
					return r, dst, wireHandoff
				}
				seenCL, r.bodyLen = true, n
			}
		case 15:
			if headerIs(name, "x-forwarded-for") {
				if seenXFF {
					return r, dst, wireHandoff
				}
				seenXFF, xff, keep = true, value, false
			}
			if headerIs(name, "idempotency-key") {
				r.hasKey = true
			}
		case 16:
			if headerIs(name, "proxy-connection") {
				keep = false
			}
		case 17:
			if headerIs(name, "transfer-encoding") {
				return r, dst, wireHandoff
			}
		}
		if keep {
			dst = append(append(dst, line...), "\r\n"...)
		}
	}
	r.headLen = off
	if !r.shopperHdr && cookie != nil {
		r.shopper = cookieValue(cookie, ShopperCookie)
	}
	dst = append(dst, "X-Forwarded-For: "...)
	if len(xff) > 0 {
		dst = append(append(dst, xff...), ", "...)
	}
	dst = append(append(dst, clientIP...), "\r\n\r\n"...)
	return r, dst, wireOK
}

// cookieValue returns the value of cookie name in a Cookie header.
func cookieValue(h []byte, name string) []byte {
	for part := range bytes.SplitSeq(h, []byte(";")) {
		part = bytes.TrimLeft(part, " \t")
		if len(part) > len(name) && part[len(name)] == '=' && string(part[:len(name)]) == name {
			return bytes.Trim(bytes.TrimSpace(part[len(name)+1:]), `"`)
		}
	}
	return nil
}

// bodyKind is how a response's body is delimited.
type bodyKind uint8

const (
	bodyNone    bodyKind = iota // HEAD, 204, 304
	bodyLength                  // Content-Length
	bodyChunked                 // Transfer-Encoding: chunked
	bodyToEOF                   // neither: until the replica closes
)

// respHead is what the data path needs of a response.
type respHead struct {
	headLen   int
	status    int
	kind      bodyKind
	bodyLen   int  // for bodyLength
	reusable  bool // the replica keeps the connection open
	hopByHop  bool // the head carries headers the client must not get
	chunkNext int  // bodyChunked: offset of the next chunk-size line
}

// parseResponse parses the response head at the start of buf, the answer
// to a request whose method was HEAD when isHEAD. An interim (1xx) head is
// reported as it is; the caller drops it and parses again.
func parseResponse(buf []byte, isHEAD bool) (respHead, wireStatus) {
	var r respHead
	line, off, ok := nextLine(buf, 0)
	if !ok {
		if len(buf) >= maxResponseHead {
			return r, wireBad
		}
		return r, wireNeedMore
	}
	if len(line) < 12 || string(line[:5]) != "HTTP/" || line[8] != ' ' {
		return r, wireBad
	}
	version := line[:8]
	status, ok := parseDecimal(line[9:12])
	if !ok || status < 100 || status > 999 || (len(line) > 12 && line[12] != ' ') {
		return r, wireBad
	}
	r.status = status
	chunked, seenCL, closes, keepAlive := false, false, false, false
	for {
		line, off, ok = nextLine(buf, off)
		if !ok {
			if len(buf) >= maxResponseHead {
				return r, wireBad
			}
			return r, wireNeedMore
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := splitHeader(line)
		if !ok {
			return r, wireBad
		}
		switch len(name) {
		case 7:
			if headerIs(name, "trailer") || headerIs(name, "upgrade") {
				r.hopByHop = true
			}
		case 10:
			switch {
			case headerIs(name, "connection"):
				r.hopByHop = true
				for tok := range bytes.SplitSeq(value, []byte(",")) {
					tok = bytes.Trim(tok, " \t")
					closes = closes || headerIs(tok, "close")
					keepAlive = keepAlive || headerIs(tok, "keep-alive")
				}
			case headerIs(name, "keep-alive"):
				r.hopByHop = true
			}
		case 14:
			if headerIs(name, "content-length") {
				n, ok := parseDecimal(value)
				if !ok || (seenCL && n != r.bodyLen) {
					return r, wireBad
				}
				seenCL, r.bodyLen = true, n
			}
		case 17:
			if headerIs(name, "transfer-encoding") {
				if !bytes.EqualFold(value, []byte("chunked")) {
					return r, wireBad
				}
				chunked = true
			}
		case 18:
			if headerIs(name, "proxy-authenticate") {
				r.hopByHop = true
			}
		}
	}
	r.headLen = off
	// HTTP/1.1 keeps the connection unless told to close; 1.0 closes it
	// unless told to keep it. Close wins over keep-alive.
	r.reusable = !closes && (string(version) == "HTTP/1.1" || keepAlive)
	switch {
	case isHEAD || status < 200 || status == 204 || status == 304:
		r.kind, r.bodyLen = bodyNone, 0
	case chunked:
		r.kind, r.bodyLen, r.chunkNext = bodyChunked, 0, off
	case seenCL:
		r.kind = bodyLength
	default:
		r.kind, r.reusable = bodyToEOF, false
	}
	return r, wireOK
}

// responseEnd returns where the response in buf ends, or ok false while it
// is incomplete. For a chunked body it resumes from r.chunkNext and moves
// it on, so a large body is scanned once. A bodyToEOF response ends when
// the replica closes, which only the caller sees.
func responseEnd(buf []byte, r *respHead) (end int, ok bool, bad bool) {
	switch r.kind {
	case bodyNone:
		return r.headLen, true, false
	case bodyLength:
		end = r.headLen + r.bodyLen
		return end, len(buf) >= end, false
	case bodyToEOF:
		return 0, false, false
	}
	for {
		line, next, ok := nextLine(buf, r.chunkNext)
		if !ok {
			return 0, false, len(buf)-r.chunkNext > 4096
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseUint(string(bytes.Trim(line, " \t")), 16, 62)
		if err != nil || size > 1<<40 {
			return 0, false, true
		}
		if size == 0 { // the last chunk: trailer fields, then a blank line
			for {
				line, next, ok = nextLine(buf, next)
				if !ok {
					return 0, false, len(buf)-r.chunkNext > maxResponseHead
				}
				if len(line) == 0 {
					return next, true, false
				}
			}
		}
		end := next + int(size)
		if len(buf) < end+2 {
			return 0, false, false
		}
		if buf[end] == '\r' {
			end++
		}
		if buf[end] != '\n' {
			return 0, false, true
		}
		r.chunkNext = end + 1
	}
}

// appendResponseHead appends to dst the head the client gets for a
// response whose head is head: hop-by-hop headers dropped (those named in
// Connection too), Content-Length
// set to bodyLen when the replica delimited the body by closing
// (bodyLen >= 0), and Connection: close added when closing.
func appendResponseHead(dst, head []byte, bodyLen int, closing bool) []byte {
	line, off, _ := nextLine(head, 0)
	dst = append(append(dst, line...), "\r\n"...)
	fields := off
	for {
		line, off, _ = nextLine(head, off)
		if len(line) == 0 {
			break
		}
		name, _, _ := splitHeader(line)
		switch {
		case namedInConnection(head[fields:], name):
			continue
		case headerIs(name, "connection"), headerIs(name, "keep-alive"), headerIs(name, "proxy-authenticate"),
			headerIs(name, "trailer"), headerIs(name, "upgrade"):
			continue
		case bodyLen >= 0 && headerIs(name, "content-length"):
			continue
		}
		dst = append(append(dst, line...), "\r\n"...)
	}
	if bodyLen >= 0 {
		dst = append(strconv.AppendInt(append(dst, "Content-Length: "...), int64(bodyLen), 10), "\r\n"...)
	}
	if closing {
		dst = append(dst, "Connection: close\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// namedInConnection reports whether a Connection field of the header
// fields in head lists name (as an extra hop-by-hop header).
func namedInConnection(head, name []byte) bool {
	for off := 0; ; {
		line, next, ok := nextLine(head, off)
		if !ok || len(line) == 0 {
			return false
		}
		off = next
		if n, v, _ := splitHeader(line); headerIs(n, "connection") {
			for tok := range bytes.SplitSeq(v, []byte(",")) {
				if tok = bytes.Trim(tok, " \t"); len(tok) > 0 && bytes.EqualFold(tok, name) {
					return true
				}
			}
		}
	}
}

// appendErrorResponse appends a response the balancer makes itself; the
// answer to a HEAD request (isHEAD) announces the body without sending it.
func appendErrorResponse(dst []byte, code int, body []byte, closing, isHEAD bool) []byte {
	dst = strconv.AppendInt(append(dst, "HTTP/1.1 "...), int64(code), 10)
	dst = append(append(append(dst, ' '), statusText(code)...), "\r\nContent-Type: application/json\r\nContent-Length: "...)
	dst = append(strconv.AppendInt(dst, int64(len(body)), 10), "\r\n"...)
	if closing {
		dst = append(dst, "Connection: close\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	if isHEAD {
		return dst
	}
	return append(dst, body...)
}

func statusText(code int) string {
	switch code {
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	}
	return "Error"
}

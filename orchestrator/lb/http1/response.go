package http1

import (
	"bytes"
	"math"
	"strconv"
)

// BodyKind is how a response's body is delimited.
type BodyKind uint8

const (
	BodyNone    BodyKind = iota // HEAD, 1xx, 204, 304
	BodyLength                  // Content-Length
	BodyChunked                 // Transfer-Encoding: chunked
	BodyToEOF                   // neither: until the replica closes
)

// maxChunkedResponse bounds the data of a chunked response as the parser
// sees it; the data path bounds it far lower.
var maxChunkedResponse = int(min(int64(math.MaxInt), 1<<40))

// Response is what the data path needs of a response.
type Response struct {
	HeadLen  int
	Status   int
	Kind     BodyKind
	BodyLen  int    // for BodyLength
	Reusable bool   // the replica keeps the connection open
	HopByHop bool   // the head carries headers the client must not get
	Chunks   Chunks // BodyChunked: where the scan of the body stands
}

// ParseResponse parses the response head at the start of buf, the answer
// to a request whose method was HEAD when isHEAD. An interim (1xx) head is
// reported as it is; the caller drops it and parses again.
func ParseResponse(buf []byte, isHEAD bool) (Response, Status) {
	var r Response
	line, off, st := nextLine(buf, 0)
	switch st {
	case NeedMore:
		if len(buf) >= MaxResponseHead || bareCR(buf) {
			return r, Bad
		}
		return r, NeedMore
	case Bad:
		return r, Bad
	}
	if len(line) < 12 || line[8] != ' ' {
		return r, Bad
	}
	version := line[:8]
	if string(version) != "HTTP/1.1" && string(version) != "HTTP/1.0" {
		return r, Bad
	}
	status, ok := parseDecimal(line[9:12])
	if !ok || status < 100 || (len(line) > 12 && line[12] != ' ') || !all(line[12:], &valueChars) {
		return r, Bad
	}
	r.Status = status
	chunked, seenCL, seenTE, closes, keepAlive := false, false, false, false, false
	for {
		line, off, st = nextLine(buf, off)
		switch st {
		case NeedMore:
			if len(buf) >= MaxResponseHead || bareCR(buf[off:]) {
				return r, Bad
			}
			return r, NeedMore
		case Bad:
			return r, Bad
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := splitField(line)
		if !ok {
			return r, Bad
		}
		switch len(name) {
		case 7:
			if headerIs(name, "trailer") || headerIs(name, "upgrade") {
				r.HopByHop = true
			}
		case 10:
			switch {
			case headerIs(name, "connection"):
				r.HopByHop = true
				bad := false
				forEachToken(value, func(tok []byte) bool {
					switch {
					case !isToken(tok), headerIs(tok, "content-length"), headerIs(tok, "transfer-encoding"):
						bad = true
					case headerIs(tok, "close"):
						closes = true
					case headerIs(tok, "keep-alive"):
						keepAlive = true
					}
					return !bad
				})
				if bad {
					return r, Bad
				}
			case headerIs(name, "keep-alive"):
				r.HopByHop = true
			}
		case 14:
			if headerIs(name, "content-length") {
				n, ok := parseDecimal(value)
				if !ok || seenCL { // even the same length twice: one reading only
					return r, Bad
				}
				seenCL, r.BodyLen = true, n
			}
		case 17:
			if headerIs(name, "transfer-encoding") {
				if seenTE || !headerIs(value, "chunked") {
					return r, Bad
				}
				seenTE, chunked = true, true
			}
		case 18:
			if headerIs(name, "proxy-authenticate") {
				r.HopByHop = true
			}
		}
	}
	r.HeadLen = off
	http10 := string(version) == "HTTP/1.0"
	if chunked && (seenCL || http10) {
		return r, Bad // two framings, or one HTTP/1.0 does not have
	}
	// HTTP/1.1 keeps the connection unless told to close; 1.0 closes it
	// unless told to keep it. Close wins over keep-alive.
	r.Reusable = !closes && (!http10 || keepAlive)
	switch {
	case isHEAD || status < 200 || status == 204 || status == 304:
		r.Kind, r.BodyLen = BodyNone, 0
	case chunked:
		r.Kind, r.BodyLen, r.Chunks = BodyChunked, 0, Chunks{Next: off}
	case seenCL:
		r.Kind = BodyLength
	default:
		r.Kind, r.Reusable = BodyToEOF, false
	}
	return r, OK
}

// ResponseEnd returns where the response in buf ends with OK, NeedMore
// while it is incomplete, or Bad for a malformed chunked body. For a
// chunked body it resumes from r.Chunks and moves it on, so a large body
// is scanned once. A BodyToEOF response ends when the replica closes, which
// only the caller sees: it is NeedMore here.
func ResponseEnd(buf []byte, r *Response) (int, Status) {
	switch r.Kind {
	case BodyNone:
		return r.HeadLen, OK
	case BodyLength:
		end := r.HeadLen + r.BodyLen
		if len(buf) < end {
			return 0, NeedMore
		}
		return end, OK
	case BodyToEOF:
		return 0, NeedMore
	}
	return ChunkedEnd(buf, &r.Chunks, maxChunkedResponse)
}

// AppendResponseHead appends to dst the head the client gets for a
// response whose (parsed) head is head: hop-by-hop headers dropped (those
// named in Connection too), Content-Length set to bodyLen when the replica
// delimited the body by closing (bodyLen >= 0), and Connection: close added
// when closing.
func AppendResponseHead(dst, head []byte, bodyLen int, closing bool) []byte {
	line, off, _ := nextLine(head, 0)
	dst = append(append(dst, line...), "\r\n"...)
	fields := off
	for {
		line, off, _ = nextLine(head, off)
		if len(line) == 0 {
			break
		}
		name, _, _ := splitField(line)
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
		line, next, st := nextLine(head, off)
		if st != OK || len(line) == 0 {
			return false
		}
		off = next
		if n, v, _ := splitField(line); headerIs(n, "connection") {
			found := false
			forEachToken(v, func(tok []byte) bool {
				found = bytes.EqualFold(tok, name)
				return !found
			})
			if found {
				return true
			}
		}
	}
}

// AppendErrorResponse appends a response the balancer makes itself; the
// answer to a HEAD request (isHEAD) announces the body without sending it.
// Both data paths answer with exactly these bytes.
func AppendErrorResponse(dst []byte, code int, body []byte, closing, isHEAD bool) []byte {
	dst = strconv.AppendInt(append(dst, "HTTP/1.1 "...), int64(code), 10)
	dst = append(append(append(dst, ' '), StatusText(code)...), "\r\nContent-Type: application/json\r\nContent-Length: "...)
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

// StatusText is the reason phrase of a status the balancer answers with.
func StatusText(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 408:
		return "Request Timeout"
	case 413:
		return "Content Too Large"
	case 417:
		return "Expectation Failed"
	case 431:
		return "Request Header Fields Too Large"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	}
	return "Error"
}

package http1

import (
	"bytes"
	"net/url"
)

// Names the balancer reads in a request; package lb exports the same.
const (
	ShopperCookie = "shopper"
)

// Request is what the data path needs of a request.
type Request struct {
	HeadLen    int  // bytes of the head, blank line included
	BodyLen    int  // Content-Length
	Chunked    bool // Transfer-Encoding: chunked (the body's length is unknown)
	HTTP10     bool
	Method     []byte
	IsHEAD     bool
	Close      bool   // the client sent Connection: close
	HasKey     bool   // an Idempotency-Key header is present
	Expect100  bool   // Expect: 100-continue (not forwarded: the balancer answers it)
	Shopper    []byte // X-Shopper, or else the shopper cookie
	ShopperHdr bool

	// For Bad: the status to answer (400, 413, 417) and why.
	Code    int
	Problem string
}

// Total is the request's length on the wire, for a Content-Length body.
func (r *Request) Total() int { return r.HeadLen + r.BodyLen }

func (r *Request) bad(code int, problem string) Status {
	r.Code, r.Problem = code, problem
	return Bad
}

// ParseRequest parses the request at the start of buf and appends to dst
// the head the replica gets: hop-by-hop headers dropped, the client's IP
// appended to X-Forwarded-For, everything else (Host included) as sent. It
// returns NeedMore until the head is complete (dst then holds partial
// output and must be discarded); the body need not have arrived yet
// (compare Total() with len(buf)). maxBody bounds Content-Length.
//
// A Handoff result still checks the whole head: a request that is both
// uncommon and ambiguous is Bad. dst is then partial.
func ParseRequest(buf []byte, clientIP []byte, maxBody int, dst []byte) (Request, []byte, Status) {
	var r Request
	line, off, st := nextLine(buf, 0)
	switch st {
	case NeedMore:
		if len(buf) >= MaxRequestHead {
			return r, dst, Handoff
		}
		if bareCR(buf) {
			return r, dst, r.bad(400, "bare CR in the request line")
		}
		return r, dst, NeedMore
	case Bad:
		return r, dst, r.bad(400, "request line not ended by CRLF")
	}
	// Request line: METHOD SP target SP HTTP/1.1
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return r, dst, r.bad(400, "malformed request line")
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 <= 0 {
		return r, dst, r.bad(400, "malformed request line")
	}
	sp2 += sp1 + 1
	r.Method = line[:sp1]
	target, version := line[sp1+1:sp2], line[sp2+1:]
	if !isToken(r.Method) {
		return r, dst, r.bad(400, "method is not a token")
	}
	if !all(target, &targetChars) {
		return r, dst, r.bad(400, "control, space or non-ASCII byte in the request target")
	}
	switch string(version) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		r.HTTP10 = true
	default:
		return r, dst, r.bad(400, "HTTP version other than 1.1 or 1.0")
	}
	handoff := r.HTTP10
	switch {
	case string(r.Method) == "CONNECT":
		return r, dst, r.bad(400, "CONNECT is not served")
	case target[0] == '/': // origin-form
		if !validPercent(target) {
			return r, dst, r.bad(400, "malformed percent-encoding in the request target")
		}
	case string(target) == "*":
		handoff = true // asterisk-form
	case hasPrefixFold(target, "http://"), hasPrefixFold(target, "https://"):
		// absolute-form: rare, so checked the thorough way
		if _, err := url.ParseRequestURI(string(target)); err != nil || !validPercent(target) {
			return r, dst, r.bad(400, "malformed absolute URI")
		}
		handoff = true
	default:
		return r, dst, r.bad(400, "request target is not a path, an absolute URI or *")
	}
	r.IsHEAD = string(r.Method) == "HEAD"
	dst = append(append(dst, line...), "\r\n"...)

	var xff, cookie []byte
	seenXFF, seenCL, seenTE, hosts := false, false, false, 0
	for {
		line, off, st = nextLine(buf, off)
		switch st {
		case NeedMore:
			if len(buf) >= MaxRequestHead {
				return r, dst, Handoff
			}
			if bareCR(buf[off:]) {
				return r, dst, r.bad(400, "bare CR in a header field")
			}
			return r, dst, NeedMore
		case Bad:
			return r, dst, r.bad(400, "header line not ended by CRLF")
		}
		if off > MaxRequestHead {
			return r, dst, Handoff
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := splitField(line)
		if !ok {
			return r, dst, r.bad(400, "malformed header field")
		}
		keep := true
		switch len(name) {
		case 2:
			if headerIs(name, "te") {
				keep = false
			}
		case 4:
			if headerIs(name, "host") {
				hosts++
				if hosts > 1 {
					return r, dst, r.bad(400, "more than one Host")
				}
				if !validHost(value) {
					return r, dst, r.bad(400, "Host is not a host name")
				}
			}
		case 6:
			if headerIs(name, "expect") {
				if !headerIs(value, "100-continue") {
					return r, dst, r.bad(417, "Expect other than 100-continue")
				}
				r.Expect100, keep = !r.HTTP10, false
			}
			if headerIs(name, "cookie") {
				cookie = value
			}
		case 7:
			if headerIs(name, "upgrade") {
				handoff = true
			}
			if headerIs(name, "trailer") {
				keep = false
			}
		case 9:
			if headerIs(name, "x-shopper") && len(value) > 0 {
				r.Shopper, r.ShopperHdr = value, true
			}
		case 10:
			switch {
			case headerIs(name, "connection"):
				keep = false
				problem := ""
				forEachToken(value, func(tok []byte) bool {
					switch {
					case !isToken(tok):
						problem = "Connection is not a list of tokens"
					case headerIs(tok, "close"):
						r.Close = true
					case headerIs(tok, "keep-alive"):
					case headerIs(tok, "host"), headerIs(tok, "content-length"), headerIs(tok, "transfer-encoding"):
						problem = "Connection names a field the message needs"
					default:
						handoff = true // it names more hop-by-hop headers
					}
					return problem == ""
				})
				if problem != "" {
					return r, dst, r.bad(400, problem)
				}
			case headerIs(name, "keep-alive"):
				keep = false
			}
		case 14:
			if lookalike(name, "content-length") {
				return r, dst, r.bad(400, "a field named like Content-Length")
			}
			if headerIs(name, "content-length") {
				n, ok := parseDecimal(value)
				switch {
				case !ok:
					return r, dst, r.bad(400, "Content-Length is not a number")
				case seenCL:
					return r, dst, r.bad(400, "more than one Content-Length")
				}
				seenCL, r.BodyLen = true, n
			}
		case 15:
			if headerIs(name, "x-forwarded-for") {
				if seenXFF {
					handoff = true
				}
				seenXFF, xff, keep = true, value, false
			}
			if headerIs(name, "idempotency-key") {
				r.HasKey = true
			}
		case 16:
			if headerIs(name, "proxy-connection") {
				keep = false
			}
		case 17:
			if lookalike(name, "transfer-encoding") {
				return r, dst, r.bad(400, "a field named like Transfer-Encoding")
			}
			if headerIs(name, "transfer-encoding") {
				if seenTE || !headerIs(value, "chunked") {
					return r, dst, r.bad(400, "Transfer-Encoding other than a single chunked")
				}
				seenTE = true
			}
		}
		if keep {
			dst = append(append(dst, line...), "\r\n"...)
		}
	}
	r.HeadLen = off
	switch {
	case hosts == 0 && !r.HTTP10:
		return r, dst, r.bad(400, "HTTP/1.1 request without Host")
	case seenTE && seenCL:
		return r, dst, r.bad(400, "both Content-Length and Transfer-Encoding")
	case seenTE && r.HTTP10:
		return r, dst, r.bad(400, "Transfer-Encoding in an HTTP/1.0 request")
	case r.BodyLen > maxBody:
		return r, dst, r.bad(413, "request body over the limit")
	case seenTE:
		r.Chunked, handoff = true, true
	}
	if !r.ShopperHdr && cookie != nil {
		r.Shopper = CookieValue(cookie, ShopperCookie)
	}
	if handoff {
		return r, dst, Handoff
	}
	dst = append(dst, "X-Forwarded-For: "...)
	if len(xff) > 0 {
		dst = append(append(dst, xff...), ", "...)
	}
	dst = append(append(dst, clientIP...), "\r\n\r\n"...)
	return r, dst, OK
}

// CookieValue returns the value of cookie name in a Cookie header.
func CookieValue(h []byte, name string) []byte {
	for part := range bytes.SplitSeq(h, []byte(";")) {
		part = bytes.TrimLeft(part, " \t")
		if len(part) > len(name) && part[len(name)] == '=' && string(part[:len(name)]) == name {
			return bytes.Trim(bytes.TrimSpace(part[len(name)+1:]), `"`)
		}
	}
	return nil
}

// hasPrefixFold reports whether b begins with prefix, ignoring ASCII case;
// prefix is lower case.
func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && headerIs(b[:len(prefix)], prefix)
}

// validPercent reports whether every % in b starts a %XX escape.
func validPercent(b []byte) bool {
	for i := bytes.IndexByte(b, '%'); i >= 0; {
		if i+2 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) {
			return false
		}
		j := bytes.IndexByte(b[i+3:], '%')
		if j < 0 {
			return true
		}
		i += 3 + j
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// lookalike reports whether name is want with some '-' written '_': a
// field some servers take for want (as CGI maps both to _), which would
// frame the message otherwise than the balancer did.
func lookalike(name []byte, want string) bool {
	if len(name) != len(want) || bytes.IndexByte(name, '_') < 0 {
		return false
	}
	for i := range len(name) {
		c := name[i]
		switch {
		case c == '_' && want[i] == '-':
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// validHost reports whether v is a Host value (RFC 9110, 7.2): empty, or a
// host name or an IP literal in brackets, then an optional :port, with no
// % that starts no %XX escape.
func validHost(v []byte) bool {
	if len(v) > 0 && v[0] == '[' {
		i := bytes.IndexByte(v, ']')
		if i < 0 || !all(v[1:i], &hostChars) {
			return false
		}
		v = v[i+1:]
		if len(v) > 0 && v[0] != ':' {
			return false
		}
	} else if i := bytes.IndexByte(v, ':'); i >= 0 || !all(v, &hostChars) {
		if i < 0 || !all(v[:i], &hostChars) || bytes.IndexAny(v[:i], "[]") >= 0 {
			return false
		}
		v = v[i:]
	} else {
		return validPercent(v) && bytes.IndexAny(v, "[]") < 0
	}
	if len(v) > 0 { // :port
		for _, c := range v[1:] {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

package http1

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
)

// Status is what a parse concluded.
type Status uint8

const (
	NeedMore Status = iota // the message is not complete yet
	OK                     // parsed
	Handoff                // a well-framed request the fast path does not take
	Bad                    // a message that is not strict HTTP/1.1: refuse it
)

// MaxRequestHead bounds a request head on the fast path; a larger one is
// handed off (and answered 431 there). MaxResponseHead bounds a replica's
// response head, and its chunked trailers.
const (
	MaxRequestHead  = 16 << 10
	MaxResponseHead = 64 << 10
	// maxChunkLine bounds a chunk-size line, extensions included: a
	// replica or client sending longer ones is abusing them.
	maxChunkLine = 1024
)

// nextLine returns the line of buf starting at off without its CRLF, and
// the offset after it. It reports NeedMore when buf holds no whole line and
// Bad for a line ending in a bare LF.
func nextLine(buf []byte, off int) (line []byte, next int, st Status) {
	i := bytes.IndexByte(buf[off:], '\n')
	if i < 0 {
		return nil, off, NeedMore
	}
	if i == 0 || buf[off+i-1] != '\r' {
		return nil, off, Bad
	}
	return buf[off : off+i-1], off + i + 1, OK
}

// byte classes.
var (
	// tokenChars marks the bytes allowed in a token (RFC 9110, 5.6.2).
	tokenChars [256]bool
	// valueChars marks the bytes allowed in a field value: visible ASCII,
	// obs-text, space and tab (RFC 9110, 5.5). No CR, LF, NUL or DEL.
	valueChars [256]bool
	// targetChars marks the bytes allowed in a request-target: visible
	// ASCII only.
	targetChars [256]bool
	// hostChars marks the bytes allowed in Host: those of a reg-name, an
	// IP literal and a port (RFC 3986), as net/http's server takes them.
	hostChars [256]bool
)

func init() {
	for c := range 256 {
		tokenChars[c] = c > ' ' && c < 0x7f && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, rune(c))
		valueChars[c] = c == '\t' || (c >= ' ' && c != 0x7f)
		targetChars[c] = c > ' ' && c < 0x7f
		hostChars[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.ContainsRune("!$%&'()*+,-.:;=[]_~", rune(c))
	}
}

// isToken reports whether b is a non-empty token.
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

// all reports whether every byte of b is in class.
func all(b []byte, class *[256]bool) bool {
	for _, c := range b {
		if !class[c] {
			return false
		}
	}
	return true
}

// splitField splits "Name: value" into the name and the value without its
// surrounding spaces and tabs; ok is false for a line that is not a strict
// field (a name that is not a token, space before the colon, a folded
// line, a control byte in the value).
func splitField(line []byte) (name, value []byte, ok bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 || !isToken(line[:i]) {
		return nil, nil, false
	}
	value = trimOWS(line[i+1:])
	if !validValue(value) {
		return nil, nil, false
	}
	return line[:i], value, true
}

// validValue reports whether every byte of b is in valueChars. It looks
// at eight bytes at a time: values are most of a head's bytes, and almost
// never hold a byte below 0x20 or a DEL.
func validValue(b []byte) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		below := (x - ones*0x20) &^ x & highs // a byte under 0x20 (or a false alarm above 0x80)
		del := x ^ ones*0x7f
		isDel := (del - ones) &^ del & highs // a 0x7f byte
		if below|isDel != 0 && !all(b[:8], &valueChars) {
			return false
		}
		b = b[8:]
	}
	return all(b, &valueChars)
}

// trimOWS trims spaces and tabs from both ends of b.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
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
		if c < '0' || c > '9' || n > (math.MaxInt-9)/10 {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// forEachToken calls f with each element of a comma-separated list
// (RFC 9110, 5.6.1), spaces trimmed and empty elements skipped; it stops
// and reports false when f does.
func forEachToken(v []byte, f func(tok []byte) bool) bool {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var tok []byte
		if i < 0 {
			tok, v = v, nil
		} else {
			tok, v = v[:i], v[i+1:]
		}
		if tok = trimOWS(tok); len(tok) > 0 && !f(tok) {
			return false
		}
	}
	return true
}

// Chunks is where the scan of a chunked body stands.
type Chunks struct {
	Next     int  // offset in the buffer of the next chunk-size line
	Data     int  // data bytes so far
	TooLarge bool // Bad because the data passed maxData
	excess   int  // bytes of chunk framing beyond what the data justifies
}

// maxChunkExcess bounds the framing bytes of a chunked body beyond 16 per
// chunk and twice its data, as net/http does: a body of one-byte chunks
// with long extensions is abuse.
const maxChunkExcess = 16 << 10

// ChunkedEnd scans a chunked body in buf from c.Next, the offset of a
// chunk-size line, and moves c.Next on past every whole chunk, so a large
// body is scanned once. It returns the offset after the body (last chunk
// and trailers included) with OK, NeedMore while the body is incomplete, or
// Bad. A body whose data exceeds maxData, or with too much framing, is Bad.
func ChunkedEnd(buf []byte, c *Chunks, maxData int) (int, Status) {
	next, decoded := &c.Next, &c.Data
	for {
		off := *next
		line, after, st := nextLine(buf, off)
		switch st {
		case NeedMore:
			if len(buf)-off > maxChunkLine {
				return 0, Bad
			}
			return 0, NeedMore
		case Bad:
			return 0, Bad
		}
		if len(line) > maxChunkLine {
			return 0, Bad
		}
		size, ok := chunkSize(line)
		if !ok {
			return 0, Bad
		}
		if size > maxData-*decoded {
			c.TooLarge = true
			return 0, Bad
		}
		if c.excess = max(c.excess+len(line)+2-16-2*size, 0); c.excess > maxChunkExcess {
			return 0, Bad
		}
		if size == 0 { // the last chunk: trailer fields, then a blank line
			for p := after; ; {
				tl, n, st := nextLine(buf, p)
				switch {
				case st == NeedMore:
					if len(buf)-after > MaxResponseHead {
						return 0, Bad
					}
					return 0, NeedMore
				case st == Bad || n-after > MaxResponseHead:
					return 0, Bad
				case len(tl) == 0:
					return n, OK
				}
				if _, _, ok := splitField(tl); !ok {
					return 0, Bad
				}
				p = n
			}
		}
		end := after + size
		if len(buf) < end+2 {
			return 0, NeedMore
		}
		if buf[end] != '\r' || buf[end+1] != '\n' {
			return 0, Bad
		}
		*decoded += size
		*next = end + 2
	}
}

// chunkSize parses a chunk-size line: 1 to 16 hex digits, then any number
// of extensions, ;name or ;name=value with a token or quoted-string value,
// with spaces or tabs allowed around ; and =.
func chunkSize(line []byte) (int, bool) {
	i, size := 0, 0
	for ; i < len(line); i++ {
		c := line[i]
		var d int
		switch {
		case '0' <= c && c <= '9':
			d = int(c - '0')
		case 'a' <= c && c <= 'f':
			d = int(c-'a') + 10
		case 'A' <= c && c <= 'F':
			d = int(c-'A') + 10
		default:
			goto ext
		}
		if i >= 15 || size > math.MaxInt>>4 { // 15 hex digits, and what an int holds
			return 0, false
		}
		size = size<<4 | d
	}
ext:
	if i == 0 {
		return 0, false
	}
	rest := line[i:]
	for {
		rest = trimOWS(rest)
		if len(rest) == 0 {
			return size, true
		}
		if rest[0] != ';' {
			return 0, false
		}
		rest = trimOWS(rest[1:])
		n := tokenLen(rest)
		if n == 0 {
			return 0, false
		}
		rest = trimOWS(rest[n:])
		if len(rest) == 0 || rest[0] != '=' {
			continue
		}
		rest = trimOWS(rest[1:])
		if len(rest) > 0 && rest[0] == '"' {
			n = quotedLen(rest)
		} else {
			n = tokenLen(rest)
		}
		if n == 0 {
			return 0, false
		}
		rest = rest[n:]
	}
}

// tokenLen returns the length of the token at the start of b.
func tokenLen(b []byte) int {
	n := 0
	for n < len(b) && tokenChars[b[n]] {
		n++
	}
	return n
}

// quotedLen returns the length of the quoted-string at the start of b, or
// 0 when it is not one.
func quotedLen(b []byte) int {
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			i++
			if i >= len(b) || !valueChars[b[i]] {
				return 0
			}
		case !valueChars[c]:
			return 0
		}
	}
	return 0
}

// bareCR reports whether the unfinished line b holds a CR that is not its
// last byte: one no LF can follow.
func bareCR(b []byte) bool {
	i := bytes.IndexByte(b, '\r')
	return i >= 0 && i < len(b)-1
}

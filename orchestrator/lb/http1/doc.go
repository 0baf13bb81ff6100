// Package http1 reads and writes the HTTP/1.1 wire format the way the
// balancer needs it: a request head is parsed and rewritten for the replica
// in one pass over the bytes, a response head is parsed and, only when it
// must be, rewritten for the client. Nothing here allocates unless a buffer
// has to grow.
//
// # Framing is strict
//
// A proxy and the server behind it must agree on where every message ends,
// or a crafted message is one request to the proxy and two to the server
// (request smuggling). So the parsers take only messages whose framing has
// one reading (RFC 9112), and refuse the rest rather than guess:
//
//   - every line ends in CRLF: a bare LF, or a CR anywhere but before LF,
//     is refused;
//   - the request line is METHOD SP target SP version, the method a
//     token, the target visible ASCII only, the version HTTP/1.1 or
//     HTTP/1.0; a status line is HTTP/1.x SP 3DIGIT [SP reason];
//   - a field is a token, a colon and a value of visible bytes, spaces and
//     tabs; no space before the colon, no folded line, no other control
//     byte (NUL, CR, DEL...);
//   - a message has at most one Content-Length, of 1 to 18 digits, or one Transfer-Encoding whose value
//     is exactly chunked; never both; an HTTP/1.0 message has no
//     Transfer-Encoding;
//   - an HTTP/1.1 request has exactly one Host, a host name; a Connection
//     field lists tokens and never names Host, Content-Length or
//     Transfer-Encoding; no field is named Content_Length or
//     Transfer_Encoding (some servers map _ to -);
//   - a chunk size is 1 to 15 hex digits, a chunk extension is
//     ;name[=value] with token or quoted values, a chunk-size line is at
//     most 1 KiB, the framing bytes stay within net/http's bound (16 per
//     chunk and twice the data, plus 16 KiB), a chunk's data is followed by
//     CRLF, and trailer fields follow the field rules.
//
// ParseRequest reports such a request as Bad with the status to answer
// (400, 413 for a body over the limit, 417 for an Expect other than
// 100-continue); the balancer answers it and
// closes the connection. ParseResponse and ResponseEnd report a response
// as Bad; the balancer answers the client 502 and discards the connection
// to the replica. The differences from net/http's reader are listed, with
// their reasons, in diff_test.go.
//
// # Handoff
//
// A request outside the common shape but well framed (a chunked body,
// Upgrade, HTTP/1.0, a target that is not a path, a Connection
// field naming other fields, a second X-Forwarded-For, a head over
// MaxRequestHead) is reported as Handoff: the event loop gives the
// connection to the fasthttp path, which knows every corner of the
// protocol.
package http1

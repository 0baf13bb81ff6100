package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
)

// guard is the one middleware every request passes. It stops three attacks
// on an API that can start containers:
//   - DNS rebinding: a page on evil.example re-resolves its name to
//     127.0.0.1; its requests then reach us with Host: evil.example.
//   - cross-site requests: a page elsewhere posts to http://127.0.0.1:8080;
//     the browser says where it comes from in Origin.
//   - anyone else on the network, when the controller listens beyond
//     loopback: they need the token.
type guard struct {
	allowed  []hostPattern
	token    [sha256.Size]byte
	hasToken bool
}

// hostPattern is one AllowedHosts entry; an empty port matches any port.
type hostPattern struct {
	host, port string
}

// CheckAllowedHost reports whether h can be an Options.AllowedHosts entry.
func CheckAllowedHost(h string) error {
	_, err := parseAllowedHosts([]string{h})
	return err
}

// IsLoopbackHost reports whether host (a name or address, without port; IPv6
// with or without brackets) can only mean this machine: localhost, 127.x or ::1.
func IsLoopbackHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return isLoopback(host)
}

func parseAllowedHosts(hosts []string) ([]hostPattern, error) {
	var out []hostPattern
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" || strings.ContainsAny(h, "/?#@ ") {
			return nil, fmt.Errorf("allowed host %q must be a host name or address, optionally with a port, like flotilla.lan or flotilla.lan:8080", h)
		}
		host, port, ok := splitHost(h)
		if !ok {
			return nil, fmt.Errorf("allowed host %q is not a valid host[:port]", h)
		}
		out = append(out, hostPattern{host: host, port: port})
	}
	return out, nil
}

func (g *guard) handle(c *gin.Context) {
	r := c.Request
	h := c.Writer.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")

	if !g.hostOK(r.Host) {
		abort(c, http.StatusForbidden, fmt.Sprintf("host %q is not allowed: the API answers to localhost, 127.0.0.1 and [::1], and to hosts given with --allowed-host", r.Host))
		return
	}
	if origins, sent := r.Header["Origin"]; sent {
		if len(origins) != 1 || !g.originOK(origins[0], r) {
			abort(c, http.StatusForbidden, fmt.Sprintf("cross-origin request refused: Origin %q is not this controller; the API answers only pages it serves itself and clients that send no Origin", strings.Join(origins, ", ")))
			return
		}
	}
	if g.hasToken && r.Method == http.MethodGet && r.URL.Path == "/" && r.URL.Query().Has("token") {
		// The dashboard's way in: a browser cannot send an Authorization
		// header on a websocket, so a valid token in the link becomes an
		// HttpOnly, same-site cookie, and the token leaves the address bar.
		if !g.tokenOK("Bearer " + r.URL.Query().Get("token")) {
			abort(c, http.StatusUnauthorized, "the token in the link is not this controller's")
			return
		}
		http.SetCookie(c.Writer, &http.Cookie{Name: tokenCookie, Value: r.URL.Query().Get("token"), Path: "/",
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
		c.Redirect(http.StatusSeeOther, "/")
		c.Abort()
		return
	}
	if g.hasToken && !g.tokenOK(r.Header.Get("Authorization")) && !g.cookieOK(r) {
		h.Set("WWW-Authenticate", `Bearer realm="flotilla"`)
		abort(c, http.StatusUnauthorized, `a token is required: send "Authorization: Bearer <token>" with the token the controller was started with, or open the dashboard at /?token=<token>`)
		return
	}
	c.Next()
}

// tokenCookie carries the token for the dashboard's page and websocket.
const tokenCookie = "flotilla_token"

func (g *guard) cookieOK(r *http.Request) bool {
	ck, err := r.Cookie(tokenCookie)
	return err == nil && g.tokenOK("Bearer "+ck.Value)
}

func (g *guard) tokenOK(auth string) bool {
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	// Comparing digests keeps the comparison constant-time in the length too.
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(sum[:], g.token[:]) == 1
}

// hostOK reports whether a Host header names this controller: a loopback
// name or address, or an allowed host.
func (g *guard) hostOK(hostport string) bool {
	host, port, ok := splitHost(strings.ToLower(hostport))
	if !ok {
		return false
	}
	return isLoopback(host) || g.allowedHost(host, port)
}

func (g *guard) allowedHost(host, port string) bool {
	for _, p := range g.allowed {
		if p.host == host && (p.port == "" || p.port == port) {
			return true
		}
	}
	return false
}

// originOK reports whether a browser's Origin is this controller itself. The
// Host header already passed hostOK. Accepted:
//   - the exact origin of the request (scheme://Host);
//   - a loopback origin on the same port: localhost and 127.0.0.1 are the
//     same controller to a learner, and nothing else can own that port;
//   - an allowed host, which is how a reverse proxy in front reaches us.
//
// "null" (sandboxed frames, file:// pages) and anything malformed is refused.
func (g *guard) originOK(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	oHost, oPort, ok := splitHost(strings.ToLower(u.Host))
	if !ok {
		return false
	}
	if oPort == "" {
		oPort = defaultPort(u.Scheme)
	}
	if g.allowedHost(oHost, oPort) {
		return true
	}
	rHost, rPort, ok := splitHost(strings.ToLower(r.Host))
	if !ok {
		return false
	}
	if rPort == "" {
		rPort = "80"
		if r.TLS != nil {
			rPort = "443"
		}
	}
	if oHost == rHost && oPort == rPort {
		return true
	}
	return isLoopback(oHost) && isLoopback(rHost) && oPort == rPort
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// isLoopback reports whether host (lowercase, no port, no brackets) can only
// mean this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return false
	}
	return a.Unmap().IsLoopback()
}

// splitHost splits "host", "host:port", "[v6]" or "[v6]:port". Unlike
// net.SplitHostPort the port is optional, as it is in a Host header.
func splitHost(hostport string) (host, port string, ok bool) {
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", "", false
		}
		host, rest := hostport[1:end], hostport[end+1:]
		if _, err := netip.ParseAddr(host); err != nil || !strings.Contains(host, ":") {
			return "", "", false
		}
		if rest == "" {
			return host, "", true
		}
		if !strings.HasPrefix(rest, ":") || !validPort(rest[1:]) {
			return "", "", false
		}
		return host, rest[1:], true
	}
	host, port, hasPort := strings.Cut(hostport, ":")
	if host == "" || strings.ContainsAny(host, "[]:/@ ") {
		return "", "", false
	}
	if hasPort && !validPort(port) {
		return "", "", false
	}
	return host, port, true
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	n := 0
	for _, r := range p {
		if r < '0' || r > '9' {
			return false
		}
		n = n*10 + int(r-'0')
	}
	return n <= 65535
}

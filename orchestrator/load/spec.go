package load

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Bounds and defaults of a Spec. A zero field takes its default.
const (
	MaxRate            = 2000
	DefaultRate        = 50
	MaxConcurrency     = 256
	DefaultConcurrency = 16
	MinDuration        = time.Second
	MaxDuration        = 10 * time.Minute
	DefaultDuration    = 10 * time.Second
	DefaultTimeout     = 2 * time.Second
	MaxTimeout         = 30 * time.Second
	MaxTargets         = 64
	MaxPaths           = 32
	MaxShoppers        = 1000
	// DefaultJourneyShoppers is Shoppers of a journey run that names none.
	DefaultJourneyShoppers = 10
	MaxHeaders             = 32
	MaxBodyBytes           = 64 << 10
	DefaultPath            = "/catalog"
)

// ErrInvalid marks a Spec that can never run as written.
var ErrInvalid = errors.New("invalid load spec")

// ValidationError says which field of a Spec is wrong and why. It wraps
// ErrInvalid. Field uses the JSON names ("rate", "targets[1]").
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }
func (e *ValidationError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Spec describes one load run. The zero value of a field means its default.
// In JSON the durations are Go duration strings ("10s", "250ms").
type Spec struct {
	// Target is the one address to load, "127.0.0.1:PORT", typically a
	// group's balancer. It may also be a comma-separated list, read as
	// Targets. Set Target or Targets, not both.
	Target string
	// Targets are several addresses, for a group without a balancer. Each
	// shopper is pinned to one: shopper i sends only to Targets[i % n]. An
	// anonymous run (Shoppers 0) takes them in turn.
	Targets []string
	// Rate is the requests per second of the whole run, paced open-loop: a
	// slow server does not slow the schedule. 1..MaxRate, default DefaultRate.
	Rate int
	// Concurrency bounds the requests in flight, 1..MaxConcurrency. A tick of
	// the schedule that finds every slot busy is dropped, not queued.
	Concurrency int
	// Duration of the run, MinDuration..MaxDuration.
	Duration time.Duration
	// MaxRequests optionally ends the run after this many requests were
	// sent; 0 means no cap beyond Rate × Duration.
	MaxRequests int
	// Paths are requested in turn (per shopper), each starting with "/" and
	// optionally carrying a query. Default [DefaultPath]; not with Journey.
	Paths []string
	// Method is GET by default; HEAD, POST, PUT, PATCH and DELETE are allowed.
	// Not with Journey.
	Method string
	// Body is sent with POST, PUT and PATCH, as application/json unless
	// Headers set a Content-Type. Not with Journey.
	Body string
	// Shoppers makes the run act as this many distinct shoppers, s-0 ..
	// s-(N-1), who take turns. Each sends its name in header X-Shopper and
	// cookie "shopper", and keeps its own cookie jar, so a cookie a server
	// sets stays with that shopper. 0 means anonymous requests, or
	// DefaultJourneyShoppers with Journey.
	Shoppers int
	// Journey makes each shopper walk the shop's journey again and again
	// instead of requesting Paths: browse (GET /catalog), deals (GET
	// /deals), add (POST /cart/items, a product from the catalog), cart (GET
	// /cart, checked to hold what was added) and checkout (POST /checkout).
	// Each step is one request, paced by Rate and bounded by Concurrency
	// like any other; Report.Journeys and Report.Steps count the outcome.
	// Paths, Method and Body must be left unset.
	Journey bool
	// Timeout bounds each request, body included; default DefaultTimeout.
	Timeout time.Duration
	// Headers are added to every request. In a value, "{seq}" becomes the
	// request's sequence number and "{shopper}" the shopper's name, so
	// tests can send one Idempotency-Key per request or per shopper.
	// X-Shopper is the shopper's own and wins over a header set here.
	Headers map[string]string
}

// WithDefaults returns s with every zero field set to its default and the
// method in upper case. It does not validate.
func (s Spec) WithDefaults() Spec {
	if s.Rate == 0 {
		s.Rate = DefaultRate
	}
	if s.Concurrency == 0 {
		s.Concurrency = DefaultConcurrency
	}
	if s.Duration == 0 {
		s.Duration = DefaultDuration
	}
	s.Method = strings.ToUpper(s.Method)
	if s.Journey {
		// A journey brings its own paths, methods and bodies; leaving these
		// unset lets Validate tell a user who set them.
		if s.Shoppers == 0 {
			s.Shoppers = DefaultJourneyShoppers
		}
	} else {
		if len(s.Paths) == 0 {
			s.Paths = []string{DefaultPath}
		}
		if s.Method == "" {
			s.Method = "GET"
		}
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	return s
}

// TargetList returns the addresses the run sends to: Target split at commas,
// or Targets. Blanks around each are trimmed.
func (s Spec) TargetList() []string {
	var out []string
	if s.Target != "" {
		for t := range strings.SplitSeq(s.Target, ",") {
			out = append(out, strings.TrimSpace(t))
		}
		return out
	}
	for _, t := range s.Targets {
		out = append(out, strings.TrimSpace(t))
	}
	return out
}

var methods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true}
var bodyMethods = map[string]bool{"POST": true, "PUT": true, "PATCH": true}

// Headers a run may not set: the transport owns them.
var reservedHeaders = map[string]bool{"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true, "Cookie": true}

// Validate checks s after defaults are applied and returns a
// *ValidationError for the first wrong field. Every target must be a
// loopback address: an IP in 127.0.0.0/8, ::1 or "localhost", with a port.
// The load generator never sends traffic anywhere else.
func (s Spec) Validate() error {
	s = s.WithDefaults()
	if s.Target != "" && len(s.Targets) > 0 {
		return invalid("target", "set target or targets, not both")
	}
	targets := s.TargetList()
	field := "targets"
	if s.Target != "" {
		field = "target"
	}
	switch {
	case len(targets) == 0:
		return invalid("target", "required: the address to load, such as 127.0.0.1:8080")
	case len(targets) > MaxTargets:
		return invalid(field, "at most %d targets, got %d", MaxTargets, len(targets))
	}
	for i, t := range targets {
		if err := checkTarget(t); err != nil {
			f := fmt.Sprintf("%s[%d]", field, i)
			if len(targets) == 1 {
				f = field
			}
			return invalid(f, "%v", err)
		}
	}
	if s.Rate < 1 || s.Rate > MaxRate {
		return invalid("rate", "must be between 1 and %d requests per second, got %d", MaxRate, s.Rate)
	}
	if s.Concurrency < 1 || s.Concurrency > MaxConcurrency {
		return invalid("concurrency", "must be between 1 and %d, got %d", MaxConcurrency, s.Concurrency)
	}
	if s.Duration < MinDuration || s.Duration > MaxDuration {
		return invalid("duration", "must be between %v and %v, got %v", MinDuration, MaxDuration, s.Duration)
	}
	if s.MaxRequests < 0 {
		return invalid("maxRequests", "must not be negative, got %d", s.MaxRequests)
	}
	if s.Journey {
		const why = "a journey sends its own requests (browse, deals, add, cart, checkout); leave it unset"
		switch {
		case len(s.Paths) > 0:
			return invalid("paths", why)
		case s.Method != "":
			return invalid("method", why)
		case s.Body != "":
			return invalid("body", why)
		}
	}
	if len(s.Paths) > MaxPaths {
		return invalid("paths", "at most %d paths, got %d", MaxPaths, len(s.Paths))
	}
	for i, p := range s.Paths {
		if err := checkPath(p); err != nil {
			return invalid(fmt.Sprintf("paths[%d]", i), "%v", err)
		}
	}
	if !s.Journey && !methods[s.Method] {
		return invalid("method", "must be one of GET, HEAD, POST, PUT, PATCH, DELETE, got %q", s.Method)
	}
	if s.Body != "" && !bodyMethods[s.Method] {
		return invalid("body", "only POST, PUT and PATCH send a body, the method is %s", s.Method)
	}
	if len(s.Body) > MaxBodyBytes {
		return invalid("body", "at most %d bytes, got %d", MaxBodyBytes, len(s.Body))
	}
	if s.Shoppers < 0 || s.Shoppers > MaxShoppers {
		return invalid("shoppers", "must be between 0 (anonymous) and %d, got %d", MaxShoppers, s.Shoppers)
	}
	if s.Timeout <= 0 || s.Timeout > MaxTimeout {
		return invalid("timeout", "must be more than 0 and at most %v, got %v", MaxTimeout, s.Timeout)
	}
	if len(s.Headers) > MaxHeaders {
		return invalid("headers", "at most %d headers, got %d", MaxHeaders, len(s.Headers))
	}
	for k, v := range s.Headers {
		f := fmt.Sprintf("headers[%q]", k)
		switch {
		case !isToken(k):
			return invalid(f, "not a valid header name")
		case reservedHeaders[http.CanonicalHeaderKey(k)]:
			return invalid(f, "set by the load generator itself")
		case len(v) > 4096:
			return invalid(f, "value longer than 4096 bytes")
		case strings.ContainsAny(v, "\r\n\x00"):
			return invalid(f, "value holds a line break or NUL")
		}
	}
	return nil
}

// checkTarget accepts host:port where host is a loopback IP or "localhost".
func checkTarget(t string) error {
	host, port, err := net.SplitHostPort(t)
	if err != nil {
		return fmt.Errorf("want host:port such as 127.0.0.1:8080, got %q", t)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port must be 1..65535, got %q", port)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return fmt.Errorf("host %q is not a loopback address: load goes only to 127.0.0.0/8, ::1 or localhost", host)
	}
	if !ip.Unmap().IsLoopback() {
		return fmt.Errorf("host %s is not a loopback address: load goes only to 127.0.0.0/8, ::1 or localhost", host)
	}
	return nil
}

func checkPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("must start with /, got %q", p)
	case strings.HasPrefix(p, "//"):
		return fmt.Errorf("must not start with //, got %q", p)
	case len(p) > 1024:
		return fmt.Errorf("longer than 1024 bytes")
	}
	for _, r := range p {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("holds a space or control character: %q", p)
		}
	}
	if _, err := url.ParseRequestURI(p); err != nil {
		return fmt.Errorf("not a valid path: %v", err)
	}
	return nil
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// specJSON is Spec on the wire: camelCase names and duration strings.
type specJSON struct {
	Target      string            `json:"target,omitempty"`
	Targets     []string          `json:"targets,omitempty"`
	Rate        int               `json:"rate,omitempty"`
	Concurrency int               `json:"concurrency,omitempty"`
	Duration    jsonDuration      `json:"duration,omitzero"`
	MaxRequests int               `json:"maxRequests,omitempty"`
	Paths       []string          `json:"paths,omitempty"`
	Method      string            `json:"method,omitempty"`
	Body        string            `json:"body,omitempty"`
	Shoppers    int               `json:"shoppers,omitempty"`
	Journey     bool              `json:"journey,omitempty"`
	Timeout     jsonDuration      `json:"timeout,omitzero"`
	Headers     map[string]string `json:"headers,omitempty"`
}

// MarshalJSON writes s with camelCase names and durations as strings.
func (s Spec) MarshalJSON() ([]byte, error) {
	return json.Marshal(specJSON{
		Target: s.Target, Targets: s.Targets, Rate: s.Rate, Concurrency: s.Concurrency,
		Duration: jsonDuration(s.Duration), MaxRequests: s.MaxRequests, Paths: s.Paths,
		Method: s.Method, Body: s.Body, Shoppers: s.Shoppers, Journey: s.Journey, Timeout: jsonDuration(s.Timeout),
		Headers: s.Headers,
	})
}

// UnmarshalJSON reads what MarshalJSON writes. Unknown fields are an error,
// so a typo does not silently fall back to a default.
func (s *Spec) UnmarshalJSON(data []byte) error {
	var j specJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	*s = Spec{
		Target: j.Target, Targets: j.Targets, Rate: j.Rate, Concurrency: j.Concurrency,
		Duration: time.Duration(j.Duration), MaxRequests: j.MaxRequests, Paths: j.Paths,
		Method: j.Method, Body: j.Body, Shoppers: j.Shoppers, Journey: j.Journey, Timeout: time.Duration(j.Timeout),
		Headers: j.Headers,
	}
	return nil
}

type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"30s\" or \"500ms\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration string such as \"30s\" or \"500ms\", got %q", s)
	}
	*d = jsonDuration(v)
	return nil
}

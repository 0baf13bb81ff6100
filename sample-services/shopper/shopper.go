// Package shopper says whom a request is for. The shop has no accounts: a
// shopper is a name sent with every request, in header X-Shopper or, for a
// browser, in cookie "shopper". Services pass it on to each other in the
// header.
package shopper

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

const (
	// Header names the shopper on a request; it wins over the cookie.
	Header = "X-Shopper"
	// Cookie names the shopper when the header is absent.
	Cookie = "shopper"
	// MaxLen is the longest name accepted.
	MaxLen = 64
)

// ErrMissing means the request names no shopper.
var ErrMissing = errors.New("no shopper: set header " + Header + " or cookie " + Cookie)

// FromRequest returns the shopper named by r. It returns ErrMissing if r
// names none, and another error if the name is too long.
func FromRequest(r *http.Request) (string, error) {
	name := strings.TrimSpace(r.Header.Get(Header))
	if name == "" {
		if c, err := r.Cookie(Cookie); err == nil {
			name = strings.TrimSpace(c.Value)
		}
	}
	switch {
	case name == "":
		return "", ErrMissing
	case len(name) > MaxLen:
		return "", fmt.Errorf("shopper name is longer than %d bytes", MaxLen)
	}
	return name, nil
}

package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// maxReason bounds a reason, so a replica cannot fill the status with text.
const maxReason = 120

// checker runs single probes.
type checker struct {
	client *http.Client
}

func newChecker() *checker {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: 30 * time.Second, DisableCompression: true}
	return &checker{client: &http.Client{Transport: tr}}
}

// check probes url once and returns "" if it answered 2xx or 3xx within
// timeout, else a short reason.
func (c *checker) check(ctx context.Context, rawURL string, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "bad probe address"
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return transportReason(err, timeout)
	}
	defer resp.Body.Close()
	// Read the body (bounded) even on success, so the connection is reused.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return ""
	}
	return answerReason(req.URL.Path, resp.StatusCode, body)
}

// failureBody is what a failing probe's answer may say about itself: the
// shop's /readyz names the required dependencies that fail in "failing",
// and describes them in "error".
type failureBody struct {
	Failing []string `json:"failing"`
	Error   string   `json:"error"`
}

// answerReason makes a reason of a non-2xx answer: the failing
// dependencies if the body names them, else its error, else the status.
func answerReason(path string, code int, body []byte) string {
	var fb failureBody
	if json.Unmarshal(body, &fb) == nil {
		switch {
		case len(fb.Failing) == 1:
			return clip("dependency " + fb.Failing[0] + " unavailable")
		case len(fb.Failing) > 1:
			return clip("dependencies " + strings.Join(fb.Failing, ", ") + " unavailable")
		case fb.Error != "":
			return clip(fb.Error)
		}
	}
	return fmt.Sprintf("%s answered %d %s", path, code, http.StatusText(code))
}

// transportReason shortens a client error: the URL and the dial details
// say nothing the replica's name does not.
func transportReason(err error, timeout time.Duration) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no answer within %s", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed without an answer"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return clip(err.Error())
}

func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxReason {
		s = strings.ToValidUTF8(s[:maxReason], "") + "…"
	}
	return s
}

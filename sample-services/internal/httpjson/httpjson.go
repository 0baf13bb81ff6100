// Package httpjson holds the few JSON-over-HTTP helpers that every shop
// feature shares, so that all of them answer, fail and call each other the
// same way: replies are JSON, errors look like {"error": "what is wrong"},
// request bodies are size-limited and unknown fields are rejected.
package httpjson

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// MaxBodyBytes caps a request body. The shop's requests are tiny; a cap stops
// one client from making a replica read without end.
const MaxBodyBytes = 64 << 10

// maxReplyBytes caps a reply read from another service, for the same reason.
const maxReplyBytes = 1 << 20

// errorBody is the shape of every error reply.
type errorBody struct {
	Error string `json:"error"`
}

// Write answers with status and v encoded as JSON.
func Write(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"encode reply"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n')) // the client may be gone; nothing left to do then
}

// Error answers with status and {"error": msg}.
func Error(w http.ResponseWriter, status int, msg string) {
	Write(w, status, errorBody{Error: msg})
}

// Decode reads exactly one JSON value from the request body into v. Bodies
// over MaxBodyBytes, unknown fields and trailing data are errors. When Decode
// returns an error it has already answered the request (400 or 413), so the
// handler only has to return.
func Decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("body must hold a single JSON value")
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", MaxBodyBytes))
	case errors.Is(err, io.EOF):
		Error(w, http.StatusBadRequest, "body is empty, want JSON")
	default:
		Error(w, http.StatusBadRequest, "bad body: "+err.Error())
	}
	return err
}

// StatusError is a reply outside 2xx from another service.
type StatusError struct {
	StatusCode int
	Message    string // the reply's "error" field, or the status text
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("status %d: %s", e.StatusCode, e.Message)
}

// HasStatus reports whether err is, or wraps, a *StatusError with code.
func HasStatus(err error, code int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.StatusCode == code
}

// NewRequest builds a request to another service; a non-nil body is sent as
// JSON.
func NewRequest(ctx context.Context, method, url string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// Do sends req with c and decodes a 2xx reply into out; a nil out discards
// the reply. Any other status comes back as a *StatusError.
func Do(c *http.Client, req *http.Request, out any) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxReplyBytes)

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e errorBody
		_ = json.NewDecoder(body).Decode(&e) // best effort: the status says enough
		if e.Error == "" {
			e.Error = http.StatusText(resp.StatusCode)
		}
		return &StatusError{StatusCode: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		_, err = io.Copy(io.Discard, body) // lets the connection be reused
		return err
	}
	if err := json.NewDecoder(body).Decode(out); err != nil {
		return fmt.Errorf("decode reply: %w", err)
	}
	return nil
}

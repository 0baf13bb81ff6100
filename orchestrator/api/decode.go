package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"reflect"
	"strings"

	"github.com/gin-gonic/gin"
)

// decode reads the request body as exactly one JSON value into dst, strictly:
// unknown fields, trailing data, a wrong Content-Type and an oversized body
// are all refused with a 4xx that says what is wrong. fields describes what
// the body may hold, for the unknown-field message. When required is false
// an absent body is fine. It reports whether the handler may go on.
func (s *server) decode(c *gin.Context, dst any, required bool, fields string) bool {
	r := c.Request
	if r.Body == nil || r.Body == http.NoBody {
		if required {
			abort(c, http.StatusBadRequest, "the body is empty; send a JSON object ("+fields+")")
			return false
		}
		return true
	}
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		if ct == "" {
			ct = "none"
		}
		abort(c, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type must be application/json, got %s", ct))
		return false
	}
	if r.ContentLength > s.maxBody {
		abort(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is %d bytes, more than the %d bytes allowed", r.ContentLength, s.maxBody))
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, r.Body, s.maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, io.EOF) && !required {
			return true
		}
		code, msg := explainJSON(err, s.maxBody, fields)
		abort(c, code, msg)
		return false
	}
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return true
	case err == nil:
		abort(c, http.StatusBadRequest, "the body must hold one JSON object, but more follows it")
	default:
		code, _ := explainJSON(err, s.maxBody, fields)
		msg := "the body must hold one JSON object, but data that is not JSON follows it"
		if code == http.StatusRequestEntityTooLarge {
			msg = fmt.Sprintf("the body is more than the %d bytes allowed", s.maxBody)
		}
		abort(c, code, msg)
	}
	return false
}

// isJSON reports whether a Content-Type names JSON; a charset is allowed if
// it is UTF-8, the only one JSON may use (RFC 8259).
func isJSON(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8") || strings.EqualFold(cs, "utf8")
}

// explainJSON turns an encoding/json error into a status and a message for a
// person: which field, what it should be.
func explainJSON(err error, limit int64, fields string) (int, string) {
	var (
		tooBig *http.MaxBytesError
		syn    *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is more than the %d bytes allowed", limit)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return http.StatusRequestTimeout, "the body came too slowly: send it whole, at once"
	case errors.Is(err, io.EOF):
		return http.StatusBadRequest, "the body is empty; send a JSON object (" + fields + ")"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return http.StatusBadRequest, "the body is not valid JSON: it ends too early"
	case errors.As(err, &syn):
		return http.StatusBadRequest, fmt.Sprintf("the body is not valid JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		if typ.Field == "" {
			return http.StatusBadRequest, fmt.Sprintf("the body must be a JSON object, not %s", article(typ.Value))
		}
		return http.StatusBadRequest, typeMessage(typ)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this one.
		field := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return http.StatusBadRequest, fmt.Sprintf("unknown field %s: %s", field, fields)
	default:
		return http.StatusBadRequest, "the body is not valid JSON: " + strings.TrimPrefix(err.Error(), "json: ")
	}
}

func typeMessage(typ *json.UnmarshalTypeError) string {
	t := typ.Type
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	want := "something else"
	if t != nil {
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			if strings.HasPrefix(typ.Value, "number") {
				// A number that does not fit: a fraction or out of range.
				return fmt.Sprintf("%s must be a whole number in range, not %s", typ.Field, strings.TrimPrefix(typ.Value, "number "))
			}
			want = "a number"
		case reflect.Float32, reflect.Float64:
			want = "a number"
		case reflect.String:
			want = "a string"
		case reflect.Bool:
			want = "true or false"
		case reflect.Struct, reflect.Map:
			want = "an object"
		case reflect.Slice, reflect.Array:
			want = "an array"
		}
	}
	return fmt.Sprintf("%s must be %s, not %s", typ.Field, want, article(typ.Value))
}

func article(jsonKind string) string {
	switch jsonKind {
	case "array", "object":
		return "an " + jsonKind
	case "bool":
		return "true or false"
	case "":
		return "that"
	}
	return "a " + jsonKind
}

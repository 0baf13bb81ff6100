package httpjson

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWriteAndError(t *testing.T) {
	rec := httptest.NewRecorder()
	Error(rec, http.StatusTeapot, "short and stout")
	if rec.Code != http.StatusTeapot || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("got %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if got := rec.Body.String(); got != `{"error":"short and stout"}`+"\n" {
		t.Errorf("body %q", got)
	}
}

func TestWriteUnencodable(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, http.StatusOK, make(chan int))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), `"error"`) {
		t.Errorf("got %d %q, want 500 with a JSON error", rec.Code, rec.Body)
	}
}

func TestDecode(t *testing.T) {
	type in struct{ N int }
	tests := []struct {
		body string
		code int // 0: accepted
	}{
		{`{"N": 3}`, 0},
		{`{"N": 3}  ` + "\n", 0},
		{`{"N": 3, "M": 4}`, 400},
		{`{"N": 3} {"N": 4}`, 400},
		{`{"N": 3} junk`, 400},
		{`{"N": "three"}`, 400},
		{``, 400},
		{`{"N": 3, "pad": "` + strings.Repeat("x", MaxBodyBytes) + `"}`, 413},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		var v in
		err := Decode(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body)), &v)
		short := tt.body[:min(len(tt.body), 30)]
		if tt.code == 0 {
			if err != nil || v.N != 3 {
				t.Errorf("Decode(%q) = %v, N=%d; want accepted with N=3", short, err, v.N)
			}
			continue
		}
		if err == nil || rec.Code != tt.code {
			t.Errorf("Decode(%q): error %v, status %d; want an error and %d", short, err, rec.Code, tt.code)
		}
		var e errorBody
		if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
			t.Errorf("Decode(%q) answered %q, want a JSON error", short, rec.Body)
		}
	}
}

func TestDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			Write(w, http.StatusOK, map[string]int{"n": 7})
		case "/plain":
			http.Error(w, "boom", http.StatusInternalServerError)
		default:
			Error(w, http.StatusNotFound, "no such thing")
		}
	}))
	defer srv.Close()
	call := func(path string, out any) error {
		req, err := NewRequest(t.Context(), http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return Do(srv.Client(), req, out)
	}

	var out struct{ N int }
	if err := call("/ok", &out); err != nil || out.N != 7 {
		t.Errorf("Do(/ok) = %v, n=%d", err, out.N)
	}
	if err := call("/ok", nil); err != nil {
		t.Errorf("Do(/ok, nil) = %v", err)
	}

	err := call("/missing", &out)
	if !HasStatus(err, http.StatusNotFound) || err.Error() != "status 404: no such thing" {
		t.Errorf("Do(/missing) = %v, want status 404 with the server's message", err)
	}
	if err := call("/plain", &out); !HasStatus(err, http.StatusInternalServerError) {
		t.Errorf("Do(/plain) = %v, want status 500", err)
	}
}

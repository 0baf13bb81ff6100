package shopper_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/sample-services/shopper"
)

func TestFromRequest(t *testing.T) {
	tests := []struct {
		name, header, cookie string
		want                 string
		wantErr              bool
	}{
		{name: "header", header: "alice", want: "alice"},
		{name: "cookie", cookie: "bob", want: "bob"},
		{name: "header wins over cookie", header: "alice", cookie: "bob", want: "alice"},
		{name: "spaces trimmed", header: "  alice ", want: "alice"},
		{name: "blank header falls back to cookie", header: "  ", cookie: "bob", want: "bob"},
		{name: "too long", header: strings.Repeat("a", shopper.MaxLen+1), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.header != "" {
				r.Header.Set(shopper.Header, tt.header)
			}
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: shopper.Cookie, Value: tt.cookie})
			}
			got, err := shopper.FromRequest(r)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("FromRequest = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestFromRequestMissing(t *testing.T) {
	_, err := shopper.FromRequest(httptest.NewRequest(http.MethodGet, "/", nil))
	if !errors.Is(err, shopper.ErrMissing) {
		t.Errorf("error %v, want ErrMissing", err)
	}
}

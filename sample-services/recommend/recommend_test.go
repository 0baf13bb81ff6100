package recommend

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/sample-services/catalog"
)

func serve(t *testing.T, s *Service, target string) (int, []byte) {
	t.Helper()
	mux := http.NewServeMux()
	s.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", target, ct)
	}
	return rec.Code, rec.Body.Bytes()
}

func ids(ps []catalog.Product) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return strings.Join(out, ",")
}

func TestRecommend(t *testing.T) {
	s := New(catalog.New(), "recommend-1")
	// Tea mug is 1200 cents: canvas bag 1500 (300 away), wool socks 900
	// (300 away, cheaper, so first), notebook 650 (550 away).
	for _, target := range []string{"/recommend?product=tea-mug", "/recommend/tea-mug"} {
		code, body := serve(t, s, target)
		var rep Reply
		if err := json.Unmarshal(body, &rep); err != nil {
			t.Fatal(err)
		}
		if code != 200 || rep.Product.ID != "tea-mug" || rep.Replica != "recommend-1" || ids(rep.Recommendations) != "wool-socks,canvas-bag,notebook" {
			t.Errorf("GET %s = %d %s", target, code, body)
		}
	}
	// The dearest product gets the next dearest first.
	rep, err := s.Recommend(context.Background(), "desk-lamp")
	if err != nil || ids(rep.Recommendations) != "water-bottle,canvas-bag,tea-mug" {
		t.Errorf("desk-lamp: %+v, %v", rep, err)
	}
}

func TestRecommendErrors(t *testing.T) {
	s := New(catalog.New(), "r")
	for _, tt := range []struct {
		target string
		code   int
		want   string
	}{
		{"/recommend", 400, "which product?"},
		{"/recommend?product=", 400, "which product?"},
		{"/recommend?product=teapot", 404, "no product teapot"},
		{"/recommend/teapot", 404, "no product teapot"},
	} {
		code, body := serve(t, s, tt.target)
		var e struct{ Error string }
		if err := json.Unmarshal(body, &e); err != nil || code != tt.code || !strings.Contains(e.Error, tt.want) {
			t.Errorf("GET %s = %d %s, want %d %q", tt.target, code, body, tt.code, tt.want)
		}
	}
	broken := New(failing{}, "r")
	if code, body := serve(t, broken, "/recommend/tea-mug"); code != 502 || !strings.Contains(string(body), "catalog down") {
		t.Errorf("with the catalog failing: %d %s", code, body)
	}
}

type failing struct{}

func (failing) Products(context.Context) ([]catalog.Product, error) {
	return nil, errors.New("catalog down")
}

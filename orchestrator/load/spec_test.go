package load_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/load"
)

func TestValidate(t *testing.T) {
	ok := load.Spec{Target: "127.0.0.1:8080", Duration: time.Second}
	tests := []struct {
		name      string
		edit      func(*load.Spec)
		wantField string // "" means valid
	}{
		{"defaults", func(*load.Spec) {}, ""},
		{"other loopback", func(s *load.Spec) { s.Target = "127.4.5.6:1" }, ""},
		{"ipv6 loopback", func(s *load.Spec) { s.Target = "[::1]:8080" }, ""},
		{"localhost", func(s *load.Spec) { s.Target = "LocalHost:8080" }, ""},
		{"comma list", func(s *load.Spec) { s.Target = "127.0.0.1:1, 127.0.0.1:2" }, ""},
		{"targets", func(s *load.Spec) { s.Target = ""; s.Targets = []string{"127.0.0.1:1", "[::1]:2"} }, ""},
		{"post with body", func(s *load.Spec) { s.Method = "post"; s.Body = `{}` }, ""},
		{"edges", func(s *load.Spec) {
			s.Rate, s.Concurrency, s.Duration, s.Shoppers = load.MaxRate, load.MaxConcurrency, load.MaxDuration, load.MaxShoppers
		}, ""},

		{"private address", func(s *load.Spec) { s.Target = "10.0.0.1:80" }, "target"},
		{"public name", func(s *load.Spec) { s.Target = "example.com:80" }, "target"},
		{"any address", func(s *load.Spec) { s.Target = "0.0.0.0:80" }, "target"},
		{"ipv6 any", func(s *load.Spec) { s.Target = "[::]:80" }, "target"},
		{"ipv6 zone", func(s *load.Spec) { s.Target = "[::1%lo]:80" }, "target"},
		{"localhost subdomain", func(s *load.Spec) { s.Target = "evil.localhost:80" }, "target"},
		{"short ipv4", func(s *load.Spec) { s.Target = "127.1:80" }, "target"},
		{"url not address", func(s *load.Spec) { s.Target = "http://127.0.0.1:80" }, "target"},
		{"no port", func(s *load.Spec) { s.Target = "127.0.0.1" }, "target"},
		{"port 0", func(s *load.Spec) { s.Target = "127.0.0.1:0" }, "target"},
		{"second of list", func(s *load.Spec) { s.Target = "127.0.0.1:1,10.1.1.1:2" }, "target[1]"},
		{"second of targets", func(s *load.Spec) { s.Target = ""; s.Targets = []string{"127.0.0.1:1", "8.8.8.8:53"} }, "targets[1]"},
		{"both", func(s *load.Spec) { s.Targets = []string{"127.0.0.1:1"} }, "target"},
		{"none", func(s *load.Spec) { s.Target = "" }, "target"},
		{"rate high", func(s *load.Spec) { s.Rate = load.MaxRate + 1 }, "rate"},
		{"rate negative", func(s *load.Spec) { s.Rate = -1 }, "rate"},
		{"concurrency", func(s *load.Spec) { s.Concurrency = 257 }, "concurrency"},
		{"duration short", func(s *load.Spec) { s.Duration = time.Millisecond }, "duration"},
		{"duration long", func(s *load.Spec) { s.Duration = time.Hour }, "duration"},
		{"max requests", func(s *load.Spec) { s.MaxRequests = -1 }, "maxRequests"},
		{"relative path", func(s *load.Spec) { s.Paths = []string{"/ok", "catalog"} }, "paths[1]"},
		{"scheme-relative path", func(s *load.Spec) { s.Paths = []string{"//example.com/x"} }, "paths[0]"},
		{"path with space", func(s *load.Spec) { s.Paths = []string{"/a b"} }, "paths[0]"},
		{"method", func(s *load.Spec) { s.Method = "CONNECT" }, "method"},
		{"body on get", func(s *load.Spec) { s.Body = "x" }, "body"},
		{"shoppers", func(s *load.Spec) { s.Shoppers = -1 }, "shoppers"},
		{"timeout", func(s *load.Spec) { s.Timeout = time.Hour }, "timeout"},
		{"header name", func(s *load.Spec) { s.Headers = map[string]string{"Bad Name": "x"} }, `headers["Bad Name"]`},
		{"header value", func(s *load.Spec) { s.Headers = map[string]string{"X-A": "a\r\nHost: evil"} }, `headers["X-A"]`},
		{"reserved header", func(s *load.Spec) { s.Headers = map[string]string{"host": "example.com"} }, `headers["host"]`},

		{"journey", func(s *load.Spec) { s.Journey = true }, ""},
		{"journey with shoppers and headers", func(s *load.Spec) {
			s.Journey, s.Shoppers, s.Headers = true, load.MaxShoppers, map[string]string{"X-Trace": "{shopper}-{seq}"}
		}, ""},
		{"journey with paths", func(s *load.Spec) { s.Journey, s.Paths = true, []string{"/catalog"} }, "paths"},
		{"journey with method", func(s *load.Spec) { s.Journey, s.Method = true, "GET" }, "method"},
		{"journey with body", func(s *load.Spec) { s.Journey, s.Body = true, `{}` }, "body"},
		{"journey with too many shoppers", func(s *load.Spec) { s.Journey, s.Shoppers = true, load.MaxShoppers+1 }, "shoppers"},
		{"journey with negative shoppers", func(s *load.Spec) { s.Journey, s.Shoppers = true, -1 }, "shoppers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.edit(&s)
			err := s.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *load.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, load.ErrInvalid) {
				t.Fatalf("Validate() = %v, want a *ValidationError wrapping ErrInvalid", err)
			}
			if ve.Field != tt.wantField {
				t.Errorf("Validate() field = %q (%v), want %q", ve.Field, err, tt.wantField)
			}
		})
	}
}

func TestValidateSaysWhyANonLoopbackTargetIsRefused(t *testing.T) {
	err := load.Spec{Target: "10.0.0.1:80"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("Validate() = %v, want an error that mentions loopback", err)
	}
}

func TestSpecJSON(t *testing.T) {
	in := `{"target":"127.0.0.1:9000","rate":100,"duration":"30s","timeout":"250ms","paths":["/deals"],"shoppers":3}`
	var s load.Spec
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	if s.Duration != 30*time.Second || s.Timeout != 250*time.Millisecond || s.Rate != 100 || s.Shoppers != 3 {
		t.Errorf("decoded %+v", s)
	}
	out, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back load.Spec
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatalf("round trip of %s: %v", out, err)
	}
	if !strings.Contains(string(out), `"duration":"30s"`) || back.Duration != s.Duration || back.Paths[0] != "/deals" {
		t.Errorf("round trip gave %s", out)
	}

	for _, bad := range []string{`{"duration":30}`, `{"duration":"soon"}`, `{"rat":5}`} {
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("Unmarshal(%s) = nil, want an error", bad)
		}
	}
}

func TestJourneySpec(t *testing.T) {
	d := load.Spec{Journey: true}.WithDefaults()
	if d.Shoppers != load.DefaultJourneyShoppers || d.Paths != nil || d.Method != "" {
		t.Errorf("journey defaults %+v, want %d shoppers and no paths or method", d, load.DefaultJourneyShoppers)
	}
	if d := (load.Spec{Journey: true, Shoppers: 3}).WithDefaults(); d.Shoppers != 3 {
		t.Errorf("journey of 3 shoppers defaulted to %d", d.Shoppers)
	}
	if d := (load.Spec{}).WithDefaults(); d.Shoppers != 0 || d.Method != "GET" || len(d.Paths) != 1 {
		t.Errorf("defaults without journey %+v changed", d)
	}

	err := load.Spec{Target: "127.0.0.1:1", Journey: true, Paths: []string{"/deals"}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "journey") {
		t.Errorf("Validate() = %v, want an error that says a journey brings its own paths", err)
	}

	var s load.Spec
	if err := json.Unmarshal([]byte(`{"target":"127.0.0.1:9000","journey":true,"rate":20}`), &s); err != nil {
		t.Fatal(err)
	}
	if !s.Journey || s.Validate() != nil {
		t.Errorf("decoded %+v (%v), want a valid journey", s, s.Validate())
	}
	out, _ := json.Marshal(s.WithDefaults())
	if !strings.Contains(string(out), `"journey":true`) || !strings.Contains(string(out), `"shoppers":10`) || strings.Contains(string(out), `"paths"`) {
		t.Errorf("encoded %s", out)
	}
	var back load.Spec
	if err := json.Unmarshal(out, &back); err != nil || !back.Journey || back.Validate() != nil {
		t.Errorf("round trip of %s: %+v, %v", out, back, err)
	}
}

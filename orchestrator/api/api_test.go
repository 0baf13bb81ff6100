package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/api/apitest"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/load"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

const testHost = "127.0.0.1:8080"

func newHandler(t *testing.T, opts Options) http.Handler {
	t.Helper()
	if opts.Controller == nil {
		opts.Controller = newFake(spec.Group{Name: "web", Service: "monolith", Replicas: 2})
	}
	h, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

// req is one request to the handler. Headers are "Name: value" strings; a
// body gets Content-Type application/json unless a header sets another.
type req struct {
	method, path, body string
	headers            []string
}

func serve(t *testing.T, h http.Handler, r req) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	hr.Host = testHost
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	for _, kv := range r.headers {
		k, v, _ := strings.Cut(kv, ":")
		if k == "Host" {
			hr.Host = strings.TrimSpace(v)
			continue
		}
		hr.Header.Set(k, strings.TrimSpace(v))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, hr)
	return w
}

func decodeBody[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("response %d is not JSON: %v\n%s", w.Code, err, w.Body)
	}
	return v
}

func TestHappyPaths(t *testing.T) {
	fake := newFake(spec.Group{Name: "web", Service: "monolith", Replicas: 2})
	h := newHandler(t, Options{Controller: fake})

	w := serve(t, h, req{method: "GET", path: "/healthz"})
	if w.Code != 200 || decodeBody[HealthResponse](t, w).Status != "ok" {
		t.Fatalf("healthz: %d %s", w.Code, w.Body)
	}

	w = serve(t, h, req{method: "GET", path: "/api/v1/services"})
	svcs := decodeBody[ServicesResponse](t, w).Services
	if w.Code != 200 || len(svcs) != len(spec.Services()) || svcs[0].Name != "analytics" {
		t.Fatalf("services: %d %s", w.Code, w.Body)
	}

	w = serve(t, h, req{method: "GET", path: "/api/v1/groups"})
	groups := decodeBody[GroupsResponse](t, w).Groups
	if w.Code != 200 || len(groups) != 1 || groups[0].Name != "web" || len(groups[0].Replicas) != 2 {
		t.Fatalf("groups: %d %s", w.Code, w.Body)
	}

	w = serve(t, h, req{method: "GET", path: "/api/v1/groups/web"})
	if st := decodeBody[controller.GroupStatus](t, w); w.Code != 200 || st.Name != "web" || st.Desired != 2 {
		t.Fatalf("group: %d %s", w.Code, w.Body)
	}

	w = serve(t, h, req{method: "PUT", path: "/api/v1/groups/shop", body: `{"service":"catalog","replicas":3,"resources":{"memoryMiB":128},"isolation":"pod"}`})
	if st := decodeBody[controller.GroupStatus](t, w); w.Code != 201 || st.Name != "shop" || st.Desired != 3 || st.Resources.MemoryMiB != 128 || st.Isolation != spec.IsolationPod {
		t.Fatalf("put new: %d %s", w.Code, w.Body)
	}
	if got := fake.Puts()[len(fake.Puts())-1]; got.Resources.MilliCPU != 0 {
		t.Errorf("the API applied defaults; the controller should: %+v", got)
	}

	w = serve(t, h, req{method: "PUT", path: "/api/v1/groups/shop", body: `{"name":"shop","service":"catalog","replicas":1}`,
		headers: []string{"Content-Type: application/json; charset=utf-8"}})
	if st := decodeBody[controller.GroupStatus](t, w); w.Code != 200 || st.Desired != 1 {
		t.Fatalf("put existing: %d %s", w.Code, w.Body)
	}

	w = serve(t, h, req{method: "POST", path: "/api/v1/groups/web/scale", body: `{"replicas":0}`})
	if st := decodeBody[controller.GroupStatus](t, w); w.Code != 200 || st.Desired != 0 || st.Replicas == nil {
		t.Fatalf("scale: %d %s", w.Code, w.Body)
	}
	if !strings.Contains(w.Body.String(), `"replicas":[]`) {
		t.Errorf("an empty replica list should encode as []: %s", w.Body)
	}

	w = serve(t, h, req{method: "DELETE", path: "/api/v1/groups/web"})
	if w.Code != 202 || decodeBody[DeletedResponse](t, w).Deleted != "web" {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}

	w = serve(t, h, req{method: "POST", path: "/api/v1/down"})
	if w.Code != 202 || decodeBody[DownResponse](t, w).Status != "down" || fake.Downs() != 1 || fake.Len() != 0 {
		t.Fatalf("down: %d %s", w.Code, w.Body)
	}
	w = serve(t, h, req{method: "POST", path: "/api/v1/down", body: `{}`})
	if w.Code != 202 {
		t.Fatalf("down with {}: %d %s", w.Code, w.Body)
	}

	if got := w.Header().Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
		t.Errorf("Content-Type = %q", got)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name  string
		r     req
		code  int
		want  string // in the error message
		field string
	}{
		{"unknown field", req{method: "PUT", path: "/api/v1/groups/web", body: `{"service":"monolith","replicas":1,"image":"evil"}`}, 400, `unknown field "image"`, ""},
		{"unknown nested field", req{method: "PUT", path: "/api/v1/groups/web", body: `{"service":"monolith","replicas":1,"resources":{"privileged":true}}`}, 400, `unknown field "privileged"`, ""},
		{"bad name", req{method: "GET", path: "/api/v1/groups/Bad_Name"}, 400, "lowercase", "name"},
		{"bad name on put", req{method: "PUT", path: "/api/v1/groups/-x", body: `{"service":"monolith","replicas":1}`}, 400, "lowercase", "name"},
		{"name too long", req{method: "DELETE", path: "/api/v1/groups/" + strings.Repeat("a", 40)}, 400, "1 to 32", "name"},
		{"name mismatch", req{method: "PUT", path: "/api/v1/groups/web", body: `{"name":"other","service":"monolith","replicas":1}`}, 400, `"other" in the body differs`, "name"},
		{"scale out of range", req{method: "POST", path: "/api/v1/groups/web/scale", body: `{"replicas":1000}`}, 400, "out of range", "replicas"},
		{"scale negative", req{method: "POST", path: "/api/v1/groups/web/scale", body: `{"replicas":-1}`}, 400, "out of range", "replicas"},
		{"put out of range", req{method: "PUT", path: "/api/v1/groups/web", body: `{"service":"monolith","replicas":51}`}, 400, "out of range", "replicas"},
		{"put unknown service", req{method: "PUT", path: "/api/v1/groups/web", body: `{"service":"bitcoin","replicas":1}`}, 400, "not a catalogued service", "service"},
		{"put resources out of range", req{method: "PUT", path: "/api/v1/groups/web", body: `{"service":"monolith","replicas":1,"resources":{"memoryMiB":99999}}`}, 400, "out of range", "resources.memoryMiB"},
		{"put liveness too often", req{method: "PUT", path: "/api/v1/groups/web", body: `{"service":"monolith","replicas":1,"liveness":{"periodMs":10}}`}, 400, "out of range", "liveness.periodMs"},
		{"put liveness timeout over period", req{method: "PUT", path: "/api/v1/groups/web", body: `{"service":"monolith","replicas":1,"liveness":{"periodMs":500,"timeoutMs":900}}`}, 400, "longer than liveness.periodMs", "liveness.timeoutMs"},
		{"put liveness unknown field", req{method: "PUT", path: "/api/v1/groups/web", body: `{"service":"monolith","replicas":1,"liveness":{"path":"/"}}`}, 400, `unknown field "path"`, ""},
		{"put unknown isolation", req{method: "PUT", path: "/api/v1/groups/web", body: `{"service":"monolith","replicas":1,"isolation":"jail"}`}, 400, "one of [container pod vm]", "isolation"},
		{"put vm isolation", req{method: "PUT", path: "/api/v1/groups/web", body: `{"service":"monolith","replicas":1,"isolation":"vm"}`}, 400, "has no VM image (VM images need QEMU and a guest kernel: qemu-system-x86_64 is not installed (make vm", "isolation"},
		{"put missing replicas", req{method: "PUT", path: "/api/v1/groups/web", body: `{"service":"monolith"}`}, 400, "is required", "replicas"},
		{"scale missing replicas", req{method: "POST", path: "/api/v1/groups/web/scale", body: `{}`}, 400, "is required", "replicas"},
		{"scale null replicas", req{method: "POST", path: "/api/v1/groups/web/scale", body: `{"replicas":null}`}, 400, "is required", "replicas"},
		{"scale string", req{method: "POST", path: "/api/v1/groups/web/scale", body: `{"replicas":"3"}`}, 400, "replicas must be a number, not a string", ""},
		{"scale fraction", req{method: "POST", path: "/api/v1/groups/web/scale", body: `{"replicas":1.5}`}, 400, "replicas must be a whole number", ""},
		{"scale huge", req{method: "POST", path: "/api/v1/groups/web/scale", body: `{"replicas":1e40}`}, 400, "replicas must be a whole number", ""},
		{"resources wrong type", req{method: "PUT", path: "/api/v1/groups/web", body: `{"service":"monolith","replicas":1,"resources":[]}`}, 400, "resources must be an object, not an array", ""},
		{"body is an array", req{method: "POST", path: "/api/v1/groups/web/scale", body: `[1]`}, 400, "must be a JSON object", ""},
		{"trailing data", req{method: "POST", path: "/api/v1/groups/web/scale", body: `{"replicas":1} {"replicas":2}`}, 400, "more follows", ""},
		{"trailing garbage", req{method: "POST", path: "/api/v1/groups/web/scale", body: `{"replicas":1}x`}, 400, "not JSON follows", ""},
		{"syntax", req{method: "POST", path: "/api/v1/groups/web/scale", body: `{"replicas":}`}, 400, "not valid JSON", ""},
		{"truncated", req{method: "POST", path: "/api/v1/groups/web/scale", body: `{"replicas":1`}, 400, "ends too early", ""},
		{"empty body", req{method: "POST", path: "/api/v1/groups/web/scale"}, 400, "body is empty", ""},
		{"down with fields", req{method: "POST", path: "/api/v1/down", body: `{"force":true}`}, 400, `unknown field "force"`, ""},
		{"get missing", req{method: "GET", path: "/api/v1/groups/nope"}, 404, `group "nope" not found`, ""},
		{"delete missing", req{method: "DELETE", path: "/api/v1/groups/nope"}, 404, "not found", ""},
		{"scale missing group", req{method: "POST", path: "/api/v1/groups/nope/scale", body: `{"replicas":1}`}, 404, "not found", ""},
		{"no route", req{method: "GET", path: "/api/v2/groups"}, 404, "no route", ""},
		{"trailing slash", req{method: "GET", path: "/api/v1/groups/"}, 404, "no route", ""},
		{"method", req{method: "PATCH", path: "/api/v1/groups/web", body: `{}`}, 405, "PATCH is not allowed", ""},
		{"method on down", req{method: "GET", path: "/api/v1/down"}, 405, "allowed: POST", ""},
		{"too large", req{method: "PUT", path: "/api/v1/groups/web", body: `{"service":"` + strings.Repeat("m", 70<<10) + `","replicas":1}`}, 413, "more than the 65536 bytes", ""},
		{"no content type", req{method: "PUT", path: "/api/v1/groups/web", body: `{"service":"monolith","replicas":1}`, headers: []string{"Content-Type:"}}, 415, "got none", ""},
		{"form", req{method: "POST", path: "/api/v1/groups/web/scale", body: `replicas=3`, headers: []string{"Content-Type: application/x-www-form-urlencoded"}}, 415, "must be application/json", ""},
		{"latin1", req{method: "POST", path: "/api/v1/groups/web/scale", body: `{"replicas":3}`, headers: []string{"Content-Type: application/json; charset=latin1"}}, 415, "must be application/json", ""},
		{"controller fails", req{method: "PUT", path: "/api/v1/groups/broken", body: `{"service":"monolith","replicas":1}`}, 500, "docker engine unreachable", ""},
		{"controller panics", req{method: "PUT", path: "/api/v1/groups/panic", body: `{"service":"monolith","replicas":1}`}, 500, "internal error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHandler(t, Options{})
			w := serve(t, h, tt.r)
			if w.Code != tt.code {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.code, w.Body)
			}
			e := decodeBody[ErrorResponse](t, w)
			if !strings.Contains(e.Error, tt.want) {
				t.Errorf("error = %q, want it to contain %q", e.Error, tt.want)
			}
			if e.Field != tt.field {
				t.Errorf("field = %q, want %q", e.Field, tt.field)
			}
		})
	}
}

func TestMethodNotAllowedListsMethods(t *testing.T) {
	w := serve(t, newHandler(t, Options{}), req{method: "PATCH", path: "/api/v1/groups/web"})
	if w.Code != 405 {
		t.Fatalf("status = %d", w.Code)
	}
	allow := w.Header().Get("Allow")
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		if !strings.Contains(allow, m) {
			t.Errorf("Allow = %q, missing %s", allow, m)
		}
	}
}

func TestHost(t *testing.T) {
	h := newHandler(t, Options{AllowedHosts: []string{"flotilla.lan", "box.example:9000"}})
	tests := []struct {
		host string
		code int
	}{
		{"127.0.0.1:8080", 200},
		{"127.0.0.1", 200},
		{"127.1.2.3:80", 200},
		{"localhost", 200},
		{"LOCALHOST:8080", 200},
		{"[::1]:8080", 200},
		{"[::1]", 200},
		{"flotilla.lan:8080", 200},
		{"flotilla.lan", 200},
		{"box.example:9000", 200},
		{"box.example:9001", 403},
		{"box.example", 403},
		{"evil.example", 403},
		{"evil.example:8080", 403},
		{"localhost.evil.example", 403},
		{"127.0.0.1.nip.io", 403},
		{"10.0.0.1:8080", 403},
		{"0.0.0.0:8080", 403},
		{"[::]:8080", 403},
		{"::1", 403},
		{"127.0.0.1:99999", 403},
		{"", 403},
	}
	for _, tt := range tests {
		w := serve(t, h, req{method: "GET", path: "/api/v1/groups", headers: []string{"Host: " + tt.host}})
		if w.Code != tt.code {
			t.Errorf("Host %q: status %d, want %d", tt.host, w.Code, tt.code)
		}
		if tt.code == 403 && !strings.Contains(decodeBody[ErrorResponse](t, w).Error, "not allowed") {
			t.Errorf("Host %q: message %s", tt.host, w.Body)
		}
	}
	// The guard also covers routes that do not exist and wrong methods.
	for _, r := range []req{{method: "GET", path: "/nope"}, {method: "PATCH", path: "/api/v1/groups/web"}, {method: "GET", path: "/api/v1/groups/"}} {
		r.headers = []string{"Host: evil.example"}
		if w := serve(t, h, r); w.Code != 403 {
			t.Errorf("%s %s from a foreign host: %d", r.method, r.path, w.Code)
		}
	}
}

func TestToken(t *testing.T) {
	h := newHandler(t, Options{Token: "s3cret-token"})
	for _, path := range []string{"/healthz", "/api/v1/groups", "/nope"} {
		w := serve(t, h, req{method: "GET", path: path})
		if w.Code != 401 || w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s without token: %d %v", path, w.Code, w.Header())
		}
		if e := decodeBody[ErrorResponse](t, w); !strings.Contains(e.Error, "Bearer") {
			t.Errorf("401 should say how to authenticate: %q", e.Error)
		}
	}
	for _, auth := range []string{"Bearer wrong", "Bearer s3cret-token-and-more", "Basic s3cret-token", "s3cret-token", "Bearer"} {
		if w := serve(t, h, req{method: "GET", path: "/api/v1/groups", headers: []string{"Authorization: " + auth}}); w.Code != 401 {
			t.Errorf("Authorization %q: %d, want 401", auth, w.Code)
		}
	}
	for _, auth := range []string{"Bearer s3cret-token", "bearer s3cret-token"} {
		if w := serve(t, h, req{method: "GET", path: "/api/v1/groups", headers: []string{"Authorization: " + auth}}); w.Code != 200 {
			t.Errorf("Authorization %q: %d, want 200", auth, w.Code)
		}
	}
	// Without a token configured, none is needed.
	if w := serve(t, newHandler(t, Options{}), req{method: "GET", path: "/api/v1/groups"}); w.Code != 200 {
		t.Errorf("no token configured: %d", w.Code)
	}
}

func TestOrigin(t *testing.T) {
	h := newHandler(t, Options{AllowedHosts: []string{"flotilla.lan"}})
	tests := []struct {
		origin string
		host   string
		code   int
	}{
		{"http://127.0.0.1:8080", testHost, 200},
		{"http://localhost:8080", testHost, 200},
		{"http://[::1]:8080", testHost, 200},
		{"http://localhost:8080", "localhost:8080", 200},
		{"https://flotilla.lan", testHost, 200},
		{"http://flotilla.lan:8080", "flotilla.lan:8080", 200},
		{"http://localhost", "localhost", 200},
		{"null", testHost, 403},
		{"", testHost, 403},
		{"https://evil.example", testHost, 403},
		{"http://evil.example:8080", testHost, 403},
		{"http://127.0.0.1:3000", testHost, 403}, // another local program's page
		{"http://localhost", testHost, 403},
		{"file://", testHost, 403},
		{"http://127.0.0.1:8080/path", testHost, 403},
		{"http://user@127.0.0.1:8080", testHost, 403},
		{"chrome-extension://abc", testHost, 403},
	}
	for _, tt := range tests {
		r := req{method: "POST", path: "/api/v1/groups/web/scale", body: `{"replicas":1}`,
			headers: []string{"Host: " + tt.host, "Origin: " + tt.origin}}
		w := serve(t, h, r)
		if w.Code != tt.code {
			t.Errorf("Origin %q Host %q: %d, want %d (%s)", tt.origin, tt.host, w.Code, tt.code, w.Body)
		}
	}
}

// TestGarbageNeverServerError throws malformed bodies and headers at every
// route: the answer is always a 4xx (or a 2xx for tolerated input), never a
// 5xx.
func TestGarbageNeverServerError(t *testing.T) {
	bodies := []string{
		"", " ", "null", "true", "0", "-1", `""`, "[]", "{}", "{", "}", "{{}}", `{"replicas"}`,
		`{"replicas":}`, `{"replicas":-99999999999999999999}`, `{"replicas":1e309}`, `{"replicas":NaN}`,
		`{"replicas":[1]}`, `{"replicas":{"n":1}}`, `{"replicas":true}`, `{"replicas":"1"}`, `{"replicas":0x10}`,
		`{"service":null,"replicas":null}`, `{"service":1,"replicas":1}`, `{"service":"monolith","replicas":1,"resources":null}`,
		`{"service":"monolith","replicas":1,"resources":{"memoryMiB":-1}}`, `{"service":"monolith","replicas":1,"resources":{"pids":1.5}}`,
		`{"service":"` + "\xff\xfe" + `","replicas":1}`, "\x00\x01\x02", "\ufeff{}", `{"name":"","service":"monolith","replicas":1}`,
		`{"name":"../etc","service":"monolith","replicas":1}`, `{"service":"monolith","replicas":2147483648}`,
		`{"service":"monolith","replicas":9223372036854775807}`, strings.Repeat("[", 10000), strings.Repeat(`{"a":`, 5000),
		`{"service":"monolith","replicas":1}` + strings.Repeat(" ", 70<<10), `{"Replicas":1}`, `{"REPLICAS":1,"replicas":2}`,
	}
	routes := []struct{ method, path string }{
		{"PUT", "/api/v1/groups/web"}, {"PUT", "/api/v1/groups/new"}, {"POST", "/api/v1/groups/web/scale"},
		{"POST", "/api/v1/down"}, {"GET", "/api/v1/groups/web"}, {"DELETE", "/api/v1/groups/web"},
		{"PUT", "/api/v1/groups/%00"}, {"PUT", "/api/v1/groups/a%2Fb"}, {"POST", "/api/v1/groups/..%2F..%2Fscale/scale"},
	}
	contentTypes := []string{"application/json", "text/plain", "application/json; charset=utf-16", "application/json;;", ""}
	for _, rt := range routes {
		for _, ct := range contentTypes {
			for _, b := range bodies {
				h := newHandler(t, Options{})
				hr := httptest.NewRequest(rt.method, rt.path, bytes.NewBufferString(b))
				hr.Host = testHost
				hr.Header.Set("Content-Type", ct)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, hr)
				if w.Code >= 500 {
					t.Errorf("%s %s %q body %.40q: %d %s", rt.method, rt.path, ct, b, w.Code, w.Body)
				}
				if w.Code >= 400 {
					if e := decodeBody[ErrorResponse](t, w); e.Error == "" {
						t.Errorf("%s %s: %d without an error message", rt.method, rt.path, w.Code)
					}
				}
			}
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"no controller":    {},
		"negative body":    {Controller: newFake(), MaxBodyBytes: -1},
		"token space":      {Controller: newFake(), Token: "a b"},
		"token newline":    {Controller: newFake(), Token: "abc\n"},
		"host with path":   {Controller: newFake(), AllowedHosts: []string{"flotilla.lan/x"}},
		"host with url":    {Controller: newFake(), AllowedHosts: []string{"http://flotilla.lan"}},
		"host empty":       {Controller: newFake(), AllowedHosts: []string{""}},
		"host bad port":    {Controller: newFake(), AllowedHosts: []string{"flotilla.lan:http"}},
		"host bad bracket": {Controller: newFake(), AllowedHosts: []string{"[flotilla]"}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
}

func TestMaxBodyBytesOption(t *testing.T) {
	h := newHandler(t, Options{MaxBodyBytes: 16})
	w := serve(t, h, req{method: "POST", path: "/api/v1/groups/web/scale", body: `{"replicas": 1          }`})
	if w.Code != 413 {
		t.Fatalf("status = %d, want 413", w.Code)
	}
	// A body of unknown length is cut off while reading.
	hr := httptest.NewRequest("POST", "/api/v1/groups/web/scale", io.MultiReader(strings.NewReader(`{"replicas": 1`), strings.NewReader(strings.Repeat(" ", 100)+"}")))
	hr.ContentLength = -1
	hr.Host = testHost
	hr.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, hr)
	if rec.Code != 413 {
		t.Fatalf("chunked: status = %d, want 413 (%s)", rec.Code, rec.Body)
	}
}

func TestLog(t *testing.T) {
	var log bytes.Buffer
	h := newHandler(t, Options{Log: &log})
	serve(t, h, req{method: "PUT", path: "/api/v1/groups/broken", body: `{"service":"monolith","replicas":1}`})
	serve(t, h, req{method: "GET", path: "/api/v1/groups", headers: []string{"Authorization: Bearer do-not-log-me"}})
	if !strings.Contains(log.String(), "docker engine unreachable") {
		t.Errorf("log lacks the controller failure:\n%s", log.String())
	}
	if strings.Contains(log.String(), "do-not-log-me") {
		t.Errorf("log leaks the token:\n%s", log.String())
	}
}

// FuzzBodies runs its seeds with go test; "go test -fuzz FuzzBodies" explores
// further. Whatever the body, the answer is never a 5xx.
func FuzzBodies(f *testing.F) {
	for _, s := range []string{`{"service":"monolith","replicas":1}`, `{"replicas":3}`, `{}`, `[]`, `{"resources":{"pids":1}}`, "\x00"} {
		f.Add("PUT", s)
		f.Add("POST", s)
	}
	h, err := New(Options{Controller: newFake(spec.Group{Name: "web", Service: "monolith", Replicas: 1})})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, body string) {
		path := "/api/v1/groups/web"
		if method != "PUT" {
			method, path = "POST", path+"/scale"
		}
		w := serve(t, h, req{method: method, path: path, body: body})
		if w.Code >= 500 {
			t.Fatalf("%s %q: %d %s", method, body, w.Code, w.Body)
		}
	})
}

// A group's JSON carries the load run aimed at it as "load", after its
// replicas, as it did when the field lived in the controller's status.
func TestGroupCarriesItsLoadRun(t *testing.T) {
	loads := load.NewManager(load.ManagerOptions{})
	t.Cleanup(loads.Close)
	h := newHandler(t, Options{Load: loads})
	w := serve(t, h, req{method: "GET", path: "/api/v1/groups/web"})
	if w.Code != 200 || strings.Contains(w.Body.String(), `"load"`) {
		t.Fatalf("a group without a load run: %d %s", w.Code, w.Body)
	}
	// Aimed at web-1's address: nothing listens there, but the run exists.
	rep, err := loads.Start(load.Spec{Target: "127.0.0.1:32001", Rate: 1, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/groups/web", "/api/v1/groups"} {
		w = serve(t, h, req{method: "GET", path: path})
		body := w.Body.String()
		at := strings.Index(body, `,"load":{"id":"`+rep.ID+`"`)
		if w.Code != 200 || at < 0 || at < strings.Index(body, `"replicas":[`) {
			t.Errorf("GET %s: %d %s; want the run after the replicas", path, w.Code, body)
		}
	}
	var g Group
	if err := json.Unmarshal(serve(t, h, req{method: "GET", path: "/api/v1/groups/web"}).Body.Bytes(), &g); err != nil || g.Name != "web" || g.Load == nil || g.Load.ID != rep.ID {
		t.Errorf("decoded as Group: %+v %v", g, err)
	}
}

// newFake is the shared fake controller holding groups.
func newFake(groups ...spec.Group) *apitest.Controller {
	return apitest.New(apitest.Options{}, groups...)
}

// A balancer cannot listen on the API's own port: every way of making or
// changing a group through the API refuses it, naming the field, before the
// controller sees it.
func TestBalancerPortOfTheAPIIsRefused(t *testing.T) {
	fake := newFake(spec.Group{Name: "web", Service: "monolith", Replicas: 2})
	clash := spec.Scenario{Name: "clash", Title: "a stage that wants the API's port", Groups: []spec.Group{
		{Name: "shop", Service: "monolith", Replicas: 1},
		{Name: "edge", Service: "gateway", Replicas: 1, Balancer: spec.Balancer{Policy: "round-robin", Port: 8080}},
	}}
	fine := spec.Scenario{Name: "fine", Title: "a stage on another port", Groups: []spec.Group{
		{Name: "edge", Service: "gateway", Replicas: 1, Balancer: spec.Balancer{Policy: "round-robin", Port: 8081}},
	}}
	h := newHandler(t, Options{Controller: fake, ReservedPorts: []int{8080}, Scenarios: []spec.Scenario{clash, fine}})

	refused := func(what string, w *httptest.ResponseRecorder) {
		t.Helper()
		e := decodeBody[ErrorResponse](t, w)
		if w.Code != 400 || e.Field != "balancer.port" || !strings.Contains(e.Error, "8080") || !strings.Contains(e.Reason, "API listens on") {
			t.Errorf("%s: %d %s; want 400 naming balancer.port", what, w.Code, w.Body)
		}
	}
	refused("new group", serve(t, h, req{method: "PUT", path: "/api/v1/groups/edge", body: `{"service":"gateway","replicas":1,"balancer":{"policy":"round-robin","port":8080}}`}))
	refused("changed group", serve(t, h, req{method: "PUT", path: "/api/v1/groups/web", body: `{"service":"monolith","replicas":2,"balancer":{"policy":"p2c","port":8080}}`}))
	w := serve(t, h, req{method: "PUT", path: "/api/v1/scenario", body: `{"name":"clash"}`})
	refused("scenario", w)
	if e := decodeBody[ErrorResponse](t, w); !strings.Contains(e.Error, "group edge of scenario clash") {
		t.Errorf("the scenario's refusal does not say which group: %s", w.Body)
	}
	if len(fake.Puts()) != 0 || fake.Scenario() != "" || fake.Len() != 1 {
		t.Errorf("a refused request reached the controller: puts %+v, scenario %q, %d groups", fake.Puts(), fake.Scenario(), fake.Len())
	}
	if g, _ := fake.Spec("web"); g.Balancer.Port != 0 || g.Balancer.Policy != spec.PolicyRoundRobin {
		t.Errorf("web changed: %+v", g.Balancer)
	}

	// Any other port, and no port, pass.
	if w := serve(t, h, req{method: "PUT", path: "/api/v1/groups/edge", body: `{"service":"gateway","replicas":1,"balancer":{"policy":"round-robin","port":8081}}`}); w.Code != 201 {
		t.Errorf("port 8081: %d %s", w.Code, w.Body)
	}
	if w := serve(t, h, req{method: "PUT", path: "/api/v1/groups/web", body: `{"service":"monolith","replicas":2}`}); w.Code != 200 {
		t.Errorf("no port: %d %s", w.Code, w.Body)
	}
	if w := serve(t, h, req{method: "PUT", path: "/api/v1/scenario", body: `{"name":"fine"}`}); w.Code != 200 || fake.Scenario() != "fine" {
		t.Errorf("scenario on 8081: %d %s", w.Code, w.Body)
	}

	for _, p := range []int{0, -1, 65536} {
		if _, err := New(Options{Controller: fake, ReservedPorts: []int{p}}); err == nil {
			t.Errorf("reserved port %d was accepted", p)
		}
	}
}

// GET /api/v1/stats answers every replica's latest figures, by name, as
// the controller sampled them.
func TestStats(t *testing.T) {
	f := newFake(spec.Group{Name: "web", Service: "monolith", Replicas: 1})
	h := newHandler(t, Options{Controller: f})
	w := serve(t, h, req{method: "GET", path: "/api/v1/stats"})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"replicas":{}`) {
		t.Fatalf("before any sample: %d %s, want 200 and no replicas", w.Code, w.Body)
	}
	f.SetStats(map[string]controller.ReplicaStats{"web-1": {Group: "web", CPUPercent: 1.5, MemBytes: 6 << 20}})
	w = serve(t, h, req{method: "GET", path: "/api/v1/stats"})
	var got StatsResponse
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != http.StatusOK {
		t.Fatalf("%d %s: %v", w.Code, w.Body, err)
	}
	if r := got.Replicas["web-1"]; r.Group != "web" || r.MemBytes != 6<<20 || r.CPUPercent != 1.5 {
		t.Errorf("web-1 = %+v, want the sampled figures", r)
	}
}

// TestPutGroupDryRun: ?dryRun=true answers what a put would keep, or the
// error a put would get, and changes nothing.
func TestPutGroupDryRun(t *testing.T) {
	fake := newFake()
	h := newHandler(t, Options{Controller: fake})
	w := serve(t, h, req{method: "PUT", path: "/api/v1/groups/shop?dryRun=true", body: `{"service":"catalog","replicas":3}`})
	if got := decodeBody[DryRunResponse](t, w); w.Code != 200 || !got.DryRun || got.Group.Name != "shop" || got.Group.Replicas != 3 || got.Group.Resources != spec.DefaultResources {
		t.Fatalf("dry run of a good group: %d %s", w.Code, w.Body)
	}
	if w := serve(t, h, req{method: "GET", path: "/api/v1/groups/shop"}); w.Code != 404 || len(fake.Puts()) != 0 {
		t.Fatalf("a dry run made the group: GET %d %s, %d puts", w.Code, w.Body, len(fake.Puts()))
	}
	for _, c := range []struct {
		name, path, body string
		code             int
		field            string
	}{
		{"invalid group", "/api/v1/groups/shop?dryRun=true", `{"service":"catalog","replicas":99}`, 400, "replicas"},
		{"vm without the image", "/api/v1/groups/shop?dryRun", `{"service":"catalog","replicas":1,"isolation":"vm"}`, 400, "isolation"},
		{"bad dryRun", "/api/v1/groups/shop?dryRun=maybe", `{"service":"catalog","replicas":1}`, 400, "dryRun"},
	} {
		w := serve(t, h, req{method: "PUT", path: c.path, body: c.body})
		var e struct {
			Error string `json:"error"`
			Field string `json:"field"`
		}
		_ = json.Unmarshal(w.Body.Bytes(), &e)
		if w.Code != c.code || e.Error == "" || e.Field != c.field {
			t.Errorf("%s: %d %s; want %d naming field %q", c.name, w.Code, w.Body, c.code, c.field)
		}
	}
	if len(fake.Puts()) != 0 {
		t.Errorf("dry runs put %+v", fake.Puts())
	}
}

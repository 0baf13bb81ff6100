package api

import (
	"strings"
	"testing"

	"github.com/flotilla/flotilla/orchestrator/api/apitest"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

func TestRolloutRoutes(t *testing.T) {
	fake := apitest.New(apitest.Options{HoldRollouts: true}, spec.Group{Name: "web", Service: "monolith", Replicas: 2})
	h := newHandler(t, Options{Controller: fake})

	// Nothing rolled out yet: one revision, no rollout, nothing to undo.
	w := serve(t, h, req{method: "GET", path: "/api/v1/groups/web/rollouts"})
	got := decodeBody[RolloutsResponse](t, w)
	if w.Code != 200 || len(got.Rollouts) != 0 || got.Rollouts == nil || len(got.Revisions) != 1 || got.Revisions[0].Version != "v1" {
		t.Fatalf("rollouts of a new group: %d %s", w.Code, w.Body)
	}
	if w = serve(t, h, req{method: "POST", path: "/api/v1/groups/web/rollback"}); w.Code != 409 || !strings.Contains(w.Body.String(), "no earlier revision") {
		t.Errorf("rollback with one revision: %d %s", w.Code, w.Body)
	}
	if w = serve(t, h, req{method: "POST", path: "/api/v1/groups/web/rollout/pause"}); w.Code != 409 || !strings.Contains(w.Body.String(), "no rollout") {
		t.Errorf("pause with none running: %d %s", w.Code, w.Body)
	}

	// A new version starts a rollout; the group shows it.
	w = serve(t, h, req{method: "PUT", path: "/api/v1/groups/web", body: `{"service":"monolith","replicas":2,"version":"v2","rollout":{"strategy":"canary","canary":{"steps":[20,100],"pauseSeconds":5}}}`})
	st := decodeBody[controller.GroupStatus](t, w)
	if w.Code != 200 || st.Version != "v2" || st.Revision != 2 || st.Status != controller.StatusRollingOut || st.Rollout == nil || st.Rollout.Strategy != "canary" || st.Rollout.From != 1 {
		t.Fatalf("put v2: %d %s", w.Code, w.Body)
	}
	if p := fake.Puts()[len(fake.Puts())-1]; p.Version != "v2" || p.Rollout == nil || p.Rollout.Canary.PauseSeconds != 5 {
		t.Errorf("the controller got %+v", p)
	}

	// Another template change while it runs: 409, unless superseding.
	v3 := `{"service":"monolith","replicas":2,"version":"v3","flaw":"errors"}`
	if w = serve(t, h, req{method: "PUT", path: "/api/v1/groups/web", body: v3}); w.Code != 409 || !strings.Contains(w.Body.String(), "supersede") {
		t.Errorf("put v3 while rolling out: %d %s", w.Code, w.Body)
	}
	if w = serve(t, h, req{method: "PUT", path: "/api/v1/groups/web?supersede=maybe", body: v3}); w.Code != 400 || decodeBody[ErrorResponse](t, w).Field != "supersede" {
		t.Errorf("supersede=maybe: %d %s", w.Code, w.Body)
	}
	w = serve(t, h, req{method: "PUT", path: "/api/v1/groups/web?supersede=true", body: v3})
	if st = decodeBody[controller.GroupStatus](t, w); w.Code != 200 || st.Version != "v3 (errors)" || st.Revision != 3 {
		t.Fatalf("put v3 superseding: %d %s", w.Code, w.Body)
	}

	// Pause and resume.
	w = serve(t, h, req{method: "POST", path: "/api/v1/groups/web/rollout/pause"})
	if ro := decodeBody[controller.RolloutStatus](t, w); w.Code != 200 || ro.Status != controller.RolloutPaused || !ro.Paused || ro.Revision != 3 {
		t.Errorf("pause: %d %s", w.Code, w.Body)
	}
	w = serve(t, h, req{method: "POST", path: "/api/v1/groups/web/rollout/resume", body: `{}`})
	if ro := decodeBody[controller.RolloutStatus](t, w); w.Code != 200 || ro.Status != controller.RolloutProgressing || ro.Paused {
		t.Errorf("resume: %d %s", w.Code, w.Body)
	}

	// History, newest first: the superseded rollout under the running one.
	w = serve(t, h, req{method: "GET", path: "/api/v1/groups/web/rollouts"})
	got = decodeBody[RolloutsResponse](t, w)
	if w.Code != 200 || len(got.Rollouts) != 2 || got.Rollouts[0].Revision != 3 || got.Rollouts[1].Status != controller.RolloutSuperseded ||
		len(got.Revisions) != 3 || got.Revisions[0].Revision != 3 || got.Revisions[2].Revision != 1 {
		t.Fatalf("rollouts: %d %s", w.Code, w.Body)
	}

	// Bad rollback bodies are refused, naming the field.
	for body, field := range map[string]string{`{"revision":-1}`: "revision", `{"revison":1}`: "", `{"revision":"1"}`: "", `{"revision":3}`: "revision", `{"revision":9}`: "revision"} {
		w = serve(t, h, req{method: "POST", path: "/api/v1/groups/web/rollback", body: body})
		e := decodeBody[ErrorResponse](t, w)
		if w.Code != 400 || e.Field != field || !strings.Contains(e.Error, "revision") {
			t.Errorf("rollback %s: %d %s", body, w.Code, w.Body)
		}
	}
	// Rolling back the running rollout goes to where it started from.
	w = serve(t, h, req{method: "POST", path: "/api/v1/groups/web/rollback"})
	ro := decodeBody[controller.RolloutStatus](t, w)
	if w.Code != 200 || !ro.Rollback || ro.Revision != 4 || ro.From != 3 || ro.Version != "v2" || ro.Reason == "" {
		t.Fatalf("rollback: %d %s", w.Code, w.Body)
	}
	fake.EndRollout("web", controller.RolloutComplete, "")
	w = serve(t, h, req{method: "POST", path: "/api/v1/groups/web/rollback", body: `{"revision":1}`})
	if ro = decodeBody[controller.RolloutStatus](t, w); w.Code != 200 || ro.Version != "v1" || ro.From != 4 {
		t.Fatalf("rollback to 1: %d %s", w.Code, w.Body)
	}

	// An unknown group is a 404 on every route; a bad name a 400.
	for _, r := range []req{
		{method: "GET", path: "/api/v1/groups/nope/rollouts"},
		{method: "POST", path: "/api/v1/groups/nope/rollback"},
		{method: "POST", path: "/api/v1/groups/nope/rollout/pause"},
		{method: "POST", path: "/api/v1/groups/nope/rollout/resume"},
	} {
		if w = serve(t, h, r); w.Code != 404 || decodeBody[ErrorResponse](t, w).Error != `group "nope" not found: list groups with GET /api/v1/groups` {
			t.Errorf("%s %s: %d %s", r.method, r.path, w.Code, w.Body)
		}
	}
	if w = serve(t, h, req{method: "GET", path: "/api/v1/groups/No!/rollouts"}); w.Code != 400 {
		t.Errorf("bad name: %d %s", w.Code, w.Body)
	}
	if w = serve(t, h, req{method: "POST", path: "/api/v1/groups/web/rollout/pause", body: `{"now":true}`}); w.Code != 400 || !strings.Contains(w.Body.String(), "no fields") {
		t.Errorf("pause with a body: %d %s", w.Code, w.Body)
	}
	if w = serve(t, h, req{method: "POST", path: "/api/v1/groups/web/rollout/stop"}); w.Code != 404 {
		t.Errorf("rollout/stop: %d %s", w.Code, w.Body)
	}
	if w = serve(t, h, req{method: "GET", path: "/api/v1/groups/web/rollback"}); w.Code != 405 {
		t.Errorf("GET rollback: %d %s", w.Code, w.Body)
	}
}

// The rollout routes pass the same guard as every other route.
func TestRolloutRoutesGuarded(t *testing.T) {
	h := newHandler(t, Options{Token: "tok"})
	for _, r := range []req{
		{method: "GET", path: "/api/v1/groups/web/rollouts"},
		{method: "POST", path: "/api/v1/groups/web/rollback"},
		{method: "POST", path: "/api/v1/groups/web/rollout/pause"},
		{method: "POST", path: "/api/v1/groups/web/rollout/resume"},
	} {
		if w := serve(t, h, r); w.Code != 401 {
			t.Errorf("%s %s without token: %d", r.method, r.path, w.Code)
		}
		r.headers = []string{"Authorization: Bearer tok", "Host: evil.example"}
		if w := serve(t, h, r); w.Code != 403 {
			t.Errorf("%s %s from another host: %d", r.method, r.path, w.Code)
		}
		r.headers = []string{"Authorization: Bearer tok", "Origin: https://evil.example"}
		if w := serve(t, h, r); w.Code != 403 {
			t.Errorf("%s %s from another origin: %d", r.method, r.path, w.Code)
		}
	}
}

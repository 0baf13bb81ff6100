package cli

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/api/apitest"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// setupRollouts is setup with rollouts that run until the test ends them.
func setupRollouts(t *testing.T) (*apitest.Controller, *api.Client, string) {
	t.Helper()
	clearEnv(t)
	fake := apitest.New(apitest.Options{HoldRollouts: true}, spec.Group{Name: "web", Service: "monolith", Replicas: 2})
	h, err := api.New(api.Options{Controller: fake})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	return fake, &api.Client{Addr: addr}, "--addr=" + addr
}

func TestRolloutVerb(t *testing.T) {
	fake, cl, addr := setupRollouts(t)
	ctx := t.Context()

	if out := mustRun(t, "rollout", "status", "web", addr); !strings.Contains(out, "web: revision 1 (v1), no rollout yet") {
		t.Errorf("status before any rollout:\n%s", out)
	}
	if _, _, err := run(t, "rollout", "undo", "web", addr); err == nil || !strings.Contains(err.Error(), "no earlier revision") || !strings.Contains(err.Error(), "flotilla rollout history web") {
		t.Errorf("undo with one revision: %v", err)
	}
	if _, _, err := run(t, "rollout", "pause", "web", addr); err == nil || !strings.Contains(err.Error(), "no rollout of group web is running") {
		t.Errorf("pause with none running: %v", err)
	}

	canary := &spec.Rollout{Strategy: spec.StrategyCanary, Canary: &spec.Canary{Steps: []int{20, 100}}}
	if _, _, err := cl.PutGroup(ctx, spec.Group{Name: "web", Service: "monolith", Replicas: 2, Version: "v3", Flaw: "errors", Rollout: canary}); err != nil {
		t.Fatal(err)
	}
	fake.SetRolloutProgress("web", 2, 1, 20, "1 of 2 replicas run v3 (errors)", map[string]float64{"v1": 0, "v3 (errors)": 0.3})
	out := mustRun(t, "rollout", "status", "web", addr)
	for _, want := range []string{"web: canary rollout progressing", "revision 1→2 (v1→v3 (errors))", "1 of 2 replicas run v3 (errors)", "step 1 of 2", "share 20%", "errors v1 0.0%, v3 (errors) 30.0%"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	var ro controller.RolloutStatus
	if err := json.Unmarshal([]byte(mustRun(t, "rollout", "status", "web", "--json", addr)), &ro); err != nil || ro.Revision != 2 || ro.Share != 20 {
		t.Errorf("status --json: %+v %v", ro, err)
	}

	if out := mustRun(t, "rollout", "pause", "web", addr); !strings.Contains(out, "rollout of web to revision 2 (v3 (errors)) paused") {
		t.Errorf("pause:\n%s", out)
	}
	if out := mustRun(t, "rollout", "status", "web", addr); !strings.Contains(out, "canary rollout paused") {
		t.Errorf("status when paused:\n%s", out)
	}
	if out := mustRun(t, "rollout", "resume", "web", addr); !strings.Contains(out, "resumed") {
		t.Errorf("resume:\n%s", out)
	}

	out = mustRun(t, "rollout", "undo", "web", addr)
	if !strings.Contains(out, "web rolling back to v1 as revision 3 (from revision 2, canary): rolled back by hand") {
		t.Errorf("undo:\n%s", out)
	}
	fake.EndRollout("web", controller.RolloutComplete, "")
	if _, _, err := run(t, "rollout", "undo", "web", "--to", "3", addr); err == nil || !strings.Contains(err.Error(), "not an earlier revision") {
		t.Errorf("undo --to the current revision: %v", err)
	}
	if err := json.Unmarshal([]byte(mustRun(t, "rollout", "undo", "web", "--to=2", "--json", addr)), &ro); err != nil || !ro.Rollback || ro.Version != "v3 (errors)" || ro.Revision != 4 {
		t.Errorf("undo --to 2 --json: %+v %v", ro, err)
	}

	out = mustRun(t, "rollout", "history", "web", addr)
	for _, want := range []string{"REVISION", "FROM", "VERSION", "STRATEGY", "STATUS", "STARTED", "REASON",
		"progressing (rollback)", "complete (rollback)", "rolled-back", "rolled back by hand", "CREATED", "4 (current)", "flotilla rollout undo web"} {
		if !strings.Contains(out, want) {
			t.Errorf("history lacks %q:\n%s", want, out)
		}
	}
	if i, j := strings.Index(out, "\n4 "), strings.Index(out, "\n2 "); i < 0 || j < 0 || i > j {
		t.Errorf("history is not newest first:\n%s", out)
	}
	var h api.RolloutsResponse
	if err := json.Unmarshal([]byte(mustRun(t, "rollout", "history", "web", "--json", addr)), &h); err != nil || len(h.Rollouts) != 3 || len(h.Revisions) != 4 {
		t.Errorf("history --json: %+v %v", h, err)
	}
	if out := mustRun(t, "help", "rollout"); !strings.Contains(out, "flotilla rollout undo GROUP") || !strings.Contains(out, "-watch") {
		t.Errorf("help rollout:\n%s", out)
	}
	if out := mustRun(t, "help"); !strings.Contains(out, "rollout") {
		t.Errorf("help lacks rollout:\n%s", out)
	}
}

func TestRolloutVerbUsage(t *testing.T) {
	_, _, addr := setupRollouts(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"rollout"}, `takes a subcommand (status, history, undo, pause, resume) and a GROUP`},
		{[]string{"rollout", "restart", "web"}, `unknown subcommand "restart"`},
		{[]string{"rollout", "status"}, `status takes one GROUP, e.g. "flotilla rollout status web"`},
		{[]string{"rollout", "undo", "web", "db"}, `undo takes one GROUP`},
		{[]string{"rollout", "status", "web", "--to", "1"}, `--to is for undo only`},
		{[]string{"rollout", "undo", "web", "--to", "0"}, `--to takes a revision number, 1 or more`},
		{[]string{"rollout", "undo", "web", "--to", "-2"}, `--to takes a revision number, 1 or more`},
		{[]string{"rollout", "undo", "web", "--to", "x"}, `invalid value "x" for flag -to`},
		{[]string{"rollout", "history", "web", "--watch"}, `--watch is for status only`},
		{[]string{"rollout", "status", "web", "--watch", "--json"}, `leave out --json`},
	} {
		_, errOut, err := run(t, append(tt.args, addr)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(errOut, "Usage:") {
			t.Errorf("%v: err = %v, stderr:\n%s", tt.args, err, errOut)
		}
	}
	if _, _, err := run(t, "rollout", "status", "Web!", addr); err == nil || !strings.Contains(err.Error(), "group name") {
		t.Errorf("bad name: %v", err)
	}
	if _, _, err := run(t, "rollout", "history", "nope", addr); err == nil || !strings.Contains(err.Error(), `group "nope" not found`) {
		t.Errorf("unknown group: %v", err)
	}
}

func TestRolloutWatch(t *testing.T) {
	fake, cl, addr := setupRollouts(t)
	ctx := t.Context()
	every, limit := watchEvery, watchFor
	watchEvery = 10 * time.Millisecond
	t.Cleanup(func() { watchEvery, watchFor = every, limit })

	put := func(version string) {
		t.Helper()
		if _, err := cl.PutGroupSupersede(ctx, spec.Group{Name: "web", Service: "monolith", Replicas: 2, Version: version}); err != nil {
			t.Fatal(err)
		}
	}
	// end ends the running rollout once the watch has drawn a few times.
	end := func(status, reason string) {
		go func() {
			time.Sleep(50 * time.Millisecond)
			fake.SetRolloutProgress("web", 1, 1, 0, "1 of 2 replicas run v2", nil)
			time.Sleep(50 * time.Millisecond)
			fake.EndRollout("web", status, reason)
		}()
	}

	put("v2")
	end(controller.RolloutComplete, "")
	out := mustRun(t, "rollout", "status", "web", "--watch", addr)
	if !strings.Contains(out, "\rweb: rolling rollout progressing") || !strings.Contains(out, "1 of 2 replicas run v2") || !strings.HasSuffix(strings.TrimRight(out, " \n"), "all 2 replicas run v2; share 100%") || strings.Count(out, "\r") > 3 {
		t.Errorf("watch of a rollout that completes:\n%q", out)
	}

	put("v3")
	end(controller.RolloutFailed, "no progress in 120s")
	out, _, err := run(t, "rollout", "status", "web", "--watch", addr)
	if err == nil || !strings.Contains(err.Error(), "rollout of web to revision 3 (v3 (errors)) rolled-back: automatic: no progress in 120s") {
		t.Errorf("watch of a rollout that fails: %v\n%q", err, out)
	}
	if !strings.Contains(out, "rolling rollback progressing, revision 3→4 (v3 (errors)→v2)") {
		t.Errorf("watch of a rollout that fails shows the rollback under way:\n%q", out)
	}

	fake.EndRollout("web", controller.RolloutComplete, "")
	put("v1")
	watchFor = 30 * time.Millisecond
	if _, _, err := run(t, "rollout", "status", "web", "--watch", addr); err == nil || !strings.Contains(err.Error(), "still progressing after 30ms") {
		t.Errorf("watch past its time: %v", err)
	}
}

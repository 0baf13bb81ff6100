package cli

import (
	"strings"
	"testing"
)

func TestServeRuntime(t *testing.T) {
	clearEnv(t)
	got := fakeServe(t)
	state := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--runtime", "kubernetes"}, `--runtime "kubernetes": choose engine`},
		{[]string{"--swarm-init"}, "add --runtime swarm"},
		{[]string{"--runtime", "engine", "--swarm-init"}, "add --runtime swarm"},
	} {
		_, _, err := run(t, append([]string{"serve", "--state-dir", state}, tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("serve %v: %v, want an error saying %q", tt.args, err, tt.want)
		}
	}
	if len(*got) != 0 {
		t.Fatalf("Serve ran despite invalid flags: %+v", *got)
	}
	mustRun(t, "serve", "--state-dir", state)
	mustRun(t, "serve", "--state-dir", state, "--runtime", "swarm", "--swarm-init")
	t.Setenv("FLOTILLA_RUNTIME", "swarm")
	mustRun(t, "serve", "--state-dir", state)
	if len(*got) != 3 {
		t.Fatalf("Serve ran %d times, want 3", len(*got))
	}
	if def := (*got)[0]; def.Runtime != RuntimeEngine || def.SwarmInit {
		t.Errorf("defaults: runtime %q, swarm-init %v; want engine without init", def.Runtime, def.SwarmInit)
	}
	if sw := (*got)[1]; sw.Runtime != RuntimeSwarm || !sw.SwarmInit {
		t.Errorf("flags: runtime %q, swarm-init %v", sw.Runtime, sw.SwarmInit)
	}
	if env := (*got)[2]; env.Runtime != RuntimeSwarm || env.SwarmInit {
		t.Errorf("FLOTILLA_RUNTIME: runtime %q, swarm-init %v", env.Runtime, env.SwarmInit)
	}
}

func TestDownLeaveSwarmOnTheEngineRuntime(t *testing.T) {
	fake, addr := setup(t, "")
	_, _, err := run(t, "down", addr, "--leave-swarm")
	if err == nil || !strings.Contains(err.Error(), "local engine runtime") {
		t.Fatalf("down --leave-swarm on the engine runtime: %v, want a refusal naming the engine runtime", err)
	}
	if fake.Downs() != 0 {
		t.Errorf("a refused down removed everything anyway (%d downs)", fake.Downs())
	}
}

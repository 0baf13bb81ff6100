package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/api/apitest"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// setup starts the API over a fake holding one group "web" and returns the
// fake and the --addr flag that reaches it. The environment is cleared of
// FLOTILLA_* so the developer's own settings do not leak in.
func setup(t *testing.T, token string) (*apitest.Controller, string) {
	t.Helper()
	clearEnv(t)
	fake := newFake(apitest.Options{})
	h, err := api.New(api.Options{Controller: fake, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return fake, "--addr=" + strings.TrimPrefix(srv.URL, "http://")
}

func clearEnv(t *testing.T) {
	for _, k := range []string{"FLOTILLA_ADDR", "FLOTILLA_TOKEN", "FLOTILLA_STATE_DIR", "FLOTILLA_SOURCE", "FLOTILLA_RUNTIME"} {
		t.Setenv(k, "")
	}
}

// run runs the command and returns its stdout, stderr and error.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := run(t, args...)
	if err != nil {
		t.Fatalf("flotilla %s: %v\nstderr:\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func TestPs(t *testing.T) {
	_, addr := setup(t, "")
	out := mustRun(t, "ps", addr)
	for _, want := range []string{"GROUP", "ISOLATION", "READY/DESIRED", "web", "monolith", "container", "2/2", "converged",
		"NAME", "HEALTH", "ADDRESS", "web-1", "web-2", "running", "ready", "127.0.0.1:32001"} {
		if !strings.Contains(out, want) {
			t.Errorf("ps output lacks %q:\n%s", want, out)
		}
	}

	var resp api.GroupsResponse
	if err := json.Unmarshal([]byte(mustRun(t, "ps", "--json", addr)), &resp); err != nil || len(resp.Groups) != 1 || resp.Groups[0].Name != "web" {
		t.Errorf("ps --json: %+v %v", resp, err)
	}

	mustRun(t, "down", addr)
	if out := mustRun(t, "ps", addr); !strings.Contains(out, "no groups") {
		t.Errorf("ps with no groups: %q", out)
	}
	if out := mustRun(t, "ps", "--json", addr); !strings.Contains(out, `"groups": []`) {
		t.Errorf("ps --json with no groups: %q", out)
	}
}

func TestScale(t *testing.T) {
	fake, addr := setup(t, "")
	out := mustRun(t, "scale", addr, "web", "3")
	if !strings.Contains(out, "scaled web to 3 replicas") || replicas(fake, "web") != 3 {
		t.Errorf("scale: %q, fake has %d", out, replicas(fake, "web"))
	}
	// Flags may follow the arguments.
	mustRun(t, "scale", "web", "0", addr)
	if replicas(fake, "web") != 0 {
		t.Errorf("scale with trailing flag: fake has %d", replicas(fake, "web"))
	}

	for _, n := range []string{"-1", "abc", "1.5", "-0.5", "3x"} {
		_, _, err := run(t, "scale", addr, "web", n)
		if err == nil || !strings.Contains(err.Error(), "N must be a non-negative integer") || !strings.Contains(err.Error(), n) {
			t.Errorf("scale web %s: err = %v", n, err)
		}
	}

	_, stderr, err := run(t, "scale", addr, "web")
	if err == nil || !strings.Contains(err.Error(), "takes a GROUP and a number N") || !strings.Contains(stderr, "flotilla scale [flags] GROUP N") {
		t.Errorf("scale with one argument: err = %v, stderr:\n%s", err, stderr)
	}

	if _, _, err := run(t, "scale", addr, "Web!", "1"); err == nil || !strings.Contains(err.Error(), "group name") {
		t.Errorf("bad name: %v", err)
	}
	if _, _, err := run(t, "scale", addr, "nope", "1"); err == nil || !strings.Contains(err.Error(), `group "nope" not found`) {
		t.Errorf("unknown group: %v", err)
	}
	if _, _, err := run(t, "scale", addr, "web", "999"); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("too many: %v", err)
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "groups.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodFile = `# stage 6: services as clusters
groups:
  - name: web
    service: monolith
    replicas: 3
  - name: catalog
    service: catalog
    replicas: 2
    resources:
      memoryMiB: 32
`

func TestApply(t *testing.T) {
	fake, addr := setup(t, "")
	out := mustRun(t, "apply", addr, writeFile(t, goodFile))
	if !strings.Contains(out, "updated group web: 3 replicas of monolith") || !strings.Contains(out, "created group catalog: 2 replicas of catalog") {
		t.Errorf("apply output:\n%s", out)
	}
	if len(fake.Puts()) != 2 || fake.Puts()[1].Name != "catalog" || fake.Puts()[1].Resources != (spec.Resources{MemoryMiB: 32}) {
		t.Errorf("PUTs = %+v (defaults are the controller's to apply)", fake.Puts())
	}

	Stdin = strings.NewReader("groups:\n- {name: cart, service: cart, replicas: 1}\n")
	t.Cleanup(func() { Stdin = os.Stdin })
	if out := mustRun(t, "apply", addr, "-"); !strings.Contains(out, "created group cart: 1 replica of cart") {
		t.Errorf("apply -: %q", out)
	}

	if out := mustRun(t, "apply", "--dry-run", addr, writeFile(t, goodFile)); !strings.Contains(out, "not sent") || len(fake.Puts()) != 3 {
		t.Errorf("dry run sent something or said nothing: %q, %d puts", out, len(fake.Puts()))
	}
}

// TestApplyChecksEveryGroupFirst: a group the controller would refuse,
// late in a file, stops the file before the groups ahead of it are sent.
func TestApplyChecksEveryGroupFirst(t *testing.T) {
	fake, addr := setup(t, "")
	file := writeFile(t, goodFile+"  - name: guests\n    service: monolith\n    replicas: 1\n    isolation: vm\n")
	_, _, err := run(t, "apply", addr, file)
	if err == nil || !strings.Contains(err.Error(), `apply group "guests"`) || !strings.Contains(err.Error(), "nothing in "+file+" was applied") {
		t.Errorf("apply with a refused group: err = %v", err)
	}
	if puts := fake.Puts(); len(puts) != 0 {
		t.Errorf("the groups before the refused one were sent: %+v", puts)
	}
}

func TestApplyBadFiles(t *testing.T) {
	tests := []struct {
		name, file string
		want       []string
	}{
		{"unknown field", "groups:\n  - name: web\n    service: monolith\n    image: evil/miner\n    replicas: 1\n",
			[]string{"line 4", `unknown field "image"`, "name, service, replicas, resources, balancer, probe and liveness"}},
		{"unknown service", "groups:\n  - name: web\n    service: monolith\n    replicas: 1\n  - name: pay\n    service: payments\n    replicas: 1\n",
			[]string{"line 6", `group "pay"`, "service", `"payments" is not a catalogued service`}},
		{"unknown nested field", "groups:\n  - name: web\n    service: monolith\n    replicas: 1\n    resources:\n      gpus: 1\n",
			[]string{"line 6", `unknown field "gpus" in resources`}},
		{"unknown top-level field", "group:\n  - name: web\n", []string{"line 1", `unknown field "group"`}},
		{"wrong type", "groups:\n  - name: web\n    service: monolith\n    replicas: three\n",
			[]string{"line 4", "replicas must be a whole number", `"three"`}},
		{"wrong nested type", "groups:\n  - name: web\n    service: monolith\n    replicas: 1\n    resources:\n      pids: many\n",
			[]string{"line 6", "resources.pids must be a whole number"}},
		{"groups not a list", "groups:\n  name: web\n", []string{"line 2", "groups must be a list of groups"}},
		{"negative replicas", "groups:\n  - name: web\n    service: monolith\n    replicas: -2\n",
			[]string{"line 4", "replicas: -2 is out of range"}},
		{"resources out of range", "groups:\n  - name: web\n    service: monolith\n    replicas: 1\n    resources:\n      memoryMiB: 999999\n",
			[]string{"line 6", "resources.memoryMiB"}},
		{"missing name", "groups:\n  - service: monolith\n    replicas: 1\n", []string{"line 2", "group 1", "name is required"}},
		{"bad name", "groups:\n  - name: Web_1\n    service: monolith\n", []string{"line 2", "lowercase"}},
		{"missing service", "groups:\n  - name: web\n    replicas: 1\n", []string{"line 2", "service: is required"}},
		{"duplicate", "groups:\n  - {name: web, service: monolith, replicas: 1}\n  - {name: web, service: cart, replicas: 1}\n",
			[]string{"line 3", "already defined at line 2"}},
		{"empty", "", []string{"is empty"}},
		{"comment only", "# nothing\n", []string{"is empty"}},
		{"no groups", "groups: []\n", []string{"has no groups"}},
		{"two documents", "groups:\n  - {name: web, service: monolith, replicas: 1}\n---\ngroups: []\n", []string{"more than one YAML document"}},
		// yaml.v3 names the line where the broken block starts, not the bad line.
		{"indentation", "groups:\n  - name: web\n   service: monolith\n", []string{"line 1", "did not find expected"}},
		{"tab", "groups:\n\t- name: web\n", []string{"line 2", "cannot start any token"}},
		{"not a mapping", "- web\n", []string{"line 1", "a mapping with a groups: list"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, addr := setup(t, "")
			path := writeFile(t, tt.file)
			_, _, err := run(t, "apply", addr, path)
			if err == nil {
				t.Fatal("apply accepted the file")
			}
			if !strings.HasPrefix(err.Error(), path) {
				t.Errorf("error should start with the file name: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if len(fake.Puts()) != 0 {
				t.Errorf("a bad file must send nothing, sent %+v", fake.Puts())
			}
		})
	}
}

func TestApplyArgs(t *testing.T) {
	_, addr := setup(t, "")
	if _, stderr, err := run(t, "apply", addr); err == nil || !strings.Contains(stderr, "flotilla apply [flags] FILE") {
		t.Errorf("apply without FILE: %v\n%s", err, stderr)
	}
	if _, _, err := run(t, "apply", addr, filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestNotRunning(t *testing.T) {
	clearEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	want := `the controller is not running at ` + addr + `: start it with "flotilla serve"`
	for _, args := range [][]string{
		{"ps", "--addr", addr},
		{"scale", "--addr", addr, "web", "1"},
		{"down", "--addr", addr},
		{"services", "--addr", addr},
		{"apply", "--addr", addr, writeFile(t, goodFile)},
	} {
		_, _, err := run(t, args...)
		if !errors.Is(err, api.ErrNoController) || err.Error() != want {
			t.Errorf("%s: err = %v, want %q", args[0], err, want)
		}
	}

	t.Setenv("FLOTILLA_ADDR", addr)
	if _, _, err := run(t, "ps"); err == nil || err.Error() != want {
		t.Errorf("ps with FLOTILLA_ADDR: %v", err)
	}
}

func TestToken(t *testing.T) {
	_, addr := setup(t, "s3cret")
	_, _, err := run(t, "ps", addr)
	if err == nil || !strings.Contains(err.Error(), "FLOTILLA_TOKEN") {
		t.Errorf("ps without token: %v", err)
	}
	mustRun(t, "ps", addr, "--token", "s3cret")
	t.Setenv("FLOTILLA_TOKEN", "s3cret")
	mustRun(t, "ps", addr)
	// The help text must not show the token from the environment.
	if out := mustRun(t, "help", "ps"); strings.Contains(out, "s3cret") {
		t.Errorf("help leaks the token:\n%s", out)
	}
}

func TestDownAndServices(t *testing.T) {
	fake, addr := setup(t, "")
	out := mustRun(t, "down", addr)
	if !strings.Contains(out, "deleted 1 group: web") || fake.Downs() != 1 {
		t.Errorf("down: %q", out)
	}
	if out := mustRun(t, "down", addr); !strings.Contains(out, "there were no groups") {
		t.Errorf("second down: %q", out)
	}
	out = mustRun(t, "services", addr)
	for _, s := range spec.ServiceNames() {
		if !strings.Contains(out, s) {
			t.Errorf("services lacks %s:\n%s", s, out)
		}
	}
	if !strings.Contains(out, "cart,orders") {
		t.Errorf("services should show what checkout needs:\n%s", out)
	}
}

func TestHelpAndUsage(t *testing.T) {
	clearEnv(t)
	out := mustRun(t, "help")
	for _, v := range []string{"serve", "ps", "scale", "apply", "down", "services", "version"} {
		if !strings.Contains(out, "  "+v+" ") {
			t.Errorf("help lacks %s:\n%s", v, out)
		}
	}
	if out := mustRun(t, "--help"); !strings.Contains(out, "Commands:") {
		t.Errorf("--help: %q", out)
	}
	if out := mustRun(t, "scale", "-h"); !strings.Contains(out, "GROUP N") {
		t.Errorf("scale -h: %q", out)
	}
	if out := mustRun(t, "help", "apply"); !strings.Contains(out, "memoryMiB") {
		t.Errorf("help apply: %q", out)
	}
	_, stderr, err := run(t, "frobnicate")
	if err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) || !strings.Contains(stderr, "Commands:") {
		t.Errorf("unknown verb: %v\n%s", err, stderr)
	}
	if _, stderr, err := run(t); err == nil || !strings.Contains(stderr, "Commands:") {
		t.Errorf("no verb: %v", err)
	}
	if _, stderr, err := run(t, "ps", "--bogus"); err == nil || !strings.Contains(err.Error(), "-bogus") || !strings.Contains(stderr, "flotilla ps") {
		t.Errorf("unknown flag: %v\n%s", err, stderr)
	}
	if _, _, err := run(t, "ps", "extra"); err == nil || !strings.Contains(err.Error(), "takes no arguments") {
		t.Errorf("ps extra: %v", err)
	}
	if out := mustRun(t, "version"); !strings.HasPrefix(out, "flotilla ") {
		t.Errorf("version: %q", out)
	}
}

// fakeServe records the configuration "flotilla serve" would run with.
func fakeServe(t *testing.T) *[]ServeConfig {
	t.Helper()
	var got []ServeConfig
	old := Serve
	Serve = func(_ context.Context, cfg ServeConfig, _, _ io.Writer) error {
		got = append(got, cfg)
		return nil
	}
	t.Cleanup(func() { Serve = old })
	return &got
}

func TestServe(t *testing.T) {
	clearEnv(t)
	got := fakeServe(t)
	state := t.TempDir()

	_, _, err := run(t, "serve", "--addr", "0.0.0.0:8080", "--state-dir", state)
	if err == nil || !strings.Contains(err.Error(), "without a token") || !strings.Contains(err.Error(), "FLOTILLA_TOKEN") {
		t.Errorf("non-loopback without token: %v", err)
	}
	for _, addr := range []string{":8080", "192.168.1.5:8080", "[::]:8080", "example.com:80"} {
		if _, _, err := run(t, "serve", "--addr", addr, "--state-dir", state); err == nil {
			t.Errorf("serve --addr %s without a token was accepted", addr)
		}
	}
	if _, _, err := run(t, "serve", "--addr", "0.0.0.0:8080", "--token", "short", "--state-dir", state); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Errorf("short remote token: %v", err)
	}
	if len(*got) != 0 {
		t.Fatalf("Serve ran despite invalid flags: %+v", *got)
	}

	mustRun(t, "serve", "--state-dir", state)
	mustRun(t, "serve", "--addr", "localhost:9000", "--state-dir", state, "--max-replicas", "10", "--allowed-host", "flotilla.lan", "--allowed-host", "box:8080")
	t.Setenv("FLOTILLA_TOKEN", "0123456789abcdef0123")
	mustRun(t, "serve", "--addr", "192.168.1.5:8080", "--state-dir", state)
	if len(*got) != 3 {
		t.Fatalf("Serve ran %d times, want 3", len(*got))
	}
	def, local, remote := (*got)[0], (*got)[1], (*got)[2]
	if def.Addr != api.DefaultAddr || def.MaxReplicas != spec.DefaultMaxReplicas || def.Token != "" || def.StateDir != state {
		t.Errorf("defaults: %+v", def)
	}
	if local.Addr != "localhost:9000" || local.MaxReplicas != 10 || strings.Join(local.AllowedHosts, " ") != "flotilla.lan box:8080" {
		t.Errorf("flags: %+v", local)
	}
	if remote.Token != "0123456789abcdef0123" || strings.Join(remote.AllowedHosts, " ") != "192.168.1.5:8080" {
		t.Errorf("remote: %+v", remote)
	}

	for _, args := range [][]string{
		{"--addr", "8080"},
		{"--addr", "127.0.0.1:http"},
		{"--addr", "127.0.0.1:70000"},
		{"--max-replicas", "0"},
		{"--max-replicas", "abc"},
		{"--allowed-host", "http://flotilla.lan/"},
		{"--token", "has space"},
		{"--source", t.TempDir()},
		{"extra-arg"},
	} {
		if _, _, err := run(t, append([]string{"serve", "--state-dir", state}, args...)...); err == nil {
			t.Errorf("serve %v was accepted", args)
		}
	}

	t.Setenv("FLOTILLA_STATE_DIR", state)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module github.com/flotilla/flotilla\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "serve", "--source", src)
	if last := (*got)[len(*got)-1]; last.StateDir != state || last.Source != src {
		t.Errorf("env state dir and source: %+v", last)
	}

	Serve = nil
	if _, _, err := run(t, "serve"); err == nil || !strings.Contains(err.Error(), "not available") {
		t.Errorf("serve without a Serve: %v", err)
	}
}

// newFake is the shared fake controller holding one group, web: 2 replicas
// of the monolith.
func newFake(opts apitest.Options) *apitest.Controller {
	return apitest.New(opts, spec.Group{Name: "web", Service: "monolith", Replicas: 2})
}

// replicas is a group's desired count in the fake, or -1 without the group.
func replicas(fake *apitest.Controller, group string) int {
	g, ok := fake.Spec(group)
	if !ok {
		return -1
	}
	return g.Replicas
}

// A groups file whose balancer wants the controller's own port is refused
// whole before anything is sent; a port the API refuses for another reason
// is refused by the API, and apply says which field.
func TestApplyRefusesTheAPIPort(t *testing.T) {
	clearEnv(t)
	fake := newFake(apitest.Options{})
	srv := httptest.NewUnstartedServer(nil)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	const otherReserved = 9999
	h, err := api.New(api.Options{Controller: fake, ReservedPorts: []int{port, otherReserved}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	addr := "--addr=" + srv.Listener.Addr().String()

	// A good group before the clash is not applied either.
	file := writeFile(t, fmt.Sprintf("groups:\n  - {name: shop, service: monolith, replicas: 1}\n  - name: edge\n    service: gateway\n    replicas: 1\n    balancer:\n      policy: round-robin\n      port: %d\n", port))
	_, _, err = run(t, "apply", addr, file)
	if err == nil || !strings.HasPrefix(err.Error(), file) || !strings.Contains(err.Error(), `group "edge": balancer.port: `+fmt.Sprint(port)) {
		t.Errorf("apply with the API's port: %v", err)
	}
	if len(fake.Puts()) != 0 {
		t.Errorf("part of the file was applied: %+v", fake.Puts())
	}

	file = writeFile(t, fmt.Sprintf("groups:\n  - {name: edge, service: gateway, replicas: 1, balancer: {policy: p2c, port: %d}}\n", otherReserved))
	_, _, err = run(t, "apply", addr, file)
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Field != "balancer.port" || !strings.Contains(err.Error(), `apply group "edge"`) {
		t.Errorf("apply with a port the API refuses: %v", err)
	}
	if _, ok := fake.Spec("edge"); ok || len(fake.Puts()) != 0 {
		t.Errorf("the group reached the controller: %+v", fake.Puts())
	}
}

func TestCheckOwnPort(t *testing.T) {
	groups := []spec.Group{{Name: "a", Balancer: spec.Balancer{Port: 9000}}, {Name: "b"}}
	for addr, refused := range map[string]bool{
		"127.0.0.1:9000": true, "localhost:9000": true, "[::1]:9000": true,
		"127.0.0.1:9001": false, "192.168.1.5:9000": false, "flotilla.lan:9000": false,
		"http://127.0.0.1:9000": true, "http://localhost:9001/": false,
	} {
		err := checkOwnPort("g.yaml", addr, groups)
		if (err != nil) != refused {
			t.Errorf("%s: %v, want refused %v", addr, err, refused)
		}
		if err != nil && !strings.Contains(err.Error(), `g.yaml: group "a": balancer.port: 9000`) {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An injected crash must end the real process, which an in-process test
// cannot show: these tests build the binary and run it.

// buildShop builds this command into a temporary directory.
func buildShop(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "shop")
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a running shop binary.
type process struct {
	base, admin string        // URLs of the shop and of its admin API
	exited      chan struct{} // closed when it has exited
	err         error         // how it exited, once exited is closed
	stderr      *bytes.Buffer // all it wrote, once exited is closed
}

// start runs bin in role on free ports of this machine, with env added,
// and kills it at the end of the test if it is still running.
func start(t *testing.T, bin, role string, env ...string) *process {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"FLOTILLA_ROLE=" + role, "FLOTILLA_REPLICA=" + role + "-1", "PORT=0", "ADMIN_PORT=0"}, env...)
	out, stdout := io.Pipe()
	p := &process{exited: make(chan struct{}), stderr: new(bytes.Buffer)}
	cmd.Stdout, cmd.Stderr = stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		stdout.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill() // fails harmlessly if it is gone
		<-p.exited
	})

	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("read start line: %v", err)
	}
	go io.Copy(io.Discard, out)
	p.base, p.admin = addrs(t, line)
	return p
}

// putFault sets a fault through the admin API.
func (p *process) putFault(t *testing.T, feature, body string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "PUT", p.admin+"/faults/"+feature, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /faults/%s = %s", feature, resp.Status)
	}
}

// wantCrash asserts that GET path gets no reply and the process exits as an
// uncaught panic does, with code 2.
func (p *process) wantCrash(t *testing.T, path string) {
	t.Helper()
	if resp, err := http.Get(p.base + path); err == nil {
		resp.Body.Close()
		t.Errorf("GET %s answered %s, want no answer", path, resp.Status)
	}
	select {
	case <-p.exited:
		var exit *exec.ExitError
		if !errors.As(p.err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("process ended with %v, want exit code 2", p.err)
		}
		if !strings.Contains(p.stderr.String(), "panic: injected crash on GET "+path) {
			t.Errorf("stderr lacks the panic:\n%s", p.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("process still running 10s after the crash")
	}
}

func TestCrashKillsTheWholeMonolith(t *testing.T) {
	p := start(t, buildShop(t), "monolith")
	p.putFault(t, "deals", `{"crash":true}`)
	if code, body := get(t, p.base+"/catalog"); code != http.StatusOK {
		t.Fatalf("GET /catalog before the crash = %d %s", code, body)
	}

	p.wantCrash(t, "/deals")
	if resp, err := http.Get(p.base + "/catalog"); err == nil {
		resp.Body.Close()
		t.Errorf("GET /catalog after the crash answered %s: the catalog should have died with deals", resp.Status)
	}
}

func TestCrashOnlyFiresInARoleServingTheFeature(t *testing.T) {
	p := start(t, buildShop(t), "catalog")
	p.putFault(t, "deals", `{"crash":true}`)

	if code, _ := get(t, p.base+"/deals"); code != http.StatusNotFound {
		t.Errorf("GET /deals on the catalog = %d, want 404", code)
	}
	if code, _ := get(t, p.base+"/catalog"); code != http.StatusOK {
		t.Errorf("GET /catalog = %d, want 200", code)
	}
	if _, body := get(t, p.admin+"/faults"); body != `{"deals":{"crash":true}}` {
		t.Errorf("faults = %s, want the deals crash still pending", body)
	}

	p.putFault(t, "catalog", `{"crash":true}`)
	p.wantCrash(t, "/catalog")
}

func TestBadReleaseCrashes(t *testing.T) {
	p := start(t, buildShop(t), "catalog", "FLOTILLA_VERSION=v3", "FLOTILLA_FLAW=crash", "FLOTILLA_FLAW_AFTER=300ms")
	resp, err := http.Get(p.base + "/catalog")
	if err != nil {
		t.Fatalf("GET /catalog before the crash: %v", err)
	}
	resp.Body.Close()
	if v := resp.Header.Get("X-Flotilla-Version"); resp.StatusCode != http.StatusOK || v != "v3" {
		t.Errorf("GET /catalog before the crash = %s, version %q", resp.Status, v)
	}
	select {
	case <-p.exited:
		var exit *exec.ExitError
		if !errors.As(p.err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("process ended with %v, want exit code 2", p.err)
		}
		if !strings.Contains(p.stderr.String(), "panic: v3 is a bad release: crashed 300ms after start") {
			t.Errorf("stderr lacks the panic:\n%s", p.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("process still running 10s after start")
	}
}

func TestBadReleaseSettingStopsTheBinary(t *testing.T) {
	bin := buildShop(t)
	for _, env := range []string{"FLOTILLA_VERSION=v9", "FLOTILLA_FLAW=slow", "FLOTILLA_FLAW_AFTER=soon"} {
		cmd := exec.CommandContext(t.Context(), bin)
		cmd.Env = []string{"FLOTILLA_ROLE=catalog", "PORT=0", "ADMIN_PORT=0", env}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		name, _, _ := strings.Cut(env, "=")
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "shop: ") || !strings.Contains(string(out), name) {
			t.Errorf("%s: exit %v, output %q; want exit code 1 and a message naming %s", env, err, out, name)
		}
	}
}

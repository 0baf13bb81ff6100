package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRunServesAndShutsDown starts the binary's run on a free port, asks it
// for /readyz, then cancels it as SIGTERM would.
func TestRunServesAndShutsDown(t *testing.T) {
	t.Setenv("PORT", "0")
	t.Setenv("ADMIN_PORT", "0")
	t.Setenv("FLOTILLA_ROLE", "cart") // the flag below must win
	t.Setenv("FLOTILLA_REPLICA", "shop-test")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out, stdout := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--role", "monolith"}, stdout, io.Discard)
		stdout.Close()
	}()

	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("read start line: %v (run: %v)", err, <-done)
	}
	go io.Copy(io.Discard, out)
	for _, want := range []string{"role=monolith", "replica=shop-test"} {
		if !strings.Contains(line, want) {
			t.Errorf("start line %q lacks %q", line, want)
		}
	}
	base, admin := addrs(t, line)

	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Flotilla-Replica") != "shop-test" {
		t.Errorf("/readyz = %d, replica %q", resp.StatusCode, resp.Header.Get("X-Flotilla-Replica"))
	}
	if code, body := get(t, admin+"/faults"); code != http.StatusOK || body != "{}" {
		t.Errorf("admin GET /faults = %d %s, want 200 {}", code, body)
	}
	if code, _ := get(t, base+"/faults"); code != http.StatusNotFound {
		t.Errorf("GET /faults on the shop's port = %d, want 404", code)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

// addrs returns the shop's and the admin API's base URLs on 127.0.0.1 from
// the start line.
func addrs(t *testing.T, line string) (base, admin string) {
	t.Helper()
	m := regexp.MustCompile(` addr=\S*:(\d+) admin=\S*:(\d+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no addr and admin in start line %q", line)
	}
	return "http://127.0.0.1:" + m[1], "http://127.0.0.1:" + m[2]
}

// get sends GET url and returns the status and the trimmed body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestRunRejectsUnknownRole(t *testing.T) {
	t.Setenv("FLOTILLA_ROLE", "warehouse")
	err := run(t.Context(), nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unknown role "warehouse"`) || !strings.Contains(err.Error(), "monolith") {
		t.Errorf("run = %v, want an unknown-role error listing the roles", err)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	if err := run(t.Context(), []string{"--colour", "red"}, io.Discard, io.Discard); err == nil {
		t.Error("unknown flag: no error")
	}
	if err := run(t.Context(), []string{"extra"}, io.Discard, io.Discard); err == nil {
		t.Error("stray argument: no error")
	}
}

func TestRunRejectsUnknownRelease(t *testing.T) {
	for _, tc := range []struct{ key, value, want string }{
		{"FLOTILLA_VERSION", "v4", `unknown FLOTILLA_VERSION "v4": want one of v1, v2, v3`},
		{"FLOTILLA_FLAW", "slow", `unknown FLOTILLA_FLAW "slow": want one of errors, unready, crash`},
		{"FLOTILLA_FLAW_AFTER", "-1s", `FLOTILLA_FLAW_AFTER "-1s": want a positive duration`},
	} {
		t.Run(tc.key, func(t *testing.T) {
			t.Setenv("PORT", "0")
			t.Setenv("ADMIN_PORT", "0")
			t.Setenv(tc.key, tc.value)
			err := run(t.Context(), nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRunNamesItsVersion(t *testing.T) {
	t.Setenv("PORT", "0")
	t.Setenv("ADMIN_PORT", "0")
	t.Setenv("FLOTILLA_VERSION", "v2")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out, stdout := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--role", "catalog"}, stdout, io.Discard)
		stdout.Close()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("read start line: %v (run: %v)", err, <-done)
	}
	go io.Copy(io.Discard, out)
	if !strings.Contains(line, "version=v2") {
		t.Errorf("start line %q lacks version=v2", line)
	}
	base, admin := addrs(t, line)
	for _, u := range []string{base + "/healthz", base + "/catalog", admin + "/faults"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if v := resp.Header.Get("X-Flotilla-Version"); v != "v2" {
			t.Errorf("GET %s: version %q, want v2", u, v)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after cancel = %v", err)
	}
}

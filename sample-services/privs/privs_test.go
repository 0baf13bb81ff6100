package privs

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// TestNoNewPrivileges runs itself again as a child, which sets the flag and
// reports it, with the kernel's view of every thread when it could set
// them all (a binary without cgo, as the images' are): the test binary
// itself keeps its privileges.
func TestNoNewPrivileges(t *testing.T) {
	if os.Getenv("PRIVS_CHILD") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestNoNewPrivileges$", "-test.v")
		cmd.Env = append(os.Environ(), "PRIVS_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS") && !strings.Contains(string(out), "--- SKIP") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		t.Logf("child:\n%s", out)
		return
	}
	runtime.LockOSThread() // with cgo only this thread gets the flag
	defer runtime.UnlockOSThread()
	if on, err := Set(); err != nil || on {
		t.Skipf("no_new_privs is set already (%v, %v): inherited, nothing to show", on, err)
	}
	err := NoNewPrivileges()
	if on, gerr := Set(); gerr != nil || !on {
		t.Fatalf("after NoNewPrivileges (%v): set %v, %v", err, on, gerr)
	}
	if err != nil {
		if !strings.Contains(err.Error(), "one thread only") {
			t.Fatal(err)
		}
		t.Skipf("%v: the other threads are not checked", err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		status, err := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
		if err != nil {
			continue // a thread that ended
		}
		if !strings.Contains(string(status), "NoNewPrivs:\t1") {
			t.Errorf("thread %s lacks no_new_privs", task.Name())
		}
	}
	t.Logf("%d threads, each with no_new_privs", len(tasks))
}

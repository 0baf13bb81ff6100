package shop

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadViewOfAFakeProc(t *testing.T) {
	proc := t.TempDir()
	for name, body := range map[string]string{
		"sys/kernel/osrelease": "6.1.0-57-cloud-amd64\n",
		"sys/kernel/hostname":  "web-1\n",
		"meminfo":              "MemFree:  1000 kB\nMemTotal:        250000 kB\nBuffers: 1 kB\n",
	} {
		p := filepath.Join(proc, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"1", "7", "42", "self", "sys"} {
		os.MkdirAll(filepath.Join(proc, d), 0o755)
	}
	os.WriteFile(filepath.Join(proc, "99"), nil, 0o644) // a file named like a PID is no process
	v := readView(proc)
	if v.Kernel != "6.1.0-57-cloud-amd64" || v.Hostname != "web-1" || v.MemTotalKiB != 250000 || v.Processes != 3 || v.CPUs < 1 {
		t.Errorf("view %+v; want kernel 6.1.0-57-cloud-amd64, hostname web-1, 250000 KiB, 3 processes", v)
	}
	if v := readView(filepath.Join(proc, "missing")); v.Kernel != "" || v.Processes != 0 || v.MemTotalKiB != 0 {
		t.Errorf("view of nothing %+v, want empty fields", v)
	}
}

// Every role answers /diag with what its process really sees: here, the
// test's own machine.
func TestDiagOnEveryRole(t *testing.T) {
	var uts syscall.Utsname
	if err := syscall.Uname(&uts); err != nil {
		t.Skip("no uname here:", err)
	}
	var rel strings.Builder
	for _, c := range uts.Release {
		if c == 0 {
			break
		}
		rel.WriteByte(byte(c))
	}
	for _, role := range []string{"monolith", "catalog", "gateway"} {
		h, err := Handler(role, Config{})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/diag", nil))
		var v MachineView
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &v) != nil {
			t.Fatalf("%s: /diag answered %d %s", role, rec.Code, rec.Body)
		}
		if v.Kernel != rel.String() || v.MemTotalKiB <= 0 || v.Processes < 1 {
			t.Errorf("%s: view %+v; want kernel %s, some memory and at least this process", role, v, rel.String())
		}
	}
}

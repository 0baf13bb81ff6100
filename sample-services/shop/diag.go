package shop

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/flotilla/flotilla/sample-services/internal/httpjson"
)

// MachineView is what one replica's process sees of the machine it runs on,
// the body of GET /diag. Side by side it tells the isolation kinds apart: a
// container and a pod see the host's kernel and memory but only their own
// processes; a virtual machine sees a kernel and memory of its own.
type MachineView struct {
	Kernel      string `json:"kernel"`      // the running kernel's release, as uname -r says
	Hostname    string `json:"hostname"`    // the UTS hostname
	MemTotalKiB int64  `json:"memTotalKiB"` // MemTotal of /proc/meminfo
	Processes   int    `json:"processes"`   // the processes it can see in /proc
	CPUs        int    `json:"cpus"`        // the CPUs it may run on
	Version     string `json:"version"`     // the release the replica runs
}

// diag answers GET /diag from the proc file system at proc, for a replica
// of version v.
func diag(proc, v string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		view := readView(proc)
		view.Version = v
		httpjson.Write(w, http.StatusOK, view)
	}
}

// readView reads what it can; a field it cannot read stays empty, so the
// answer still says the rest.
func readView(proc string) MachineView {
	v := MachineView{CPUs: runtime.NumCPU()}
	if b, err := os.ReadFile(filepath.Join(proc, "sys/kernel/osrelease")); err == nil {
		v.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(proc, "sys/kernel/hostname")); err == nil {
		v.Hostname = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(proc, "meminfo")); err == nil {
		v.MemTotalKiB = memTotal(b)
	}
	if entries, err := os.ReadDir(proc); err == nil {
		for _, e := range entries {
			if _, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() {
				v.Processes++
			}
		}
	}
	return v
}

// memTotal is the MemTotal line of a meminfo file, in KiB; 0 if absent.
func memTotal(meminfo []byte) int64 {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		return n
	}
	return 0
}

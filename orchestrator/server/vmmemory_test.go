package server

import (
	"os"
	"path/filepath"
	"testing"
)

func TestVMMemoryIsThreeQuartersOfTheMachine(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "meminfo")
	os.WriteFile(p, []byte("MemFree:   100 kB\nMemTotal:       25165824 kB\n"), 0o644)
	if got := vmMemoryMiB(p); got != 18432 {
		t.Errorf("24 GiB machine: %d MiB for VMs, want 18432", got)
	}
	os.WriteFile(p, []byte("MemTotal: lots\n"), 0o644)
	if got := vmMemoryMiB(p); got != 0 {
		t.Errorf("unreadable MemTotal: %d, want 0 (no bound)", got)
	}
	if got := vmMemoryMiB(filepath.Join(dir, "none")); got != 0 {
		t.Errorf("no meminfo: %d, want 0 (no bound)", got)
	}
}

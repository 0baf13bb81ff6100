package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

func TestRunNeedsSecret(t *testing.T) {
	env := map[string]string{"BUS_STORE_DIR": t.TempDir(), "PORT": "0"}
	err := run(context.Background(), func(k string) string { return env[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "FLOTILLA_BUS_SECRET is not set") {
		t.Errorf("run without a secret: err = %v", err)
	}
}

func TestMemoryLimit(t *testing.T) {
	file := func(content string, err error) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if name != "/sys/fs/cgroup/memory.max" {
				t.Errorf("read %s", name)
			}
			return []byte(content), err
		}
	}
	none := func(string) string { return "" }
	if got := memoryLimit(file("67108864\n", nil), none); got != 50331648 {
		t.Errorf("64 MiB container: limit %d, want 48 MiB", got)
	}
	if got := memoryLimit(file("max\n", nil), none); got != 0 {
		t.Errorf("no container limit: %d, want 0", got)
	}
	if got := memoryLimit(file("", os.ErrNotExist), none); got != 0 {
		t.Errorf("no cgroup file: %d, want 0", got)
	}
	if got := memoryLimit(file("67108864\n", nil), func(string) string { return "32MiB" }); got != 0 {
		t.Errorf("GOMEMLIMIT set: %d, want 0 (the runtime reads it)", got)
	}
}

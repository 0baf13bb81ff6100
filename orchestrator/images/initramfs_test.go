package images

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The archive is read back by GNU cpio, the reference implementation.
func TestCPIOReadByGNUCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("GNU cpio is not installed (apt-get install cpio)")
	}
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	c.File("init", 0o755, []byte("#!init\n"))
	c.File("modules/order", 0o644, []byte("virtio.ko\nvirtio_ring.ko\n"))
	c.File("modules/empty.ko", 0o644, nil)
	c.CharDevice("dev/console", 0o600, 5, 1)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d is not 4-aligned", buf.Len())
	}
	cmd := exec.Command("cpio", "-itv", "--quiet")
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v\n%s", err, out)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		names = append(names, f[0][:1]+" "+f[len(f)-1])
	}
	want := []string{"- init", "d modules", "- modules/order", "- modules/empty.ko", "d dev", "c dev/console"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("cpio lists %q, want %q\n%s", names, want, out)
	}
	if !strings.Contains(string(out), "5,") {
		t.Errorf("no device 5,1 in listing:\n%s", out)
	}

	dir := t.TempDir()
	cmd = exec.Command("cpio", "-id", "--quiet", "--no-absolute-filenames", "--nonmatching", "dev/*")
	cmd.Dir, cmd.Stdin = dir, bytes.NewReader(buf.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "modules", "order"))
	if err != nil || string(got) != "virtio.ko\nvirtio_ring.ko\n" {
		t.Errorf("modules/order = %q, %v", got, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "init")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("init: %v, %v; want mode 0755", fi, err)
	}
}

func TestOrderModulesPutsDependenciesFirst(t *testing.T) {
	deps := map[string][]string{
		"virtio_net":            {"virtio", "net_failover", "virtio_ring"},
		"net_failover":          {"failover"},
		"failover":              nil,
		"virtio":                nil,
		"virtio_ring":           nil,
		"virtio_pci":            {"virtio_pci_modern_dev", "virtio", "virtio_ring", "virtio_pci_legacy_dev"},
		"virtio_pci_modern_dev": nil,
		"virtio_pci_legacy_dev": nil,
	}
	got, err := orderModules([]string{"virtio_pci", "virtio_net"}, deps)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_ring", "virtio_pci", "failover", "net_failover", "virtio_net"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order = %q, want %q", got, want)
	}
}

func TestOrderModulesRefuses(t *testing.T) {
	if _, err := orderModules([]string{"a"}, map[string][]string{"a": {"b"}}); err == nil || !strings.Contains(err.Error(), "b, needed by a") {
		t.Errorf("missing dependency: err = %v", err)
	}
	if _, err := orderModules([]string{"a"}, map[string][]string{"a": {"b"}, "b": {"a"}}); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: err = %v", err)
	}
	if _, err := orderModules([]string{"x"}, nil); err == nil {
		t.Error("unknown module: no error")
	}
}

func TestModuleNameAndModinfo(t *testing.T) {
	if got := moduleName("/lib/modules/6.1/kernel/drivers/misc/pvpanic/pvpanic-pci.ko.xz"); got != "pvpanic_pci" {
		t.Errorf("moduleName = %q", got)
	}
	info := []byte("license=GPL\x00depends=virtio,virtio_ring\x00intree=Y\x00")
	if got := parseModinfoDepends(info); !reflect.DeepEqual(got, []string{"virtio", "virtio_ring"}) {
		t.Errorf("depends = %q", got)
	}
	if got := parseModinfoDepends([]byte("depends=\x00")); got != nil {
		t.Errorf("empty depends = %q", got)
	}
}

// A kernel that builds a driver in lists it in modules.builtin; such a
// module is not looked for, and what it would depend on is not loaded.
func TestResolveModulesSkipsBuiltIns(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/net/virtio_net.ko\nkernel/drivers/misc/pvpanic/pvpanic-pci.ko\nkernel/drivers/virtio/virtio_mmio.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := resolveModules(dir, GuestModules)
	if err != nil || len(got) != 0 {
		t.Errorf("resolveModules = %q, %v; want nothing to load", got, err)
	}
	if _, err := resolveModules(dir, []string{"failover"}); err == nil || !strings.Contains(err.Error(), "failover") {
		t.Errorf("a module neither built in nor present: err = %v", err)
	}
}

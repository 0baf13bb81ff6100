//go:build linux

// Command vminit is PID 1 of a VM replica's guest: it mounts the kernel's
// file systems, loads the virtio modules the initramfs carries, configures
// eth0 from the kernel command line, and runs the shop. When the shop
// exits it powers the guest off if the shop succeeded and lets the kernel
// panic otherwise, so that QEMU's exit code (through pvpanic) and with it
// the container's tells the controller how the replica ended.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flotilla/flotilla/orchestrator/images/vmboot"
)

// Paths inside the initramfs, written by the image builder.
const (
	shopPath    = "/shop"
	modulesDir  = "/modules"
	moduleOrder = "/modules/order"
)

func main() {
	code := run()
	unix.Sync()
	if code == 0 {
		fmt.Fprintln(os.Stderr, "vminit: done; powering off")
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	}
	// PID 1 exiting panics the kernel, which pvpanic turns into QEMU's
	// failure exit.
	fmt.Fprintf(os.Stderr, "vminit: the shop failed (exit %d); the guest panics\n", code)
	os.Exit(code)
}

// run prepares the guest, runs the shop and returns its exit code.
func run() int {
	if err := mountAll(); err != nil {
		fmt.Fprintln(os.Stderr, "vminit:", err)
		return 1
	}
	// Say which kernel runs even under "quiet": the guest's own is the
	// point of a VM replica, and the engine's logs are where it shows.
	if v, err := os.ReadFile("/proc/version"); err == nil {
		fmt.Fprintf(os.Stderr, "vminit: %s", v)
	}
	line, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		fmt.Fprintln(os.Stderr, "vminit: read command line:", err)
		return 1
	}
	cfg, err := vmboot.Parse(string(line))
	if err != nil {
		fmt.Fprintln(os.Stderr, "vminit: kernel command line:", err)
		return 1
	}
	if cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			fmt.Fprintln(os.Stderr, "vminit: hostname:", err)
		}
	}
	if err := loadModules(); err != nil {
		fmt.Fprintln(os.Stderr, "vminit:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err = configureNetwork(ctx, cfg)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vminit: network:", err)
		return 1
	}
	if cfg.Probe {
		fmt.Fprintln(os.Stderr, vmboot.ProbeMarker)
		return 0
	}
	return runShop(cfg)
}

func mountAll() error {
	for _, m := range []struct {
		target, fstype string
		flags          uintptr
	}{
		{"/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"/dev", "devtmpfs", unix.MS_NOSUID},
		{"/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV},
	} {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return fmt.Errorf("mount %s: %w", m.target, err)
		}
		if err := unix.Mount(m.fstype, m.target, m.fstype, m.flags, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s: %w", m.target, err)
		}
	}
	return nil
}

// loadModules loads the modules in the order the builder wrote, which puts
// each module after those it depends on. One already there (built in, or
// loaded before) is fine.
func loadModules() error {
	data, err := os.ReadFile(moduleOrder)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read module order: %w", err)
	}
	for _, name := range vmboot.ReadModuleOrder(string(data)) {
		if err := loadModule(filepath.Join(modulesDir, filepath.Base(name))); err != nil {
			return err
		}
	}
	return nil
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load module: %w", err)
	}
	defer f.Close()
	flags := 0
	if strings.HasSuffix(path, ".xz") || strings.HasSuffix(path, ".zst") || strings.HasSuffix(path, ".gz") {
		flags |= unix.MODULE_INIT_COMPRESSED_FILE
	}
	if err := unix.FinitModule(int(f.Fd()), "", flags); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("load module %s: %w", filepath.Base(path), err)
	}
	return nil
}

func runShop(cfg vmboot.Config) int {
	cmd := exec.Command(shopPath)
	cmd.Env = append([]string{"FLOTILLA_ROLE=" + cfg.Role, "PATH=/"}, cfg.Env...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Dir = "/tmp"
	// The shop runs as nobody, as in a container replica: a compromised
	// shop should not own the guest's kernel interfaces.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			fmt.Fprintf(os.Stderr, "vminit: shop: %v\n", err)
			if code := exit.ExitCode(); code > 0 {
				return code
			}
			return 1
		}
		fmt.Fprintln(os.Stderr, "vminit: start shop:", err)
		return 1
	}
	return 0
}

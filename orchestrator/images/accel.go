package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/flotilla/flotilla/orchestrator/images/vmboot"
)

// Accelerators a VM replica runs under.
const (
	AccelTCG = "tcg" // QEMU's emulation: slower, works everywhere
	AccelKVM = "kvm" // the host kernel's hypervisor
)

// kvmProbeTimeout bounds the KVM probe boot. A working KVM boots the guest
// to its init in about a second; a software hypervisor that cannot run a
// stock kernel takes minutes to fail, so waiting longer tells nothing.
const kvmProbeTimeout = 20 * time.Second

// ProbeAccel boots the guest kernel on this host under accel with an
// initramfs whose init prepares the guest (modules, network) and powers
// off, and returns nil when it did so within timeout. It needs what
// EnsureVM needs (FindVMHost); its error says what went wrong.
func ProbeAccel(ctx context.Context, source, accel string, timeout time.Duration) error {
	host, err := FindVMHost(source)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "flotilla-vm-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	vminit := filepath.Join(tmp, "vminit")
	if err := compile(ctx, source, Image{Name: "vminit", Main: "./cmd/vminit"}, vminit, io.Discard); err != nil {
		return err
	}
	initrd := filepath.Join(tmp, "initrd")
	if err := writeInitramfs(initrd, vminit, "", host.ModulesDir); err != nil {
		return err
	}
	m := vmboot.Machine{QEMU: host.QEMU, Kernel: host.Kernel, Initrd: initrd, Firmware: filepath.Dir(host.Firmware[0]), NoForward: true}
	args, err := vmboot.QEMUArgs(m, []string{"FLOTILLA_VM_ACCEL=" + accel, "FLOTILLA_VM_PROBE=1"})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("probe boot under %s: no guest init after %s", accel, timeout)
	}
	if err != nil {
		return fmt.Errorf("probe boot under %s: %w: %s", accel, err, lastLine(out.String()))
	}
	if !strings.Contains(out.String(), vmboot.ProbeMarker) {
		return fmt.Errorf("probe boot under %s: the guest powered off before its init was ready: %s", accel, lastLine(out.String()))
	}
	return nil
}

// ChooseAccel returns AccelKVM when /dev/kvm opens and a probe boot under
// it succeeds, and AccelTCG otherwise, with the reason in words. Opening
// /dev/kvm is not enough: a software hypervisor behind it can create VMs
// and still fail a stock kernel's instructions minutes into its boot.
func ChooseAccel(ctx context.Context, source string) (accel, reason string) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return AccelTCG, "no /dev/kvm: QEMU emulates the guest (TCG)"
		}
		return AccelTCG, fmt.Sprintf("/dev/kvm does not open (%v): QEMU emulates the guest (TCG)", err)
	}
	f.Close()
	start := time.Now()
	if err := ProbeAccel(ctx, source, AccelKVM, kvmProbeTimeout); err != nil {
		return AccelTCG, fmt.Sprintf("KVM failed a probe boot (%v): QEMU emulates the guest (TCG)", err)
	}
	return AccelKVM, fmt.Sprintf("KVM booted a probe guest in %s", time.Since(start).Round(time.Millisecond))
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return "no output"
	}
	return s
}

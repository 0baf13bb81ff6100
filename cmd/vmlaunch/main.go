// Command vmlaunch is the entrypoint of Flotilla's VM image: it turns the
// container's environment (FLOTILLA_ROLE and the shop's other variables)
// into the guest kernel's command line, which QEMU cannot read from the
// environment itself, and replaces itself with QEMU. The guest's serial
// console is QEMU's standard output, so the engine's logs show the guest
// booting; QEMU's exit code (1 on a guest panic, 0 on power-off) becomes
// the container's.
//
// FLOTILLA_VM_ACCEL (tcg, default, or kvm), FLOTILLA_VM_MEMORY (MiB,
// default 256) and FLOTILLA_VM_CPUS (default 1) shape the machine.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/flotilla/flotilla/orchestrator/images/vmboot"
)

// Paths inside the VM image, where the image builder puts them.
const (
	qemuPath   = "/usr/bin/qemu-system-x86_64"
	kernelPath = "/vm/vmlinuz"
	initrdPath = "/vm/initrd"
	// firmwareDir holds the BIOS and option ROMs the q35 machine loads.
	firmwareDir = "/usr/share/qemu"
)

// maxCmdline is x86's COMMAND_LINE_SIZE less the terminating NUL: the
// kernel truncates a longer line, which would lose environment silently.
const maxCmdline = 2047

func main() {
	args, err := qemuArgs(os.Environ())
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmlaunch:", err)
		os.Exit(2)
	}
	err = syscall.Exec(qemuPath, args, []string{"PATH=/usr/bin"})
	fmt.Fprintln(os.Stderr, "vmlaunch: exec qemu:", err)
	os.Exit(2)
}

// notForGuest are container variables that describe the container, not
// the shop: the guest has its own.
var notForGuest = map[string]bool{"PATH": true, "HOME": true, "HOSTNAME": true, "TERM": true, "FLOTILLA_ROLE": true}

// qemuArgs is QEMU's argument vector for a container environment.
func qemuArgs(environ []string) ([]string, error) {
	env := map[string]string{}
	cfg := vmboot.Default
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		env[k] = v
		if notForGuest[k] || strings.HasPrefix(k, "FLOTILLA_VM_") {
			continue
		}
		cfg.Env = append(cfg.Env, kv)
	}
	if r := env["FLOTILLA_ROLE"]; r != "" {
		cfg.Role = r
	}
	accel := orDefault(env["FLOTILLA_VM_ACCEL"], "tcg")
	if accel != "tcg" && accel != "kvm" {
		return nil, fmt.Errorf("FLOTILLA_VM_ACCEL=%q: want tcg or kvm", accel)
	}
	memory, err := number(env, "FLOTILLA_VM_MEMORY", 256, 64, 65536)
	if err != nil {
		return nil, err
	}
	cpus, err := number(env, "FLOTILLA_VM_CPUS", 1, 1, 64)
	if err != nil {
		return nil, err
	}
	port, err := number(env, "PORT", 8080, 1, 65535)
	if err != nil {
		return nil, err
	}
	admin, err := number(env, "ADMIN_PORT", 9090, 1, 65535)
	if err != nil {
		return nil, err
	}
	guest := cfg.Addr.Addr().String()
	netdev := fmt.Sprintf("user,id=n,hostfwd=tcp::%d-%s:%d", port, guest, port)
	if admin != port {
		netdev += fmt.Sprintf(",hostfwd=tcp::%d-%s:%d", admin, guest, admin)
	}
	// panic=-1 reboots at once on a panic, which -no-reboot turns into
	// QEMU's exit should pvpanic be missing; quiet keeps the banner, whose
	// "Linux version" line shows which kernel the replica runs.
	cmdline := "console=ttyS0 quiet panic=-1 " + vmboot.Format(cfg)
	if len(cmdline) > maxCmdline {
		return nil, fmt.Errorf("the guest's kernel command line would be %d bytes, over the kernel's %d: the environment is too large", len(cmdline), maxCmdline)
	}
	return []string{
		qemuPath,
		"-machine", "q35", "-accel", accel, "-cpu", cpuModel[accel],
		"-m", strconv.Itoa(memory), "-smp", strconv.Itoa(cpus),
		"-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
		"-no-reboot", "-device", "pvpanic-pci", "-action", "panic=exit-failure",
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=n,romfile=",
		"-L", firmwareDir, "-kernel", kernelPath, "-initrd", initrdPath, "-append", cmdline,
	}, nil
}

// cpuModel under TCG is QEMU's portable default; under KVM the host's own.
var cpuModel = map[string]string{"tcg": "qemu64", "kvm": "host"}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func number(env map[string]string, key string, def, lo, hi int) (int, error) {
	v, ok := env[key]
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%q: want a whole number from %d to %d", key, v, lo, hi)
	}
	return n, nil
}

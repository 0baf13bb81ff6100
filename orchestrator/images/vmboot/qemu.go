package vmboot

import (
	"fmt"
	"strconv"
	"strings"
)

// notForGuest are container variables that describe the container, not
// the shop: the guest has its own.
var notForGuest = map[string]bool{"PATH": true, "HOME": true, "HOSTNAME": true, "TERM": true, "FLOTILLA_ROLE": true}

// maxCmdline is x86's COMMAND_LINE_SIZE less the terminating NUL: the
// kernel truncates a longer line, which would lose environment silently.
const maxCmdline = 2047

// Machine is where the files a VM boots from are.
type Machine struct {
	QEMU, Kernel, Initrd string
	// Firmware is the folder holding the BIOS and option ROMs.
	Firmware string
	// NoForward leaves the guest's ports unforwarded: a probe boot on the
	// host itself must not take the host's ports.
	NoForward bool
}

// InImage is Machine inside Flotilla's VM image.
var InImage = Machine{
	QEMU:     "/usr/bin/qemu-system-x86_64",
	Kernel:   "/vm/vmlinuz",
	Initrd:   "/vm/initrd",
	Firmware: "/usr/share/qemu",
}

// QEMUArgs is QEMU's argument vector (argv[0] included) for a VM replica
// whose container has environment environ: FLOTILLA_ROLE and the shop's
// other variables go to the guest, FLOTILLA_VM_ACCEL (tcg, default, or kvm),
// FLOTILLA_VM_MEMORY (MiB, default 256) and FLOTILLA_VM_CPUS (default 1)
// shape the machine, PORT and ADMIN_PORT are forwarded to the guest, and
// FLOTILLA_VM_PROBE=1 makes a probe boot.
func QEMUArgs(m Machine, environ []string) ([]string, error) {
	env := map[string]string{}
	cfg := Default
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
	cfg.Probe = env["FLOTILLA_VM_PROBE"] == "1"
	// The container's hostname (the replica's name) becomes the guest's.
	if h := env["HOSTNAME"]; ValidHostname(h) == nil {
		cfg.Hostname = h
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
	netdev := "user,id=n"
	if !m.NoForward {
		netdev += fmt.Sprintf(",hostfwd=tcp::%d-%s:%d", port, guest, port)
	}
	if !m.NoForward && admin != port {
		netdev += fmt.Sprintf(",hostfwd=tcp::%d-%s:%d", admin, guest, admin)
	}
	// panic=-1 reboots at once on a panic, which -no-reboot turns into
	// QEMU's exit should pvpanic be missing; quiet keeps the banner, whose
	// "Linux version" line shows which kernel the replica runs.
	cmdline := "console=ttyS0 quiet panic=-1 " + Format(cfg)
	if len(cmdline) > maxCmdline {
		return nil, fmt.Errorf("the guest's kernel command line would be %d bytes, over the kernel's %d: the environment is too large", len(cmdline), maxCmdline)
	}
	return []string{
		m.QEMU,
		"-machine", "q35", "-accel", accel, "-cpu", cpuModel[accel],
		"-m", strconv.Itoa(memory), "-smp", strconv.Itoa(cpus),
		"-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
		"-no-reboot", "-device", "pvpanic-pci", "-action", "panic=exit-failure",
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=n,romfile=",
		"-L", m.Firmware, "-kernel", m.Kernel, "-initrd", m.Initrd, "-append", cmdline,
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

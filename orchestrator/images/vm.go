package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/flotilla/flotilla/orchestrator/docker"
)

// VM is the image of a VM replica: QEMU in a container, booting a guest
// whose init runs the shop. It is not in All, so Flotilla runs without QEMU;
// EnsureVM builds it on demand.
var VM = Image{
	Name:    "vm",
	Main:    "./cmd/vmlaunch",
	Sources: []string{"cmd/vmlaunch", "cmd/vminit", "cmd/shop", "sample-services", "orchestrator/images/vmboot"},
}

// KernelEnv names the folder holding an unpacked Debian kernel package
// (boot/vmlinuz-* and lib/modules/*), as `make vm` leaves it. Without it,
// <source>/.flotilla/vm/root is used.
const KernelEnv = "FLOTILLA_VM_KERNEL"

// ErrNoVM means this machine lacks what a VM image is built from.
var ErrNoVM = errors.New("VM images need QEMU and a guest kernel")

// Where the host's QEMU keeps what the image needs (Debian and Ubuntu).
const (
	qemuBinary = "qemu-system-x86_64"
	tcgModule  = "/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so"
)

// firmwareDirs are searched in order for each firmware file; QEMU's
// Debian build looks in the same places.
var firmwareDirs = []string{"/usr/share/qemu", "/usr/share/seabios", "/usr/lib/ipxe/qemu"}

// firmware are the files the q35 machine opens when it boots a kernel
// directly: the BIOS, the option ROM that loads the kernel, and the APIC
// patcher QEMU loads on x86.
var firmware = []string{"bios-256k.bin", "linuxboot_dma.bin", "kvmvapic.bin"}

// VMHost is what this machine provides for the VM image.
type VMHost struct {
	QEMU       string   // the qemu-system-x86_64 binary
	Kernel     string   // the guest's vmlinuz
	Version    string   // the kernel's release, e.g. 6.1.0-57-cloud-amd64
	ModulesDir string   // the kernel's lib/modules/<Version>
	Firmware   []string // firmware files, in the order of firmware
}

// FindVMHost locates QEMU, its firmware and the guest kernel. Its error
// wraps ErrNoVM and says what to install.
func FindVMHost(source string) (VMHost, error) {
	var h VMHost
	q, err := exec.LookPath(qemuBinary)
	if err != nil {
		return h, fmt.Errorf("%w: %s is not installed (make vm, or apt-get install qemu-system-x86)", ErrNoVM, qemuBinary)
	}
	h.QEMU = q
	if _, err := os.Stat(tcgModule); err != nil {
		return h, fmt.Errorf("%w: QEMU's TCG module %s is missing (apt-get install qemu-system-x86)", ErrNoVM, tcgModule)
	}
	for _, name := range firmware {
		found := ""
		for _, dir := range firmwareDirs {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				found = filepath.Join(dir, name)
				break
			}
		}
		if found == "" {
			return h, fmt.Errorf("%w: firmware %s is in none of %s (apt-get install qemu-system-x86 seabios)", ErrNoVM, name, strings.Join(firmwareDirs, ", "))
		}
		h.Firmware = append(h.Firmware, found)
	}
	root := os.Getenv(KernelEnv)
	if root == "" {
		root = filepath.Join(source, ".flotilla", "vm", "root")
	}
	kernels, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(kernels) == 0 {
		return h, fmt.Errorf("%w: no guest kernel in %s/boot (make vm fetches Debian's cloud kernel there; or set %s)", ErrNoVM, root, KernelEnv)
	}
	sort.Strings(kernels)
	h.Kernel = kernels[len(kernels)-1]
	h.Version = strings.TrimPrefix(filepath.Base(h.Kernel), "vmlinuz-")
	h.ModulesDir = filepath.Join(root, "lib", "modules", h.Version)
	if _, err := os.Stat(h.ModulesDir); err != nil {
		return h, fmt.Errorf("%w: the modules of kernel %s are missing: %w", ErrNoVM, h.Version, err)
	}
	return h, nil
}

// EnsureVM makes sure the VM image exists for the current sources and this
// host's QEMU and kernel, building it if not, and returns its tag. opts are
// those of Ensure, Prune included.
func EnsureVM(ctx context.Context, b Builder, opts Options) (string, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return "", err
	}
	tag, err := ensureVM(ctx, b, opts)
	if err == nil {
		pruneOlder(ctx, b, VM, tag, opts)
	}
	return tag, err
}

func ensureVM(ctx context.Context, b Builder, opts Options) (string, error) {
	host, err := FindVMHost(opts.Source)
	if err != nil {
		return "", err
	}
	hostFiles, err := hostFileSet(ctx, host)
	if err != nil {
		return "", err
	}
	hash, err := vmHash(opts.Source, hostFiles)
	if err != nil {
		return "", err
	}
	tag := Tag(opts.Repository, VM.Name, hash)
	labels := Labels(VM.Name, hash, opts.Labels)
	if found, err := upToDate(ctx, b, tag, labels, opts.Progress); found || err != nil {
		return tag, err
	}

	tmp, err := os.MkdirTemp("", "flotilla-vm-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	bins := map[string]string{}
	for name, main := range map[string]string{"vmlaunch": "./cmd/vmlaunch", "vminit": "./cmd/vminit", "shop": "./cmd/shop"} {
		bins[name] = filepath.Join(tmp, name)
		if err := compile(ctx, opts.Source, Image{Name: name, Main: main}, bins[name], opts.Progress); err != nil {
			return "", err
		}
	}
	initrd := filepath.Join(tmp, "initrd")
	if err := writeInitramfs(initrd, bins["vminit"], bins["shop"], host.ModulesDir); err != nil {
		return "", err
	}
	dockerfile, err := os.ReadFile(filepath.Join(opts.Source, "images", VM.Name, "Dockerfile"))
	if err != nil {
		return "", fmt.Errorf("read Dockerfile: %w", err)
	}
	files := map[string]docker.FileSpec{
		"rootfs/vmlaunch":   {Path: bins["vmlaunch"], Mode: 0o755},
		"rootfs/vm/vmlinuz": {Path: host.Kernel},
		"rootfs/vm/initrd":  {Path: initrd},
	}
	for dst, src := range hostFiles {
		files["rootfs"+dst] = docker.FileSpec{Path: src, Mode: 0o755}
	}
	req := docker.BuildRequest{Tag: tag, Dockerfile: dockerfile, Files: files, Labels: labels, Progress: opts.Progress}
	fmt.Fprintf(opts.Progress, "building image %s (QEMU %s, kernel %s)...\n", tag, host.QEMU, host.Version)
	start := time.Now()
	id, err := b.BuildImage(ctx, req)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(opts.Progress, "built image %s (%s) in %s\n", tag, shortID(id), time.Since(start).Round(time.Millisecond))
	return tag, nil
}

// hostFileSet maps each path in the image to the host file it comes from:
// QEMU, the shared libraries and dynamic loader ldd names for it and its
// TCG module, the module, and the firmware under /usr/share/qemu.
func hostFileSet(ctx context.Context, h VMHost) (map[string]string, error) {
	set := map[string]string{"/usr/bin/" + qemuBinary: h.QEMU, tcgModule: tcgModule}
	for _, bin := range []string{h.QEMU, tcgModule} {
		out, err := exec.CommandContext(ctx, "ldd", bin).Output()
		if err != nil {
			return nil, fmt.Errorf("%w: ldd %s: %w", ErrNoVM, bin, err)
		}
		for _, lib := range parseLdd(string(out)) {
			set[lib] = lib
		}
	}
	for _, fw := range h.Firmware {
		set["/usr/share/qemu/"+filepath.Base(fw)] = fw
	}
	return set, nil
}

// parseLdd returns the absolute paths of the libraries in ldd's output,
// the dynamic loader included; the vDSO has no file and is left out.
func parseLdd(out string) []string {
	var libs []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if _, after, ok := strings.Cut(line, "=> "); ok {
			line = after
		}
		p, _, _ := strings.Cut(line, " (")
		if path.IsAbs(p) {
			libs = append(libs, path.Clean(p))
		}
	}
	return libs
}

// vmHash covers the VM image's Go sources and Dockerfile (ContentHash) and,
// for the host files, their image path, size and modification time: an
// upgrade of QEMU or a new kernel changes them without reading 70 MB.
func vmHash(source string, hostFiles map[string]string) (string, error) {
	base, err := ContentHash(source, VM)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "vm/v1 %s\n", base)
	dsts := make([]string, 0, len(hostFiles))
	for dst := range hostFiles {
		dsts = append(dsts, dst)
	}
	sort.Strings(dsts)
	for _, dst := range dsts {
		fi, err := os.Stat(hostFiles[dst])
		if err != nil {
			return "", fmt.Errorf("content hash: %w", err)
		}
		fmt.Fprintf(h, "%s %d %d\n", dst, fi.Size(), fi.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeInitramfs writes the guest's initramfs to out: vminit as /init, the
// shop (unless shop is empty, for a probe boot), the guest modules with their load order, and /dev/console.
func writeInitramfs(out, vminit, shop, modulesDir string) error {
	mods, err := resolveModules(modulesDir, GuestModules)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	for _, d := range []string{"dev", "proc", "sys", "tmp", "etc", "modules"} {
		c.Dir(d, 0o755)
	}
	c.CharDevice("dev/console", 0o600, 5, 1)
	for name, src := range map[string]string{"init": vminit, "shop": shop} {
		if src == "" {
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		c.File(name, 0o755, data)
	}
	var order strings.Builder
	order.WriteString("# load order: dependencies first\n")
	for _, m := range mods {
		data, err := os.ReadFile(m)
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		c.File("modules/"+filepath.Base(m), 0o644, data)
		order.WriteString(filepath.Base(m) + "\n")
	}
	c.File("modules/order", 0o644, []byte(order.String()))
	if err := c.Close(); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

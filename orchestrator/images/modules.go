package images

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// GuestModules are the kernel modules a VM guest needs on Debian's cloud
// kernel, which builds virtio as modules: the network card and the panic
// device. Their dependencies are added by moduleOrder.
var GuestModules = []string{"virtio_pci", "virtio_mmio", "virtio_net", "pvpanic_pci"}

// moduleName is the kernel's name for a module file: no suffix, '-' as '_'.
func moduleName(file string) string {
	base := filepath.Base(file)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// orderModules returns want and everything it depends on, each module after
// its dependencies, in a stable order; deps maps a module to its direct
// dependencies. A module deps does not know, or a cycle, is an error.
func orderModules(want []string, deps map[string][]string) ([]string, error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var order []string
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("modules depend on each other in a cycle: %s", strings.Join(append(chain, name), " → "))
		}
		d, ok := deps[name]
		if !ok {
			if len(chain) == 0 {
				return fmt.Errorf("module %s is not in the kernel's modules", name)
			}
			return fmt.Errorf("module %s, needed by %s, is not in the kernel's modules", name, chain[len(chain)-1])
		}
		state[name] = visiting
		sorted := append([]string(nil), d...)
		sort.Strings(sorted)
		for _, dep := range sorted {
			if err := visit(dep, append(chain, name)); err != nil {
				return err
			}
		}
		state[name] = done
		order = append(order, name)
		return nil
	}
	for _, name := range want {
		if err := visit(name, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// kernelModules indexes the modules under dir (a kernel's
// lib/modules/<version>) by name. The kernel package carries no
// modules.dep (depmod writes it on install), so the dependencies are read
// from each wanted module's own .modinfo section, lazily, by moduleDeps.
func kernelModules(dir string) (map[string]string, error) {
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.Contains(d.Name(), ".ko") {
			files[moduleName(p)] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list kernel modules: %w", err)
	}
	return files, nil
}

// moduleDeps reads the depends= entry of an uncompressed module's .modinfo.
func moduleDeps(file string) ([]string, error) {
	f, err := elf.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", filepath.Base(file), err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s has no .modinfo", filepath.Base(file))
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", filepath.Base(file), err)
	}
	return parseModinfoDepends(data), nil
}

// parseModinfoDepends reads the depends= entry of a .modinfo section: NUL
// separated key=value strings.
func parseModinfoDepends(modinfo []byte) []string {
	for _, kv := range bytes.Split(modinfo, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			var deps []string
			for _, d := range strings.Split(string(v), ",") {
				if d != "" {
					deps = append(deps, d)
				}
			}
			return deps
		}
	}
	return nil
}

// resolveModules returns the files of want and their dependencies under
// dir, in load order.
func resolveModules(dir string, want []string) ([]string, error) {
	files, err := kernelModules(dir)
	if err != nil {
		return nil, err
	}
	deps := map[string][]string{}
	builtin := builtinModules(dir)
	var need []string
	for _, name := range want {
		if !builtin[name] {
			need = append(need, name)
		}
	}
	queue := append([]string(nil), need...)
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if _, seen := deps[name]; seen {
			continue
		}
		if builtin[name] {
			deps[name] = nil
			continue
		}
		file, ok := files[name]
		if !ok {
			continue // orderModules names what is missing
		}
		d, err := moduleDeps(file)
		if err != nil {
			return nil, err
		}
		deps[name] = d
		queue = append(queue, d...)
	}
	order, err := orderModules(need, deps)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range order {
		if !builtin[name] {
			out = append(out, files[name])
		}
	}
	return out, nil
}

// builtinModules reads dir's modules.builtin: a kernel that builds a
// wanted driver in (Ubuntu's builds virtio in) needs no file for it.
func builtinModules(dir string) map[string]bool {
	set := map[string]bool{}
	data, err := os.ReadFile(filepath.Join(dir, "modules.builtin"))
	if err != nil {
		return set
	}
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			set[moduleName(line)] = true
		}
	}
	return set
}

// Package vmboot is the contract between a VM replica's launcher, which
// writes the guest kernel's command line from the container's environment,
// and the guest's init, which reads it back: the shop's role, its
// environment and the guest's network; and the QEMU command line that
// carries it.
package vmboot

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// Config is what the kernel command line tells the guest's init.
type Config struct {
	Role    string
	Env     []string     // KEY=VALUE pairs for the shop
	Addr    netip.Prefix // eth0's address and prefix
	Gateway netip.Addr   // the default route
	DNS     netip.Addr   // written to /etc/resolv.conf
	// Hostname is the guest's, the replica's name like its container's;
	// empty leaves the kernel's "(none)".
	Hostname string
	// Probe asks the init to prepare the guest, print ProbeMarker and power
	// off instead of running the shop: a boot that proves an accelerator.
	Probe bool
}

// ProbeMarker is what a probe boot prints once the guest is ready.
const ProbeMarker = "vminit: probe boot reached the shop's start"

// Default is QEMU's user-mode network: the guest is 10.0.2.15, the host
// side 10.0.2.2 and its resolver 10.0.2.3.
var Default = Config{
	Role:    "monolith",
	Addr:    netip.MustParsePrefix("10.0.2.15/24"),
	Gateway: netip.MustParseAddr("10.0.2.2"),
	DNS:     netip.MustParseAddr("10.0.2.3"),
}

// Parse reads the flotilla.* parameters of a kernel command line
// (the contents of /proc/cmdline) and ignores the kernel's own. Values in
// flotilla.env are query-escaped, so a value may hold commas, spaces or '='.
//
//	flotilla.role=cart flotilla.env=K=V,K2=a%2Cb flotilla.ip=10.0.2.15/24
//	flotilla.gw=10.0.2.2 flotilla.dns=10.0.2.3
func Parse(line string) (Config, error) {
	c := Default
	for _, field := range strings.Fields(line) {
		key, value, ok := strings.Cut(field, "=")
		if !ok || !strings.HasPrefix(key, "flotilla.") {
			continue
		}
		var err error
		switch key {
		case "flotilla.role":
			c.Role, err = url.QueryUnescape(value)
			if err == nil && c.Role == "" {
				err = fmt.Errorf("empty")
			}
		case "flotilla.env":
			c.Env, err = parseEnv(value)
		case "flotilla.ip":
			c.Addr, err = netip.ParsePrefix(value)
			if err == nil && !c.Addr.Addr().Is4() {
				err = fmt.Errorf("not IPv4")
			}
		case "flotilla.gw":
			c.Gateway, err = parse4(value)
		case "flotilla.dns":
			c.DNS, err = parse4(value)
		case "flotilla.hostname":
			c.Hostname, err = value, ValidHostname(value)
		case "flotilla.probe":
			if value != "1" {
				err = fmt.Errorf("%q: want 1", value)
			}
			c.Probe = true
		default:
			return Config{}, fmt.Errorf("unknown parameter %s", key)
		}
		if err != nil {
			return Config{}, fmt.Errorf("%s: %w", key, err)
		}
	}
	return c, nil
}

func parse4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err == nil && !a.Is4() {
		err = fmt.Errorf("%s is not IPv4", s)
	}
	return a, err
}

func parseEnv(value string) ([]string, error) {
	if value == "" {
		return nil, nil
	}
	var env []string
	for _, pair := range strings.Split(value, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not KEY=VALUE", pair)
		}
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("value of %s: %w", key, err)
		}
		env = append(env, key+"="+val)
	}
	return env, nil
}

// Format writes c as the flotilla.* parameters Parse reads.
func Format(c Config) string {
	line := fmt.Sprintf("flotilla.role=%s flotilla.env=%s flotilla.ip=%s flotilla.gw=%s flotilla.dns=%s",
		url.QueryEscape(c.Role), formatEnv(c.Env), c.Addr, c.Gateway, c.DNS)
	if c.Hostname != "" {
		line += " flotilla.hostname=" + c.Hostname
	}
	if c.Probe {
		line += " flotilla.probe=1"
	}
	return line
}

// ValidHostname accepts what a replica's name can be: 1 to 64 letters,
// digits, '-' and '.', not starting or ending with '-' or '.'.
func ValidHostname(h string) error {
	if h == "" || len(h) > 64 {
		return fmt.Errorf("hostname %q: want 1 to 64 characters", h)
	}
	for i := 0; i < len(h); i++ {
		b := h[i]
		ok := b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || (b == '-' || b == '.') && i > 0 && i < len(h)-1
		if !ok {
			return fmt.Errorf("hostname %q: letters, digits, '-' and '.' only, and not at either end", h)
		}
	}
	return nil
}

func formatEnv(env []string) string {
	parts := make([]string, 0, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(v))
	}
	return strings.Join(parts, ",")
}

// ReadModuleOrder parses the initramfs's module list: one file name per
// line, in load order (dependencies first); blank lines and # comments are
// skipped.
func ReadModuleOrder(data string) []string {
	var mods []string
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		mods = append(mods, line)
	}
	return mods
}

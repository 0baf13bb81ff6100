package vmboot

import (
	"slices"
	"strings"
	"testing"
)

// after returns the argument following flag in args.
func after(t *testing.T, args []string, flag string) string {
	t.Helper()
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("no %s in %q", flag, args)
	}
	return args[i+1]
}

func TestQEMUArgsCarryRoleAndEnvToTheGuest(t *testing.T) {
	args, err := QEMUArgs(InImage, []string{"PATH=/usr/bin", "HOSTNAME=abc", "FLOTILLA_ROLE=cart", "FLOTILLA_REPLICA=cart-2", "CATALOG_URL=http://catalog:8080", "FLOTILLA_VM_MEMORY=384"})
	if err != nil {
		t.Fatal(err)
	}
	if args[0] != InImage.QEMU {
		t.Errorf("argv[0] = %q", args[0])
	}
	cfg, err := Parse(after(t, args, "-append"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Role != "cart" {
		t.Errorf("role = %q, want cart", cfg.Role)
	}
	want := []string{"FLOTILLA_REPLICA=cart-2", "CATALOG_URL=http://catalog:8080"}
	if !slices.Equal(cfg.Env, want) {
		t.Errorf("guest env = %q, want %q (no PATH, HOSTNAME, role or VM settings)", cfg.Env, want)
	}
	if m := after(t, args, "-m"); m != "384" {
		t.Errorf("-m %s, want 384", m)
	}
	if a := after(t, args, "-accel"); a != "tcg" {
		t.Errorf("-accel %s, want tcg by default", a)
	}
	for _, flag := range []string{"-no-reboot", "-nodefaults"} {
		if !slices.Contains(args, flag) {
			t.Errorf("no %s", flag)
		}
	}
	if a := after(t, args, "-action"); a != "panic=exit-failure" {
		t.Errorf("-action %s: a guest panic must fail the container", a)
	}
	netdev := after(t, args, "-netdev")
	for _, fwd := range []string{"hostfwd=tcp::8080-10.0.2.15:8080", "hostfwd=tcp::9090-10.0.2.15:9090"} {
		if !strings.Contains(netdev, fwd) {
			t.Errorf("-netdev %s lacks %s", netdev, fwd)
		}
	}
}

func TestQEMUArgsFollowPorts(t *testing.T) {
	args, err := QEMUArgs(InImage, []string{"PORT=8081", "ADMIN_PORT=8081"})
	if err != nil {
		t.Fatal(err)
	}
	if netdev := after(t, args, "-netdev"); strings.Count(netdev, "hostfwd") != 1 || !strings.Contains(netdev, "tcp::8081-10.0.2.15:8081") {
		t.Errorf("-netdev %s, want one forward of 8081", netdev)
	}
}

func TestQEMUArgsRefuse(t *testing.T) {
	for _, env := range [][]string{
		{"FLOTILLA_VM_ACCEL=hvf"},
		{"FLOTILLA_VM_MEMORY=12"},
		{"FLOTILLA_VM_CPUS=many"},
		{"PORT=70000"},
		{"BIG=" + strings.Repeat("x", 2100)},
	} {
		if args, err := QEMUArgs(InImage, env); err == nil {
			t.Errorf("QEMUArgs(InImage, %.40q) = %.80q, want an error", env, args)
		}
	}
}

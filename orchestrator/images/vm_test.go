package images

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParseLdd(t *testing.T) {
	out := "\tlinux-vdso.so.1 (0x00007ffd)\n" +
		"\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f1)\n" +
		"\tlibc.so.6 => /lib/x86_64-linux-gnu/../x86_64-linux-gnu/libc.so.6 (0x00007f2)\n" +
		"\t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n" +
		"\tlibgone.so.2 => not found\n"
	got := parseLdd(out)
	want := []string{"/lib/x86_64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseLdd = %q, want %q", got, want)
	}
}

func TestFindVMHostSaysWhatIsMissing(t *testing.T) {
	t.Setenv(KernelEnv, t.TempDir())
	_, err := FindVMHost(t.TempDir())
	if !errors.Is(err, ErrNoVM) {
		t.Fatalf("FindVMHost = %v, want ErrNoVM", err)
	}
	if !strings.Contains(err.Error(), "make vm") && !strings.Contains(err.Error(), "apt-get install") {
		t.Errorf("error %q does not say what to install", err)
	}
}

func TestVMHashFollowsHostFiles(t *testing.T) {
	source, err := FindSource(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := dir + "/qemu"
	if err := os.WriteFile(f, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := vmHash(source, map[string]string{"/usr/bin/qemu": f})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, []byte("version 2"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := vmHash(source, map[string]string{"/usr/bin/qemu": f})
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Error("an upgraded host file left the VM image's hash unchanged")
	}
}

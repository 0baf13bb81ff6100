// Command vmlaunch is the entrypoint of Flotilla's VM image: it turns the
// container's environment (FLOTILLA_ROLE and the shop's other variables)
// into the guest kernel's command line, which QEMU cannot read from the
// environment itself, and replaces itself with QEMU. The guest's serial
// console is QEMU's standard output, so the engine's logs show the guest
// booting; QEMU's exit code (1 on a guest panic, 0 on power-off) becomes
// the container's.
//
// vmboot.QEMUArgs says which variables shape the machine.
package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/flotilla/flotilla/orchestrator/images/vmboot"
)

func main() {
	args, err := vmboot.QEMUArgs(vmboot.InImage, os.Environ())
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmlaunch:", err)
		os.Exit(2)
	}
	err = syscall.Exec(vmboot.InImage.QEMU, args, []string{"PATH=/usr/bin"})
	fmt.Fprintln(os.Stderr, "vmlaunch: exec qemu:", err)
	os.Exit(2)
}

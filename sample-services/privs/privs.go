// Package privs lets a sample service give up, itself, the privileges the
// container policy takes from it where the runtime cannot.
//
// The engine runtime starts every replica with no-new-privileges. A Swarm
// service spec of API 1.41 cannot ask for it (services gained the field in
// API 1.44), so a task's container runs without it; the shop and the bus
// then set it on themselves as they start. The flag is per thread and
// inherited, so it is set on every thread of the process at once.
package privs

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// NoNewPrivileges sets no_new_privs on every thread of this process, as
// prctl(PR_SET_NO_NEW_PRIVS) does for one: no program it runs can gain a
// privilege through a set-user-ID file or file capabilities. It cannot be
// undone. A binary built with cgo cannot change all its threads; there it
// sets the flag on the calling thread only and says so.
func NoNewPrivileges() error {
	_, _, errno := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0)
	if errno == 0 {
		return nil
	}
	if !errors.Is(errno, syscall.ENOTSUP) {
		return fmt.Errorf("set no_new_privs: %w", errno)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	return errors.New("no_new_privs set on one thread only: this binary uses cgo")
}

// Set reports whether this process's thread has no_new_privs set.
func Set() (bool, error) {
	v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	if err != nil {
		return false, fmt.Errorf("get no_new_privs: %w", err)
	}
	return v == 1, nil
}

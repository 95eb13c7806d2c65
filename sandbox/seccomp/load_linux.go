package seccomp

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Load installs the filter on the calling thread (lock the goroutine to
// the thread that execs: the filter survives execve and binds every
// descendant). It needs no_new_privs or CAP_SYS_ADMIN in the user
// namespace. With no flags, seccomp(SECCOMP_SET_MODE_FILTER) is exactly
// prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER).
func (f *Filter) Load() error {
	n := len(f.Prog) / 8
	if n == 0 || n > 0xffff {
		return fmt.Errorf("seccomp: filter of %d instructions", n)
	}
	prog := make([]unix.SockFilter, n)
	for i := range prog {
		b := f.Prog[8*i:]
		prog[i] = unix.SockFilter{Code: binary.NativeEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.NativeEndian.Uint32(b[4:])}
	}
	fprog := unix.SockFprog{Len: uint16(n), Filter: &prog[0]}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(f.Flags), uintptr(unsafe.Pointer(&fprog))); e != 0 {
		return fmt.Errorf("load the seccomp filter: %w", e)
	}
	runtime.KeepAlive(prog)
	return nil
}

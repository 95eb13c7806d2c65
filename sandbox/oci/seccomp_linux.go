package oci

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// setSeccomp compiles the config's linux.seccomp in the runtime (create,
// exec), where an error fails the command and a warning reaches the
// caller; the process init only loads the program.
func (pi *procInit) setSeccomp(s *specs.Spec) error {
	if s.Linux == nil || s.Linux.Seccomp == nil {
		return nil
	}
	f, err := compileSeccomp(s.Linux.Seccomp, func(w string) { fmt.Fprintln(os.Stderr, "ctlab-oci: warning:", w) })
	if err != nil {
		return err
	}
	pi.Seccomp = f
	return nil
}

// load installs the filter on the calling thread (the locked main thread
// that execs: the filter survives execve and binds every descendant).
// It needs no_new_privs or CAP_SYS_ADMIN in the user namespace.
func (f *seccompFilter) load() error {
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

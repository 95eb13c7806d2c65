package oci

import (
	"fmt"
	"os"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox"
)

// credentials switches to process.user and the configured capability sets
// and sets no_new_privs. Every call is a raw per-thread syscall on the
// locked main thread, the one that execs: Go's own Setuid would change every
// thread, and capabilities are per thread anyway.
func (pi *procInit) credentials() error {
	if pi.Caps != nil {
		if err := dropBounding(pi.Caps.Bounding); err != nil {
			return err
		}
	}
	u := pi.User
	gids := make([]uint32, len(u.AdditionalGids))
	copy(gids, u.AdditionalGids)
	var gp unsafe.Pointer
	if len(gids) > 0 {
		gp = unsafe.Pointer(&gids[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gids)), uintptr(gp), 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", u.GID, e)
	}
	// Keep the permitted set across the uid change; capset below sets it.
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", u.UID, e)
	}
	if u.Umask != nil {
		unix.Umask(int(*u.Umask))
	}
	if pi.Caps != nil {
		if err := setCaps(pi.Caps); err != nil {
			return err
		}
	}
	if pi.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	return nil
}

func capMask(names []string) ([2]uint32, []int, error) {
	var m [2]uint32
	var nums []int
	for _, n := range names {
		c, ok := capNumbers[strings.ToUpper(n)]
		if !ok {
			// runc (1.1+) only warns: a config written for a newer kernel
			// still runs.
			fmt.Fprintf(os.Stderr, "ctlab-oci init: warning: ignoring unknown capability %q\n", n)
			continue
		}
		if c > sandbox.LastCap() {
			continue // this kernel does not know it: runc ignores it too
		}
		m[c/32] |= 1 << (c % 32)
		nums = append(nums, c)
	}
	return m, nums, nil
}

func dropBounding(keep []string) error {
	m, _, err := capMask(keep)
	if err != nil {
		return err
	}
	for c := 0; c <= sandbox.LastCap(); c++ {
		if m[c/32]&(1<<(c%32)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	return nil
}

func setCaps(c *specs.LinuxCapabilities) error {
	eff, _, err := capMask(c.Effective)
	if err != nil {
		return err
	}
	perm, _, err := capMask(c.Permitted)
	if err != nil {
		return err
	}
	inh, _, err := capMask(c.Inheritable)
	if err != nil {
		return err
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: eff[0], Permitted: perm[0], Inheritable: inh[0]},
		{Effective: eff[1], Permitted: perm[1], Inheritable: inh[1]},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	_, amb, err := capMask(c.Ambient)
	if err != nil {
		return err
	}
	for _, n := range amb {
		// A capability that is not both permitted and inheritable cannot be
		// ambient; runc skips it too (configs list ambient without
		// inheritable since runc 1.1's spec change).
		_ = unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(n), 0, 0)
	}
	return nil
}

func setComm(name string) error {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(p)), 0, 0, 0); err != nil {
		return fmt.Errorf("set comm: %w", err)
	}
	return nil
}

var capNumbers = map[string]int{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5,
	"CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10,
	"CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
	"CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19, "CAP_SYS_PACCT": 20,
	"CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23, "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25,
	"CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27, "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30,
	"CAP_SETFCAP": 31, "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
	"CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40,
}

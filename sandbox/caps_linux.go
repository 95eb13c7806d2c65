package sandbox

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// KeptCapabilities is the set a hardened container keeps: containerd's and
// Docker's default fourteen minus NET_RAW, MKNOD, SETFCAP, SETPCAP,
// SYS_CHROOT and AUDIT_WRITE. nginx still starts as root, binds port 80 and
// switches to its worker user with these.
var KeptCapabilities = []int{
	unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_FSETID, unix.CAP_FOWNER,
	unix.CAP_SETGID, unix.CAP_SETUID, unix.CAP_NET_BIND_SERVICE, unix.CAP_KILL,
}

// lastCap reads /proc/sys/kernel/cap_last_cap once: it is fixed at boot,
// and the callers ask for it for every capability they look at (about a
// hundred reads, a millisecond of an OCI container's create, otherwise).
var lastCap = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return unix.CAP_LAST_CAP
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return unix.CAP_LAST_CAP
	}
	return n
})

// dropCapabilities shrinks the bounding set (what any later execve can ever
// regain) and the current sets to KeptCapabilities. After execve a root
// process gets exactly the bounding set.
func dropCapabilities() error {
	keep := map[int]bool{}
	var mask [2]uint32
	for _, c := range KeptCapabilities {
		keep[c] = true
		mask[c/32] |= 1 << (c % 32)
	}
	for c := 0; c <= lastCap(); c++ {
		if keep[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: mask[0], Permitted: mask[0], Inheritable: mask[0]},
		{Effective: mask[1], Permitted: mask[1], Inheritable: mask[1]},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

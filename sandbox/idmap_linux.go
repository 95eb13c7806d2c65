package sandbox

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// usernsArg is the hidden first argument of a user namespace holder: a
// process that exists only so that ctlab can open its user namespace (to
// idmap layer mounts) and exits when its stdin closes.
const usernsArg = "__ctlab_userns"

func init() {
	if len(os.Args) > 1 && os.Args[1] == usernsArg {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
}

var (
	usernsMu    sync.Mutex
	usernsCache = map[int]*os.File{} // uid base -> user namespace fd, kept for the process's life
)

// usernsFor returns a user namespace that maps 0..IDRange-1 to base..: the
// mapping of every container with that UIDBase. Idmapped mounts take it
// (a mount's idmap is a user namespace). One per base per process: a
// grading batch makes it once.
func usernsFor(base int) (*os.File, error) {
	usernsMu.Lock()
	defer usernsMu.Unlock()
	if f := usernsCache[base]; f != nil {
		return f, nil
	}
	cmd := exec.Command("/proc/self/exe", usernsArg)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: base, Size: IDRange}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: base, Size: IDRange}},
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start user namespace holder: %w", err)
	}
	f, err := os.Open("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/user")
	in.Close()
	cmd.Wait()
	if err != nil {
		return nil, fmt.Errorf("open user namespace of the holder: %w", err)
	}
	usernsCache[base] = f
	return f, nil
}

// idmappedLowers returns detached, read-only clones of the lower dirs whose
// owners are shifted by the user namespace of base (on-disk 0 shows as
// base, so root's files in the image are root's inside the container), as
// /proc/self/fd paths for overlay's lowerdir, and the function that closes
// them once the overlay is mounted (it keeps its own references).
// Needs idmapped mounts (Linux 5.12; overlayfs on idmapped layers, 5.19).
func idmappedLowers(lowers []string, base int) ([]string, func(), error) {
	ns, err := usernsFor(base)
	if err != nil {
		return nil, nil, err
	}
	var fds []int
	done := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	var out []string
	for _, l := range lowers {
		fd, err := unix.OpenTree(unix.AT_FDCWD, l, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			done()
			return nil, nil, fmt.Errorf("clone layer mount %s: %w", l, err)
		}
		fds = append(fds, fd)
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV, Userns_fd: uint64(ns.Fd())}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
			done()
			return nil, nil, fmt.Errorf("idmap layer mount %s: %w", l, err)
		}
		out = append(out, "/proc/self/fd/"+strconv.Itoa(fd))
	}
	return out, done, nil
}

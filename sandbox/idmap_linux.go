package sandbox

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// idmappedLowers makes read-only, idmapped copies of the lower dirs'
// mounts, whose owners are shifted by the user namespace of base (on-disk
// 0 shows as base, so root's files in the image are root's inside the
// container), mounted at DIR/idmap/N (each journalled first, by mounted), for
// overlay's lowerdir. Overlay keeps private clones of its layers, so the
// returned function detaches them once the overlay is mounted. (Before
// Linux 6.15 overlay cannot take a detached mount, /proc/self/fd/N of
// open_tree, as a layer: "failed to clone lowerpath".)
// Needs idmapped mounts (Linux 5.12; overlayfs on idmapped layers, 5.19).
//
// Where a layer cannot be idmapped (EINVAL, EPERM, ENOSYS, EOPNOTSUPP: an
// older kernel or a filesystem without idmapped mounts), its id-shifted
// copy (shiftedLayer, made once per range and layer) is used as the lower
// dir instead.
func idmappedLowers(ctx context.Context, lowers []string, base int, dir string, mounted func(string) error) ([]string, func(), error) {
	ns, err := usernsFor(base)
	if err != nil {
		return nil, nil, err
	}
	var targets, out []string // mounts made; the lower dirs to use
	done := func() {
		for _, t := range targets {
			unix.Unmount(t, unix.MNT_DETACH)
		}
	}
	for i, l := range lowers {
		if forceIDShift {
			sl, err := shiftedLayer(ctx, l, base)
			if err != nil {
				done()
				return nil, nil, err
			}
			out = append(out, sl)
			continue
		}
		t := filepath.Join(dir, "idmap", strconv.Itoa(i))
		if err := os.MkdirAll(t, 0o700); err != nil {
			done()
			return nil, nil, err
		}
		if err := mounted(t); err != nil {
			done()
			return nil, nil, err
		}
		if err := idmapMount(l, t, ns); err != nil {
			if !noIdmap(err) {
				done()
				return nil, nil, err
			}
			sl, serr := shiftedLayer(ctx, l, base)
			if serr != nil {
				done()
				return nil, nil, fmt.Errorf("%v; fallback: %w", err, serr)
			}
			os.Remove(t)
			out = append(out, sl)
			continue
		}
		targets = append(targets, t)
		out = append(out, t)
	}
	return out, done, nil
}

// idmapMount mounts a read-only clone of src's mount at target, idmapped
// by the user namespace ns.
func idmapMount(src, target string, ns *os.File) error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("clone layer mount %s: %w", src, err)
	}
	defer unix.Close(fd)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID, Userns_fd: uint64(ns.Fd())}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return fmt.Errorf("idmap layer mount %s: %w", src, err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach idmapped layer %s: %w", src, err)
	}
	return nil
}

// chownStdio gives the container's root the pipes and sockets that are
// the stdio of pid (runc's fixStdioPermissions): they were made on the
// host, owned by host root with mode 0600, and a process that reopens them
// (nginx's error.log -> /dev/stderr -> /proc/self/fd/2) would get EACCES
// from inside a user namespace. Only anonymous pipes and sockets made for
// this process change owner, never a terminal or a file of the caller's.
func chownStdio(pid, uid int) {
	for fd := 0; fd <= 2; fd++ {
		p := fmt.Sprintf("/proc/%d/fd/%d", pid, fd)
		// "pipe:[ino]", "socket:[ino]": anonymous; a named FIFO shows its path.
		if l, err := os.Readlink(p); err == nil && (strings.HasPrefix(l, "pipe:") || strings.HasPrefix(l, "socket:")) {
			_ = os.Chown(p, uid, uid) // best effort: without it only a reopen fails
		}
	}
}

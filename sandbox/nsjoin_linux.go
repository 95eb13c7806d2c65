package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox/kstate"
)

// Joining existing namespaces (Config.Join) and running without a mount
// namespace of the container's own. See docs/start-path.md, "Joined
// namespaces and no mount namespace".

// nsTypes maps each kind to its CLONE_NEW* flag, which is also what the
// nsfs ioctl NS_GET_NSTYPE answers for a namespace file of that kind.
var nsTypes = map[Namespace]int{
	NSMount: unix.CLONE_NEWNS, NSUTS: unix.CLONE_NEWUTS, NSIPC: unix.CLONE_NEWIPC, NSPID: unix.CLONE_NEWPID,
	NSNet: unix.CLONE_NEWNET, NSUser: unix.CLONE_NEWUSER, NSCgroup: unix.CLONE_NEWCGROUP, NSTime: unix.CLONE_NEWTIME,
}

// Keys of the C stage's config for joining (see nsexec.c).
const (
	cfgJoin    = "join"    // "KIND:FD,KIND:FD": the namespaces it joins (join_namespaces)
	cfgUnshare = "unshare" // "KIND KIND": new kinds it makes once joined (a joined user namespace)
)

// unshareAfterJoin is what the C stage creates once it has joined a user
// namespace, instead of the clone: runc's order, so that the new
// namespaces belong to the joined user namespace (whose root could not
// mount in a mount namespace the host's owns) and an exec that enters the
// user namespace first may enter them.
func unshareAfterJoin(cfg Config) string {
	var kinds []string
	for _, ns := range cfg.Namespaces {
		if _, ok := cloneFlags[ns]; ok {
			kinds = append(kinds, string(ns))
		}
	}
	return strings.Join(kinds, " ")
}

// userNSRoot returns the host uid that root of the user namespace f maps
// to, read from the uid_map of a process in it: the container's files must
// be reachable by that uid. A user namespace without a process has no map
// to read.
func userNSRoot(f *os.File) (int, error) {
	var want unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &want); err != nil {
		return 0, err
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		var st unix.Stat_t
		if unix.Stat(p+"/ns/user", &st) != nil || st.Ino != want.Ino || st.Dev != want.Dev {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(p))
		m, _, err := kstate.ReadIDMap(pid, "uid")
		if err != nil {
			continue
		}
		for _, e := range m {
			if e.Inside <= 0 && 0 < e.Inside+e.Count {
				return int(e.Outside - e.Inside), nil
			}
		}
	}
	return 0, &InputError{Problem: "no process of the user namespace to join maps its root", Fix: "join the user namespace of a running process whose root is mapped"}
}

// validateJoin checks Config.Join before anything is made: known kinds,
// none both joined and created, and combinations the start path can do.
// The files themselves are checked by openJoins.
func (cfg *Config) validateJoin() error {
	for ns := range cfg.Join {
		if !ns.Valid() {
			return &InputError{Problem: fmt.Sprintf("unknown namespace kind %q to join", ns), Fix: "use " + namespaceList}
		}
		if Has(cfg.Namespaces, ns) {
			return &InputError{Problem: fmt.Sprintf("the %s namespace is both created and joined", ns), Fix: "give it either a path or a new namespace, not both"}
		}
	}
	if len(cfg.Join) == 0 {
		return nil
	}
	_, mnt := cfg.Join[NSMount]
	if _, ok := cfg.Join[NSUser]; ok && !mnt && !Has(cfg.Namespaces, NSMount) {
		return &InputError{Problem: "root of a joined user namespace may not mount in ctlab's mount namespace", Fix: "create a mount namespace (mnt) or join one"}
	}
	if Has(cfg.Namespaces, NSUser) {
		// The init enters a new user namespace at clone; from there it has
		// no right to enter namespaces owned by the host's.
		return &InputError{Problem: "a new user namespace cannot join other namespaces by path", Fix: "drop the user namespace or the paths"}
	}
	if _, ok := cfg.Join[NSNet]; ok && cfg.Net {
		return &InputError{Problem: "--net makes a veth in a new network namespace, not in a joined one", Fix: "drop --net or the network namespace path"}
	}
	return nil
}

// openJoins opens every namespace file of Config.Join and checks that it
// is one (nsfs) of the right kind. The C stage joins these very files (they
// are inherited), so what was checked is what is joined. The caller closes
// them.
func openJoins(join map[Namespace]string) (map[Namespace]*os.File, error) {
	out := map[Namespace]*os.File{}
	closeAll := func() {
		for _, f := range out {
			f.Close()
		}
	}
	for ns, path := range join {
		f, err := openNamespace(ns, path)
		if err != nil {
			closeAll()
			return nil, err
		}
		out[ns] = f
	}
	return out, nil
}

// openNamespace opens path and checks that it is a namespace file of kind
// ns: on nsfs (a /proc/PID/ns/KIND link or a bind mount of one) and of the
// right type (NS_GET_NSTYPE).
func openNamespace(ns Namespace, path string) (*os.File, error) {
	bad := func(problem string) error {
		return &InputError{Problem: fmt.Sprintf("%s namespace path %s: %s", ns, path, problem), Fix: "give /proc/PID/ns/" + string(ns) + " of a running process, or a bind mount of one"}
	}
	if !filepath.IsAbs(path) {
		return nil, bad("not an absolute path")
	}
	// O_PATH first: opening a device or a FIFO for real could act on it
	// (/dev/watchdog starts on open). Only an nsfs file is reopened.
	pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, bad(err.Error())
	}
	defer unix.Close(pfd)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(pfd, &sfs); err != nil || sfs.Type != unix.NSFS_MAGIC {
		return nil, bad("not a namespace file")
	}
	// setns takes no O_PATH fd.
	f, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", pfd), os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, bad(err.Error())
	}
	t, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil {
		f.Close()
		return nil, bad(fmt.Sprintf("cannot read its type: %v", err))
	}
	if t != nsTypes[ns] {
		f.Close()
		return nil, bad("it is a " + string(kindOfFlag(t)) + " namespace")
	}
	return f, nil
}

func kindOfFlag(flag int) Namespace {
	for ns, f := range nsTypes {
		if f == flag {
			return ns
		}
	}
	return Namespace(fmt.Sprintf("type %#x", flag))
}

// joinSpec returns the C stage's "KIND:FD,..." list for the namespace
// files, which the init inherits in the returned order from fd first on
// (AllNamespaces order; the C stage orders the joins itself).
func joinSpec(files map[Namespace]*os.File, first int) (string, []*os.File) {
	var spec []string
	var out []*os.File
	for _, ns := range AllNamespaces {
		if f, ok := files[ns]; ok {
			spec = append(spec, string(ns)+":"+strconv.Itoa(first+len(out)))
			out = append(out, f)
		}
	}
	return strings.Join(spec, ","), out
}

// openRootTree returns a detached copy of the mount tree at root
// (open_tree OPEN_TREE_CLONE, recursive): the init of a container without
// a mount namespace of its own attaches it at its root mount point in
// whatever mount namespace it is in (ctlab's, or a joined one that does not
// see ctlab's overlay).
func openRootTree(root string) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, root, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return nil, fmt.Errorf("open_tree %s: %w", root, err)
	}
	return os.NewFile(uintptr(fd), "rootfs tree"), nil
}

// attachRoot (in the init) mounts the detached tree treeFD at target and
// makes it recursively private, so the mounts the init makes under it do
// not propagate into the mount namespace it shares.
func attachRoot(treeFD int, target string) error {
	defer unix.Close(treeFD)
	if err := unix.MoveMount(treeFD, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("attach the rootfs at %s: the directory is not visible in the joined mount namespace: %w", target, err)
		}
		return fmt.Errorf("attach the rootfs at %s: %w", target, err)
	}
	if err := unix.Mount("", target, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make the rootfs at %s private: %w", target, err)
	}
	return nil
}

// chrootTo makes root the process's root where pivot_root is not ours to
// do: the mount namespace is shared (ctlab's or a joined one), and
// pivot_root would move the root of every other process in it. runc
// chroots too when the config has no mount namespace.
func chrootTo(root string) error {
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("chdir %s: %w", root, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot %s: %w", root, err)
	}
	return unix.Chdir("/")
}

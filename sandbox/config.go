package sandbox

import (
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/kstate"
)

// Namespace is one of the eight Linux namespace kinds, named as in /proc/<pid>/ns.
type Namespace string

// The eight namespace kinds. The source course counts seven: the time
// namespace only arrived in Linux 5.6 (2020).
const (
	NSMount  Namespace = "mnt"
	NSUTS    Namespace = "uts"
	NSIPC    Namespace = "ipc"
	NSPID    Namespace = "pid"
	NSNet    Namespace = "net"
	NSUser   Namespace = "user"
	NSCgroup Namespace = "cgroup"
	NSTime   Namespace = "time"
)

// AllNamespaces lists every kind (kstate.NamespaceKinds, the one list) in
// the order exec joins them: user first (it grants the capabilities needed
// for the others), mnt last (after it, host paths are gone).
var AllNamespaces = joinOrder(kstate.NamespaceKinds)

// namespaceList is the kinds as a comma list, for messages.
var namespaceList = strings.Join(kstate.NamespaceKinds, ",")

func joinOrder(kinds []string) []Namespace {
	out := []Namespace{NSUser}
	for _, k := range kinds {
		if ns := Namespace(k); ns != NSUser && ns != NSMount {
			out = append(out, ns)
		}
	}
	return append(out, NSMount)
}

// ParseNamespaces reads a comma list such as "mnt,uts,pid" or "all".
func ParseNamespaces(s string) ([]Namespace, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "all" {
		return append([]Namespace(nil), AllNamespaces...), nil
	}
	seen := map[Namespace]bool{}
	for _, part := range strings.Split(s, ",") {
		ns := Namespace(strings.TrimSpace(part))
		if !ns.Valid() {
			return nil, fmt.Errorf("unknown namespace kind %q: use a comma list of %s or \"all\"", part, namespaceList)
		}
		seen[ns] = true
	}
	var out []Namespace
	for _, ns := range AllNamespaces { // canonical order
		if seen[ns] {
			out = append(out, ns)
		}
	}
	return out, nil
}

// Valid reports whether ns is one of the eight kinds.
func (ns Namespace) Valid() bool {
	for _, k := range AllNamespaces {
		if k == ns {
			return true
		}
	}
	return false
}

// Has reports whether list contains ns.
func Has(list []Namespace, ns Namespace) bool {
	for _, k := range list {
		if k == ns {
			return true
		}
	}
	return false
}

// Hardening selects the protections applied to the container's process just
// before it execs its command. The grader turns all of them on for untrusted
// student images; lessons leave them off so learners can poke around.
type Hardening struct {
	DropCaps   bool // keep only a small default capability set (see caps_linux.go)
	NoNewPrivs bool // prctl(PR_SET_NO_NEW_PRIVS): setuid binaries gain nothing
	MaskPaths  bool // hide /proc/kcore, /proc/keys, ... and make /proc/sys read-only
	Seccomp    bool // refuse keyctl, mount, unshare, bpf, ... with EPERM (seccomp_linux.go); needs NoNewPrivs
}

// TimeOffsets shift CLOCK_MONOTONIC and CLOCK_BOOTTIME inside a new time
// namespace (written to /proc/<pid>/timens_offsets before anyone enters it).
type TimeOffsets struct {
	Monotonic time.Duration
	Boottime  time.Duration
}

// Config describes one container: which namespaces to create, its root
// filesystem, its limits and its command.
type Config struct {
	Name       string      // unique; [a-z0-9][a-z0-9_.-]{0,62}
	Namespaces []Namespace // kinds to create; the rest are shared with the host (or joined)
	// Join maps a kind to a namespace file to join instead of creating one
	// (an OCI config's linux.namespaces[].path): /proc/PID/ns/KIND or a bind
	// mount of one. It is checked to be a namespace of that kind. Without a
	// new mount namespace the container runs in ctlab's (or the joined
	// one), chrooted into its rootfs. Not with a new user namespace. See
	// docs/start-path.md, "Joined namespaces and no mount namespace".
	Join     map[Namespace]string
	Hostname string // set inside a new uts namespace (default: Name)
	// CgroupDriver is "cgroupfs" (the default: ctlab/<name> written directly),
	// "systemd" (a transient scope in ctlab.slice, over D-Bus) or "auto".
	CgroupDriver string
	// CgroupPath, when set, is where the container's cgroup is instead of
	// ctlab/<name> (an OCI config's linux.cgroupsPath, with runc's meaning:
	// absolute below each hierarchy's root, relative below the caller's own
	// cgroup; see sandbox/cgroups/path_linux.go). Only the directories
	// ctlab makes for it are removed again. With the systemd driver it is
	// runc's "slice:prefix:name": the scope prefix-name.scope in that slice.
	CgroupPath string
	// Rootfs is "default", "busybox", "host" or a directory used read-only as
	// the overlay's lower layer. Ignored when Layers is set.
	Rootfs string
	// Layers are ready overlay lowerdirs, top-most first (an unpacked image).
	Layers []string
	Args   []string // command and arguments, resolved inside the container
	Env    []string // environment; nil means a small default (PATH, HOME, TERM)
	Cwd    string   // working directory inside (default "/")
	// User is the image's USER ("name", "uid", "name:group", "uid:gid"),
	// resolved against the rootfs's own /etc/passwd and /etc/group; empty
	// means root. Execs into the container run as the same user.
	User string
	// UIDBase is the host uid/gid that container root maps to in a new user
	// namespace (65536 ids are mapped). 0 means DefaultUIDBase.
	UIDBase int
	// UIDMappings and GIDMappings replace the default 0 -> UIDBase map of
	// IDRange ids when set (an OCI config's linux.uidMappings).
	UIDMappings, GIDMappings []syscall.SysProcIDMap
	Limits                   cgroups.Limits
	Net                      bool // add a veth pair with an address on each side
	Time                     TimeOffsets
	Harden                   Hardening
	// MountSelf bind-mounts the ctlab binary read-only at /.ctlab/ctlab so
	// lessons can run the built-in load generators inside the container.
	MountSelf bool

	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Detach makes the container outlive the starting process: its output
	// goes to a log file in its state directory.
	Detach bool
	// DetachedStdio keeps Stdin/Stdout/Stderr (which must be *os.File) for a
	// detached container instead of its log file: an OCI runtime's caller
	// (containerd's shim, conmon) owns the container's stdio.
	DetachedStdio bool
	// Reparent leaves no waiter (an OCI runtime's containers, like runc):
	// when the init has a C stage (a pid or time namespace, joined
	// namespaces), the stage forks the init and exits once it reported the
	// init's pid, so the init, the container's pid 1, is re-parented to the
	// nearest child subreaper (containerd's shim, conmon, or a caller that
	// set PR_SET_CHILD_SUBREAPER before Start), which reaps it. Start reaps
	// the exited stage. Container.Wait learns the init's exit status only
	// in that subreaper; any other process sees the exit (a pidfd) and -1.
	// Without it the stage stays as a waiter that forwards signals and
	// exits with the init's status (ctlab run).
	Reparent bool
	// RootfsDirect uses the Rootfs directory itself as the root (bound, no
	// overlay), as runc does with a bundle: the container's writes land in
	// it.
	RootfsDirect bool
	// Mounts are made inside the rootfs after ctlab's own /proc, /dev and
	// /sys, before pivot_root (an OCI config's mounts; sandbox/mounts_linux.go).
	Mounts []Mount

	Timeline *Timeline // optional; records the duration of each start phase

	// NetPrivate (with Net) puts the host end of the pair in a network
	// namespace of its own instead of the host's, so the container reaches
	// nothing of the host; Container.DialContext connects from there. The
	// grader uses it for untrusted images.
	NetPrivate bool
	// UpperLimit, when positive, bounds what the container can write: its
	// overlay upper and work dirs live on a tmpfs of this many bytes (its
	// pages are charged to the writer's memory cgroup too), so writing
	// until full fills that tmpfs and never the host's disk.
	UpperLimit int64
}

// ExecConfig describes a process to start inside a running container.
type ExecConfig struct {
	Args           []string
	Env            []string // nil means the container's default environment
	Cwd            string
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Namespaces to join; nil means every namespace of the container that
	// differs from the host's.
	Namespaces []Namespace
}

// Binary is the ctlab executable that lessons find at /.ctlab/ctlab (its
// load generators). By default the running binary; the TUI, a separate and
// much heavier binary, points it at the ctlab beside it.
var Binary = "/proc/self/exe"

// InitBinary is what a container's init re-executes: any binary that links
// this package and calls MaybeInit first. By default the running binary;
// ctlab points it at the small ctlab-init beside it, whose Go runtime and
// package initialisation take half the time (it is on every start's
// critical path).
var InitBinary = "/proc/self/exe"

// DefaultUIDBase is the host uid that container root maps to.
const DefaultUIDBase = 100000

// IDRange is the number of uids/gids mapped into a user namespace.
const IDRange = 65536

package sandbox

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// initArg is the hidden first argument that turns the ctlab binary into a
// container init (runc's `runc init` idea): Start execs InitBinary
// (ctlab-init when installed, else ctlab itself) through an fd with it,
// inside the new namespaces; see docs/start-path.md, "The init protocol".
const initArg = "__ctlab_init"

func init() {
	// The init must do its namespace work (unshare of the cgroup and time
	// namespaces, /proc/self/timens_offsets, the final execve) on the main
	// thread: namespaces belong to threads, and /proc/self is the main
	// thread. Locking in init() pins main to it.
	if len(os.Args) > 1 && os.Args[1] == initArg {
		runtime.LockOSThread()
	}
}

// MaybeInit runs the container init and never returns when this process was
// started as one; otherwise it returns immediately. Call it first thing in
// main (and in TestMain of packages that start containers).
func MaybeInit() {
	if len(os.Args) > 1 && os.Args[1] == initArg {
		containerInit()
	}
}

// initConfig is what the parent sends the init over the control pipe.
type initConfig struct {
	Namespaces []Namespace `json:"namespaces"`
	Hostname   string      `json:"hostname"`
	Rootfs     string      `json:"rootfs"`
	Args       []string    `json:"args"`
	Env        []string    `json:"env"`
	Cwd        string      `json:"cwd"`
	Time       TimeOffsets `json:"time"`
	Harden     Hardening   `json:"harden"`
	Self       string      `json:"self,omitempty"` // ctlab binary to bind at /.ctlab/ctlab
	UserNS     bool        `json:"userns"`
	Mounts     []Mount     `json:"mounts,omitempty"`
	User       *IDs        `json:"user,omitempty"`
	// RootTree, when set, is the fd of a detached copy of the rootfs: the
	// container has no mount namespace of its own, and the init attaches
	// it at Rootfs in the one it shares and chroots (nsjoin_linux.go).
	RootTree int `json:"root_tree,omitempty"`
}

// statusMsg is what the init reports back before it execs.
type statusMsg struct {
	Error  string  `json:"error,omitempty"`
	Phases []Phase `json:"phases,omitempty"`
}

// containerInit runs in the child: fd 3 is the control pipe, fd 4 the
// status pipe (the whole protocol: docs/start-path.md, "The init
// protocol").
func containerInit() {
	ctl := os.NewFile(3, "ctl")
	status := os.NewFile(4, "status")
	fail := func(err error) {
		json.NewEncoder(status).Encode(statusMsg{Error: err.Error()})
		os.Exit(127)
	}
	br := bufio.NewReader(ctl)
	line, err := br.ReadBytes('\n')
	if err != nil {
		// The parent died before sending the config: nothing to do.
		os.Exit(127)
	}
	var cfg initConfig
	if err := json.Unmarshal(line, &cfg); err != nil {
		fail(fmt.Errorf("decode config: %w", err))
	}
	var phases []Phase
	t := time.Now()
	mark := func(name string) {
		now := time.Now()
		phases = append(phases, Phase{Name: name, Duration: now.Sub(t)})
		t = now
	}

	if err := setupRootfs(&cfg); err != nil {
		fail(err)
	}
	mark("mounts (child)")
	if Has(cfg.Namespaces, NSUTS) {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			fail(fmt.Errorf("sethostname: %w", err))
		}
	}

	// Wait until the parent has put us in our cgroup and network.
	if b, err := br.ReadByte(); err != nil || b != 'G' {
		os.Exit(127)
	}
	ctl.Close()
	t = time.Now()

	// A cgroup namespace made now has our own cgroup as its root, so
	// /proc/self/cgroup reads "/" inside.
	if Has(cfg.Namespaces, NSCgroup) {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			fail(fmt.Errorf("unshare cgroup namespace: %w", err))
		}
	}
	mark("cgroup ns (child)")

	if cfg.RootTree > 0 {
		err = chrootTo(cfg.Rootfs)
	} else {
		err = pivotRoot(cfg.Rootfs)
	}
	if err != nil {
		fail(err)
	}
	mark("pivot_root (child)")

	if cfg.Harden.MaskPaths {
		if err := maskPaths(); err != nil {
			fail(err)
		}
	}
	// The working directory is resolved inside the root, after every fd
	// of ctlab's but the status pipe is gone: fd 5 (the init binary) and,
	// on v2, the cgroup directory (closed by the C stage), so a WORKDIR of
	// /proc/self/fd/N cannot land on a host file (CVE-2024-21626).
	unix.Close(5)
	if err := chdirInRoot(cfg.Cwd); err != nil {
		fail(err)
	}
	os.Clearenv()
	setEnv(cfg.Env)
	step, stepArgs, path, err := resolveCommand(&cfg)
	if err != nil {
		fail(err)
	}
	if err := harden(cfg.Harden, cfg.User); err != nil {
		fail(err)
	}
	mark("hardening (child)")
	json.NewEncoder(status).Encode(statusMsg{Phases: phases})
	if step != nil {
		runInitStep(step, stepArgs, status) // execs, or exits
	}
	// Nothing of ctlab's may leak into the container (CVE-2024-21626):
	// every fd above stdio closes on exec, including the status pipe, whose
	// EOF tells the parent the exec happened.
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	err = syscall.Exec(path, cfg.Args, os.Environ())
	fail(fmt.Errorf("exec %s: %w", path, err))
}

// resolveCommand finds what the init execs, with the container's PATH
// (already in the environment) inside the new root: an init step linked
// into this binary (the OCI process init, initstep_linux.go) runs in
// process instead, so path is then empty.
func resolveCommand(cfg *initConfig) (step InitStep, stepArgs []string, path string, err error) {
	if step, stepArgs = initStepFor(cfg); step != nil {
		return step, stepArgs, "", nil
	}
	if path, err = exec.LookPath(cfg.Args[0]); err != nil {
		return nil, nil, "", fmt.Errorf("command %q not found in the container: %w", cfg.Args[0], err)
	}
	if interp := missingInterpreter(path); interp != "" {
		return nil, nil, "", fmt.Errorf("%s is dynamically linked and its loader %s is not in the container's rootfs (build ctlab static: make build)", cfg.Args[0], interp)
	}
	return nil, nil, path, nil
}

// harden applies the last restrictions before the exec: no_new_privs,
// the capability drop, and the seccomp filter last, "as close to execve as
// possible" (runc): nothing of ctlab's own runs under the filter except the
// exec itself.
//
// The switch to the image's USER (ids) comes after the capability drop
// (which needs CAP_SETPCAP, lost with uid 0) and before the filter.
func harden(h Hardening, ids *IDs) error {
	if h.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	if h.DropCaps {
		if err := dropCapabilities(); err != nil {
			return err
		}
	}
	if ids != nil {
		// syscall's versions change every thread's credentials; the exec
		// follows on this one.
		if err := syscall.Setgroups(ids.Groups); err != nil {
			return fmt.Errorf("setgroups %v: %w", ids.Groups, err)
		}
		if err := syscall.Setresgid(ids.GID, ids.GID, ids.GID); err != nil {
			return fmt.Errorf("setgid %d: %w", ids.GID, err)
		}
		if err := syscall.Setresuid(ids.UID, ids.UID, ids.UID); err != nil {
			return fmt.Errorf("setuid %d: %w", ids.UID, err)
		}
	}
	if h.Seccomp {
		return installSeccomp()
	}
	return nil
}

// missingInterpreter returns the ELF program interpreter of path when the
// rootfs lacks it: execve then fails with a baffling ENOENT for a file that
// plainly exists.
func missingInterpreter(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return ""
			}
			interp := strings.TrimRight(string(b), "\x00")
			if _, err := os.Stat(interp); err != nil {
				return interp
			}
		}
	}
	return ""
}

// setupRootfs prepares the new root (already an overlay mount made by the
// parent) while the host's tree is still visible: /proc, /dev, /sys and the
// ctlab binary. All mounts happen in the container's own mount namespace,
// so a crash leaves nothing on the host; without one (RootTree), under the
// private root mount ctlab journalled, whose lazy unmount removes them all.
func setupRootfs(cfg *initConfig) error {
	root := cfg.Rootfs
	if cfg.RootTree > 0 {
		if err := attachRoot(cfg.RootTree, root); err != nil {
			return err
		}
	} else if err := ownRoot(root); err != nil {
		return err
	}
	procDir, err := mkdirInRoot(root, "proc")
	if err != nil {
		return err
	}
	// A procfs needs the mounter to own the pid namespace; without a new pid
	// namespace inside a user namespace that fails, and the host's /proc is
	// bound instead (the learner then sees host pids, which is the lesson).
	if err := unix.Mount("proc", procDir, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		if err := unix.Mount("/proc", procDir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("mount /proc: %w", err)
		}
	}
	if err := setupDev(root, cfg.Harden != (Hardening{})); err != nil {
		return err
	}
	sysDir, err := mkdirInRoot(root, "sys")
	if err != nil {
		return err
	}
	if err := unix.Mount("sysfs", sysDir, "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		// sysfs can only be mounted by the owner of the network namespace.
		if err := bindReadonly("/sys", sysDir, true); err != nil {
			return fmt.Errorf("mount /sys: %w", err)
		}
	}
	if cfg.Self != "" {
		dir, err := mkdirInRoot(root, ".ctlab")
		if err != nil {
			return err
		}
		target := filepath.Join(dir, "ctlab")
		if _, err := os.Lstat(target); errors.Is(err, fs.ErrNotExist) {
			if f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755); err == nil {
				f.Close()
			}
		}
		if fi, err := os.Lstat(target); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("/.ctlab/ctlab in the rootfs is not a regular file")
		}
		if err := bindReadonly(cfg.Self, target, false); err != nil {
			return fmt.Errorf("bind ctlab binary: %w", err)
		}
	}
	return extraMounts(root, cfg.Mounts)
}

// ownRoot prepares the root in the container's own mount namespace.
func ownRoot(root string) error {
	// Keep our mounts from propagating back to the host (Go only does this
	// for Unshareflags, not Cloneflags).
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	// pivot_root needs the new root to be a mount point of its own.
	if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs: %w", err)
	}
	return nil
}

// mkdirInRoot makes root/rel (one level under root) without following a
// symlink planted in an untrusted rootfs (CVE-2019-16884 class).
func mkdirInRoot(root, rel string) (string, error) {
	p := filepath.Join(root, rel)
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(p, 0o755); err != nil {
			return "", fmt.Errorf("create /%s: %w", rel, err)
		}
		return p, nil
	case err != nil:
		return "", err
	case fi.Mode()&fs.ModeSymlink != 0 || !fi.IsDir():
		return "", fmt.Errorf("/%s in the rootfs is not a directory (symlinks are refused)", rel)
	}
	return p, nil
}

func bindReadonly(src, dst string, rec bool) error {
	flags := uintptr(unix.MS_BIND)
	if rec {
		flags |= unix.MS_REC
	}
	if err := unix.Mount(src, dst, "", flags, ""); err != nil {
		return err
	}
	// In a user namespace the flags of the original mount are locked: a
	// remount must repeat nosuid/nodev/noexec or the kernel says EPERM/EINVAL.
	var st unix.Statfs_t
	if err := unix.Statfs(dst, &st); err != nil {
		return err
	}
	keep := uintptr(0)
	for _, f := range [][2]uintptr{{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_RELATIME, unix.MS_RELATIME}, {unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME}} {
		if uintptr(st.Flags)&f[0] != 0 {
			keep |= f[1]
		}
	}
	return unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|keep, "")
}

// The device nodes every container gets, bound from the host (mknod is not
// allowed in a user namespace, and binding works everywhere). The devices
// cgroup still decides whether each can be opened.
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

// A hardened container gets no /dev/tty: it would be the host terminal of
// whoever started ctlab (TIOCSTI, reading the operator's input).
func setupDev(root string, hardened bool) error {
	dev, err := mkdirInRoot(root, "dev")
	if err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return fmt.Errorf("mount /dev: %w", err)
	}
	for _, n := range devNodes {
		if n == "tty" && hardened {
			continue
		}
		target := filepath.Join(dev, n)
		f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
		if err != nil {
			return err
		}
		f.Close()
		if err := unix.Mount("/dev/"+n, target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind /dev/%s: %w", n, err)
		}
	}
	for _, d := range []string{"pts", "shm", "mqueue"} {
		if err := os.Mkdir(filepath.Join(dev, d), 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount("devpts", filepath.Join(dev, "pts"), "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return fmt.Errorf("mount /dev/pts: %w", err)
	}
	if err := unix.Mount("shm", filepath.Join(dev, "shm"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
		return fmt.Errorf("mount /dev/shm: %w", err)
	}
	// mqueue needs the ipc namespace's owner; not essential.
	_ = unix.Mount("mqueue", filepath.Join(dev, "mqueue"), "mqueue", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	links := map[string]string{"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}
	for n, target := range links {
		if err := os.Symlink(target, filepath.Join(dev, n)); err != nil {
			return err
		}
	}
	return nil
}

// pivotRoot makes rootfs the root of the mount namespace and detaches the
// host's tree, so not even `..` walks out (runc's pivotRoot: pivot_root(".",
// ".") stacks the old root under the new one, then it is unmounted).
func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return err
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// maskPaths hides kernel interfaces an untrusted process has no business
// reading, and makes the writable ones read-only (the runc/containerd
// defaults).
func maskPaths() error {
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats", "/proc/timer_stats", "/proc/interrupts"} {
		if fi, err := os.Lstat(p); err == nil && !fi.IsDir() {
			if err := unix.Mount("/dev/null", p, "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("mask %s: %w", p, err)
			}
		}
	}
	for _, p := range []string{"/proc/acpi", "/proc/scsi", "/sys/firmware"} {
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
			if err := unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "size=0"); err != nil {
				return fmt.Errorf("mask %s: %w", p, err)
			}
		}
	}
	for _, p := range []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"} {
		if _, err := os.Lstat(p); err == nil {
			if err := bindReadonly(p, p, true); err != nil {
				return fmt.Errorf("read-only %s: %w", p, err)
			}
		}
	}
	return nil
}

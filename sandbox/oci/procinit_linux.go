package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/seccomp"
)

// The process init is what the sandbox execs as the container's command:
// ctlab's own binary (bound at /.ctlab/ctlab) with procInitArg and the
// process part of the config. Inside the container, after pivot_root, it
// applies what the sandbox does not (sysctl, masked and read-only paths,
// rlimits, user, capabilities, no_new_privs, the terminal), renames itself
// createdComm (what `state` reads back from /proc as "created"), waits for
// startSignal from `start`, and execs process.args. This split is runc's
// exec.fifo in another form: create returns with everything set up, start
// only releases the exec.
const (
	procInitArg = "__oci_init"
	createdComm = "oci-created"
	startSignal = unix.SIGUSR2
	// startedComm is the name from the start signal to the exec: `start`
	// returns once the init wears it, as runc's start returns once its
	// init has read the exec fifo, before the startContainer hooks and
	// the exec (which take a few tenths of a millisecond). `state` reads
	// any name but createdComm as running.
	startedComm = "oci-started"
)

// procInit is the process init's configuration, one argv element of JSON.
type procInit struct {
	Args          []string                 `json:"args"`
	Env           []string                 `json:"env"`
	Cwd           string                   `json:"cwd"`
	User          specs.User               `json:"user"`
	Rlimits       []specs.POSIXRlimit      `json:"rlimits,omitempty"`
	Caps          *specs.LinuxCapabilities `json:"caps,omitempty"`
	NoNewPrivs    bool                     `json:"nnp,omitempty"`
	Terminal      bool                     `json:"terminal,omitempty"`
	ReadonlyRoot  bool                     `json:"ro_root,omitempty"`
	Sysctl        map[string]string        `json:"sysctl,omitempty"`
	MaskedPaths   []string                 `json:"masked,omitempty"`
	ReadonlyPaths []string                 `json:"ro_paths,omitempty"`
	ConsoleSize   *specs.Box               `json:"console_size,omitempty"`
	Devices       []specs.LinuxDevice      `json:"devices,omitempty"`
	OOMScoreAdj   *int                     `json:"oom,omitempty"`
	Seccomp       *seccomp.Filter          `json:"seccomp,omitempty"`
	// Exec: the process of `exec` in a running container (the exec
	// helper joined it and changed directory): no filesystem setup, no
	// wait for start.
	Exec bool `json:"exec,omitempty"`
	// StartHooks run in the container right before the exec, with State
	// (runtime-spec: startContainer runs in the container's namespaces).
	StartHooks []specs.Hook `json:"start_hooks,omitempty"`
	State      *State       `json:"state,omitempty"`
}

func newProcInit(s *specs.Spec) *procInit {
	p := s.Process
	pi := &procInit{Args: p.Args, Env: p.Env, Cwd: p.Cwd, User: p.User, Rlimits: p.Rlimits, Caps: p.Capabilities,
		NoNewPrivs: p.NoNewPrivileges, Terminal: p.Terminal, ConsoleSize: p.ConsoleSize, ReadonlyRoot: s.Root.Readonly, OOMScoreAdj: p.OOMScoreAdj}
	if s.Linux != nil {
		pi.Sysctl, pi.MaskedPaths, pi.ReadonlyPaths = s.Linux.Sysctl, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths
		pi.Devices = s.Linux.Devices
	}
	return pi
}

// prepare adds what needs the container's id or may fail: the compiled
// seccomp filter and the startContainer hooks with their state.
func (pi *procInit) prepare(s *specs.Spec, st *State) error {
	if err := pi.setSeccomp(s); err != nil {
		return err
	}
	if s.Hooks != nil && len(s.Hooks.StartContainer) > 0 {
		pi.StartHooks, pi.State = s.Hooks.StartContainer, st
	}
	return nil
}

// setSeccomp compiles the config's linux.seccomp in the runtime (create,
// exec), where an error fails the command and a warning reaches the
// caller; the process init only loads the program. A foreign
// architecture's syscall kills the thread, as under runc.
func (pi *procInit) setSeccomp(s *specs.Spec) error {
	if s.Linux == nil || s.Linux.Seccomp == nil {
		return nil
	}
	f, err := seccomp.Compile(s.Linux.Seccomp, seccomp.Options{}, func(w string) { fmt.Fprintln(os.Stderr, "ctlab-oci: warning:", w) })
	if err != nil {
		return err
	}
	pi.Seccomp = f
	return nil
}

// argv is the container's command: the process init and its config.
func (pi *procInit) argv() []string {
	return []string{"/.ctlab/ctlab", procInitArg, pi.encode()}
}

// startHooks runs the startContainer hooks inside the container: paths
// resolve in its root, as the user process with its credentials and
// filter (runc runs them there too), with the state of runc's: "created"
// and the pid as the container sees it.
func (pi *procInit) startHooks() error {
	if len(pi.StartHooks) == 0 || pi.State == nil {
		return nil
	}
	pi.State.Pid = os.Getpid()
	pi.State.Status = specs.StateCreated
	return runHooks(context.Background(), "startContainer", pi.StartHooks, pi.State)
}

func (pi *procInit) encode() string {
	b, _ := json.Marshal(pi) // plain data: cannot fail
	return string(b)
}

func init() {
	// In a container's init (ctlab-init links this package) the process
	// init runs in process, without a second Go start; ready then tells
	// Start the container is created.
	sandbox.RegisterInitStep(procInitArg, func(args []string, ready func() error) error {
		if len(args) != 1 {
			return fmt.Errorf("process init: %d arguments, want the config", len(args))
		}
		procReady = ready
		return runProcInit(args[0])
	})
	if len(os.Args) == 3 && os.Args[1] == procInitArg {
		// The main goroutine on the main thread: its comm is the process's,
		// and every per-thread credential change below is the exec's.
		runtime.LockOSThread()
		err := runProcInit(os.Args[2])
		fmt.Fprintf(os.Stderr, "ctlab-oci init: %v\n", err)
		os.Exit(127)
	}
}

// procReady, when the process init runs inside the container's init,
// releases Start (sandbox.InitStep).
var procReady func() error

// created renames the process init createdComm, what `state` reads back as
// "created", and tells Start. It makes the process non-dumpable first: run
// in process, it is the host's ctlab-init binary, not the read-only copy at
// /.ctlab/ctlab, and a process exec'd into the created container must not
// reach it through /proc/PID/exe (CVE-2019-5736); the exec resets it.
func created() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("non-dumpable: %w", err)
	}
	if err := setComm(createdComm); err != nil {
		return err
	}
	if procReady != nil {
		return procReady()
	}
	return nil
}

// runProcInit never returns on success (it execs). The seccomp filter is
// loaded as late as possible, right before the exec, under no_new_privs;
// without it loading needs CAP_SYS_ADMIN, so it comes before the switch
// to process.user and its capabilities (runc's order for both).
func runProcInit(arg string) error {
	var pi procInit
	if err := json.Unmarshal([]byte(arg), &pi); err != nil {
		return fmt.Errorf("decode process config: %w", err)
	}
	if pi.Exec && pi.Env == nil {
		pi.Env = os.Environ() // no env in --process: the container's default (the exec helper's)
	}
	start := make(chan os.Signal, 1)
	if !pi.Exec {
		signal.Notify(start, startSignal)
		if err := pi.filesystem(); err != nil {
			return err
		}
		if err := pi.process(); err != nil {
			return err
		}
	}
	path, err := lookPath(pi.Args[0], pi.Env)
	if err != nil {
		return err
	}
	if pi.Seccomp != nil && !pi.NoNewPrivs {
		if err := pi.Seccomp.Load(); err != nil {
			return err
		}
	}
	if err := pi.credentials(); err != nil {
		return err
	}
	if !pi.Exec {
		if err := created(); err != nil {
			return err
		}
		// No signal.Stop: it waits for the signal loop to go idle (~0.1 ms
		// of every start), and the exec resets the handler anyway.
		<-start
		if err := setComm(startedComm); err != nil {
			return err
		}
	}
	// The rlimits last: RLIMIT_AS or RLIMIT_DATA would starve this Go
	// program, not only the command.
	for _, r := range pi.Rlimits {
		rl, ok := rlimitNames[r.Type]
		if !ok {
			return fmt.Errorf("unknown rlimit %q", r.Type)
		}
		if err := unix.Setrlimit(rl, &unix.Rlimit{Cur: r.Soft, Max: r.Hard}); err != nil {
			return fmt.Errorf("setrlimit %s: %w", r.Type, err)
		}
	}
	if pi.Seccomp != nil && pi.NoNewPrivs {
		if err := pi.Seccomp.Load(); err != nil {
			return err
		}
	}
	if err := pi.startHooks(); err != nil {
		return err
	}
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	return fmt.Errorf("exec %s: %w", path, syscall.Exec(path, pi.Args, pi.Env))
}

// filesystem applies sysctl, masked and read-only paths and a read-only
// root (runc's order: masks last, they may hide /proc/sys).
func (pi *procInit) filesystem() error {
	if err := makeDevices(pi.Devices); err != nil {
		return err
	}
	for k, v := range pi.Sysctl {
		p := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			return fmt.Errorf("sysctl %s: %w", k, err)
		}
	}
	for _, p := range pi.ReadonlyPaths {
		if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return fmt.Errorf("readonly path %s: %w", p, err)
		}
		if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("readonly path %s: %w", p, err)
		}
	}
	for _, p := range pi.MaskedPaths {
		fi, err := os.Stat(p)
		switch {
		case os.IsNotExist(err):
			continue
		case err != nil:
			return fmt.Errorf("masked path %s: %w", p, err)
		case fi.IsDir():
			err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "size=0k")
		default:
			err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("masked path %s: %w", p, err)
		}
	}
	if pi.ReadonlyRoot {
		if err := unix.Mount("", "/", "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("read-only root: %w", err)
		}
	}
	return nil
}

// process checks the rlimits (set after the wait) and sets the OOM score,
// the terminal and the cwd.
func (pi *procInit) process() error {
	for _, r := range pi.Rlimits {
		if _, ok := rlimitNames[r.Type]; !ok {
			return fmt.Errorf("unknown rlimit %q", r.Type)
		}
	}
	if pi.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(fmt.Sprint(*pi.OOMScoreAdj)), 0o644); err != nil {
			return fmt.Errorf("oom_score_adj: %w", err)
		}
	}
	if pi.Terminal {
		if err := consoleInside(pi.ConsoleSize); err != nil {
			return err
		}
		// A session of its own with the pty (stdin) as controlling terminal.
		if _, err := unix.Setsid(); err != nil {
			return fmt.Errorf("setsid: %w", err)
		}
		if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
			return fmt.Errorf("controlling terminal: %w", err)
		}
	}
	cwd := pi.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := os.Chdir(cwd); err != nil {
		return fmt.Errorf("chdir %s: %w", cwd, err)
	}
	return nil
}

var rlimitNames = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

// lookPath resolves argv[0] with the container's PATH (from env).
func lookPath(arg0 string, env []string) (string, error) {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			os.Setenv("PATH", v)
		}
	}
	p, err := exec.LookPath(arg0)
	if err != nil {
		return "", fmt.Errorf("%q not found in the container: %w", arg0, err)
	}
	return p, nil
}

// makeDevices creates linux.devices in the container's /dev (a tmpfs of
// its own, made by the sandbox).
func makeDevices(devs []specs.LinuxDevice) error {
	for _, d := range devs {
		mode := uint32(0o666)
		if d.FileMode != nil {
			mode = uint32(d.FileMode.Perm())
		}
		switch d.Type {
		case "c", "u":
			mode |= unix.S_IFCHR
		case "b":
			mode |= unix.S_IFBLK
		case "p":
			mode |= unix.S_IFIFO
		default:
			return fmt.Errorf("device %s: unknown type %q", d.Path, d.Type)
		}
		if err := os.MkdirAll(filepath.Dir(d.Path), 0o755); err != nil {
			return err
		}
		os.Remove(d.Path)
		if err := unix.Mknod(d.Path, mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
			return fmt.Errorf("mknod %s: %w", d.Path, err)
		}
		uid, gid := 0, 0
		if d.UID != nil {
			uid = int(*d.UID)
		}
		if d.GID != nil {
			gid = int(*d.GID)
		}
		if err := os.Chown(d.Path, uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", d.Path, err)
		}
		// mknod honours the umask; the config's mode is exact.
		if err := os.Chmod(d.Path, os.FileMode(mode&0o777)); err != nil {
			return err
		}
	}
	return nil
}

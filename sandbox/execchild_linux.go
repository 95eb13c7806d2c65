package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// execArg is the hidden first argument of the exec helper: Command re-execs
// the ctlab binary with it, the C stage (sandbox/nsexec) joins the
// container, and its child continues here, in this package's init function,
// before any main: so every binary that links sandbox can serve as the
// helper, whether or not it calls MaybeInit.
const execArg = "__nsexec"

func init() {
	if len(os.Args) > 1 && os.Args[1] == execArg {
		runtime.LockOSThread()
		execChild()
	}
}

// execChildConfig is what Command sends the helper's Go stage on fd 4.
type execChildConfig struct {
	Env    []string  `json:"env"`
	Cwd    string    `json:"cwd"`
	Harden Hardening `json:"harden"`
	Setsid bool      `json:"setsid"`
	User   *IDs      `json:"user,omitempty"`
	// RootFD is the container init's root (/proc/PID/root, opened by
	// Command) when the container has no mount namespace of its own: its
	// init is chrooted in a shared one, and so must the exec be.
	RootFD int `json:"root_fd,omitempty"`
}

// jsonPipe returns the read end of a pipe that holds v as JSON and EOF.
func jsonPipe(v any) (*os.File, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(b) > 60<<10 {
		// More would block the write until the child reads.
		return nil, &InputError{Problem: fmt.Sprintf("exec configuration of %d bytes is too large", len(b)), Fix: "pass a smaller environment"}
	}
	return dataPipe(b)
}

// execChild runs inside the container, after the C stage joined its
// namespaces and cgroup: it gets the container's hardening (the same as
// its init's), its own session, the working directory resolved inside the
// root, and execs the command. Never returns.
func execChild() {
	fail := func(code int, err error) {
		fmt.Fprintf(os.Stderr, "ctlab exec: %v\n", err)
		os.Exit(code)
	}
	f := os.NewFile(4, "exec config")
	var cfg execChildConfig
	if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&cfg); err != nil {
		fail(126, fmt.Errorf("read config: %w", err))
	}
	f.Close()
	var args []string
	for i, a := range os.Args {
		if a == "--" {
			args = os.Args[i+1:]
			break
		}
	}
	if len(args) == 0 {
		fail(125, errors.New("no command given"))
	}
	if cfg.Setsid {
		if _, err := unix.Setsid(); err != nil {
			fail(126, fmt.Errorf("setsid: %w", err))
		}
	}
	if cfg.RootFD > 0 {
		if err := chrootFD(cfg.RootFD); err != nil {
			fail(126, err)
		}
	}
	// Nothing of ctlab's may reach the command (CVE-2024-21626).
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err := chdirInRoot(cfg.Cwd); err != nil {
		fail(126, err)
	}
	os.Clearenv()
	setEnv(cfg.Env)
	path, err := exec.LookPath(args[0])
	if err != nil {
		fail(127, fmt.Errorf("%s: %w", args[0], err))
	}
	cfg.Harden.MaskPaths = false // the init masked them in the mount namespace we joined
	if err := harden(cfg.Harden, cfg.User); err != nil {
		fail(126, err)
	}
	err = syscall.Exec(path, args, os.Environ())
	fail(126, fmt.Errorf("%s: %w", args[0], err))
}

// chrootFD makes the directory fd the process's root, and closes it.
func chrootFD(fd int) error {
	defer unix.Close(fd)
	if err := unix.Fchdir(fd); err != nil {
		return fmt.Errorf("enter the container's root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot into the container's root: %w", err)
	}
	return nil
}

// chdirInRoot changes to dir resolved inside the process's root: symlinks
// in the image stay inside it and magic links (/proc/self/fd/N, a WORKDIR
// pointing at an inherited host fd: runc's CVE-2024-21626) are refused.
// Then it verifies the result: the kernel's getcwd starts with "/" only for
// a directory reachable from the root.
func chdirInRoot(dir string) error {
	if dir == "" {
		dir = "/"
	}
	root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /: %w", err)
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, dir, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return fmt.Errorf("chdir %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Fchdir(fd); err != nil {
		return fmt.Errorf("chdir %s: %w", dir, err)
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Getcwd(buf)
	if err != nil || n == 0 || buf[0] != '/' {
		return fmt.Errorf("working directory %s is outside the container's root", dir)
	}
	return nil
}

// setEnv sets KEY=VALUE entries (entries without "=" are skipped).
func setEnv(env []string) {
	for _, kv := range env {
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				os.Setenv(kv[:i], kv[i+1:])
				break
			}
		}
	}
}

// isTerminal reports whether r is a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok || f == nil {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

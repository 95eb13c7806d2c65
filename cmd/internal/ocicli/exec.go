package ocicli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/oci"
)

type execFlags struct {
	process, pidFile, consoleSocket, cwd, user string
	detach, tty, noNewPrivs, nnpSet            bool
	env, caps, gids                            []string
}

func execCmd(g *globals) *cobra.Command {
	var f execFlags
	c := &cobra.Command{
		Use:   "exec [flags] ID [COMMAND ARG...]",
		Short: "run a process in a running container (--process FILE: a runtime-spec process JSON)",
		Long: `Run a process in a running container. Without --process it is the
container's own process (config.json: user, capabilities, env, cwd,
rlimits, noNewPrivileges) with the given command and the flags below on
top, as with runc; with --process the file alone. Either way it runs under
the container's seccomp filter. --apparmor and --process-label are
accepted and ignored: ctlab has no LSM support.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			f.nnpSet = c.Flags().Changed("no-new-privs")
			return runExec(c.Context(), g, f, args[0], args[1:])
		},
	}
	fl := c.Flags()
	fl.SetInterspersed(false) // everything after the id is the command
	fl.StringVarP(&f.process, "process", "p", "", "process JSON file")
	fl.BoolVarP(&f.detach, "detach", "d", false, "do not wait for the process")
	fl.StringVar(&f.pidFile, "pid-file", "", "write the process's pid here")
	fl.StringVar(&f.consoleSocket, "console-socket", "", "unix socket that receives the pty master")
	fl.BoolVarP(&f.tty, "tty", "t", false, "allocate a pty")
	fl.StringVar(&f.cwd, "cwd", "", "working directory inside")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "add an environment variable KEY=VALUE")
	fl.StringVarP(&f.user, "user", "u", "", "UID[:GID] to run as (numbers)")
	fl.StringArrayVarP(&f.caps, "cap", "c", nil, "add a capability (CAP_...)")
	fl.StringSliceVarP(&f.gids, "additional-gids", "g", nil, "additional group ids")
	fl.BoolVar(&f.noNewPrivs, "no-new-privs", false, "set no_new_privs for the process")
	fl.String("apparmor", "", "accepted and ignored (no AppArmor support)")
	fl.String("process-label", "", "accepted and ignored (no SELinux support)")
	fl.Int("preserve-fds", 0, "accepted; extra fds are not passed")
	return c
}

// execProcess reads --process, or takes the container's process with
// args and the flags applied (runc's getProcess).
func execProcess(rt *oci.Runtime, id string, f execFlags, args []string) (*specs.Process, error) {
	if f.process != "" {
		b, err := os.ReadFile(f.process)
		if err != nil {
			return nil, fmt.Errorf("read process file: %w", err)
		}
		p := &specs.Process{}
		if err := json.Unmarshal(b, p); err != nil {
			return nil, fmt.Errorf("parse process file: %w", err)
		}
		if len(p.Args) == 0 {
			return nil, fmt.Errorf("no command to exec")
		}
		return p, nil
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("no command to exec")
	}
	p, err := rt.ExecProcess(id)
	if err != nil {
		return nil, err
	}
	p.Args, p.Terminal = args, f.tty
	p.Env = append(p.Env, f.env...)
	if f.cwd != "" {
		p.Cwd = f.cwd
	}
	if f.nnpSet {
		p.NoNewPrivileges = f.noNewPrivs
	}
	if c := p.Capabilities; c != nil {
		// Without a capabilities section the process keeps them all.
		for _, n := range f.caps {
			c.Bounding, c.Effective, c.Permitted = append(c.Bounding, n), append(c.Effective, n), append(c.Permitted, n)
			if c.Inheritable != nil {
				c.Ambient = append(c.Ambient, n)
			}
		}
	}
	if f.user != "" {
		us, gs, hasGID := strings.Cut(f.user, ":")
		uid, err := strconv.ParseUint(us, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--user %q: want UID[:GID] numbers", f.user)
		}
		p.User.UID = uint32(uid)
		if hasGID {
			gid, err := strconv.ParseUint(gs, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("--user %q: want UID[:GID] numbers", f.user)
			}
			p.User.GID = uint32(gid)
		}
	}
	for _, g := range f.gids {
		gid, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--additional-gids %q: not a number", g)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(gid))
	}
	return p, nil
}

func runExec(ctx context.Context, g *globals, f execFlags, id string, args []string) error {
	rt := g.runtime()
	p, err := execProcess(rt, id, f, args)
	if err != nil {
		return err
	}
	ct, err := rt.Container(id)
	if err != nil {
		return err
	}
	argv, err := rt.ExecArgs(id, p)
	if err != nil {
		return err
	}
	ec := sandbox.ExecConfig{Args: argv, Env: p.Env, Cwd: p.Cwd, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	if p.Terminal {
		pty, err := oci.NewConsole(f.consoleSocket, p.ConsoleSize)
		if err != nil {
			return err
		}
		defer pty.Close()
		ec.Stdin, ec.Stdout, ec.Stderr = pty, pty, pty
	}
	cmd, release, err := ct.Command(ec)
	if err != nil {
		return err
	}
	if p.Terminal {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	}
	err = cmd.Start()
	release()
	if err != nil {
		return fmt.Errorf("exec in %s: %w", id, err)
	}
	if f.pidFile != "" {
		if err := os.WriteFile(f.pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			cmd.Process.Kill()
			return fmt.Errorf("pid file: %w", err)
		}
	}
	if f.detach {
		return nil
	}
	return waitExit(cmd)
}

// waitExit waits for cmd and turns its status into an ExitError.
func waitExit(cmd *exec.Cmd) error {
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return ExitError{Code: 128 + int(ws.Signal())}
		}
		return ExitError{Code: ee.ExitCode()}
	}
	return err
}

func psCmd(g *globals) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use: "ps [--format json] ID", Short: "the host pids in the container's cgroup", Args: oneID,
		RunE: func(c *cobra.Command, args []string) error {
			cg, err := g.cgroup(args[0])
			if err != nil {
				return err
			}
			pids, err := cg.Procs()
			if err != nil {
				return err
			}
			if format == "json" {
				if pids == nil {
					pids = []int{}
				}
				return json.NewEncoder(os.Stdout).Encode(pids)
			}
			fmt.Println("PID CMD")
			for _, p := range pids {
				comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p))
				fmt.Printf("%d %s", p, comm)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return c
}

func updateCmd(g *globals) *cobra.Command {
	var file string
	c := &cobra.Command{
		Use: "update --resources FILE ID", Short: "change the cgroup limits (memory, cpu, pids) from a LinuxResources JSON", Args: oneID,
		RunE: func(c *cobra.Command, args []string) error {
			var in io.Reader = os.Stdin
			if file != "" && file != "-" {
				fh, err := os.Open(file)
				if err != nil {
					return err
				}
				defer fh.Close()
				in = fh
			}
			var r specs.LinuxResources
			if err := json.NewDecoder(in).Decode(&r); err != nil {
				return fmt.Errorf("parse resources: %w", err)
			}
			cg, err := g.cgroup(args[0])
			if err != nil {
				return err
			}
			return cg.Update(oci.Limits(&r))
		},
	}
	c.Flags().StringVarP(&file, "resources", "r", "", "LinuxResources JSON file (- or none: stdin)")
	return c
}

func featuresCmd() *cobra.Command {
	return &cobra.Command{
		Use: "features", Short: "what this runtime supports (runtime-spec features JSON)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error { return printJSON(oci.Features()) },
	}
}

func callsCmd() *cobra.Command {
	return &cobra.Command{
		Use: "calls", Short: "print ctlab's log of the calls this runtime received (" + oci.CallLog + ")", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			b, err := os.ReadFile(oci.CallLog)
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			var call oci.Call
			for _, line := range splitLines(b) {
				if json.Unmarshal(line, &call) == nil {
					fmt.Printf("%s %-22s %v\n", call.Time.Format("15:04:05.000"), call.Caller, call.Args)
				}
			}
			return nil
		},
	}
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		out = append(out, b[:i])
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return out
}

// runCmd is runc run: create, start, and (without --detach) wait, delete
// and exit with the container's status.
func runCmd(g *globals) *cobra.Command {
	var o oci.CreateOptions
	var detach bool
	c := &cobra.Command{
		Use: "run [flags] ID", Short: "create and start a container; wait for it unless --detach", Args: oneID,
		RunE: func(c *cobra.Command, args []string) error {
			o.Stdin, o.Stdout, o.Stderr = os.Stdin, os.Stdout, os.Stderr
			if !detach {
				// The container's pid 1 is re-parented to the nearest
				// subreaper when the init stage exits (no waiter, as with
				// runc): be it, so Wait reaps it and learns its status.
				if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
					return fmt.Errorf("become a child subreaper: %w", err)
				}
			}
			rt := g.runtime()
			ct, err := rt.Create(c.Context(), args[0], o)
			if err != nil {
				return err
			}
			if err := rt.Start(c.Context(), args[0]); err != nil || detach {
				return err
			}
			code, err := ct.Wait(c.Context())
			if derr := rt.Delete(context.WithoutCancel(c.Context()), args[0], true); err == nil {
				err = derr
			}
			if err != nil {
				return err
			}
			return ExitError{Code: code}
		},
	}
	addCreateFlags(c, &o)
	c.Flags().BoolVarP(&detach, "detach", "d", false, "do not wait")
	return c
}

// cgroup is the cgroup of container id.
func (g *globals) cgroup(id string) (*cgroups.Cgroup, error) {
	ct, err := g.runtime().Container(id)
	if err != nil {
		return nil, err
	}
	return ct.Cgroup()
}

// Package ocicli is the runc-compatible command line of ctlab's OCI runtime
// (sandbox/oci), shared by `ctlab oci ...` and the ctlab-oci binary that
// containerd's shim (BinaryName) and podman (--runtime) call in place of
// runc. Flags follow runc's, as go-runc and conmon pass them.
package ocicli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox/oci"
)

// ExitError carries a process's exit status (exec) out of the command.
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

type globals struct {
	root, log, logFormat string
	systemdCgroup        bool
}

func (g *globals) runtime() *oci.Runtime {
	return &oci.Runtime{Root: g.root, SystemdCgroup: g.systemdCgroup}
}

// Command is the runtime's command tree; use is "ctlab-oci" or "oci".
func Command(use string) (*cobra.Command, *globals) {
	g := &globals{}
	root := &cobra.Command{
		Use:   use,
		Short: "ctlab as an OCI runtime: runc's command line on ctlab's sandbox",
		Long: `An OCI runtime with runc's command line, for containerd (runc option
BinaryName) and podman (--runtime). Every call is logged to ` + oci.CallLog + `
(` + "`ctlab oci calls`" + `) and, with --log, to that file in runc's format.

The container's cgroup is at linux.cgroupsPath as runc puts it (absolute:
below each hierarchy's root; relative: below ctlab-oci's own cgroup, on v2
its parent; empty: ctlab's own ctlab/<name>). With --systemd-cgroup the
path must be runc's "slice:prefix:name": the scope prefix-name.scope in
that slice, made by ctlab's systemd driver where systemd owns a pure v2
tree; elsewhere (a hybrid or v1 host) ctlab falls back to ctlab/<name>.`,
		Example: `  # podman with ctlab as its runtime (conmon calls ctlab-oci create/start/...)
  sudo podman --runtime /usr/bin/ctlab-oci run --rm IMAGE echo hi
  # containerd: per run, or for good with the runc shim's option
  # BinaryName = "/usr/bin/ctlab-oci" in config.toml
  sudo ctr run --rm --runc-binary /usr/bin/ctlab-oci IMAGE t1 echo hi
  # what the callers asked for, one line per call
  sudo ctlab oci calls
  # the lesson that does all of this with a private containerd
  sudo ctlab learn oci-runtime-swap

See docs/oci-runtime.md for what config.json may hold and where ctlab
differs from runc.`,
		Version:       "0.1 (runc-compatible; runtime-spec " + specs.Version + ")",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	pf := root.PersistentFlags()
	pf.StringVar(&g.root, "root", oci.DefaultRoot, "directory of the containers' records")
	pf.StringVar(&g.log, "log", "", "also log each call to this file")
	pf.StringVar(&g.logFormat, "log-format", "text", "format of --log: text or json")
	pf.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "cgroupsPath is runc's slice:prefix:name, a systemd scope (see above)")
	for _, f := range []string{"debug", "rootless", "no-pivot-root"} {
		pf.Bool(f, false, "accepted for runc compatibility; ignored")
		pf.Lookup(f).Hidden = true
	}
	pf.String("log-level", "", "accepted for runc compatibility; ignored")
	pf.Lookup("log-level").Hidden = true
	pf.String("criu", "", "accepted for runc compatibility; ignored")
	pf.Lookup("criu").Hidden = true
	root.AddCommand(createCmd(g), startCmd(g), stateCmd(g), killCmd(g), deleteCmd(g), execCmd(g), psCmd(g),
		pauseCmd(g, true), pauseCmd(g, false), updateCmd(g), featuresCmd(), listCmd(g), callsCmd(), runCmd(g))
	return root, g
}

// Main runs the command line on args, logs the call and returns the exit
// status.
func Main(use string, args []string) int {
	root, g := Command(use)
	root.SetArgs(args)
	call := oci.NewCall(args)
	err := root.Execute()
	if err != nil {
		call.Error = err.Error()
	}
	call.Record(g.log, g.logFormat)
	if err == nil {
		return 0
	}
	if ee, ok := err.(ExitError); ok {
		return ee.Code
	}
	fmt.Fprintln(os.Stderr, use+":", err)
	return 1
}

func oneID(c *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%s needs exactly one container id", c.Name())
	}
	return nil
}

func createCmd(g *globals) *cobra.Command {
	var o oci.CreateOptions
	c := &cobra.Command{
		Use: "create [flags] ID", Short: "create a container from a bundle (stops before the exec)", Args: oneID,
		RunE: func(c *cobra.Command, args []string) error {
			o.Stdin, o.Stdout, o.Stderr = os.Stdin, os.Stdout, os.Stderr
			_, err := g.runtime().Create(c.Context(), args[0], o)
			return err
		},
	}
	addCreateFlags(c, &o)
	return c
}

func addCreateFlags(c *cobra.Command, o *oci.CreateOptions) {
	f := c.Flags()
	f.StringVarP(&o.Bundle, "bundle", "b", ".", "bundle directory (config.json and the rootfs)")
	f.StringVar(&o.PidFile, "pid-file", "", "write the pid the caller reaps here")
	f.StringVar(&o.ConsoleSocket, "console-socket", "", "unix socket that receives the pty master (process.terminal)")
	f.Bool("no-pivot", false, "accepted; ctlab always pivot_roots")
	f.Bool("no-new-keyring", false, "accepted; ctlab never makes a session keyring")
	f.Int("preserve-fds", 0, "accepted; extra fds are not passed")
}

func startCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "start ID", Short: "exec the process of a created container", Args: oneID,
		RunE: func(c *cobra.Command, args []string) error { return g.runtime().Start(c.Context(), args[0]) },
	}
}

func stateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "state ID", Short: "print the runtime-spec state JSON", Args: oneID,
		RunE: func(c *cobra.Command, args []string) error {
			st, err := g.runtime().State(args[0])
			if err != nil {
				return err
			}
			return printJSON(st)
		},
	}
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func killCmd(g *globals) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use: "kill ID [SIGNAL]", Short: "signal the container's init (default SIGTERM)",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(c *cobra.Command, args []string) error {
			sig := unix.SIGTERM
			if len(args) == 2 {
				var err error
				if sig, err = parseSignal(args[1]); err != nil {
					return err
				}
			}
			return g.runtime().Kill(args[0], sig, all)
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "signal every process in the container's cgroup")
	return c
}

func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func deleteCmd(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use: "delete [--force] ID", Short: "remove a stopped container (--force: a running one)", Args: oneID,
		RunE: func(c *cobra.Command, args []string) error {
			return g.runtime().Delete(context.WithoutCancel(c.Context()), args[0], force)
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "kill a running container first")
	return c
}

func pauseCmd(g *globals, pause bool) *cobra.Command {
	use, short := "resume ID", "thaw the container's cgroup"
	if pause {
		use, short = "pause ID", "freeze the container's cgroup"
	}
	return &cobra.Command{
		Use: use, Short: short, Args: oneID,
		RunE: func(c *cobra.Command, args []string) error {
			ct, err := g.runtime().Container(args[0])
			if err != nil {
				return err
			}
			if pause {
				return ct.Pause(c.Context())
			}
			return ct.Unpause(c.Context())
		},
	}
}

func listCmd(g *globals) *cobra.Command {
	var format string
	var quiet bool
	c := &cobra.Command{
		Use: "list", Short: "list the containers under --root", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			list, err := g.runtime().List()
			if err != nil {
				return err
			}
			if format == "json" {
				if list == nil {
					list = []*oci.State{}
				}
				return printJSON(list)
			}
			if !quiet {
				fmt.Printf("%-20s %-8s %-10s %s\n", "ID", "PID", "STATUS", "BUNDLE")
			}
			for _, s := range list {
				if quiet {
					fmt.Println(s.ID)
				} else {
					fmt.Printf("%-20s %-8d %-10s %s\n", s.ID, s.Pid, s.Status, s.Bundle)
				}
			}
			return nil
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "ids only")
	return c
}

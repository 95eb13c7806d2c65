// Command ctlab is an interactive container-internals lab: it really creates
// namespaces, cgroups, overlay mounts and veth links, shows the kernel's
// state beside the lesson, runs lessons headless, and grades images.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/cmd/internal/install"
	"github.com/ctlab/ctlab/sandbox"
)

// exitError carries an exit status through cobra without printing twice.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	// A container init is this same binary re-executed; it must not get as
	// far as flag parsing.
	sandbox.MaybeInit()
	if p := install.Sibling("ctlab-init"); p != "" {
		sandbox.InitBinary = p
	}
	root := newRootCmd()
	err := root.Execute()
	os.Exit(exitStatus(err))
}

// exitStatus maps errors to exit statuses: 2 for usage and input errors,
// the command's own status for a container that ran, 1 otherwise.
func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "ctlab:", err)
	var ie *sandbox.InputError
	var ue usageError
	if errors.As(err, &ie) || errors.As(err, &ue) {
		return 2
	}
	return 1
}

// usageError marks a bad flag or argument (exit status 2).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "ctlab",
		Short: "An interactive container-internals lab",
		Long: `ctlab teaches how containers work by really doing it: every lesson creates
Linux namespaces, cgroup limits, overlay filesystems and veth links in the
kernel, and shows the kernel's own account of them beside the text.

Run it as root in a Linux VM:
  sudo ctlab                 open the lessons (terminal UI)
  sudo ctlab doctor          check what this host supports
  sudo ctlab run -- sh       a container shell, docker-style
  sudo ctlab scenario list   lessons for headless runs and CI
  sudo ctlab grade nginx-hello IMAGE.tar   grade a homework image`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
	})
	root.AddCommand(newRunCmd(), newExecCmd(), newPsCmd(), newInspectCmd(), newPauseCmd(true), newPauseCmd(false),
		newRmCmd(), newDoctorCmd(), newCleanupCmd(), newLoadCmd())
	addExtraCommands(root)
	addImageCommands(root)
	addVersion(root)
	wrapArgErrors(root)
	return root
}

// wrapArgErrors makes a wrong number of arguments a usage error (exit
// status 2) in every command, with a pointer to its help.
func wrapArgErrors(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError{fmt.Errorf("%s: %w (see %s --help)", cmd.CommandPath(), err, cmd.CommandPath())}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgErrors(sub)
	}
}

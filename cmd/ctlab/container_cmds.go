package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/lab"
	"github.com/ctlab/ctlab/sandbox"
)

func newExecCmd() *cobra.Command {
	var cwd string
	cmd := &cobra.Command{
		Use:   "exec NAME -- CMD [ARG...]",
		Short: "Run a command inside a running container (join its namespaces and cgroup)",
		Long: `exec starts a new process that JOINS the namespaces of a running container
instead of creating new ones — the one real difference between "start" and
"exec" in containerd and runc. It joins the user namespace first (that grants
the capabilities for the rest), then ipc, uts, net, pid, cgroup, time and mnt,
and the container's cgroup. Compare the inodes with:
  ls -l /proc/self/ns    (inside)     vs    ctlab inspect NAME`,
		Example: `  sudo ctlab exec web -- /bin/sh
  sudo ctlab exec web -- hostname
  sudo ctlab exec web -- cat /proc/self/cgroup`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sandbox.Load(kernelName(args[0]))
			if err != nil {
				return &sandbox.InputError{Problem: err.Error(), Fix: "see ctlab ps"}
			}
			signal.Ignore(os.Interrupt) // the terminal's Ctrl-C is for the command inside
			code, err := c.Exec(context.Background(), sandbox.ExecConfig{
				Args: args[1:], Cwd: cwd, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
			})
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&cwd, "workdir", "w", "", "working directory inside the container")
	return cmd
}

func newPsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List containers (status read from the kernel)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := sandbox.List()
			if err != nil {
				return err
			}
			if asJSON {
				type row struct {
					Name    string   `json:"name"`
					Pid     int      `json:"pid"`
					Status  string   `json:"status"`
					Created string   `json:"created"`
					Command []string `json:"command"`
				}
				rows := []row{}
				for _, c := range cs {
					rows = append(rows, row{c.Name, c.Pid, c.Status(), c.Created.Format(time.RFC3339), c.Args})
				}
				return writeJSON(cmd, rows)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tPID\tSTATUS\tCREATED\tADDRESS\tCOMMAND")
			for _, c := range cs {
				addr := "-"
				if c.Net != nil {
					addr = c.Net.ContainerAddr.Addr().String()
				}
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", c.Name, c.Pid, c.Status(), c.Created.Format("15:04:05"), addr, shellJoin(c.Args))
			}
			for _, s := range createdContainers() { // restart.go
				fmt.Fprintf(w, "%s\t-\tcreated\t%s\t-\t%s\n", s.Name, s.Created.Format("15:04:05"), shellJoin(s.Args))
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newPauseCmd(pause bool) *cobra.Command {
	use, short := "pause NAME", "Freeze every process of a container (cgroup freezer)"
	if !pause {
		use, short = "unpause NAME", "Thaw a paused container"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Long:  short + ".\nv1 writes FROZEN/THAWED to freezer.state; v2 writes 1/0 to cgroup.freeze and\nwaits for cgroup.events to say frozen.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sandbox.Load(kernelName(args[0]))
			if err != nil {
				return &sandbox.InputError{Problem: err.Error(), Fix: "see ctlab ps"}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			if pause {
				return c.Pause(ctx)
			}
			return c.Unpause(ctx)
		},
	}
}

func newRmCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm [-f] NAME...",
		Short: "Remove containers: processes, cgroup, veth, overlay mount and directories",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			for _, n := range args {
				c, err := sandbox.Load(kernelName(n))
				if err != nil && removeSaved(kernelName(n)) { // a created container (restart.go)
					fmt.Fprintln(cmd.OutOrStdout(), n)
					continue
				}
				if err != nil {
					return &sandbox.InputError{Problem: err.Error(), Fix: "see ctlab ps"}
				}
				if err := c.Remove(ctx, force); err != nil {
					return err
				}
				removeSaved(c.Name)
				fmt.Fprintln(cmd.OutOrStdout(), n)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill a running container first")
	return cmd
}

func newCleanupCmd() *cobra.Command {
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Remove everything a killed ctlab run left behind (and nothing else)",
		Long: `cleanup reads ctlab's journal (/run/ctlab/journal: every kernel object is
recorded there before it is created) and removes what killed runs left:
processes, cgroups ctlab/*, veth links ctl*, overlay mounts and directories
under /var/lib/ctlab/containers. Healthy running containers are kept unless
--all. It never touches objects without ctlab's names; running it twice is
harmless.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			rep, err := sandbox.Cleanup(ctx, sandbox.CleanupOptions{All: all})
			// A killed lesson's images ("<scenario>-<tag>") are store entries,
			// not kernel objects: lab removes those of scenarios no run holds.
			// Not fatal: the next run or reset of that lesson removes them too.
			imgs, ierr := lab.CleanupImages(ctx)
			if ierr != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: lesson images:", ierr)
			}
			if rep != nil {
				if asJSON {
					if jerr := writeJSON(cmd, rep); jerr != nil {
						return jerr
					}
				} else {
					out := cmd.OutOrStdout()
					for _, n := range rep.Removed {
						fmt.Fprintln(out, "removed container", n)
					}
					for _, s := range rep.Swept {
						fmt.Fprintln(out, "removed stray", s)
					}
					for _, n := range rep.Kept {
						fmt.Fprintln(out, "kept running container", n, "(use --all to remove it)")
					}
					for _, n := range imgs {
						fmt.Fprintln(out, "removed lesson image", n)
					}
					if len(rep.Removed)+len(rep.Swept)+len(imgs) == 0 {
						fmt.Fprintln(out, "nothing to clean up")
					}
				}
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also remove healthy running containers")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func writeJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

var _ = syscall.SIGKILL

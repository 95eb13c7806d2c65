package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/load"
)

func newLoadCmd() *cobra.Command {
	var seconds float64
	root := &cobra.Command{
		Use:   "load",
		Short: "Load generators for lessons (run inside a container as /.ctlab/ctlab load ...)",
		Long: `load makes the work a cgroup limit acts on, so lessons need no tools in the
container image. Inside a container the ctlab binary is at /.ctlab/ctlab.`,
	}
	root.PersistentFlags().Float64Var(&seconds, "seconds", 10, "how long to run (cpu, mem hold)")
	ctxFor := func(cmd *cobra.Command) (context.Context, context.CancelFunc) {
		return context.WithTimeout(cmd.Context(), time.Duration(seconds*float64(time.Second)))
	}
	var threads int
	cpu := &cobra.Command{
		Use: "cpu", Short: "Burn cpu (throttled by cpu.max / cpu.cfs_quota_us)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := ctxFor(cmd)
			defer cancel()
			load.CPU(ctx, threads)
			return nil
		},
	}
	cpu.Flags().IntVar(&threads, "threads", 1, "busy threads")
	mem := &cobra.Command{
		Use: "mem SIZE", Short: "Allocate and touch SIZE bytes (OOM-killed above memory.max)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := cgroups.ParseSize(args[0])
			if err != nil {
				return usageError{err}
			}
			ctx, cancel := ctxFor(cmd)
			defer cancel()
			return load.Memory(ctx, n, cmd.OutOrStdout())
		},
	}
	fork := &cobra.Command{
		Use: "fork N", Short: "Start N processes (refused with EAGAIN at pids.max)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var n int
			if _, err := fmt.Sscan(args[0], &n); err != nil || n < 1 {
				return usageError{fmt.Errorf("N must be a positive number")}
			}
			got, err := load.Fork(cmd.Context(), n, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if got < n {
				return exitError{3}
			}
			return nil
		},
	}
	io := &cobra.Command{
		Use: "io FILE SIZE", Short: "Read FILE (created with SIZE bytes if missing) with O_DIRECT and print the rate", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := cgroups.ParseSize(args[1])
			if err != nil {
				return usageError{err}
			}
			_, err = load.IORead(cmd.Context(), args[0], n, cmd.OutOrStdout())
			return err
		},
	}
	sleep := &cobra.Command{
		Use: "sleep", Hidden: true, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := ctxFor(cmd)
			defer cancel()
			<-ctx.Done()
			return nil
		},
	}
	count := &cobra.Command{
		Use: "count FILE", Short: "Write an increasing counter to FILE every 10 ms (stops when frozen)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := ctxFor(cmd)
			defer cancel()
			for i := 0; ctx.Err() == nil; i++ {
				if err := os.WriteFile(args[0], []byte(fmt.Sprintf("%d\n", i)), 0o644); err != nil {
					return err
				}
				time.Sleep(10 * time.Millisecond)
			}
			return nil
		},
	}
	shm := &cobra.Command{
		Use: "shm KEY", Short: "Create a System V shared memory segment with KEY (0x1234) and exit; it stays in this ipc namespace", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := strconv.ParseInt(args[0], 0, 32)
			if err != nil || key == 0 {
				return usageError{fmt.Errorf("KEY must be a non-zero number such as 0x1234 (0 is IPC_PRIVATE)")}
			}
			return load.SysVShm(int(key), cmd.OutOrStdout())
		},
	}
	root.AddCommand(cpu, mem, fork, io, sleep, count, shm)
	addImageLoadFlag(root) // docker's `load -i FILE` (images.go)
	return root
}

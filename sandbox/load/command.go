package load

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/sandbox/cgroups"
)

// Spec is one run of a load generator: the arguments of
// `ctlab load KIND ...`. Args writes it as that command line and Parse
// reads one back with the same cobra command the CLI runs, so a scenario's
// load action, the CLI and the tests share one grammar.
type Spec struct {
	Kind    string  // cpu | mem | fork | io | count | shm | sleep | serve
	Seconds float64 // --seconds; 0 = the default (10)
	Threads int     // cpu --threads; 0 = 1
	Size    string  // mem, io: a size such as 64M or 1.5G
	Count   int     // fork
	File    string  // io, count
	Key     string  // shm: 0x1234 or decimal, not 0
	Port    int     // serve
	Body    string  // serve
}

// ExitError carries a generator's exit status (3: fork was refused).
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// UsageError marks a bad argument (exit status 2).
type UsageError struct{ error }

func (u UsageError) Unwrap() error { return u.error }

// Args is the command line after the binary's name: "load", the kind, its
// positional arguments, then flags.
func (s Spec) Args() []string {
	argv := []string{"load", s.Kind}
	switch s.Kind {
	case "mem":
		argv = append(argv, s.Size)
	case "fork":
		argv = append(argv, strconv.Itoa(s.Count))
	case "io":
		argv = append(argv, s.File, s.Size)
	case "count":
		argv = append(argv, s.File)
	case "shm":
		argv = append(argv, s.Key)
	case "serve":
		argv = append(argv, strconv.Itoa(s.Port), s.Body)
	}
	if s.Threads > 0 {
		argv = append(argv, "--threads", strconv.Itoa(s.Threads))
	}
	if s.Seconds > 0 {
		argv = append(argv, "--seconds", strconv.FormatFloat(s.Seconds, 'g', -1, 64))
	}
	return argv
}

// Parse reads the arguments after "load" with Command's grammar, without
// running anything.
func Parse(args []string) (Spec, error) {
	root := Command()
	sub, rest, err := root.Find(args)
	if err != nil {
		return Spec{}, UsageError{err}
	}
	if sub == root {
		return Spec{}, UsageError{fmt.Errorf("load: missing kind")}
	}
	if err := sub.ParseFlags(rest); err != nil {
		return Spec{}, UsageError{err}
	}
	pos := sub.Flags().Args()
	if err := sub.ValidateArgs(pos); err != nil {
		return Spec{}, UsageError{err}
	}
	return specOf(sub, pos)
}

// specOf builds the Spec of subcommand cmd from its parsed flags and
// positional arguments, checking each.
func specOf(cmd *cobra.Command, args []string) (Spec, error) {
	s := Spec{Kind: cmd.Name()}
	if f := cmd.Flags().Lookup("seconds"); f != nil && f.Changed {
		s.Seconds, _ = cmd.Flags().GetFloat64("seconds")
	}
	if f := cmd.Flags().Lookup("threads"); f != nil && f.Changed {
		s.Threads, _ = cmd.Flags().GetInt("threads")
	}
	var err error
	switch s.Kind {
	case "mem":
		s.Size, err = args[0], checkSize(args[0])
	case "io":
		s.File, s.Size, err = args[0], args[1], checkSize(args[1])
	case "fork":
		if s.Count, err = strconv.Atoi(args[0]); err != nil || s.Count < 1 {
			err = fmt.Errorf("N must be a positive number")
		}
	case "count":
		s.File = args[0]
	case "shm":
		s.Key = args[0]
		if k, perr := strconv.ParseInt(args[0], 0, 32); perr != nil || k == 0 {
			err = fmt.Errorf("KEY must be a non-zero number such as 0x1234 (0 is IPC_PRIVATE)")
		}
	case "serve":
		s.Body = args[1]
		if s.Port, err = strconv.Atoi(args[0]); err != nil || s.Port < 1 || s.Port > 65535 {
			err = fmt.Errorf("PORT must be 1..65535")
		}
	}
	if err != nil {
		return Spec{}, UsageError{err}
	}
	return s, nil
}

func checkSize(s string) error {
	n, err := cgroups.ParseSize(s)
	if err == nil && n < 0 {
		err = fmt.Errorf("size %q: want a number of bytes, not max", s)
	}
	return err
}

// Run runs the generator s describes, writing its output to w.
func Run(ctx context.Context, s Spec, w io.Writer) error {
	secs := s.Seconds
	if secs == 0 {
		secs = 10
	}
	timed, cancel := context.WithTimeout(ctx, time.Duration(secs*float64(time.Second)))
	defer cancel()
	switch s.Kind {
	case "cpu":
		CPU(timed, s.Threads)
	case "mem":
		n, _ := cgroups.ParseSize(s.Size)
		return Memory(timed, n, w)
	case "fork":
		got, err := Fork(ctx, s.Count, w)
		if err == nil && got < s.Count {
			return ExitError{3}
		}
		return err
	case "io":
		n, _ := cgroups.ParseSize(s.Size)
		_, err := IORead(ctx, s.File, n, w)
		return err
	case "count":
		return count(timed, s.File)
	case "shm":
		k, _ := strconv.ParseInt(s.Key, 0, 32)
		return SysVShm(int(k), w)
	case "serve":
		return Serve(timed, s.Port, s.Body)
	case "sleep":
		<-timed.Done()
	default:
		return UsageError{fmt.Errorf("unknown load kind %q", s.Kind)}
	}
	return nil
}

// Command is `ctlab load`: the only grammar of the load generators.
func Command() *cobra.Command {
	root := &cobra.Command{
		Use:   "load",
		Short: "Load generators for lessons (run inside a container as /.ctlab/ctlab load ...)",
		Long: `load makes the work a cgroup limit acts on, so lessons need no tools in the
container image. Inside a container the ctlab binary is at /.ctlab/ctlab.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return UsageError{fmt.Errorf("unknown load kind %q", args[0])}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return UsageError{fmt.Errorf("missing kind: one of cpu, mem, fork, io, count, shm (see %s --help)", cmd.CommandPath())}
		},
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return UsageError{fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
	})
	root.PersistentFlags().Float64("seconds", 10, "how long to run (cpu, mem hold, count, sleep, serve)")
	sub := func(use, short string, args cobra.PositionalArgs, hidden bool) *cobra.Command {
		c := &cobra.Command{Use: use, Short: short, Hidden: hidden,
			Args: func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return UsageError{err}
				}
				return nil
			},
			RunE: func(cmd *cobra.Command, args []string) error {
				s, err := specOf(cmd, args)
				if err != nil {
					return err
				}
				return Run(cmd.Context(), s, cmd.OutOrStdout())
			}}
		root.AddCommand(c)
		return c
	}
	cpu := sub("cpu", "Burn cpu (throttled by cpu.max / cpu.cfs_quota_us)", cobra.NoArgs, false)
	cpu.Flags().Int("threads", 1, "busy threads")
	sub("mem SIZE", "Allocate and touch SIZE bytes (OOM-killed above memory.max)", cobra.ExactArgs(1), false)
	sub("fork N", "Start N processes (refused with EAGAIN at pids.max; exit 3)", cobra.ExactArgs(1), false)
	sub("io FILE SIZE", "Read FILE (created with SIZE bytes if missing) with O_DIRECT and print the rate", cobra.ExactArgs(2), false)
	sub("count FILE", "Write an increasing counter to FILE every 10 ms (stops when frozen)", cobra.ExactArgs(1), false)
	sub("shm KEY", "Create a System V shared memory segment with KEY (0x1234) and exit; it stays in this ipc namespace", cobra.ExactArgs(1), false)
	sub("sleep", "Sleep --seconds", cobra.NoArgs, true)
	sub("serve PORT BODY", "Answer every TCP connection on PORT with BODY for --seconds", cobra.ExactArgs(2), true)
	return root
}

// count writes 0, 1, 2, ... to file, one number every 10 ms, until ctx ends.
// Each number overwrites the last in place (one pwrite at offset 0, never a
// truncate after the first): numbers only grow, so the file always holds one whole line and
// a reader never catches it empty between a truncate and a write.
func count(ctx context.Context, file string) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	for i := 0; ctx.Err() == nil; i++ {
		if _, err := f.WriteAt([]byte(strconv.Itoa(i)+"\n"), 0); err != nil {
			return fmt.Errorf("count: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

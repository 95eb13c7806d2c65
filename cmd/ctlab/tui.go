package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
)

// The terminal UI lives in the ctlab-tui binary beside this one (see
// cmd/ctlab-tui for why); `ctlab`, `ctlab --present` and `ctlab learn ID`
// hand over to it with execve, so it gets the terminal, the signals and
// the exit status as if it had been started directly.

func execTUI(args []string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tuiBin := filepath.Join(filepath.Dir(self), "ctlab-tui")
	if _, err := os.Stat(tuiBin); err != nil {
		return fmt.Errorf("the lessons UI %s is missing: build it with `make build` (or go build -o %s ./cmd/ctlab-tui)", tuiBin, tuiBin)
	}
	return syscall.Exec(tuiBin, append([]string{tuiBin}, args...), os.Environ())
}

// tuiFlags are the root command's flags that belong to the UI.
type tuiFlags struct {
	lang          string
	present, keep bool
}

func (f tuiFlags) args() []string {
	var a []string
	if f.lang != "" {
		a = append(a, "--lang", f.lang)
	}
	if f.present {
		a = append(a, "--present")
	}
	if f.keep {
		a = append(a, "--keep")
	}
	return a
}

func addTUIFlags(cmd *cobra.Command, f *tuiFlags) {
	cmd.Flags().StringVar(&f.lang, "lang", "", `language of the lessons: "zh" or "en" (default: from $LANG)`)
	cmd.Flags().BoolVar(&f.present, "present", false, "presenter mode: large text, one pane at a time")
	cmd.Flags().BoolVar(&f.keep, "keep", false, "keep the lesson's kernel objects when quitting (remove later with ctlab cleanup)")
}

func newLearnCmd() *cobra.Command {
	var f tuiFlags
	cmd := &cobra.Command{
		Use:   "learn ID",
		Short: "Open one lesson in the terminal UI",
		Long: `Open a lesson directly: the lesson text on the left, the live kernel state of
the lesson's container on the right, what each action did below.

Keys: enter run the step, n/p next/previous, s shell in the container,
h hint, c check now, r/R reset step/scenario, L 中文/English, ? help, q quit.
Quitting removes the lesson's namespaces, cgroups, mounts and links unless
--keep is given. Without a terminal, use: ctlab scenario run --plain ID`,
		Example: "  sudo ctlab learn ns-uts\n  sudo ctlab learn cg-memory --lang zh",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return execTUI(append(append([]string{"learn"}, f.args()...), args[0]))
		},
	}
	addTUIFlags(cmd, &f)
	return cmd
}

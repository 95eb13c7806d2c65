package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/cmd/internal/install"
)

// The terminal UI lives in the ctlab-tui binary beside this one (see
// cmd/ctlab-tui for why); `ctlab`, `ctlab --present` and `ctlab learn ID`
// hand over to it with execve, so it gets the terminal, the signals and
// the exit status as if it had been started directly.

func execTUI(args []string) error {
	tuiBin := install.Sibling("ctlab-tui")
	if tuiBin == "" {
		self, _ := os.Executable()
		return fmt.Errorf("the lessons UI ctlab-tui is missing beside %s: build it with `make build` (go build -o %s-tui ./cmd/ctlab-tui)", self, self)
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

// newLearnCmd forwards `ctlab learn ...` verbatim to ctlab-tui, which
// owns its flags and help (`ctlab learn --help`).
func newLearnCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "learn ID|PAGE [--lang zh|en] [--present] [--keep]",
		Short:              "Open one lesson (or a page of the course, e.g. images/layers) in the terminal UI",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return execTUI(append([]string{"learn"}, args...))
		},
	}
}

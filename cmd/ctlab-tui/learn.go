package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/lab"
	"github.com/ctlab/ctlab/tui"
)

// newLearnCmd is `ctlab learn ID`: open one lesson in the terminal UI.
func newLearnCmd() *cobra.Command {
	var opts tui.Options
	cmd := &cobra.Command{
		Use:   "learn ID",
		Short: "Open one lesson in the terminal UI",
		Long: `Open a lesson directly: the lesson text on the left, the live kernel state of
the lesson's container on the right, what each action did below.

Keys: enter run the step, n/p next/previous, s shell in the container,
h hint, c check now, r/R reset step/scenario, L 中文/English, ? help, q quit.
Quitting removes the lesson's namespaces, cgroups, mounts and links unless
--keep is given. Without a terminal, use: ctlab scenario run --plain ID`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ScenarioID = args[0]
			return runTUI(cmd, opts)
		},
	}
	addTUIFlags(cmd, &opts)
	return cmd
}

// addTUIFlags adds the flags shared by `ctlab` (home screen) and `ctlab learn`.
func addTUIFlags(cmd *cobra.Command, opts *tui.Options) {
	cmd.Flags().StringVar(&opts.Lang, "lang", "", `language of the lessons: "zh" or "en" (default: from $LANG)`)
	cmd.Flags().BoolVar(&opts.Present, "present", false, "presenter mode: large text, one pane at a time")
	cmd.Flags().BoolVar(&opts.Keep, "keep", false, "keep the lesson's kernel objects when quitting (remove later with ctlab cleanup)")
}

// runTUI starts the terminal UI; the root command calls it with no
// scenario (home screen). Errors from a missing terminal name the plain
// runner instead.
func runTUI(cmd *cobra.Command, opts tui.Options) error {
	switch opts.Lang {
	case "":
		opts.Lang = lab.LangFromEnv()
	case "zh", "en":
	default:
		return fmt.Errorf("--lang %q: use zh or en", opts.Lang)
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return tui.Run(ctx, opts)
}

package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/content"
	"github.com/ctlab/ctlab/lab"
	"github.com/ctlab/ctlab/tui"
)

// newLearnCmd is `ctlab learn ID`: open one lesson in the terminal UI, or
// `ctlab learn PAGE`: open one page of the course in the reader.
func newLearnCmd() *cobra.Command {
	var opts tui.Options
	cmd := &cobra.Command{
		Use:   "learn ID|PAGE",
		Short: "Open one lesson (or one page of the course) in the terminal UI",
		Long: `Open a lesson directly: the lesson text on the left, the live kernel state of
the lesson's container on the right, what each action did below.

A page of the course opens in the reader instead: give its path, e.g.
ctlab learn images/layers (or images/layers.md). A bare name such as
ns-uts or overlay is always a scenario.

Keys: enter run the step, n/p next/previous, s shell in the container,
h hint, c check now, r/R reset step/scenario, L 中文/English, ? help, q quit.
Quitting removes the lesson's namespaces, cgroups, mounts and links unless
--keep is given. Without a terminal, use: ctlab scenario run --plain ID`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if page, ok := contentPage(args[0]); ok {
				opts.Page = page
			} else {
				opts.ScenarioID = args[0]
			}
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

// contentPage resolves a page argument: a path with a slash or ending in
// .md that names a content page ("images/layers", "glossary.md").
func contentPage(arg string) (string, bool) {
	if !strings.Contains(arg, "/") && !strings.HasSuffix(arg, ".md") {
		return "", false
	}
	p := strings.TrimPrefix(strings.TrimPrefix(arg, "content/"), "en/")
	p = strings.TrimPrefix(p, "zh/")
	if !strings.HasSuffix(p, ".md") {
		p += ".md"
	}
	if _, err := content.Page("en", p); err != nil {
		return "", false
	}
	return p, true
}

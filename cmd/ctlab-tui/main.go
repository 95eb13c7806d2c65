// Command ctlab-tui is ctlab's terminal UI: `sudo ctlab` and `ctlab learn`
// hand over to it.
//
// Why a second binary: the UI links Glamour, whose syntax highlighter
// registers hundreds of lexers and styles in package init (about 17 ms on
// every start, measured with GODEBUG=inittrace=1). Every `ctlab run` and
// every container init (a re-executed ctlab) would pay that, for nothing.
// So ctlab stays lean, and this binary, installed beside it, has the UI;
// the containers it starts use the lean ctlab as their init and as
// /.ctlab/ctlab.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/cmd/internal/install"
	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/tui"
)

func main() {
	sandbox.MaybeInit()
	if lean := install.Sibling("ctlab"); lean != "" {
		sandbox.Binary = lean
		sandbox.InitBinary = lean
	}
	if p := install.Sibling("ctlab-init"); p != "" {
		sandbox.InitBinary = p
	}
	var opts tui.Options
	root := &cobra.Command{
		Use:           "ctlab",
		Short:         "ctlab's lessons in the terminal",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTUI(cmd, opts)
		},
	}
	addTUIFlags(root, &opts)
	root.AddCommand(newLearnCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ctlab:", err)
		os.Exit(2)
	}
}

package main

import "github.com/spf13/cobra"

// addExtraCommands wires the commands of the scenario engine, the grader and
// the TUI.
func addExtraCommands(root *cobra.Command) {
	root.AddCommand(newScenarioCmd(), newProgressCmd(), newGradeCmd(), newLearnCmd())
	var f tuiFlags
	addTUIFlags(root, &f)
	root.Args = cobra.NoArgs
	root.RunE = func(cmd *cobra.Command, args []string) error {
		return execTUI(f.args())
	}
}

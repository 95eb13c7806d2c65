package main

import "github.com/spf13/cobra"

// addExtraCommands wires the commands of the scenario engine, the grader and
// the TUI.
func addExtraCommands(root *cobra.Command) {
	root.AddCommand(newScenarioCmd(), newProgressCmd(), newGradeCmd())
	root.RunE = func(cmd *cobra.Command, args []string) error {
		return runDoctor(cmd.OutOrStdout(), false)
	}
}

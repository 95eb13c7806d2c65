package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/sandbox/load"
)

// newLoadCmd is `ctlab load`: the load generators' own command (the one
// grammar, also what scenarios run as /.ctlab/ctlab load ...), with its
// exit statuses mapped onto the CLI's.
func newLoadCmd() *cobra.Command {
	root := load.Command()
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
	})
	for _, c := range root.Commands() {
		run := c.RunE
		c.RunE = func(cmd *cobra.Command, args []string) error {
			err := run(cmd, args)
			var ee load.ExitError
			var ue load.UsageError
			switch {
			case errors.As(err, &ee):
				return exitError{ee.Code}
			case errors.As(err, &ue):
				return usageError{err}
			}
			return err
		}
	}
	addImageLoadFlag(root) // docker's `load -i FILE` (images.go)
	return root
}

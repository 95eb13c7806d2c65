package main

import (
	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/cmd/internal/ocicli"
)

// newOCICmd is `ctlab oci ...`: the OCI runtime (runc's command line) that
// bin/ctlab-oci also is. Its exit status passes through as ctlab's.
func newOCICmd() *cobra.Command {
	c, _ := ocicli.Command("oci")
	c.Short = "ctlab as an OCI runtime (runc's command line; bin/ctlab-oci is the same)"
	c.DisableFlagParsing = true
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if code := ocicli.Main("oci", args); code != 0 {
			return exitError{code}
		}
		return nil
	}
	c.ResetCommands()
	return c
}

package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version and commit are set at build time (make build, make dist):
//
//	-ldflags "-X main.version=0.1.0+12.g1fbb906 -X main.commit=<full sha>"
//
// The .deb carries the same version, so `ctlab version` and `dpkg -s ctlab`
// agree. A plain `go build` leaves "dev" and takes the commit from the VCS
// stamp Go embeds.
var (
	version = "dev"
	commit  = ""
)

// buildHooks lets files compiled only with a build tag (gendocs.go) add
// commands to the root without a trace in the shipped binary.
var buildHooks []func(root *cobra.Command)

// versionText is what both `ctlab version` and `ctlab --version` print.
func versionText() string {
	c := commit
	if c == "" {
		c = "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					c = s.Value
				}
			}
		}
	}
	return fmt.Sprintf("ctlab %s\ncommit: %s\ngo: %s %s/%s\n", version, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// addVersion gives root a --version flag and a version command, then runs
// the build hooks.
func addVersion(root *cobra.Command) {
	root.Version = version
	root.SetVersionTemplate(versionText())
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print ctlab's version, the commit and the Go version it was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), versionText())
			return err
		},
	})
	for _, h := range buildHooks {
		h(root)
	}
}
